//! Export and import from the studio, through the in-app picker (what a desktop without a
//! portal or zenity gets): a finished run goes out as a Hugging Face folder and comes back in
//! as a new run; a GGUF file that is not one is refused with a message.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use egui_kittest::kittest::Queryable;
use harness::{pick_folder, step_until};
use hearth_engine::train::{BackendKind, RunEvent, spawn_run};
use hearth_studio::{DialogBackend, Tab};
use std::time::Duration;

#[test]
fn a_run_exports_from_the_studio_and_imports_back_as_a_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let project = hearth_engine::project::Project::open_or_create(dir.path()).unwrap();
    let mut spec = common::small_spec(BackendKind::preferred(), 10);
    spec.name = "tiny".into();
    spec.model.n_layer = 1;
    let handle = spawn_run(spec, &project.new_run_dir("tiny"), None).unwrap();
    let events = common::collect_events(&handle, Duration::from_secs(120));
    assert!(matches!(events.last(), Some(RunEvent::Finished(_))));
    drop(handle);

    let mut harness = harness::studio(dir.path());
    harness.state_mut().set_dialog_backend(DialogBackend::InApp);
    harness.run_steps(2);
    harness.get_by_label_contains("tiny\nfinished").click();
    harness.run_steps(2);
    harness.get_by_label("Run details").click();
    harness.run_steps(2);
    harness.get_by_label("Export").click();
    harness.run_steps(2);
    assert!(
        harness.query_by_label("PEFT adapter folder…").is_none()
            && harness.query_by_label("GGUF file (F16)…").is_none(),
        "a GPT run without adapters exports as a Hugging Face folder only"
    );
    harness.get_by_label("Hugging Face folder…").click();
    let out = tempfile::tempdir().unwrap();
    let export_dir = out.path().join("tiny-hf");
    std::fs::create_dir(&export_dir).unwrap();
    pick_folder(&mut harness, &export_dir);
    // The export runs in the background; the status bar says so meanwhile.
    step_until(
        &mut harness,
        Duration::from_secs(120),
        "the export to end",
        |app| !app.is_exporting(),
    );
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "README.md",
    ] {
        assert!(
            export_dir.join(file).exists(),
            "{file} missing; messages: {:?}",
            harness.state().messages()
        );
    }
    assert!(
        harness
            .state()
            .messages()
            .last()
            .is_some_and(|m| m.starts_with("exported tiny (step 10)")),
        "{:?}",
        harness.state().messages()
    );

    harness.get_by_label("Import model…").click();
    harness.run_steps(2);
    harness.get_by_label("Hugging Face folder…").click();
    pick_folder(&mut harness, &export_dir);
    // The import runs in the background; the status bar says so meanwhile.
    let start = std::time::Instant::now();
    while harness.state().is_importing() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "import never ended"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(2);
    let app = harness.state();
    assert_eq!(app.runs().len(), 2, "{:?}", app.messages());
    let imported = &app.runs()[app.selected().expect("the imported run is shown")];
    assert_eq!(imported.name(), "tiny-hf");
    assert_eq!(app.prefs().tab, Tab::Monitor);
    assert!(
        app.messages()
            .last()
            .is_some_and(|m| m.contains("as run tiny-hf")),
        "{:?}",
        app.messages()
    );
}

#[test]
fn a_gguf_file_that_does_not_read_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let gguf = files.path().join("broken.gguf");
    std::fs::write(&gguf, b"GGUF but not really").unwrap();
    std::fs::write(files.path().join("notes.txt"), b"not a model").unwrap();
    let mut harness = harness::studio(dir.path());
    harness.state_mut().set_dialog_backend(DialogBackend::InApp);
    harness.run_steps(2);
    harness.get_by_label("Import model…").click();
    harness.run_steps(2);
    harness.get_by_label("GGUF file…").click();
    harness.run_steps(4);
    harness::type_into(&mut harness, "File", &files.path().display().to_string());
    harness.get_by_label("Open").click();
    harness.run_steps(3);
    // The picker lists GGUF files only.
    assert!(harness.query_by_label("notes.txt").is_none());
    harness.get_by_label("broken.gguf").click();
    harness.run_steps(2);
    harness.get_by_label("Open").click();
    harness.run_steps(2);
    let start = std::time::Instant::now();
    while harness.state().is_importing() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "import never ended"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(2);
    let app = harness.state();
    assert!(app.runs().is_empty(), "no run was made");
    assert!(app.damaged().is_empty(), "no half-written folder is left");
    assert!(
        app.messages()
            .last()
            .is_some_and(|m| m.starts_with(&format!("cannot import {}", gguf.display()))),
        "{:?}",
        app.messages()
    );
    harness.get_by_label_contains("cannot import");
}
