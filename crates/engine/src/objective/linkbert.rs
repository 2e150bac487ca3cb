//! LinkBERT (Yasunaga et al., 2022): masked tokens over `[cls] A [sep] B [sep]` rows plus a
//! 3-way relation head on the first position (B follows A, is random, or comes from a document
//! A links to); `L = L_mlm + L_relation`. Trains on datasets with the LinkBERT transform.

use super::step::{StepData, loss_and_accuracy, mean_of_batches};
use super::{
    Evaluation, MetricKey, Objective, ObjectiveError, ObjectiveKind, ObjectiveSpec, PreviewBatch,
    masked,
};
use crate::data::record::Relation;
use crate::data::{Corpus, RelationExample, Special, Split, Tokenizer};
use crate::eval::{relation_hidden, tokens_tensor};
use crate::model::{AttentionMode, Model, SpecError};
use burn::tensor::{Device, Tensor};
use rand::Rng;
use rand::rngs::StdRng;

impl MetricKey {
    /// LinkBERT: the share of validation rows whose relation the head predicts.
    pub const VAL_RELATION_ACC: MetricKey = MetricKey::new("val_relation_acc");
}

/// Relations the head tells apart: next, random, linked.
const RELATIONS: usize = Relation::ALL.len();

/// A LinkBERT batch of `split` drawn with `rng`: rows `[cls] a [sep] b [sep]` padded to
/// `context` (each segment cut to fit) and the relation of each row.
pub fn relation_batch(
    corpus: &Corpus,
    split: Split,
    batch_size: usize,
    context: usize,
    rng: &mut StdRng,
) -> (Vec<i64>, Vec<i64>) {
    let pairs = match split {
        Split::Train => &corpus.relations_train,
        Split::Val => &corpus.relations_val,
    };
    let chosen: Vec<&RelationExample> = (0..batch_size)
        .map(|_| &pairs[rng.random_range(0..pairs.len())])
        .collect();
    relation_rows(&corpus.tokenizer, &chosen, context)
}

/// Rows `[cls] a [sep] b [sep]` of `pairs`, each segment cut to half the context and the row
/// padded to `context`, and the relation of each row.
pub fn relation_rows(
    tokenizer: &Tokenizer,
    pairs: &[&RelationExample],
    context: usize,
) -> (Vec<i64>, Vec<i64>) {
    let special = |s| i64::from(tokenizer.special(s).expect("LinkBERT needs special tokens"));
    let (cls, sep, pad) = (
        special(Special::Cls),
        special(Special::Sep),
        special(Special::Pad),
    );
    let half = context.saturating_sub(3) / 2;
    let mut rows = Vec::with_capacity(pairs.len() * context);
    for p in pairs {
        let row_start = rows.len();
        rows.push(cls);
        rows.extend(p.a.iter().take(half).map(|&i| i64::from(i)));
        rows.push(sep);
        rows.extend(p.b.iter().take(half).map(|&i| i64::from(i)));
        rows.push(sep);
        rows.resize(row_start + context, pad);
    }
    let labels = pairs.iter().map(|p| i64::from(p.relation)).collect();
    (rows, labels)
}

/// Relation accuracy of a LinkBERT model over every validation pair (inputs unmasked): overall
/// and per relation (next, random, linked), with the number of pairs.
pub fn relation_accuracy(
    model: &Model,
    corpus: &Corpus,
    context: usize,
    device: &Device,
) -> (f64, [f64; 3], usize) {
    let (mut hits, mut counts) = ([0usize; 3], [0usize; 3]);
    for chunk in corpus.relations_val.chunks(64) {
        let pairs: Vec<&RelationExample> = chunk.iter().collect();
        let (rows, _) = relation_rows(&corpus.tokenizer, &pairs, context);
        let hidden = relation_hidden(
            model,
            &corpus.tokenizer,
            &rows,
            rows.clone(),
            context,
            device,
        );
        let Some(logits) = model.relation_logits(hidden) else {
            break;
        };
        let predicted = logits.argmax(1).into_data().convert::<i64>();
        let predicted = predicted.as_slice::<i64>().unwrap_or_default();
        for (p, &guess) in chunk.iter().zip(predicted) {
            let r = usize::from(p.relation);
            counts[r] += 1;
            hits[r] += usize::from(guess == i64::from(p.relation));
        }
    }
    let total: usize = counts.iter().sum();
    let per = [0, 1, 2].map(|r| hits[r] as f64 / counts[r].max(1) as f64);
    (
        hits.iter().sum::<usize>() as f64 / total.max(1) as f64,
        per,
        total,
    )
}

/// One LinkBERT batch of `split` drawn with `rng`: `(total loss, relation logits, relation
/// labels)`.
pub fn batch_loss(
    model: &Model,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> (Tensor<1>, Tensor<2>, Vec<i64>) {
    let (b, ctx) = (data.batch_size, data.context);
    let tok = &data.corpus.tokenizer;
    let (rows, relations) = relation_batch(data.corpus, split, b, ctx, rng);
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
    fn checkpoint_report(
        &self,
        model: &Model,
        corpus: &Corpus,
        context: usize,
        device: &Device,
    ) -> Option<String> {
        let (acc, per, n) = relation_accuracy(model, corpus, context, device);
        Some(format!(
            "relation_acc={acc:.4} next_acc={:.4} random_acc={:.4} linked_acc={:.4} pairs={n}",
            per[0], per[1], per[2]
        ))
    }

    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::LINKBERT
    }

    fn charts(&self, _spec: &ObjectiveSpec) -> super::Charts {
        super::Charts::new(super::LossQuantities::both(
            "LinkBERT loss (masked tokens + relation)",
        ))
    }

    fn settings(&self) -> Vec<super::Setting> {
        vec![super::masked::mask_rate_setting()]
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
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1> {
        batch_loss(model, data, Split::Train, rng, device).0
    }

    fn evaluate(
        &self,
        model: &Model,
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
            relation_batch(data.corpus, Split::Train, data.batch_size, ctx, rng);
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
