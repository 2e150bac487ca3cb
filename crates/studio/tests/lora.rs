//! LoRA from Run setup: a fine-tune of a Llama-family run offers adapters; the row's rank and
//! targets make the run's spec, the run trains its adapters alone, and the Try it page answers
//! with the fine-tune beside its base.

mod harness;

use egui_kittest::kittest::{NodeT, Queryable};
use harness::{llama_run, step_until, tokenizer};
use hearth_engine::project::{Project, RunStatus};
use hearth_studio::{Action, Tab, TurnState};
use std::time::Duration;

#[test]
fn the_lora_row_makes_a_lora_fine_tune_of_a_llama_base() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open_or_create(dir.path()).unwrap();
    let base = llama_run(&project, "tiny-base", &tokenizer(true), None);
    let mut harness = harness::studio_answering(dir.path());
    harness.run_steps(2);
    harness::fine_tune_from(&mut harness, 0);
    assert_eq!(harness.state().prefs().tab, Tab::Setup);
    assert!(
        harness.state().project().file.draft.model.lora.is_none(),
        "a fine-tune retrains every weight unless asked"
    );
    harness.get_by_label("Train low-rank adapters only").click();
    harness.run_steps(2);
    let draft = &harness.state().project().file.draft;
    let lora = draft.model.lora.clone().expect("adapters are on");
    assert_eq!(lora.rank, 8);
    assert_eq!(lora.targets, ["q", "k", "v", "o"]);
    assert_eq!(
        lora.base,
        base.join("checkpoints/step-000005.bpk")
            .canonicalize()
            .unwrap(),
        "the adapters sit on the base's newest checkpoint"
    );
    assert_eq!(draft.init.as_ref().unwrap().lr_multiplier, 1.0);
    harness.get_by_label_contains("parameters train (");
    // Rank 4 on the queries, the attention output and the MLP's up projection.
    harness
        .get_by_role_and_label(egui::accesskit::Role::SpinButton, "LoRA rank")
        .set_value_accesskit(4.0);
    harness.run_steps(2);
    for target in ["k", "v", "up"] {
        harness.get_by_label(target).click();
        harness.run_steps(2);
    }
    let shown = harness
        .get_by_label_contains("parameters train (")
        .accesskit_node()
        .value()
        .unwrap_or_default();
    let draft = &harness.state().project().file.draft;
    let adapters = draft.model.lora.as_ref().unwrap().n_params(&draft.model);
    assert!(
        shown.starts_with(&format!("{adapters} of ")),
        "the count follows rank and targets: {shown}"
    );
    // The button is below the settings: scrolled to, as a user would.
    harness.get_by_label("Start run").scroll_to_me();
    harness.run_steps(3);
    harness.get_by_label("Start run").click();
    harness.run_steps(2);
    let app = harness.state();
    assert_eq!(app.runs().len(), 2, "{:?}", app.messages());
    let run = app.runs().last().unwrap();
    let lora = run
        .spec
        .model
        .lora
        .clone()
        .expect("a LoRA fine-tune started");
    assert_eq!(lora.rank, 4);
    assert_eq!(lora.alpha, 8.0, "alpha follows the rank at twice it");
    assert_eq!(lora.targets, ["q", "o", "up"]);
    assert_eq!(run.spec.init.as_ref().unwrap().from_run, base);
    let tuned = run.dir.clone();
    step_until(
        &mut harness,
        Duration::from_secs(180),
        "the fine-tune to end",
        |app| !app.runs()[1].is_live(),
    );
    assert_eq!(
        harness.state().runs()[1].status,
        RunStatus::Finished,
        "{:?}",
        harness.state().messages()
    );
    // The fine-tune answers beside its base.
    harness.state_mut().apply(Action::TryIt(1));
    harness.run_steps(2);
    harness.state_mut().try_it_mut().settings.max_tokens = 6;
    harness.get_by_label("Side by side").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().try_it().column_run(0),
        Some(tuned.as_path())
    );
    assert_eq!(harness.state().try_it().column_run(1), Some(base.as_path()));
    harness.get_by_label("Generate").click();
    step_until(
        &mut harness,
        Duration::from_secs(120),
        "both answers",
        |app| {
            let page = app.try_it();
            !page.is_busy() && page.turns(0).len() == 1 && page.turns(1).len() == 1
        },
    );
    for column in 0..2 {
        let turn = &harness.state().try_it().turns(column)[0];
        assert!(
            matches!(turn.state, TurnState::Done { .. }) && !turn.answer.is_empty(),
            "column {column}: {turn:?}"
        );
    }
    // The fine-tune exports as its adapters alone (PEFT) and as one merged GGUF file.
    harness
        .state_mut()
        .set_dialog_backend(hearth_studio::DialogBackend::InApp);
    harness.state_mut().apply(Action::Monitor(1));
    harness.run_steps(2);
    let export = |harness: &mut egui_kittest::Harness<'static, hearth_studio::StudioApp>,
                  format: &str| {
        if harness.query_by_label("Export").is_none() {
            harness.get_by_label("Run details").click();
            harness.run_steps(2);
        }
        harness.get_by_label("Export").click();
        harness.run_steps(2);
        harness.get_by_label(format).click();
        harness.run_steps(2);
    };
    export(&mut harness, "PEFT adapter folder…");
    let out = tempfile::tempdir().unwrap();
    harness::pick_folder(&mut harness, out.path());
    step_until(
        &mut harness,
        Duration::from_secs(120),
        "the PEFT export to end",
        |app| !app.is_exporting(),
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("adapter_config.json")).unwrap_or_else(|e| {
            panic!(
                "no adapter_config.json ({e}); messages: {:?}",
                harness.state().messages()
            )
        }),
    )
    .unwrap();
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert!(out.path().join("adapter_model.safetensors").is_file());
    let said = harness
        .state()
        .messages()
        .last()
        .cloned()
        .unwrap_or_default();
    assert!(
        said.starts_with("exported ") && said.contains("as a PEFT adapter folder"),
        "{said}"
    );
    // GGUF: the save dialog proposes `<run>.gguf` in the project folder.
    export(&mut harness, "GGUF file (F16)…");
    harness.run_steps(4);
    harness.get_by_label("Save").click();
    harness.run_steps(3);
    step_until(
        &mut harness,
        Duration::from_secs(120),
        "the GGUF export to end",
        |app| !app.is_exporting(),
    );
    let name = harness.state().runs()[1].name().to_string();
    let gguf = dir.path().join(format!("{name}.gguf"));
    let header = std::fs::read(&gguf).unwrap_or_else(|e| {
        panic!(
            "{} not written ({e}); messages: {:?}",
            gguf.display(),
            harness.state().messages()
        )
    });
    assert_eq!(&header[..4], b"GGUF");
    // It reads back as a model: the merged fine-tune, tokenizer and template included.
    let back = tempfile::tempdir().unwrap();
    let device = hearth_engine::train::BackendKind::Flex.device().unwrap();
    let summary = hearth_engine::export::import_gguf(&gguf, &back.path().join("r"), "r", &device)
        .expect("the exported GGUF imports");
    assert_eq!(summary.spec.model.d_model, 16);
}

/// Short conversations: each assistant answer is one of `ANSWERS`.
const ANSWERS: [&str; 3] = ["Paris.", "Blue.", "Four."];

#[test]
fn a_chat_file_picked_on_the_dataset_page_trains_a_lora_on_the_assistant_turns() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open_or_create(dir.path()).unwrap();
    let base = llama_run(&project, "tiny-chat", &tokenizer(true), None);
    let files = tempfile::tempdir().unwrap();
    let chat = files.path().join("chat.jsonl");
    let questions = ["Capital of France?", "Sky colour?", "Two plus two?"];
    let lines: Vec<String> = (0..24)
        .map(|i| {
            serde_json::json!({"messages": [
                {"role": "user", "content": questions[i % 3]},
                {"role": "assistant", "content": ANSWERS[i % 3]},
            ]})
            .to_string()
        })
        .collect();
    std::fs::write(&chat, lines.join("\n")).unwrap();

    let mut harness = harness::studio_answering(dir.path());
    harness
        .state_mut()
        .set_dialog_backend(hearth_studio::DialogBackend::InApp);
    harness.run_steps(2);
    harness::fine_tune_from(&mut harness, 0);
    // The Dataset page: the quick pick's file is the chat JSONL.
    harness.get_by_label("Dataset").click();
    harness.run_steps(2);
    harness.get_by_label("Text file").click();
    harness.run_steps(2);
    // The path typed into the File field (the Open file… button's picker chooses the same
    // way, through the same reading of the file).
    harness::type_into(&mut harness, "File", &chat.display().to_string());
    harness.run_steps(1);
    assert_eq!(
        harness.state().project().file.draft.data.source,
        hearth_engine::data::DataSource::Chat { path: chat.clone() },
        "a JSONL file of messages is read as chat"
    );
    harness.get_by_label_contains("Read as chat conversations: each rendered");
    // The first batch marks the assistant's answers alone as what the loss is on.
    let key = hearth_studio::preview_key(&harness.state().project().file.draft);
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the first-batch preview",
        |app| app.dataset().stats_for(&key).is_some(),
    );
    let (_, preview) = harness.state().dataset().stats_for(&key).unwrap();
    assert!(!preview.rows.is_empty());
    for row in &preview.rows {
        let targets = row.target_text();
        assert!(
            ANSWERS.contains(&targets.trim()),
            "the loss is on one answer, not {targets:?} in {}",
            row.marked_text()
        );
        let all: String = row.tokens.iter().map(|t| t.text.as_str()).collect();
        // The question (its start cut to the base's 32-token context) and the generation
        // prompt are context only.
        assert!(
            all.contains("?\n<|assistant|>\n") && !targets.contains('?'),
            "the prompt is context: {all:?}"
        );
    }
    harness.get_by_label("First batch, as the model sees it");
    // Run setup: adapters on, start; the run trains on the conversations.
    harness.get_by_label("Run setup").click();
    harness.run_steps(2);
    harness.get_by_label("Train low-rank adapters only").click();
    harness.run_steps(2);
    harness.get_by_label("Start run").scroll_to_me();
    harness.run_steps(3);
    harness.get_by_label("Start run").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().runs().len(),
        2,
        "{:?}",
        harness.state().messages()
    );
    step_until(
        &mut harness,
        Duration::from_secs(180),
        "the chat fine-tune to end",
        |app| !app.runs()[1].is_live(),
    );
    let run = &harness.state().runs()[1];
    assert_eq!(
        run.status,
        RunStatus::Finished,
        "{:?}",
        harness.state().messages()
    );
    assert_eq!(
        run.spec.data.source,
        hearth_engine::data::DataSource::Chat { path: chat }
    );
    assert!(run.spec.model.lora.is_some());
    assert_eq!(run.spec.init.as_ref().unwrap().from_run, base);
}
