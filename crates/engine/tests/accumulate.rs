//! Gradient accumulation and data-parallel replicas: K micro-batches of B rows, or R replicas
//! of B / R rows each, make the same optimizer step as one batch (dropout 0, same data and
//! seed), and the run reports the same losses, at the settings a user trains with.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use common::{collect_events, small_spec};
use hearth_engine::model::Model;
use hearth_engine::project::RunStore;
use hearth_engine::spec::TrainSpec;
use hearth_engine::train::{BackendKind, OptimSpec, RunEvent, spawn_run};
use std::path::Path;
use std::time::Duration;

/// A 50-step run at the settings `hearth train` uses unless told otherwise (evaluation,
/// attention snapshots, samples, optimizer and schedule), with `batch` rows per micro-batch,
/// `accum` micro-batches per step and the replicas of `devices`. Returns every step's
/// training loss and the run's final (train, validation) loss.
fn train(dir: &Path, batch: usize, accum: usize, devices: &str) -> (Vec<f32>, (f32, f32)) {
    let mut spec = small_spec(BackendKind::preferred(), 50);
    spec.optim = OptimSpec::default();
    spec.train = TrainSpec {
        batch_size: batch,
        grad_accum: accum,
        devices: devices.to_string(),
        steps: 50,
        threads: 2,
        backend: BackendKind::preferred(),
        ..TrainSpec::default()
    };
    let handle = spawn_run(spec, dir, None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(300));
    let summary = match events.last() {
        Some(RunEvent::Finished(summary)) => (summary.train_loss, summary.val_loss),
        other => panic!("{other:?}"),
    };
    let store = RunStore::open(dir).unwrap();
    let history = store.load_history().unwrap();
    assert_eq!(history.steps.len(), 50);
    // The throughput counts the rows of the whole optimizer step.
    assert_eq!(history.steps[49].tokens_seen, 50 * 16 * 32);
    assert!(
        !history.samples.is_empty() && !store.attention_steps().unwrap().is_empty(),
        "samples and attention snapshots were taken, as by default"
    );
    (
        history.steps.iter().map(|m| m.train_loss).collect(),
        summary,
    )
}

/// Every weight of the run's final checkpoint, in parameter order.
fn weights(dir: &Path) -> Vec<Vec<f32>> {
    struct Read(Vec<Vec<f32>>);
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().convert::<f32>();
            self.0.push(values.try_to_vec::<f32>().unwrap());
        }
    }
    let spec = hearth_engine::project::store::read_spec(dir).unwrap();
    let vocab = hearth_engine::project::store::read_tokenizer(dir)
        .unwrap()
        .vocab_size();
    let device = BackendKind::preferred().device().unwrap();
    let model = Model::new(&spec.model, vocab, &device)
        .try_load_file(dir.join("checkpoints/step-000050.bpk"))
        .unwrap();
    let mut read = Read(Vec::new());
    model.visit(&mut read);
    read.0
}

/// Every logged loss within a relative 1e-4 of the reference, the final weights within 1e-4,
/// and the final evaluation's train and validation loss within a relative 1e-3.
fn assert_same_run(
    reference: &Path,
    (reference_losses, reference_final): &(Vec<f32>, (f32, f32)),
    other: &Path,
    (other_losses, other_final): &(Vec<f32>, (f32, f32)),
) {
    for (step, (x, y)) in reference_losses.iter().zip(other_losses).enumerate() {
        let rel = (x - y).abs() / x.abs().max(1e-6);
        assert!(
            rel < 1e-4,
            "step {}: loss {x} against {y} ({rel:e})",
            step + 1
        );
    }
    for (what, x, y) in [
        ("train", reference_final.0, other_final.0),
        ("validation", reference_final.1, other_final.1),
    ] {
        let rel = (x - y).abs() / x.abs().max(1e-6);
        assert!(rel < 1e-3, "final {what} loss {x} against {y} ({rel:e})");
    }
    let (wa, wb) = (weights(reference), weights(other));
    assert_eq!(wa.len(), wb.len());
    let mut worst = 0.0f32;
    for (x, y) in wa.iter().zip(&wb) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs());
        }
    }
    eprintln!(
        "{}: final weights differ by up to {worst:e}",
        other.display()
    );
    assert!(worst < 1e-4, "final weights differ by up to {worst:e}");
}

#[test]
fn micro_batches_and_replicas_step_like_one_batch_of_16() {
    let dir = tempfile::tempdir().unwrap();
    let whole_dir = dir.path().join("batch16");
    let whole = train(&whole_dir, 16, 1, "");
    assert!(whole.0[49] < whole.0[0], "the loss went down");
    // (b) two micro-batches of 8.
    let accum_dir = dir.path().join("batch8x2");
    let accumulated = train(&accum_dir, 8, 2, "");
    assert_same_run(&whole_dir, &whole, &accum_dir, &accumulated);
    // (c) two replicas of 8 rows each, on two threads.
    let replica_dir = dir.path().join("cpu2");
    let replicated = train(&replica_dir, 16, 1, "cpu:2");
    assert_same_run(&whole_dir, &whole, &replica_dir, &replicated);
    // Both at once: two replicas of 4 rows, two micro-batches.
    let both_dir = dir.path().join("cpu2x2");
    let both = train(&both_dir, 8, 2, "cpu:2");
    assert_same_run(&whole_dir, &whole, &both_dir, &both);
}
