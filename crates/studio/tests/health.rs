//! An embedding run whose latest evaluation shows collapsed embeddings is marked in the run
//! list and explained on the monitor; a healthy one is not.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use common::small_spec;
use egui_kittest::kittest::Queryable;
use hearth_engine::objective::ObjectiveKind;
use hearth_engine::project::{RunStatus, RunStore};
use hearth_engine::train::{BackendKind, EvalMetrics};
use hearth_studio::{Action, StudioApp};
use std::path::Path;

/// A finished contrastive run in the project with one evaluation of the given health.
fn stored_run(project: &Path, name: &str, uniformity: f64, eff_rank: f64) {
    let mut spec = small_spec(BackendKind::preferred(), 10);
    spec.name = name.to_string();
    spec.objective.kind = ObjectiveKind::CONTRASTIVE;
    let store = RunStore::create(&project.join("runs").join(name), &spec).unwrap();
    store
        .append_eval(&EvalMetrics {
            step: 10,
            train_loss: 2.7,
            val_loss: 2.7,
            elapsed_s: 1.0,
            extra: vec![
                ("val_recall_at_1".into(), 0.01),
                ("val_alignment".into(), 0.001),
                ("val_uniformity".into(), uniformity),
                ("val_cos_mean".into(), 0.99),
                ("val_cos_std".into(), 0.01),
                ("val_eff_rank".into(), eff_rank),
            ],
        })
        .unwrap();
    store.set_status(&RunStatus::Finished).unwrap();
}

#[test]
fn a_collapsed_run_is_marked_in_the_list_and_explained_on_the_monitor() {
    let dir = tempfile::tempdir().unwrap();
    stored_run(dir.path(), "collapsed-emb", -0.02, 1.1);
    stored_run(dir.path(), "healthy-emb", -3.1, 24.0);
    let mut harness = harness::studio(dir.path());
    harness.run_steps(2);
    let index =
        |app: &StudioApp, name: &str| app.runs().iter().position(|r| r.spec.name == name).unwrap();
    // As soon as the project opens, before either history is loaded, the list marks the
    // collapsed run only.
    let collapsed = index(harness.state(), "collapsed-emb");
    assert!(harness.state().runs()[collapsed].history.is_none());
    assert_eq!(harness.query_all_by_label("collapsed").count(), 1);
    // The healthy run shown: no sentence, and the one mark is still the collapsed run's.
    let healthy = index(harness.state(), "healthy-emb");
    harness.state_mut().apply(Action::Monitor(healthy));
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("collapsed").count(), 1);
    assert!(
        harness
            .query_by_label_contains("the embeddings have collapsed")
            .is_none()
    );
    // The collapsed run shown: the list marks it and the monitor says what to try.
    harness.state_mut().apply(Action::Monitor(collapsed));
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("collapsed").count(), 1);
    let sentence = harness.get_by_label_contains("the embeddings have collapsed");
    let text = format!("{sentence:?}");
    assert!(
        text.contains("uniformity -0.02") && text.contains("smaller learning rate"),
        "{text}"
    );
}
