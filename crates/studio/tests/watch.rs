//! A run that another process trains into the open project (`hearth train`, an MPI job) shows
//! up in the list and is followed live, without pressing Reload.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use egui_kittest::Harness;
use hearth_engine::train::{BackendKind, spawn_run};
use hearth_studio::StudioApp;
use std::time::{Duration, Instant};

fn step_until(
    harness: &mut Harness<'static, StudioApp>,
    what: &str,
    done: impl Fn(&StudioApp) -> bool,
) {
    let start = Instant::now();
    while !done(harness.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_run_trained_elsewhere_appears_and_its_steps_rise() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness::studio(dir.path());
    harness.run_steps(2);
    assert!(harness.state().runs().is_empty());

    // Trained by the test, outside the app, as another process would.
    let project = hearth_engine::project::Project::open_or_create(dir.path()).unwrap();
    let mut spec = common::small_spec(BackendKind::preferred(), 100_000);
    spec.name = "elsewhere".into();
    spec.model.n_layer = 1;
    let run_dir = project.new_run_dir("elsewhere");
    let handle = spawn_run(spec, &run_dir, None).unwrap();

    step_until(&mut harness, "the run to be listed", |app| {
        app.runs().iter().any(|r| r.dir == run_dir)
    });
    let step_of = |app: &StudioApp| {
        app.runs()
            .iter()
            .find(|r| r.dir == run_dir)
            .and_then(|r| r.last_step)
            .map_or(0, |(s, _)| s)
    };
    step_until(&mut harness, "a first step", |app| step_of(app) > 0);
    let first = step_of(harness.state());
    assert_eq!(
        harness.state().runs()[0].status,
        hearth_engine::project::RunStatus::Running,
        "trained elsewhere, not interrupted"
    );
    step_until(&mut harness, "more steps", |app| step_of(app) > first + 20);
    let live = harness.state().runs()[0].live.as_ref();
    assert!(
        live.is_some_and(|l| l.handle.is_followed()),
        "followed through its store, not owned"
    );
    drop(handle);
}
