//! A contrastive run that recorded the terms of its step loss shows InfoNCE as its training
//! curve and the masked-token term in a chart of its own; a run recorded without terms keeps
//! one curve and says what it mixes.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use common::small_spec;
use egui_kittest::kittest::Queryable;
use hearth_engine::objective::ObjectiveKind;
use hearth_engine::project::{RunStatus, RunStore};
use hearth_engine::train::{BackendKind, EvalMetrics, StepMetrics};
use hearth_studio::{Action, StudioApp, Tab};
use std::path::Path;

/// A finished contrastive run (masked warm-up for half of its 10 steps, masked weight 1),
/// with its step terms when `terms` is true.
fn stored_run(project: &Path, name: &str, terms: bool) {
    let mut spec = small_spec(BackendKind::preferred(), 10);
    spec.name = name.to_string();
    spec.objective.kind = ObjectiveKind::CONTRASTIVE;
    spec.objective.masked_warmup = 0.5;
    spec.objective.masked_weight = 1.0;
    let store = RunStore::create(&project.join("runs").join(name), &spec).unwrap();
    for step in 1..=10usize {
        let masked = 3.0 - 0.1 * step as f64;
        let infonce = 2.5 - 0.05 * step as f64;
        let total = if step > 5 { infonce + masked } else { masked };
        store
            .append_step(&StepMetrics {
                step,
                train_loss: total as f32,
                lr: 1e-3,
                grad_norm: 1.0,
                tokens_per_s: 1000.0,
                elapsed_s: step as f64,
                tokens_seen: 64 * step as u64,
            })
            .unwrap();
        if terms {
            let mut t = vec![("step_masked_loss".to_string(), masked)];
            if step > 5 {
                t.insert(0, ("step_infonce".to_string(), infonce));
            }
            store.append_step_terms(step, &t).unwrap();
        }
    }
    store
        .append_eval(&EvalMetrics {
            step: 10,
            train_loss: 2.0,
            val_loss: 2.1,
            elapsed_s: 10.0,
            extra: vec![("val_recall_at_1".into(), 0.01)],
        })
        .unwrap();
    store.set_status(&RunStatus::Finished).unwrap();
}

/// The studio on a project with a contrastive run recorded with step terms ("with-terms") and
/// one without ("without-terms"); the folder lives as long as the returned guard.
fn two_runs_open() -> (tempfile::TempDir, egui_kittest::Harness<'static, StudioApp>) {
    let dir = tempfile::tempdir().unwrap();
    stored_run(dir.path(), "with-terms", true);
    stored_run(dir.path(), "without-terms", false);
    let mut harness = harness::studio(dir.path());
    harness.run_steps(2);
    (dir, harness)
}

/// The list position of the run named `name`.
fn index(app: &StudioApp, name: &str) -> usize {
    app.runs().iter().position(|r| r.spec.name == name).unwrap()
}

#[test]
fn the_contrastive_loss_chart_draws_infonce_and_the_masked_term_apart() {
    let (_dir, mut harness) = two_runs_open();
    let with = index(harness.state(), "with-terms");
    harness.state_mut().apply(Action::Monitor(with));
    harness.run_steps(3);
    // The history loads when the run is shown.
    let curves = &harness.state().runs()[with].curves;
    assert_eq!(
        curves.terms["step_infonce"].step,
        [6.0, 7.0, 8.0, 9.0, 10.0]
    );
    assert_eq!(curves.terms["step_masked_loss"].values.len(), 10);
    harness.get_by_label("Training terms (each step)");
    harness.get_by_label_contains("Masked-token loss, unweighted; after the warm-up it enters");
    harness.get_by_label_contains("the InfoNCE term of each step from step 6");
    assert!(
        harness
            .query_by_label_contains("masked-token loss until step")
            .is_none()
    );
    let without = index(harness.state(), "without-terms");
    harness.state_mut().apply(Action::Monitor(without));
    harness.run_steps(3);
    assert!(
        harness
            .query_by_label("Training terms (each step)")
            .is_none()
    );
    harness.get_by_label_contains("masked-token loss until step 5 (the masked warm-up)");
}

#[test]
fn compare_draws_the_infonce_term_apart_from_a_mixed_step_loss() {
    let (_dir, mut harness) = two_runs_open();
    for run in 0..2 {
        harness.state_mut().apply(Action::SetCompared {
            run,
            compared: true,
        });
    }
    harness.state_mut().apply(Action::ShowTab(Tab::Compare));
    harness.run_steps(3);
    // Validation measures InfoNCE in both runs: one chart.
    harness.get_by_label("Validation contrastive loss");
    // Training: the run with terms draws its InfoNCE term under the same name; the run
    // without them draws its masked-then-InfoNCE step loss on a chart of its own.
    harness.get_by_label("Training contrastive loss (smoothed)");
    harness.get_by_label_contains(
        "Training contrastive step loss (masked-token loss for the first 50%, then InfoNCE + 1 × masked)",
    );
    let with = index(harness.state(), "with-terms");
    let infonce = &harness.state().runs()[with].curves.terms["step_infonce"];
    assert_eq!(
        infonce.smoothed_values().len(),
        5,
        "the InfoNCE term is smoothed for the chart"
    );
}
