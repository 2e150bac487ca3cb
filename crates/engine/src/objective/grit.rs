//! GRIT: one model, both embedding rows (bidirectional, InfoNCE) and generation rows (causal,
//! next-token) in every step; `L = L_emb + gen_weight * L_gen`. The run's losses are the
//! generation losses, comparable with next-token runs; the embedding losses and the weighted
//! total are extra metrics beside the retrieval ones.

use super::step::{StepData, mean_of_batches};
use super::{EvalView, Evaluation, MetricKey, Objective, ObjectiveKind, ObjectiveSpec};
use super::{contrastive, next_token};
use crate::data::Split;
use crate::eval::estimate_loss;
use crate::model::{AttentionMode, Gpt, SpecError};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

impl MetricKey {
    /// GRIT: the embedding (InfoNCE) loss on validation batches.
    pub const VAL_EMB_LOSS: MetricKey = MetricKey::new("val_emb_loss");
    /// GRIT: the embedding (InfoNCE) loss on training batches.
    pub const TRAIN_EMB_LOSS: MetricKey = MetricKey::new("train_emb_loss");
    /// GRIT: the generation (next-token) loss on training batches.
    pub const TRAIN_GEN_LOSS: MetricKey = MetricKey::new("train_gen_loss");
    /// GRIT: the loss it trains on, `train_emb_loss + gen_weight * train_gen_loss`.
    pub const TRAIN_TOTAL_LOSS: MetricKey = MetricKey::new("train_total_loss");
}

/// Embedding and generation in one model ([`ObjectiveKind::GRIT`]).
pub struct Grit;

impl Objective for Grit {
    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::GRIT
    }

    fn attention_mode(&self) -> AttentionMode {
        // The probe shows the embedding rows' attention.
        AttentionMode::Bidirectional
    }

    fn needs_specials(&self, spec: &ObjectiveSpec) -> bool {
        contrastive::Contrastive.needs_specials(spec)
    }

    fn uses_embeddings(&self) -> bool {
        true
    }

    fn generates_text(&self) -> bool {
        true
    }

    fn validate(&self, spec: &ObjectiveSpec, dropout: f64) -> Vec<SpecError> {
        let mut errors = contrastive::validate_embedding(spec, dropout);
        // NaN is refused too.
        if spec.gen_weight.is_nan() || spec.gen_weight < 0.0 {
            errors.push(SpecError::new("objective.gen_weight", "must be at least 0"));
        }
        errors
    }

    fn recipe(&self) -> super::Recipe {
        super::Recipe {
            arch: crate::model::Arch::Modern,
            temperature: Some(0.05),
            pooling: Some(super::Pooling::Max),
            overlap_curriculum: Some(0.0),
            gen_weight: Some(16.0),
            batch_hint: 16,
            why: "The generation rows teach the text from the first step, so no masked warm-up; \
                  the embedding rows train on plain halves with max pooling, as the contrastive \
                  recipe does. Rotary positions serve both attention directions. At 600 steps \
                  of Tiny Shakespeare (batch 16), lambda 16 keeps generation within 0.01 nats \
                  of a generation-only run over the whole validation split (lambda 1: 0.47) and \
                  retrieves better than an embedding-only run (MRR 0.033 against 0.029).",
            ..super::Recipe::default()
        }
    }

    fn references(&self, data: &StepData<'_>) -> Vec<crate::eval::baseline::Reference> {
        let mut out = crate::eval::baseline::ngram_references(data.corpus, "val_loss");
        out.extend(contrastive::references(data));
        out
    }

    fn start_note(&self, data: &StepData<'_>) -> Option<String> {
        Some(contrastive::start_note(data))
    }

    fn metrics(&self) -> &'static [MetricKey] {
        &[
            MetricKey::VAL_RECALL_AT_1,
            MetricKey::VAL_RECALL_AT_10,
            MetricKey::VAL_MRR,
            MetricKey::VAL_ALIGNMENT,
            MetricKey::VAL_UNIFORMITY,
            MetricKey::VAL_COS_MEAN,
            MetricKey::VAL_COS_STD,
            MetricKey::VAL_EFF_RANK,
            MetricKey::VAL_EMB_LOSS,
            MetricKey::TRAIN_EMB_LOSS,
            MetricKey::TRAIN_GEN_LOSS,
            MetricKey::TRAIN_TOTAL_LOSS,
        ]
    }

    fn train_loss(
        &self,
        model: &Gpt,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1> {
        let emb = contrastive::batch_loss(model, data, Split::Train, rng, device);
        let generation = next_token::batch_loss(model, data, Split::Train, rng, device);
        emb + generation * data.objective.gen_weight
    }

    fn evaluate(
        &self,
        model: &Gpt,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Evaluation {
        let emb_train = mean_of_batches(data, rng, |r| {
            contrastive::batch_loss(model, data, Split::Train, r, device).into_scalar()
        });
        let emb_val = mean_of_batches(data, rng, |r| {
            contrastive::batch_loss(model, data, Split::Val, r, device).into_scalar()
        });
        let mut metrics = contrastive::held_out_metrics(contrastive::held_out(model, data, device));
        let (batches, b) = (data.eval_batches, data.batch_size);
        let gen_train = estimate_loss(model, data.corpus, Split::Train, batches, b, rng, device);
        let gen_val = estimate_loss(model, data.corpus, Split::Val, batches, b, rng, device);
        let w = data.objective.gen_weight as f32;
        metrics.extend([
            (MetricKey::VAL_EMB_LOSS, f64::from(emb_val)),
            (MetricKey::TRAIN_EMB_LOSS, f64::from(emb_train)),
            (MetricKey::TRAIN_GEN_LOSS, f64::from(gen_train)),
            (
                MetricKey::TRAIN_TOTAL_LOSS,
                f64::from(emb_train + w * gen_train),
            ),
        ]);
        // The generation loss is the run's val_loss, comparable with next-token runs.
        Evaluation {
            train_loss: gen_train,
            val_loss: gen_val,
            metrics,
        }
    }

    fn views(
        &self,
        model: &Gpt,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
        step: usize,
    ) -> Vec<EvalView> {
        contrastive::views(model, data, rng, device, step)
    }
}
