//! The studio as a window onto runs: a run it starts trains in a worker process and outlives
//! the window; a run `hearth train` started is attached live, paused and stopped from the
//! window; a run whose process was killed reads as interrupted, with Resume.

#[path = "../crates/studio/tests/harness/mod.rs"]
mod harness;
mod support;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hearth_engine::project::RunStatus;
use hearth_engine::spec::RunSpec;
use hearth_studio::{Action, StudioApp};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{hearth, ok, tiny_flags, tiny_spec};

/// A tiny run that goes on until stopped, with an attention snapshot every 10 steps.
fn small_spec(name: &str) -> RunSpec {
    let mut spec = tiny_spec(name, 1_000_000);
    spec.train.attention_interval = 10;
    spec
}

/// The studio on `project`, starting runs as `hearth worker` processes.
fn studio(project: &Path) -> Harness<'static, StudioApp> {
    let mut harness = harness::studio(project);
    harness
        .state_mut()
        .set_worker_exe(PathBuf::from(env!("CARGO_BIN_EXE_hearth")));
    harness.run_steps(2);
    harness
}

fn step_until(
    harness: &mut Harness<'static, StudioApp>,
    what: &str,
    done: impl Fn(&StudioApp) -> bool,
) {
    let start = Instant::now();
    while !done(harness.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn step_of(app: &StudioApp, dir: &Path) -> usize {
    app.runs()
        .iter()
        .find(|r| r.dir == dir)
        .and_then(|r| {
            r.history
                .as_ref()
                .and_then(|h| h.steps.last())
                .map(|m| m.step)
        })
        .unwrap_or(0)
}

/// The run's row of `hearth --project P runs --json`.
fn listed(project: &Path, name: &str) -> Value {
    let out = ok(hearth()
        .arg("--project")
        .arg(project)
        .args(["runs", "--json"]));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_run_started_in_the_studio_outlives_the_window_and_reattaches() {
    let project = tempfile::tempdir().unwrap();
    let _workers = support::KillWorkersOnDrop(project.path().to_path_buf());
    let p = project.path();
    let mut harness = studio(p);
    harness
        .state_mut()
        .apply(Action::SetDraft(Box::new(small_spec("outlives"))));
    harness.run_steps(2);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    step_until(&mut harness, "the run to train", |app| {
        app.runs().len() == 1 && step_of(app, &app.runs()[0].dir) > 2
    });
    let dir = harness.state().runs()[0].dir.clone();
    let live = harness.state().runs()[0].live.as_ref().unwrap();
    assert!(live.handle.is_followed(), "trained by a worker process");
    let worker = hearth_engine::project::live::worker_process(&dir).unwrap();
    assert_ne!(worker.pid, std::process::id());
    // The window goes away without a word, as a killed process does.
    drop(harness);
    let first = listed(p, "outlives")["step"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let later = listed(p, "outlives");
    assert_eq!(later["status"], "running");
    assert!(
        later["step"].as_u64().unwrap() > first,
        "still training: step {first} then {}",
        later["step"]
    );
    // A new window shows it live, and stops it.
    let mut harness = studio(p);
    step_until(&mut harness, "the run to be attached", |app| {
        app.runs().iter().any(|r| r.dir == dir && r.is_live())
    });
    let at = step_of(harness.state(), &dir);
    step_until(&mut harness, "its steps to rise live", |app| {
        step_of(app, &dir) > at + 5
    });
    let index = harness
        .state()
        .runs()
        .iter()
        .position(|r| r.dir == dir)
        .unwrap();
    harness.state_mut().apply(Action::Monitor(index));
    harness.run_steps(2);
    harness.get_by_label("Stop").click();
    step_until(&mut harness, "the run to stop", |app| {
        app.runs()[index].status == RunStatus::Stopped
    });
    assert_eq!(listed(p, "outlives")["status"], "stopped");
}

#[test]
fn a_run_that_hearth_train_started_is_paused_and_stopped_from_the_window() {
    let project = tempfile::tempdir().unwrap();
    let _workers = support::KillWorkersOnDrop(project.path().to_path_buf());
    let p = project.path();
    let data = p.join("text.txt");
    std::fs::write(
        &data,
        "the quick brown fox jumps over the lazy dog. ".repeat(400),
    )
    .unwrap();
    let mut train = hearth()
        .arg("--project")
        .arg(p)
        .args(["train", "--name", "terminal", "--data"])
        .arg(&data)
        .args(tiny_flags(1_000_000))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut harness = studio(p);
    step_until(&mut harness, "the terminal's run to be attached", |app| {
        app.runs().len() == 1 && app.runs()[0].is_live() && step_of(app, &app.runs()[0].dir) > 0
    });
    harness.state_mut().apply(Action::Monitor(0));
    // The attention view moves with the run.
    step_until(&mut harness, "an attention snapshot", |app| {
        app.runs()[0]
            .live
            .as_ref()
            .is_some_and(|l| l.attention.is_some())
    });
    let attention_step = |app: &StudioApp| {
        app.runs()[0]
            .live
            .as_ref()
            .and_then(|l| l.attention.as_ref())
            .map_or(0, |a| a.step)
    };
    let first = attention_step(harness.state());
    step_until(&mut harness, "a newer attention snapshot", |app| {
        attention_step(app) > first
    });
    harness.get_by_label("Pause").click();
    step_until(&mut harness, "the run to pause", |app| {
        app.runs()[0].status == RunStatus::Paused
    });
    assert_eq!(listed(p, "terminal")["status"], "paused");
    let paused_at = step_of(harness.state(), &harness.state().runs()[0].dir);
    std::thread::sleep(Duration::from_millis(800));
    harness.run_steps(3);
    assert!(
        step_of(harness.state(), &harness.state().runs()[0].dir) <= paused_at + 1,
        "a paused run holds"
    );
    harness.get_by_label("Resume").click();
    step_until(&mut harness, "the run to resume", |app| {
        app.runs()[0].status == RunStatus::Running
    });
    harness.get_by_label("Stop").click();
    step_until(&mut harness, "the run to stop", |app| {
        app.runs()[0].status == RunStatus::Stopped
    });
    let exit = train.wait().unwrap();
    assert!(exit.success(), "`hearth train` ends as a stopped run does");
}

#[test]
fn a_run_whose_process_was_killed_reads_interrupted_with_resume() {
    let project = tempfile::tempdir().unwrap();
    let _workers = support::KillWorkersOnDrop(project.path().to_path_buf());
    let p = project.path();
    let mut spec = small_spec("killed");
    spec.train.checkpoint_interval = 5;
    let spec_file = p.join("killed.json");
    std::fs::write(&spec_file, serde_json::to_string(&spec).unwrap()).unwrap();
    let mut train = hearth()
        .arg("--project")
        .arg(p)
        .args(["train", "--spec"])
        .arg(&spec_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut harness = studio(p);
    step_until(&mut harness, "the run to be attached", |app| {
        app.runs().len() == 1 && step_of(app, &app.runs()[0].dir) > 12
    });
    train.kill().unwrap();
    train.wait().unwrap();
    step_until(&mut harness, "the run to read interrupted", |app| {
        app.runs()[0].status == RunStatus::Interrupted && !app.runs()[0].is_live()
    });
    harness.state_mut().apply(Action::Monitor(0));
    harness.run_steps(3);
    harness.get_by_label(hearth_engine::project::follow::INTERRUPTED);
    harness.get_by_label("Run details").click();
    harness.run_steps(2);
    harness.get_by_label("Resume from checkpoint").click();
    let dir = harness.state().runs()[0].dir.clone();
    step_until(&mut harness, "the resumed run to train", |app| {
        app.runs()[0].status == RunStatus::Running && app.runs()[0].is_live()
    });
    assert!(hearth_engine::project::live::worker_alive(&dir));
    harness.run_steps(2);
    harness.get_by_label("Stop").click();
    step_until(&mut harness, "the run to stop", |app| {
        app.runs()[0].status == RunStatus::Stopped
    });
}
