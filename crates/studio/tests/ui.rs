//! The studio driven like a user: clicks start runs, the step count rises, bad settings are
//! refused at the field, a failed run leaves the studio working.

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use common::small_spec;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use hearth_engine::project::RunStatus;
use hearth_engine::spec::RunSpec;
use hearth_engine::train::BackendKind;
use hearth_studio::{Action, DialogBackend, Prefs, StudioApp, Tab};
use std::path::Path;
use std::time::{Duration, Instant};

fn studio(dir: &Path, draft: RunSpec) -> Harness<'static, StudioApp> {
    let dir = dir.to_path_buf();
    Harness::builder()
        .with_size(egui::vec2(1360.0, 860.0))
        .build_eframe(move |cc| {
            let mut app = StudioApp::with_project(cc.egui_ctx.clone(), &dir, Prefs::default());
            app.apply(Action::SetDraft(Box::new(draft)));
            app
        })
}

/// Runs frames until `done` holds; fails with what the app shows after `timeout`.
fn step_until(
    harness: &mut Harness<'static, StudioApp>,
    timeout: Duration,
    what: &str,
    done: impl Fn(&StudioApp) -> bool,
) {
    let start = Instant::now();
    while !done(harness.state()) {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; messages: {:?}",
            harness.state().messages()
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.step();
}

fn last_step(app: &StudioApp, run: usize) -> usize {
    app.runs()
        .get(run)
        .and_then(|r| r.last_step)
        .map(|(s, _)| s)
        .unwrap_or(0)
}

fn backend() -> BackendKind {
    BackendKind::preferred()
}

#[test]
fn clicking_start_trains_and_the_step_count_rises() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 100_000));
    harness.get_by_label("Run setup").click();
    harness.run_steps(2);
    harness.get_by_label("Start run").click();
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the first steps",
        |app| last_step(app, 0) >= 3,
    );
    let first = last_step(harness.state(), 0);
    step_until(&mut harness, Duration::from_secs(60), "more steps", |app| {
        last_step(app, 0) >= first + 5
    });
    // The monitor shows the progress text and the run list its step.
    let shown = format!("step {}", last_step(harness.state(), 0));
    assert!(
        harness.query_all_by_label_contains(&shown).count() >= 2,
        "the monitor and the run list both show {shown}"
    );
    assert!(harness.state().runs()[0].is_live());
    // Back on Run setup, the page says a second run would share the CPU with this one.
    harness.get_by_label("Run setup").click();
    harness.run_steps(2);
    harness.get_by_label_contains("1 run is already training on this computer's CPU");
    harness.get_by_label("Monitor").click();
    harness.run_steps(2);
    harness.get_by_label("Stop").click();
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the run to stop",
        |app| !app.runs()[0].is_live(),
    );
    assert_eq!(harness.state().runs()[0].status, RunStatus::Stopped);
}

#[test]
fn impossible_settings_are_refused_at_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = small_spec(backend(), 10);
    spec.model.d_model = 130;
    spec.model.n_head = 4;
    let mut harness = studio(dir.path(), spec);
    harness.get_by_label("Run setup").click();
    harness.run_steps(2);
    harness.get_by_label_contains("width 130 is not divisible by 4 heads");
    let start = harness.get_by_label("Start run");
    assert!(
        start.accesskit_node().is_disabled(),
        "start is disabled while settings are invalid"
    );
    start.click();
    harness.run_steps(3);
    assert!(harness.state().runs().is_empty(), "no run was started");
}

#[test]
fn a_diverging_run_fails_and_the_studio_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = small_spec(backend(), 50);
    bad.name = "diverges".into();
    // A loss that is NaN from the third step on: a divergence by construction.
    bad.objective.kind = common::diverges_at_step_3();
    let mut harness = studio(dir.path(), bad);
    harness.get_by_label("Run setup").click();
    harness.run_steps(2);
    harness.get_by_label("Start run").click();
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the run to fail",
        |app| {
            matches!(
                app.runs().first().map(|r| &r.status),
                Some(RunStatus::Failed { .. })
            )
        },
    );
    harness.get_by_label_contains("the run diverged");

    harness
        .state_mut()
        .apply(Action::SetDraft(Box::new(small_spec(backend(), 100_000))));
    harness.get_by_label("Run setup").click();
    harness.run_steps(2);
    harness.get_by_label("Start run").click();
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the second run to train",
        |app| last_step(app, 1) >= 5,
    );
}

/// Every file under `dir` with its bytes, by relative path.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn delete_then_undo_restores_a_run_exactly() {
    let dir = tempfile::tempdir().unwrap();
    hearth_studio::bench::generate_project(dir.path(), 3, 40).unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    let target = harness.state().runs()[1].dir.clone();
    let before = snapshot(&target);
    assert!(before.iter().any(|(p, _)| p.ends_with("run.sqlite")));

    harness.get_by_label_contains("run-0001\nfinished").click();
    harness.run_steps(2);
    harness.get_by_label("Run details").click();
    harness.run_steps(2);
    harness.get_by_label("Delete").click();
    harness.run_steps(2);
    assert!(!target.exists(), "the folder left the project");
    assert_eq!(harness.state().runs().len(), 2);
    assert!(harness.state().runs().iter().all(|r| r.dir != target));

    harness.get_by_label("Undo").click();
    harness.run_steps(2);
    assert_eq!(snapshot(&target), before, "every file back, byte for byte");
    let restored = harness
        .state()
        .runs()
        .iter()
        .find(|r| r.dir == target)
        .expect("listed again");
    assert_eq!(restored.name(), "run-0001");
    assert_eq!(restored.last_step.map(|(s, _)| s), Some(40));
}

#[test]
fn a_renamed_run_keeps_its_name_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    hearth_studio::bench::generate_project(dir.path(), 1, 10).unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    let mut annotations = harness.state().runs()[0].annotations.clone();
    annotations.display_name = Some("baseline".into());
    annotations.tags = vec!["keep".into()];
    harness.state_mut().apply(Action::Annotate {
        run: 0,
        annotations,
        save: true,
    });
    drop(harness);
    let harness = studio(dir.path(), small_spec(backend(), 10));
    let run = &harness.state().runs()[0];
    assert_eq!(run.name(), "baseline");
    assert_eq!(run.annotations.tags, vec!["keep".to_string()]);
}

#[test]
fn fine_tune_from_a_finished_run_starts_from_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    let project = hearth_engine::project::Project::open_or_create(dir.path()).unwrap();
    let base = hearth_engine::train::spawn_run(
        small_spec(backend(), 150),
        &project.new_run_dir("base"),
        None,
    )
    .unwrap();
    let events = common::collect_events(&base, Duration::from_secs(120));
    drop(base);
    let Some(hearth_engine::train::RunEvent::Finished(summary)) = events.last() else {
        panic!("base run did not finish")
    };

    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    harness.get_by_label_contains("small\nfinished").click();
    harness.run_steps(2);
    harness.get_by_label("Run details").click();
    harness.run_steps(2);
    harness.get_by_label("Fine-tune from here").click();
    harness.run_steps(2);
    let init = harness
        .state()
        .project()
        .file
        .draft
        .init
        .clone()
        .expect("the setup page holds a fine-tune");
    assert_eq!(init.from_run, harness.state().runs()[0].dir);
    harness.get_by_label_contains("Learning-rate multiplier");
    // The longer setup page scrolls: bring the button into view first, as a user would.
    harness.get_by_label("Start run").scroll_to_me();
    harness.run_steps(3);
    harness.get_by_label("Start run").click();
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the fine-tune's first step",
        |app| last_step(app, 1) >= 1,
    );
    let first = harness.state().runs()[1].history.as_ref().unwrap().steps[0].train_loss;
    assert!(
        first < summary.train_loss + 0.5,
        "starts near the base run's loss {}: {first}",
        summary.train_loss
    );
}

#[test]
fn the_dataset_builder_mixes_sources_and_shows_the_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(
        &notes,
        "first note\n\nsecond note\n\nthird note\n\nfourth note\n",
    )
    .unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    // The tab (the page's heading has the same text).
    harness.get_all_by_label("Dataset").next().unwrap().click();
    harness.run_steps(2);
    harness
        .get_by_label("Builder: sources, mixing, transforms")
        .click();
    harness.run_steps(2);
    harness.get_by_label("Path").focus();
    harness.run_steps(1);
    harness
        .get_by_label("Path")
        .type_text(&notes.display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Add path").click();
    harness.run_steps(2);
    let sources = |app: &StudioApp| match &app.project().file.draft.data.source {
        hearth_engine::data::DataSource::Dataset { recipe, .. } => recipe.sources.len(),
        _ => 0,
    };
    assert_eq!(
        sources(harness.state()),
        2,
        "built-in stories plus the file"
    );
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the dataset statistics",
        |app| {
            app.dataset()
                .stats
                .as_ref()
                .is_some_and(|s| s.recipe.as_ref().is_some_and(|r| r.sources.len() == 2))
        },
    );
    // The source's box and its row of statistics.
    assert!(harness.get_all_by_label_contains("notes.txt").count() >= 2);
    harness.get_by_label("First batch, as the model sees it");
    harness.get_by_label("row 1");
    // A transform the sources cannot feed: the error names the record and the field.
    let mut draft = harness.state().project().file.draft.clone();
    if let hearth_engine::data::DataSource::Dataset { recipe, .. } = &mut draft.data.source {
        recipe.transform = hearth_engine::data::dataset::TransformSpec::Raft {
            options: Default::default(),
        };
    }
    harness.state_mut().apply(Action::SetDraft(Box::new(draft)));
    step_until(&mut harness, Duration::from_secs(60), "the error", |app| {
        app.dataset().error.is_some()
    });
    harness.get_by_label_contains("no field \"document\"");
}

#[test]
fn actions_change_the_app_in_one_place() {
    let dir = tempfile::tempdir().unwrap();
    hearth_studio::bench::generate_project(dir.path(), 2, 20).unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    let app = harness.state_mut();
    app.apply(Action::Monitor(1));
    assert_eq!(
        app.prefs().tab,
        Tab::Monitor,
        "monitoring a run shows the monitor"
    );
    app.apply(Action::SetCompared {
        run: 0,
        compared: true,
    });
    assert!(app.runs()[0].checked && !app.runs()[1].checked);
    app.apply(Action::CloneSettings(1));
    assert_eq!(
        app.prefs().tab,
        Tab::Setup,
        "a clone is edited on the setup page"
    );
    assert_eq!(app.project().file.draft.name, "run-0001-variant");
    let mut plot = app.prefs().plot();
    plot.log_y = true;
    app.apply(Action::SetPlot(plot));
    assert!(app.prefs().log_y);
    app.apply(Action::Delete(1));
    assert_eq!(app.runs().len(), 1);
    app.apply(Action::UndoDelete);
    assert_eq!(app.runs().len(), 2, "undo brings the run back");
    // An index that is not there changes nothing.
    app.apply(Action::Delete(7));
    app.apply(Action::Monitor(7));
    assert_eq!(app.runs().len(), 2);
    assert!(app.messages().is_empty(), "{:?}", app.messages());
}

#[test]
fn the_run_list_tells_runs_of_one_name_apart() {
    let dir = tempfile::tempdir().unwrap();
    hearth_studio::bench::generate_project(dir.path(), 1, 10).unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    let backend = harness.state().runs()[0].spec.train.backend.label();
    harness.get_by_label_contains(&format!("next-token · {backend}"));
}

#[test]
fn a_text_file_not_chosen_yet_is_a_hint_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.get_all_by_label("Dataset").next().unwrap().click();
    harness.run_steps(2);
    // The preview of the starting data (built in the background) is done first, so what is
    // checked below is the text file's state only.
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the first preview",
        |app| !app.dataset().is_loading(),
    );
    harness.get_by_label("Text file").click();
    harness.run_steps(4);
    harness.get_by_label_contains("Choose a text file");
    assert_eq!(
        harness
            .query_all_by_label_contains("Cannot build the dataset")
            .count(),
        0,
        "no error before a file is picked"
    );
    assert!(!harness.state().dataset().is_loading(), "nothing to build");
}

#[test]
fn the_in_app_picker_opens_a_run_folder() {
    let other = tempfile::tempdir().unwrap();
    hearth_studio::bench::generate_project(other.path(), 1, 10).unwrap();
    let run_dir = other.path().join("runs").join("run-0000");
    let dir = tempfile::tempdir().unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.state_mut().set_dialog_backend(DialogBackend::InApp);
    harness.run_steps(2);
    harness.get_by_label("Open run folder…").click();
    // The window fades in over a few frames.
    harness.run_steps(4);
    harness.get_by_label("Folder").focus();
    harness.run_steps(1);
    harness
        .get_by_label("Folder")
        .type_text(&run_dir.display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Choose this folder").click();
    harness.run_steps(3);
    let app = harness.state();
    assert_eq!(
        app.runs().len(),
        1,
        "the run was added: {:?}",
        app.messages()
    );
    assert_eq!(app.runs()[0].dir, run_dir);
    assert_eq!(app.prefs().tab, Tab::Monitor);
    assert_eq!(
        harness.query_all_by_label("Choose this folder").count(),
        0,
        "the picker closed"
    );
}

#[test]
fn page_shortcuts_switch_pages_but_not_while_typing() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    assert_eq!(harness.state().prefs().tab, Tab::Dataset);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num2);
    harness.run_steps(2);
    assert_eq!(harness.state().prefs().tab, Tab::Setup);
    harness.get_by_label("Start run");
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num4);
    harness.run_steps(2);
    assert_eq!(harness.state().prefs().tab, Tab::Compare);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num2);
    harness.run_steps(2);
    // Keys typed into a text field are the text's.
    harness.get_by_label("Name").focus();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num1);
    harness.key_press(egui::Key::Questionmark);
    harness.run_steps(2);
    assert_eq!(harness.state().prefs().tab, Tab::Setup);
    assert_eq!(
        harness.query_all_by_label("Keyboard shortcuts").count(),
        0,
        "no help while typing"
    );
}

#[test]
fn f1_lists_the_shortcuts_and_escape_closes_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    harness.key_press(egui::Key::F1);
    harness.run_steps(3);
    harness.get_by_label("Keyboard shortcuts");
    for text in [
        "Ctrl+1",
        "Show the Dataset page",
        "Ctrl+Enter",
        "Start a run with the Run setup settings",
        "Space",
        "Pause or resume the monitored run",
        "Ctrl+.",
        "Next x axis: step, tokens, time",
        "]",
        "[",
        "F1, ?",
        "Escape",
    ] {
        harness.get_by_label(text);
    }
    harness.key_press(egui::Key::Escape);
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("Keyboard shortcuts").count(), 0);
    // The top bar's button opens it too, and F1 closes it.
    harness.get_by_label("Shortcuts").click();
    harness.run_steps(3);
    harness.get_by_label("Keyboard shortcuts");
    harness.key_press(egui::Key::F1);
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("Keyboard shortcuts").count(), 0);
}

#[test]
fn chart_shortcuts_change_the_plot_settings_on_chart_pages() {
    let dir = tempfile::tempdir().unwrap();
    hearth_studio::bench::generate_project(dir.path(), 1, 20).unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    // Not on the dataset page: the charts are not shown.
    harness.key_press(egui::Key::L);
    harness.run_steps(2);
    assert!(!harness.state().prefs().log_y);
    harness.state_mut().apply(Action::Monitor(0));
    harness.run_steps(2);
    let before = harness.state().prefs().clone();
    harness.key_press(egui::Key::L);
    harness.key_press(egui::Key::X);
    harness.key_press(egui::Key::CloseBracket);
    harness.run_steps(2);
    let prefs = harness.state().prefs();
    assert!(prefs.log_y);
    assert_eq!(prefs.x_axis, hearth_studio::XAxis::Tokens);
    assert!(prefs.smoothing > before.smoothing);
    harness.key_press(egui::Key::OpenBracket);
    harness.key_press(egui::Key::OpenBracket);
    harness.run_steps(2);
    assert!(harness.state().prefs().smoothing < before.smoothing);
    // C ticks the monitored run and shows the comparison.
    harness.key_press(egui::Key::C);
    harness.run_steps(2);
    assert_eq!(harness.state().prefs().tab, Tab::Compare);
    assert!(harness.state().runs()[0].checked);
}

#[test]
fn space_pauses_and_resumes_the_monitored_run_and_ctrl_period_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 100_000));
    harness.run_steps(2);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the first steps",
        |app| last_step(app, 0) >= 2,
    );
    assert_eq!(harness.state().prefs().tab, Tab::Monitor);
    harness.key_press(egui::Key::Space);
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the run to pause",
        |app| app.runs()[0].status == RunStatus::Paused,
    );
    harness.get_by_label("Resume");
    let paused_at = last_step(harness.state(), 0);
    harness.key_press(egui::Key::Space);
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the run to resume",
        |app| app.runs()[0].status == RunStatus::Running && last_step(app, 0) > paused_at + 1,
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Period);
    step_until(
        &mut harness,
        Duration::from_secs(60),
        "the run to stop",
        |app| !app.runs()[0].is_live(),
    );
    assert_eq!(harness.state().runs()[0].status, RunStatus::Stopped);
    assert!(
        harness.state().notices().is_empty(),
        "a run the user stopped is no news"
    );
}

#[test]
fn a_run_of_this_session_notifies_once_and_old_runs_never() {
    let dir = tempfile::tempdir().unwrap();
    hearth_studio::bench::generate_project(dir.path(), 2, 20).unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 12));
    harness.run_steps(2);
    harness.state_mut().apply(Action::StartRun);
    step_until(
        &mut harness,
        Duration::from_secs(120),
        "the run to finish",
        |app| app.runs()[2].status == RunStatus::Finished,
    );
    harness.run_steps(5);
    let notices = harness.state().notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].outcome, hearth_studio::Outcome::Finished);
    assert_eq!(notices[0].run, harness.state().runs()[2].dir);
    assert_eq!(notices[0].summary, "Run small finished");
}

#[test]
fn the_settings_menu_turns_notifications_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = studio(dir.path(), small_spec(backend(), 10));
    harness.run_steps(2);
    assert!(harness.state().prefs().notifications);
    harness.get_by_label("Settings").click();
    harness.run_steps(3);
    harness.get_by_label("Desktop notifications").click();
    harness.run_steps(2);
    assert!(!harness.state().prefs().notifications);
}
