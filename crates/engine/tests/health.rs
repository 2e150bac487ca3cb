//! The embedding objectives report the health of their embedding space at every evaluation.

mod common;

use common::{collect_events, evals, small_spec, train_to_end};
use hearth_engine::objective::ObjectiveKind;
use hearth_engine::train::{BackendKind, RunEvent, spawn_run};
use std::time::Duration;

const HEALTH: [&str; 5] = [
    "val_alignment",
    "val_uniformity",
    "val_cos_mean",
    "val_cos_std",
    "val_eff_rank",
];

#[test]
fn a_contrastive_run_reports_its_embedding_health_at_every_evaluation() {
    let mut spec = small_spec(BackendKind::preferred(), 30);
    spec.objective.kind = ObjectiveKind::CONTRASTIVE;
    spec.train.eval_interval = 10;
    let (dir, events) = train_to_end(spec);
    let evals = evals(&events);
    assert_eq!(evals.len(), 3);
    for eval in evals {
        for name in HEALTH {
            let value = eval
                .metric(name)
                .unwrap_or_else(|| panic!("{name} missing at step {}", eval.step));
            assert!(value.is_finite(), "{name} = {value}");
        }
        let u = eval.metric("val_uniformity").unwrap();
        let a = eval.metric("val_alignment").unwrap();
        let r = eval.metric("val_eff_rank").unwrap();
        let (mean, std) = (
            eval.metric("val_cos_mean").unwrap(),
            eval.metric("val_cos_std").unwrap(),
        );
        assert!((-4.0 - 1e-9..=0.0).contains(&u), "uniformity {u}");
        assert!((0.0..=4.0).contains(&a), "alignment {a}");
        assert!((1.0..=64.0).contains(&r), "effective rank {r}");
        assert!((-1.0..=1.0).contains(&mean) && (0.0..=1.0).contains(&std));
        eprintln!(
            "step {}: alignment {a:.4} uniformity {u:.4} cos {mean:.4} ± {std:.4} eff_rank {r:.2}",
            eval.step
        );
    }
    // The run's stored history holds them too.
    let history = hearth_engine::project::RunStore::open(&dir.path().join("run"))
        .and_then(|s| s.load_history())
        .expect("the run's history loads");
    let last = history.evals.last().expect("evaluations are stored");
    assert!(HEALTH.iter().all(|n| last.metric(n).is_some()));
}

/// A learning rate far too high for InfoNCE drives every text to nearly one vector; the
/// evaluation's health statistics show it and the run warns in words with what to try.
#[test]
fn a_huge_learning_rate_collapses_the_embeddings_and_the_run_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // Learning rate 3 over 60 steps left uniformity anywhere from -0.94 to -0.002 from one run
    // to the next (LibTorch's threaded sums differ, and a step this large amplifies them);
    // learning rate 10 over 120 steps collapsed every time (uniformity -0.016 to -0.0003).
    let mut spec = small_spec(BackendKind::preferred(), 120);
    spec.objective.kind = ObjectiveKind::CONTRASTIVE;
    spec.optim.lr = 10.0;
    spec.optim.min_lr = 10.0;
    spec.optim.warmup_steps = 0;
    spec.optim.grad_clip = 0.0;
    spec.train.eval_interval = 120;
    let temperature = spec.objective.temperature;
    let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(600));
    let last_eval = *evals(&events).last().expect("an evaluation");
    let (u, r) = (
        last_eval.metric("val_uniformity").expect("uniformity"),
        last_eval.metric("val_eff_rank").expect("effective rank"),
    );
    let diagnosis = hearth_engine::eval::health::collapse(u, r, None, temperature);
    assert!(
        diagnosis.is_some(),
        "no collapse seen: uniformity {u}, effective rank {r}"
    );
    let warned = events
        .iter()
        .any(|e| matches!(e, RunEvent::Warning { message, .. } if message.contains("collapsed")));
    assert!(warned, "the run did not warn about the collapse");
}

/// A masked warm-up trains no embeddings: its evaluations are drawn but never judged for
/// collapse, however alike its pooled vectors are; the first evaluation after InfoNCE trained
/// is.
#[test]
fn a_masked_warm_up_is_not_called_a_collapse() {
    let mut spec = small_spec(BackendKind::preferred(), 30);
    spec.objective.kind = ObjectiveKind::CONTRASTIVE;
    spec.objective.masked_warmup = 0.9;
    spec.train.eval_interval = 10;
    assert!(spec.objective.in_masked_warmup(26, 30));
    assert!(!spec.objective.in_masked_warmup(27, 30));
    assert!(!spec.objective.embeddings_trained_by(20, 30));
    assert!(spec.objective.embeddings_trained_by(30, 30));
    let (_dir, events) = train_to_end(spec);
    let warm_up: Vec<_> = evals(&events)
        .into_iter()
        .filter(|m| m.step <= 20)
        .collect();
    assert_eq!(warm_up.len(), 2, "evaluations at steps 10 and 20");
    // The young encoder's pooled vectors are alike enough that the statistics alone would
    // call them collapsed: what keeps the warning back is the warm-up.
    let alike = warm_up.iter().any(|m| {
        hearth_engine::eval::health::collapse(
            m.metric("val_uniformity").unwrap(),
            m.metric("val_eff_rank").unwrap(),
            None,
            0.05,
        )
        .is_some()
    });
    assert!(
        alike,
        "the warm-up's statistics no longer look collapsed: {events:?}"
    );
    let early = events.iter().find(|e| {
        matches!(e, RunEvent::Warning { step, message } if *step <= 20 && message.contains("collapsed"))
    });
    assert!(early.is_none(), "warned during the warm-up: {early:?}");
}
