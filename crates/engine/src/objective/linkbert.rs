//! LinkBERT (Yasunaga et al., 2022): masked tokens over `[cls] A [sep] B [sep]` rows plus a
//! 3-way relation head on the first position (B follows A, is random, or comes from a document
//! A links to); `L = L_mlm + L_relation`. Trains on datasets with the LinkBERT transform.

use super::step::{StepData, loss_and_accuracy, mean_of_batches};
use super::{
    Evaluation, MetricKey, Objective, ObjectiveError, ObjectiveKind, ObjectiveSpec, PreviewBatch,
    masked,
};
use crate::data::record::Relation;
use crate::data::{Corpus, Split};
use crate::eval::{relation_hidden, tokens_tensor};
use crate::model::{AttentionMode, Gpt, SpecError};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

impl MetricKey {
    /// LinkBERT: the share of validation rows whose relation the head predicts.
    pub const VAL_RELATION_ACC: MetricKey = MetricKey::new("val_relation_acc");
}

/// Relations the head tells apart: next, random, linked.
const RELATIONS: usize = Relation::ALL.len();

/// One LinkBERT batch of `split` drawn with `rng`: `(total loss, relation logits, relation
/// labels)`.
pub fn batch_loss(
    model: &Gpt,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> (Tensor<1>, Tensor<2>, Vec<i64>) {
    let (b, ctx) = (data.batch_size, data.context);
    let tok = &data.corpus.tokenizer;
    let (rows, relations) = data.corpus.sample_relation_batch(split, b, ctx, rng);
    let (inputs, labels) = masked::mask_tokens(&rows, ctx, tok, data.objective.mask_rate, rng);
    let hidden = relation_hidden(model, tok, &rows, inputs, ctx, device);
    let relation_logits = model
        .relation_logits(hidden.clone())
        .expect("a LinkBERT run's model has a relation head");
    let mlm = masked::loss(model.logits(hidden), tokens_tensor(labels, b, ctx, device));
    let relation = masked::loss(
        relation_logits.clone().reshape([b, 1, RELATIONS]),
        tokens_tensor(relations.clone(), b, 1, device),
    );
    (mlm + relation, relation_logits, relations)
}

/// Masked tokens plus sentence-pair relations ([`ObjectiveKind::LINKBERT`]).
pub struct LinkBert;

impl Objective for LinkBert {
    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::LINKBERT
    }

    fn attention_mode(&self) -> AttentionMode {
        AttentionMode::Bidirectional
    }

    fn needs_specials(&self, _spec: &ObjectiveSpec) -> bool {
        // Rows are built from `[cls]`, `[sep]` and `[pad]`, and masked with `[mask]`.
        true
    }

    fn relation_classes(&self) -> usize {
        RELATIONS
    }

    fn validate(&self, spec: &ObjectiveSpec, _dropout: f64) -> Vec<SpecError> {
        masked::validate_mask_rate(spec)
    }

    fn check_corpus(&self, corpus: &Corpus) -> Result<(), ObjectiveError> {
        if corpus.is_relations() {
            Ok(())
        } else {
            Err(ObjectiveError::UnsuitedData {
                objective: "LinkBERT".to_string(),
                needs: "a dataset with the LinkBERT transform".to_string(),
            })
        }
    }

    fn metrics(&self) -> &'static [MetricKey] {
        &[MetricKey::VAL_RELATION_ACC]
    }

    fn train_loss(
        &self,
        model: &Gpt,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1> {
        batch_loss(model, data, Split::Train, rng, device).0
    }

    fn evaluate(
        &self,
        model: &Gpt,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Evaluation {
        let train_loss = mean_of_batches(data, rng, |r| {
            batch_loss(model, data, Split::Train, r, device)
                .0
                .into_scalar()
        });
        let (val_loss, relation_acc) = loss_and_accuracy(data, rng, |r| {
            let (loss, logits, labels) = batch_loss(model, data, Split::Val, r, device);
            let rows = labels.len();
            let counts = masked::accuracy(logits.reshape([rows, 1, RELATIONS]), &labels);
            (loss.into_scalar(), counts)
        });
        Evaluation {
            train_loss,
            val_loss,
            metrics: vec![(MetricKey::VAL_RELATION_ACC, relation_acc)],
        }
    }

    fn preview_batch(&self, data: &StepData<'_>, rng: &mut StdRng) -> Option<PreviewBatch> {
        // Without relation rows the preview shows the data as it is.
        if !data.corpus.is_relations() {
            return None;
        }
        let ctx = data.context;
        let tok = &data.corpus.tokenizer;
        let (rows, relations) =
            data.corpus
                .sample_relation_batch(Split::Train, data.batch_size, ctx, rng);
        let (inputs, labels) = masked::mask_tokens(&rows, ctx, tok, data.objective.mask_rate, rng);
        Some(PreviewBatch {
            inputs,
            targets: labels.iter().map(|&l| l != masked::IGNORE).collect(),
            row_len: ctx,
            row_labels: relations
                .iter()
                .map(|&r| Relation::ALL[r as usize].label().to_string())
                .collect(),
        })
    }
}
