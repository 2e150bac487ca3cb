//! Next-token prediction: causal attention, cross-entropy of each position's logits against the
//! token that follows it. On instruction data (prompt/response examples) the loss covers the
//! response tokens only (supervised fine-tuning), and evaluations add the response loss and
//! exact match on the validation prompts.

use super::step::{StepData, mean_of_batches};
use super::{Drawn, Evaluation, MetricKey, Objective, ObjectiveKind, masked};
use crate::data::Split;
use crate::eval::{cross_entropy, estimate_loss, exact_match, tokens_tensor};
use crate::model::{AttentionMode, Model};
use burn::tensor::{Device, Int, Tensor};
use rand::rngs::StdRng;

impl MetricKey {
    /// Instruction data: the loss on validation responses (equal to the run's `val_loss`).
    pub const VAL_RESPONSE_LOSS: MetricKey = MetricKey::new("val_response_loss");
    /// Instruction data: the share of validation prompts (the first 64) whose answer greedy
    /// decoding reproduces exactly.
    pub const VAL_EXACT_MATCH: MetricKey = MetricKey::new("val_exact_match");
}

/// Validation prompts scored for exact match at each evaluation.
const EXACT_MATCH_PROMPTS: usize = 64;

/// Mean cross-entropy in nats. `logits: [batch, seq, vocab]`, `targets: [batch, seq]`.
pub fn loss(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    cross_entropy(logits, targets)
}

/// The next-token loss of one batch of `split` drawn with `rng`: on instruction data, over the
/// response tokens only.
pub fn batch_loss(
    model: &Model,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<1> {
    rows_loss(model, draw_rows(data, split, rng), data, device)
}

/// The rows of one batch: inputs and targets, and whether targets cover responses only.
struct Rows {
    inputs: Vec<i64>,
    targets: Vec<i64>,
    responses_only: bool,
}

fn draw_rows(data: &StepData<'_>, split: Split, rng: &mut StdRng) -> Rows {
    let (b, ctx) = (data.batch_size, data.context);
    if data.corpus.is_instructions() {
        // Supervised fine-tuning: the loss covers response tokens only.
        let (inputs, targets) = data.corpus.sample_instruction_batch(split, b, ctx, rng);
        return Rows {
            inputs,
            targets,
            responses_only: true,
        };
    }
    let batch = data.corpus.sample_batch(split, b, ctx, rng);
    Rows {
        inputs: batch.inputs,
        targets: batch.targets,
        responses_only: false,
    }
}

fn rows_loss(model: &Model, rows: Rows, data: &StepData<'_>, device: &Device) -> Tensor<1> {
    let (b, ctx) = (data.batch_size, data.context);
    let logits = model.forward(tokens_tensor(rows.inputs, b, ctx, device));
    let targets = tokens_tensor(rows.targets, b, ctx, device);
    if rows.responses_only {
        masked::loss(logits, targets)
    } else {
        loss(logits, targets)
    }
}

/// Causal language modelling ([`ObjectiveKind::NEXT_TOKEN`]).
pub struct NextToken;

impl Objective for NextToken {
    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::NEXT_TOKEN
    }

    fn charts(&self, _spec: &super::ObjectiveSpec) -> super::Charts {
        super::Charts::new(super::LossQuantities::both("next-token loss"))
    }

    fn attention_mode(&self) -> AttentionMode {
        AttentionMode::Causal
    }

    fn generates_text(&self) -> bool {
        true
    }

    fn references(&self, data: &StepData<'_>) -> Vec<crate::eval::baseline::Reference> {
        // Instruction data is scored on responses only, which a count model of the whole
        // stream does not measure.
        if data.corpus.is_instructions() {
            return Vec::new();
        }
        crate::eval::baseline::ngram_references(data.corpus, "val_loss")
    }

    fn metrics(&self) -> &'static [MetricKey] {
        &[MetricKey::VAL_RESPONSE_LOSS, MetricKey::VAL_EXACT_MATCH]
    }

    fn train_loss(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1> {
        batch_loss(model, data, Split::Train, rng, device)
    }

    fn draw(&self, data: &StepData<'_>, rng: &mut StdRng) -> Option<Drawn> {
        Some(Box::new(draw_rows(data, Split::Train, rng)))
    }

    fn drawn_loss(
        &self,
        model: &Model,
        drawn: Drawn,
        data: &StepData<'_>,
        device: &Device,
    ) -> Option<Tensor<1>> {
        let rows = drawn.downcast::<Rows>().ok()?;
        Some(rows_loss(model, *rows, data, device))
    }

    fn evaluate(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Evaluation {
        if data.corpus.is_instructions() {
            let train_loss = mean_of_batches(data, rng, |r| {
                batch_loss(model, data, Split::Train, r, device).into_scalar()
            });
            let val_loss = mean_of_batches(data, rng, |r| {
                batch_loss(model, data, Split::Val, r, device).into_scalar()
            });
            let em = exact_match(
                model,
                data.corpus,
                &data.corpus.examples_val,
                EXACT_MATCH_PROMPTS,
                device,
            );
            return Evaluation {
                train_loss,
                val_loss,
                metrics: vec![
                    (MetricKey::VAL_RESPONSE_LOSS, f64::from(val_loss)),
                    (MetricKey::VAL_EXACT_MATCH, em),
                ],
            };
        }
        let (batches, b) = (data.eval_batches, data.batch_size);
        Evaluation {
            train_loss: estimate_loss(model, data.corpus, Split::Train, batches, b, rng, device),
            val_loss: estimate_loss(model, data.corpus, Split::Val, batches, b, rng, device),
            metrics: Vec::new(),
        }
    }
}
