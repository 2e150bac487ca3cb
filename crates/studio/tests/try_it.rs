//! The Try it page driven like a user: a run answers a prompt in the window, token by token;
//! chat turns are rendered with the run's chat template, the whole conversation each turn;
//! side by side, a fine-tune and its base answer the same prompt; a run that cannot load says
//! why in the window.

mod harness;

use egui_kittest::kittest::Queryable;
use harness::{llama_run, step_until, tokenizer};
use hearth_engine::project::Project;
use hearth_studio::{Action, EXAMPLE_PROMPT, StudioApp, Tab, TurnState};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// True once every shown column has answered its last prompt.
fn answered(app: &StudioApp, turns: usize, columns: usize) -> bool {
    !app.try_it().is_busy()
        && (0..columns).all(|c| {
            app.try_it().turns(c).len() == turns && !app.try_it().turns(c).last().unwrap().is_open()
        })
}

#[test]
fn generate_streams_the_answer_into_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open_or_create(dir.path()).unwrap();
    let run = llama_run(&project, "tiny-raw", &tokenizer(false), None);
    let mut harness = harness::studio_answering(dir.path());
    harness.run_steps(2);
    // The selected run is the one tried.
    harness.state_mut().apply(Action::Monitor(0));
    harness.get_by_label("Try it").click();
    harness.run_steps(2);
    assert_eq!(harness.state().prefs().tab, Tab::TryIt);
    assert_eq!(harness.state().try_it().column_run(0), Some(run.as_path()));
    harness.get_by_label("Raw text").click();
    harness.run_steps(1);
    {
        let page = harness.state_mut().try_it_mut();
        page.prompt = "The quick brown".to_string();
        page.settings.max_tokens = 24;
    }
    harness.run_steps(1);
    harness.get_by_label("Generate").click();
    step_until(&mut harness, WAIT, "the answer", |app| answered(app, 1, 1));
    harness.run_steps(2);
    let turn = harness.state().try_it().turns(0)[0].clone();
    assert!(
        !turn.answer.trim().is_empty(),
        "an answer was written: {turn:?}"
    );
    assert!(
        matches!(
            turn.state,
            TurnState::Done {
                tokens: 24,
                stopped: false,
                ..
            }
        ),
        "{:?}",
        turn.state
    );
    assert!(!turn.chat, "raw text mode");
    assert_eq!(
        turn.read.as_ref().map(|(text, _)| text.as_str()),
        Some("The quick brown"),
        "raw text is read as it is"
    );
    // The prompt and its continuation are shown together, with the count of tokens.
    harness.get_by_label_contains(&format!("The quick brown{}", turn.answer));
    harness.get_by_label_contains("24 tokens in");

    // A long answer shows its text while it is written, and Stop ends it.
    harness.state_mut().try_it_mut().settings.max_tokens = 4096;
    harness.run_steps(1);
    harness.get_by_label("Generate").click();
    step_until(&mut harness, WAIT, "the first tokens", |app| {
        app.try_it().turns(0).get(1).is_some_and(|t| {
            matches!(t.state, TurnState::Writing(n) if n > 0) && !t.answer.is_empty()
        })
    });
    harness.get_by_label_contains("writing…");
    harness.get_by_label("Stop").click();
    step_until(&mut harness, WAIT, "the answer to stop", |app| {
        answered(app, 2, 1)
    });
    let turn = &harness.state().try_it().turns(0)[1];
    assert!(
        matches!(turn.state, TurnState::Done { tokens, stopped: true, .. } if tokens < 4096),
        "{:?}",
        turn.state
    );
    harness.get_by_label_contains("stopped after");
}

#[test]
fn chat_turns_render_the_whole_conversation_with_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open_or_create(dir.path()).unwrap();
    llama_run(&project, "tiny-chat", &tokenizer(true), None);
    let mut harness = harness::studio_answering(dir.path());
    harness.run_steps(2);
    harness.state_mut().apply(Action::TryIt(0));
    harness.run_steps(2);
    harness.state_mut().try_it_mut().settings.max_tokens = 12;
    assert!(harness.state().try_it().chat, "chat mode is the default");
    assert_eq!(harness.state().try_it().prompt, EXAMPLE_PROMPT);
    harness.get_by_label("Generate").click();
    step_until(&mut harness, WAIT, "the first answer", |app| {
        answered(app, 1, 1)
    });
    assert!(
        harness.state().try_it().prompt.is_empty(),
        "a sent message leaves the box"
    );
    let first = harness.state().try_it().turns(0)[0].clone();
    assert!(matches!(first.state, TurnState::Done { .. }), "{first:?}");
    assert!(!first.answer.is_empty(), "{first:?}");
    let (read, _) = first.read.clone().unwrap();
    assert_eq!(
        read,
        format!("<|user|>\n{EXAMPLE_PROMPT}\n<|assistant|>\n"),
        "the message is rendered with the run's template"
    );
    // The second turn is typed into the box and sent with Enter; the model reads both turns.
    let field = || egui::accesskit::Role::MultilineTextInput;
    harness.get_by_role_and_label(field(), "Message").focus();
    harness.run_steps(1);
    harness
        .get_by_role_and_label(field(), "Message")
        .type_text("And of Spain?");
    harness.run_steps(2);
    // Enter sends (Shift+Enter would start a new line).
    harness.key_press(egui::Key::Enter);
    step_until(&mut harness, WAIT, "the second answer", |app| {
        answered(app, 2, 1)
    });
    let second = harness.state().try_it().turns(0)[1].clone();
    assert_eq!(second.prompt, "And of Spain?");
    let (read, tokens) = second.read.clone().unwrap();
    assert_eq!(
        read,
        format!(
            "<|user|>\n{EXAMPLE_PROMPT}\n<|assistant|>\n{}\n<|user|>\nAnd of Spain?\n<|assistant|>\n",
            first.answer.trim()
        ),
        "the conversation so far is rendered again"
    );
    assert!(tokens > 0);
    // The window shows both turns.
    harness.get_by_label("And of Spain?");
    assert!(harness.query_all_by_label("You").count() == 2);
    // A new conversation forgets them.
    harness.get_by_label("New conversation").click();
    harness.run_steps(2);
    assert!(harness.state().try_it().turns(0).is_empty());
}

#[test]
fn side_by_side_a_fine_tune_and_its_base_answer_the_same_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open_or_create(dir.path()).unwrap();
    let tok = tokenizer(true);
    let base = llama_run(&project, "tiny-base", &tok, None);
    let tuned = llama_run(&project, "tiny-tuned", &tok, Some(&base));
    let mut harness = harness::studio_answering(dir.path());
    harness.run_steps(2);
    let index = harness
        .state()
        .runs()
        .iter()
        .position(|r| r.dir == tuned)
        .unwrap();
    harness.state_mut().apply(Action::TryIt(index));
    harness.run_steps(2);
    harness.state_mut().try_it_mut().settings.max_tokens = 10;
    harness.get_by_label("Side by side").click();
    harness.run_steps(2);
    let page = harness.state().try_it();
    assert_eq!(page.column_run(0), Some(tuned.as_path()));
    assert_eq!(
        page.column_run(1),
        Some(base.as_path()),
        "a fine-tune is shown beside its base"
    );
    harness.get_by_label("Generate").click();
    step_until(&mut harness, WAIT, "both answers", |app| {
        answered(app, 1, 2)
    });
    let page = harness.state().try_it();
    let (left, right) = (&page.turns(0)[0], &page.turns(1)[0]);
    for turn in [left, right] {
        assert_eq!(turn.prompt, EXAMPLE_PROMPT);
        assert!(!turn.answer.is_empty(), "{turn:?}");
        assert!(matches!(turn.state, TurnState::Done { .. }), "{turn:?}");
    }
    assert_eq!(left.seed, right.seed, "both draw with the same seed");
    // Each column is headed by its run.
    assert!(harness.query_all_by_label("tiny-base").count() >= 1);
    assert_eq!(harness.query_all_by_label_contains("tokens in").count(), 2);
}

#[test]
fn runs_that_cannot_answer_say_why_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open_or_create(dir.path()).unwrap();
    // A run with no checkpoint yet.
    let made = llama_run(&project, "tiny-made", &tokenizer(true), None);
    let mut spec = hearth_engine::project::store::read_spec(&made).unwrap();
    spec.name = "tiny-untrained".into();
    let untrained = project.new_run_dir("tiny-untrained");
    hearth_engine::project::RunStore::create(&untrained, &spec).unwrap();
    std::fs::copy(
        made.join("tokenizer.json"),
        untrained.join("tokenizer.json"),
    )
    .unwrap();
    // A run whose chat template does not render.
    let mut broken = tokenizer(true);
    if let hearth_engine::data::Tokenizer::Pretrained { specials, .. } = &mut broken {
        specials.chat_template = Some("{% for m in messages %}{{ m.content }".into());
    }
    let bad_template = llama_run(&project, "tiny-bad-template", &broken, None);
    let mut harness = harness::studio_answering(dir.path());
    harness.run_steps(2);
    let index = |app: &StudioApp, dir: &std::path::Path| {
        app.runs().iter().position(|r| r.dir == dir).unwrap()
    };
    let i = index(harness.state(), &untrained);
    harness.state_mut().apply(Action::TryIt(i));
    harness.run_steps(2);
    harness.get_by_label("Generate").click();
    step_until(&mut harness, WAIT, "the failure", |app| answered(app, 1, 1));
    let turn = &harness.state().try_it().turns(0)[0];
    let TurnState::Failed(reason) = &turn.state else {
        panic!("{turn:?}");
    };
    assert!(reason.contains("did not load"), "{reason}");
    assert!(reason.contains("no checkpoint"), "{reason}");
    harness.get_by_label_contains("cannot load:");

    let i = index(harness.state(), &bad_template);
    harness.state_mut().apply(Action::TryIt(i));
    harness.run_steps(2);
    harness.state_mut().try_it_mut().prompt = "Hello?".into();
    harness.run_steps(1);
    harness.get_by_label("Generate").click();
    step_until(&mut harness, WAIT, "the failure", |app| answered(app, 1, 1));
    let turn = &harness.state().try_it().turns(0)[0];
    let TurnState::Failed(reason) = &turn.state else {
        panic!("{turn:?}");
    };
    assert!(reason.starts_with("chat template:"), "{reason}");
    harness.get_by_label_contains("chat template:");
    // The studio goes on: the model still answers raw text, and other pages draw.
    harness.get_by_label("Raw text").click();
    harness.state_mut().try_it_mut().prompt = "Hello".into();
    harness.state_mut().try_it_mut().settings.max_tokens = 4;
    harness.run_steps(1);
    harness.get_by_label("Generate").click();
    step_until(&mut harness, WAIT, "a raw answer", |app| {
        answered(app, 2, 1)
    });
    assert!(matches!(
        harness.state().try_it().turns(0)[1].state,
        TurnState::Done { tokens: 4, .. }
    ));
    harness.get_by_label("Run setup").click();
    harness.run_steps(2);
    assert_eq!(harness.state().prefs().tab, Tab::Setup);
}
