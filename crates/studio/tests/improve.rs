//! The Improve page starts a stage on the monitored finished run, shows its progress, the
//! held-out accuracy per round and the checked samples, and the improved run joins the list.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hearth_engine::backend::BackendKind;
use hearth_engine::data::TokenizerKind;
use hearth_engine::improve::{ImproveSpec, Method, TaskKind};
use hearth_engine::train::{RunEvent, spawn_run};
use hearth_studio::{Action, SampleFilter, StudioApp, Tab};
use std::path::Path;
use std::time::{Duration, Instant};

/// Trains a small next-token run on arithmetic prompts and answers into the project.
fn train_base(project: &Path) {
    let mut spec = common::arithmetic_sft_spec(TokenizerKind::Char);
    spec.train.steps = 20;
    spec.train.batch_size = 8;
    spec.train.eval_interval = 20;
    spec.train.eval_batches = 2;
    spec.train.threads = 1;
    spec.train.sample_tokens = 8;
    spec.train.backend = BackendKind::preferred();
    let handle = spawn_run(spec, &project.join("runs").join("base"), None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match handle.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(RunEvent::Finished(_))) => break,
            Ok(Some(RunEvent::Failed { reason, .. })) => panic!("base run failed: {reason}"),
            Ok(_) => assert!(Instant::now() < deadline, "base run too slow"),
            Err(_) => panic!("the base run's thread ended without a result"),
        }
    }
}

#[test]
fn a_stage_started_on_the_page_reports_rounds_and_samples_and_lists_the_new_run() {
    let dir = tempfile::tempdir().unwrap();
    train_base(dir.path());
    let mut harness = harness::studio_sized(dir.path(), 1360.0, 1600.0);
    harness.run_steps(2);
    assert_eq!(harness.state().runs().len(), 1);
    harness.state_mut().apply(Action::ShowTab(Tab::Improve));
    harness.run_steps(2);
    // No run monitored yet: the page says what to pick, and there is nothing to start.
    assert!(
        harness
            .query_by_label_contains("Select a finished next-token run")
            .is_some()
    );
    harness.state_mut().apply(Action::Monitor(0));
    harness.state_mut().apply(Action::ShowTab(Tab::Improve));
    harness.state_mut().improve_mut().spec = ImproveSpec {
        task: TaskKind::Arithmetic,
        method: Method::Star,
        rounds: 1,
        samples: 2,
        prompts_per_round: 8,
        eval_prompts: 8,
        steps_per_round: 2,
        batch_size: 4,
        threads: 1,
        ..ImproveSpec::default()
    };
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Base run: base").is_some());
    harness.get_by_label("Start").click();
    harness.run_steps(1);
    assert!(
        harness.state().improve().is_running() || harness.state().improve().stage.is_some(),
        "{:?}",
        harness.state().improve().error
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while harness.state().improve().is_running() {
        assert!(Instant::now() < deadline, "the stage took too long");
        std::thread::sleep(Duration::from_millis(100));
        harness.run_steps(1);
    }
    harness.run_steps(3);
    let page = harness.state().improve();
    let stage = page.stage.as_ref().expect("a stage");
    match &stage.outcome {
        Some(Ok(summary)) => {
            assert_eq!(summary.rounds, 1);
            assert!((0.0..=1.0).contains(&summary.accuracy_after));
        }
        other => panic!("the stage did not finish: {other:?}"),
    }
    // The base evaluated (round 0) and one round.
    let rounds: Vec<usize> = stage.rounds.iter().map(|r| r.round).collect();
    assert_eq!(rounds, vec![0, 1]);
    assert_eq!(stage.samples.1.len(), 16, "8 prompts x 2 samples");
    assert!(
        harness
            .query_by_label_contains("Finished: held-out accuracy")
            .is_some()
    );
    assert!(
        harness
            .query_by_label_contains("Held-out accuracy per round")
            .is_some()
    );
    // Every sample is listed with its verdict; the filter keeps one kind.
    let verdicts = |h: &Harness<'_, StudioApp>| {
        h.query_all_by_label("pass").count() + h.query_all_by_label("fail").count()
    };
    assert_eq!(verdicts(&harness), 16);
    let failed = stage.samples.1.iter().filter(|s| !s.pass).count();
    harness.state_mut().improve_mut().filter = SampleFilter::Failed;
    harness.run_steps(2);
    assert_eq!(harness.query_all_by_label("fail").count(), failed);
    assert_eq!(harness.query_all_by_label("pass").count(), 0);
    // The improved run is in the list, beside its base, which is as it was.
    let names: Vec<String> = harness
        .state()
        .runs()
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "base-star"), "{names:?}");
}
