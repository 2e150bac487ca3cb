//! Training dynamics: the update ratio the optimizer records matches PyTorch's AdamW (float64,
//! `scripts/dynamics_fixture.py`), a run records its matrices, histograms and probe insight,
//! and the rule reads a run at a huge learning rate in words.

mod common;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use common::{collect_events, small_spec};
use hearth_engine::dynamics::{self, HistogramKind};
use hearth_engine::project::RunStore;
use hearth_engine::train::{AdamW, BackendKind, GradBuffer, OptimSpec, spawn_run};
use serde_json::Value;
use std::time::Duration;

#[derive(Module, Debug)]
struct OneMatrix {
    proj: Param<Tensor<2>>,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn close(got: f32, want: f64, what: &str) {
    let rel = (f64::from(got) - want).abs() / want.abs().max(1e-12);
    assert!(
        rel < 1e-5,
        "{what}: {got} against PyTorch's {want} (relative {rel:e})"
    );
}

#[test]
fn the_recorded_update_ratio_matches_pytorch_adamw() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/dynamics_reference.json")).unwrap();
    let (rows, cols) = (
        fixture["rows"].as_u64().unwrap() as usize,
        fixture["cols"].as_u64().unwrap() as usize,
    );
    let f = |key: &str| fixture[key].as_f64().unwrap();
    let betas = fixture["betas"].as_array().unwrap();
    let device = Device::flex().autodiff();
    let mut model = OneMatrix {
        proj: Param::from_tensor(
            Tensor::<2>::from_data(
                TensorData::new(floats(&fixture["weights"]), [rows, cols]),
                &device,
            )
            .require_grad(),
        ),
    };
    let mut optim = AdamW::new(OptimSpec {
        lr: f("lr"),
        beta1: betas[0].as_f64().unwrap(),
        beta2: betas[1].as_f64().unwrap(),
        eps: f("eps"),
        weight_decay: f("weight_decay"),
        grad_clip: f("grad_clip"),
        ..OptimSpec::default()
    });
    for (i, step) in fixture["steps"].as_array().unwrap().iter().enumerate() {
        // The loss sum(W * G) has gradient G.
        let g = Tensor::<2>::from_data(
            TensorData::new(floats(&step["grad"]), [rows, cols]),
            &device,
        );
        let loss = model.proj.val().mul(g).sum();
        let grads = GradBuffer::from_grads(&model, &loss.backward());
        let (next, norm, records) = optim.step_measured(model, &grads, f("lr"));
        model = next;
        let what = |q: &str| format!("step {}: {q}", i + 1);
        close(
            norm,
            step["grad_norm"].as_f64().unwrap(),
            &what("global gradient norm"),
        );
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.name, "proj");
        close(
            r.grad_norm,
            step["grad_norm"].as_f64().unwrap(),
            &what("gradient norm"),
        );
        close(
            r.weight_norm,
            step["weight_norm"].as_f64().unwrap(),
            &what("weight norm"),
        );
        close(
            r.update_norm,
            step["update_norm"].as_f64().unwrap(),
            &what("update norm"),
        );
        close(
            r.update_ratio(),
            step["ratio"].as_f64().unwrap(),
            &what("update ratio"),
        );
        let after = model
            .proj
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let want = floats(&step["after"]);
        let worst = after
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            worst < 1e-6,
            "{}: weights differ by {worst:e}",
            what("weights")
        );
    }
}

/// Trains `spec` in a temporary folder and returns its store (the run may end either way).
fn train(spec: hearth_engine::spec::RunSpec) -> (tempfile::TempDir, RunStore) {
    let dir = tempfile::tempdir().unwrap();
    let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
    collect_events(&handle, Duration::from_secs(300));
    drop(handle);
    let store = RunStore::open(&dir.path().join("run")).unwrap();
    (dir, store)
}

fn high_ratio_findings(store: &RunStore) -> Vec<String> {
    let records = store.dynamics().unwrap();
    dynamics::findings(&records, &[], 0.0)
        .into_iter()
        .filter(|f| f.text.contains("far above 10^-3"))
        .map(|f| f.text)
        .collect()
}

#[test]
fn a_huge_learning_rate_trips_the_rule_and_a_small_one_does_not() {
    // Two steps: the first Adam step moves every weight by the learning rate whatever the
    // gradients are (m / sqrt(v) is their sign), so nothing here rests on how training at
    // such a rate goes on.
    let mut spec = small_spec(BackendKind::Flex, 2);
    spec.model.n_layer = 1;
    spec.train.dynamics_interval = 1;
    spec.train.eval_interval = 2;
    spec.train.sample_tokens = 0;
    spec.optim.warmup_steps = 0;
    spec.optim.lr = 1.0;
    spec.optim.min_lr = 1.0;
    let (_dir, store) = train(spec.clone());
    let records = store.dynamics().unwrap();
    assert!(!records.is_empty(), "no dynamics recorded");
    // At 1.0 the first step changes the matrices by far more than their size, and the rule
    // names each in words.
    let last = records.first().unwrap();
    let high: Vec<&str> = last
        .matrices
        .iter()
        .filter(|m| f64::from(m.update_ratio()).log10() > dynamics::HIGH_LOG10_RATIO)
        .map(|m| m.name.as_str())
        .collect();
    assert!(!high.is_empty(), "{last:?}");
    let found = high_ratio_findings(&store);
    for name in &high {
        let label = dynamics::matrix_label(name);
        assert!(
            found
                .iter()
                .any(|t| t.starts_with(&format!("{label}: update ratio 10^"))),
            "{label} not named in {found:?}"
        );
    }
    assert!(
        found
            .iter()
            .all(|t| t.ends_with("the learning rate may be too high for it"))
    );

    spec.optim.lr = 1e-5;
    spec.optim.min_lr = 1e-5;
    let (_dir, store) = train(spec);
    let found = high_ratio_findings(&store);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_run_records_matrices_histograms_and_the_probe_insight() {
    let mut spec = small_spec(BackendKind::Flex, 12);
    spec.model.n_layer = 2;
    spec.train.dynamics_interval = 5;
    spec.train.eval_interval = 6;
    spec.train.sample_tokens = 0;
    let context = spec.model.context;
    let (_dir, store) = train(spec);
    let records = store.dynamics().unwrap();
    let steps: Vec<usize> = records.iter().map(|r| r.step).collect();
    assert_eq!(steps, [5, 10, 12], "every 5 steps and the last");
    let names: Vec<&str> = records[0]
        .matrices
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert!(names.contains(&"blocks.1.attn.qkv.weight"), "{names:?}");
    assert!(names.contains(&"tok_emb.weight"), "{names:?}");
    for m in &records[0].matrices {
        assert!(m.weight_norm > 0.0 && m.grad_norm.is_finite(), "{m:?}");
        assert!(m.update_ratio() > 0.0 && m.update_ratio() < 1.0, "{m:?}");
    }
    let median = records.last().unwrap().update_ratio_median().unwrap();
    assert!((1e-5..1e-1).contains(&median), "median ratio {median}");

    let histograms = store.histograms().unwrap();
    assert_eq!(
        histograms.iter().map(|h| h.step).collect::<Vec<_>>(),
        [6, 12]
    );
    let layers: Vec<(&str, HistogramKind)> = histograms[0]
        .histograms
        .iter()
        .map(|h| (h.layer.as_str(), h.kind))
        .collect();
    assert!(
        layers.contains(&("layer 1", HistogramKind::Grad)),
        "{layers:?}"
    );
    assert!(
        layers.contains(&("layer 0", HistogramKind::Weight)),
        "{layers:?}"
    );

    let insights = store.insights().unwrap();
    assert_eq!(insights.iter().map(|i| i.step).collect::<Vec<_>>(), [6, 12]);
    let last = insights.last().unwrap();
    assert_eq!(last.act_rms.len(), 2);
    assert_eq!(last.attn_entropy.len(), 2);
    assert_eq!(last.lens[1].len(), 2);
    assert!(last.mean_loss().unwrap() > 0.0);

    // Each block's residual size and attention entropy on the probe, with the matrices.
    let blocks = store.blocks().unwrap();
    assert_eq!(
        blocks.iter().map(|b| b.step).collect::<Vec<_>>(),
        [5, 10, 12]
    );
    for b in &blocks {
        assert_eq!((b.act_rms.len(), b.attn_entropy.len()), (2, 2), "{b:?}");
        assert!(b.act_rms.iter().all(|r| r.is_finite() && *r > 0.0), "{b:?}");
        // Causal rows over at most `context` keys: entropy between 0 and ln(context).
        let most = (context as f32).ln() + 1e-4;
        assert!(
            b.attn_entropy.iter().all(|e| (0.0..=most).contains(e)),
            "{b:?}"
        );
    }
    // The evaluation at step 12 reads the same model on the same probe.
    let at_12 = blocks.last().unwrap();
    for (got, want) in at_12.act_rms.iter().zip(&last.act_rms) {
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
}
