//! The Monitor's Dynamics tab reads a run's recorded dynamics: the rules in words, the
//! per-token loss of the probe text with the model's guesses, and the logit lens of the token
//! clicked.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use common::small_spec;
use egui_kittest::kittest::Queryable;
use hearth_engine::dynamics::{DynamicsRecord, MatrixRecord, ProbeInsight};
use hearth_engine::project::{RunStatus, RunStore};
use hearth_engine::train::{BackendKind, StepMetrics};
use hearth_studio::Action;
use std::path::Path;

/// A finished run with three records whose attention matrix changes by 10^-1.2 of itself per
/// step, and a probe insight of four tokens.
fn stored_run(project: &Path, name: &str) {
    let mut spec = small_spec(BackendKind::preferred(), 30);
    spec.name = name.to_string();
    spec.model.n_layer = 2;
    let store = RunStore::create(&project.join("runs").join(name), &spec).unwrap();
    for step in 1..=30 {
        store
            .append_step(&StepMetrics {
                step,
                train_loss: 3.0,
                lr: 1e-3,
                grad_norm: 0.5,
                tokens_per_s: 1000.0,
                elapsed_s: step as f64,
                tokens_seen: step as u64 * 512,
            })
            .unwrap();
    }
    for step in [10, 20, 30] {
        let matrix = |name: &str, ratio: f32| MatrixRecord {
            name: name.to_string(),
            grad_norm: 0.1,
            update_norm: ratio * 4.0,
            weight_norm: 4.0,
        };
        store
            .append_dynamics(&DynamicsRecord {
                step,
                matrices: vec![
                    matrix("tok_emb.weight", 1e-3),
                    matrix("blocks.1.attn.qkv.weight", 10f32.powf(-1.2)),
                    matrix("blocks.1.mlp.fc.weight", 2e-3),
                ],
            })
            .unwrap();
    }
    let guesses = |a: &str, b: &str| vec![(a.to_string(), 0.6), (b.to_string(), 0.3)];
    store
        .append_insight(&ProbeInsight {
            step: 30,
            tokens: ["T", "h", "e", "y"].map(String::from).to_vec(),
            losses: vec![0.2, 0.4, 3.5],
            guesses: vec![guesses("h", "o"), guesses("e", "a"), guesses("n", "r")],
            lens: vec![
                vec![guesses("o", "h"), guesses("h", "o")],
                vec![guesses("a", "e"), guesses("e", "a")],
                vec![guesses("r", "n"), guesses("n", "r")],
            ],
            act_rms: vec![1.1, 1.4],
            attn_entropy: vec![0.9, 0.7],
        })
        .unwrap();
    store.set_status(&RunStatus::Finished).unwrap();
}

#[test]
fn the_dynamics_tab_tells_the_rule_and_shows_per_token_loss_and_the_logit_lens() {
    let dir = tempfile::tempdir().unwrap();
    stored_run(dir.path(), "fast-attention");
    let mut harness = harness::studio_sized(dir.path(), 1400.0, 2400.0);
    harness.run_steps(2);
    let index = harness
        .state()
        .runs()
        .iter()
        .position(|r| r.spec.name == "fast-attention")
        .unwrap();
    harness.state_mut().apply(Action::Monitor(index));
    harness.run_steps(3);
    assert!(
        harness.query_by_label_contains("far above 10^-3").is_none(),
        "Training tab first"
    );
    harness.get_by_label("Dynamics").click();
    harness.run_steps(3);
    harness.get_by_label_contains(
        "layer 1 attention qkv: update ratio 10^-1.2, far above 10^-3: the learning rate may be too high for it",
    );
    // Only the matrix far from 1e-3 is named.
    assert_eq!(
        harness
            .query_all_by_label_contains("update ratio 10^")
            .count(),
        1
    );
    harness.get_by_label_contains("mean loss 1.367 nats over 3 tokens");
    // The logit lens reads the last token until another is clicked.
    harness.get_by_label_contains("Logit lens for token 3 (\"y\")");
    harness.get_by_label("h").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Logit lens for token 1 (\"h\")");
    harness.get_by_label_contains("1.400");
}

#[test]
fn a_run_without_records_says_when_they_come() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = small_spec(BackendKind::preferred(), 30);
    spec.name = "fresh".into();
    RunStore::create(&dir.path().join("runs").join("fresh"), &spec).unwrap();
    let mut harness = harness::studio_sized(dir.path(), 1400.0, 1600.0);
    harness.run_steps(2);
    harness.state_mut().apply(Action::Monitor(0));
    harness.run_steps(2);
    harness.get_by_label("Dynamics").click();
    harness.run_steps(3);
    harness.get_by_label_contains("No update ratios yet");
    harness
        .get_by_label_contains("The per-token loss and the logit lens appear at each evaluation");
}
