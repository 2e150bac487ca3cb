//! An objective defined outside the engine: registered at run time without touching any
//! built-in objective, then trained, evaluated and refused like a built-in one.

mod common;

use burn::tensor::{Device, Tensor};
use common::{collect_events, small_spec};
use hearth_engine::data::{IGNORE, Split};
use hearth_engine::eval::tokens_tensor;
use hearth_engine::model::{AttentionMode, Model};
use hearth_engine::objective::{
    Evaluation, MetricKey, Objective, ObjectiveKind, StepData, masked, mean_of_batches, register,
};
use hearth_engine::train::{BackendKind, EvalMetrics, RunEvent, spawn_run};
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::Duration;

const TOY: &str = "toy-first-half";

/// The share of first-half validation positions whose next token the model predicts.
const VAL_TOY_METRIC: MetricKey = MetricKey::new("val_toy_metric");

/// Next-token prediction on the first half of each window only.
struct FirstHalf;

/// One batch of `split`: `(logits, loss, labels)`, labels ignored on each row's second half.
fn first_half_batch(
    model: &Model,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> (Tensor<3>, Tensor<1>, Vec<i64>) {
    let (b, ctx) = (data.batch_size, data.context);
    let batch = data.corpus.sample_batch(split, b, ctx, rng);
    let labels: Vec<i64> = batch
        .targets
        .iter()
        .enumerate()
        .map(|(i, &t)| if i % ctx < ctx / 2 { t } else { IGNORE })
        .collect();
    let logits = model.forward(tokens_tensor(batch.inputs, b, ctx, device));
    let loss = masked::loss(
        logits.clone(),
        tokens_tensor(labels.clone(), b, ctx, device),
    );
    (logits, loss, labels)
}

impl Objective for FirstHalf {
    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::new(TOY)
    }

    fn attention_mode(&self) -> AttentionMode {
        AttentionMode::Causal
    }

    fn metrics(&self) -> &'static [MetricKey] {
        &[VAL_TOY_METRIC]
    }

    fn train_loss(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1> {
        first_half_batch(model, data, Split::Train, rng, device).1
    }

    fn evaluate(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Evaluation {
        let train_loss = mean_of_batches(data, rng, |r| {
            first_half_batch(model, data, Split::Train, r, device)
                .1
                .into_scalar()
        });
        let (mut total, mut correct, mut chosen) = (0.0f64, 0usize, 0usize);
        for _ in 0..data.eval_batches {
            let (logits, loss, labels) = first_half_batch(model, data, Split::Val, rng, device);
            total += f64::from(loss.into_scalar::<f32>());
            let (c, n) = masked::accuracy(logits, &labels);
            correct += c;
            chosen += n;
        }
        Evaluation {
            train_loss,
            val_loss: (total / data.eval_batches.max(1) as f64) as f32,
            metrics: vec![(VAL_TOY_METRIC, correct as f64 / chosen.max(1) as f64)],
        }
    }
}

fn evals(events: &[RunEvent]) -> Vec<EvalMetrics> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Eval(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_registered_objective_trains_and_reports_its_metric() {
    let unknown = {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = small_spec(BackendKind::Flex, 10);
        spec.objective.kind = ObjectiveKind::new("not-registered");
        spawn_run(spec, &dir.path().join("run"), None)
            .err()
            .expect("an unregistered objective is refused")
            .to_string()
    };
    assert!(
        unknown.contains("objective.kind") && unknown.contains("next-token"),
        "{unknown}"
    );

    register(Arc::new(FirstHalf));
    let kind = ObjectiveKind::new(TOY);
    assert_eq!(ObjectiveKind::parse(TOY), Some(kind.clone()));
    assert_eq!(
        ObjectiveKind::all().last(),
        Some(&kind),
        "listed after the built-in objectives"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut spec = small_spec(BackendKind::Flex, 200);
    spec.objective.kind = kind;
    let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(600));
    assert!(
        matches!(events.last(), Some(RunEvent::Finished(_))),
        "{:?}",
        events.last()
    );
    let first_step = events
        .iter()
        .find_map(|e| match e {
            RunEvent::Step(m) => Some(m.train_loss),
            _ => None,
        })
        .unwrap();
    let curve = evals(&events);
    assert!(curve.len() >= 4, "an evaluation every 50 steps");
    let last = curve.last().unwrap();
    assert!(
        last.val_loss < first_step - 1.0,
        "first-half loss {first_step} -> {}",
        last.val_loss
    );
    for eval in &curve {
        let metric = eval.metric("val_toy_metric");
        assert!(
            metric.is_some_and(|m| (0.0..=1.0).contains(&m)),
            "step {}: {:?}",
            eval.step,
            eval.extra
        );
    }
    let (first_acc, last_acc) = (
        curve[0].metric("val_toy_metric").unwrap(),
        last.metric("val_toy_metric").unwrap(),
    );
    assert!(last_acc > first_acc, "accuracy {first_acc} -> {last_acc}");
    assert!(
        !events.iter().any(|e| matches!(e, RunEvent::Sample { .. })),
        "an objective that does not say it generates gets no samples"
    );
}
