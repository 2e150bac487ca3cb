//! CoSENT (Su 2022, "CoSENT: a more efficient sentence vector scheme than Sentence-BERT"):
//! fine-tuning an encoder on sentence pairs with gold similarity scores. For every two pairs
//! of a batch where pair `i` is scored below pair `j`, the loss asks the cosine of `i` to be
//! below the cosine of `j`:
//!
//! `L = log(1 + sum over (i, j) with y_i < y_j of exp(scale * (cos_i - cos_j)))`
//!
//! with `scale` 20, as sentence-transformers' `CoSENTLoss`. Only the order of the scores
//! matters, so any scale of gold scores (0-5 for STS-B) trains alike. Evaluations report the
//! Spearman and Pearson correlations of the held-out pairs' cosines with their scores.

use super::{
    EvalView, Evaluation, MetricKey, Objective, ObjectiveKind, ObjectiveSpec, PairSet, Recipe,
    StepData, mean_of_batches,
};
use crate::eval::embed;
use crate::eval::embed::as_refs;
use crate::eval::retrieval::{pair_cosines, pearson, spearman};
use crate::events::EmbeddingSnapshot;
use crate::model::{AttentionMode, Model, SpecError};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand::rngs::StdRng;

/// The factor cosines are multiplied by before the loss (sentence-transformers' default).
pub const SCALE: f64 = 20.0;

/// Held-out pairs scored at an evaluation (at most).
const HELD_OUT_MAX: usize = 2_000;

impl MetricKey {
    /// CoSENT: Spearman's rank correlation of the held-out pairs' cosines with their gold
    /// scores.
    pub const VAL_SPEARMAN: MetricKey = MetricKey::new("val_spearman");
    /// CoSENT: Pearson's correlation of the held-out pairs' cosines with their gold scores.
    pub const VAL_PEARSON: MetricKey = MetricKey::new("val_pearson");
    /// Embedding runs with an STS file: Spearman on that file (recorded by the worker).
    pub const VAL_STS_SPEARMAN: MetricKey = MetricKey::new(crate::eval::retrieval::STS_SPEARMAN);
    /// Embedding runs with an STS file: Pearson on that file.
    pub const VAL_STS_PEARSON: MetricKey = MetricKey::new(crate::eval::retrieval::STS_PEARSON);
}

/// The CoSENT loss of cosines `cos: [n]` against gold `scores` (one per pair).
pub fn cosent_loss(cos: Tensor<1>, scores: &[f32], device: &Device) -> Tensor<1> {
    let n = scores.len();
    let scaled = cos * SCALE;
    // diff[i, j] = s_i - s_j, kept where y_i < y_j.
    let diff = scaled.clone().reshape([n, 1]) - scaled.reshape([1, n]);
    let mut mask = Vec::with_capacity(n * n);
    for &yi in scores {
        for &yj in scores {
            mask.push(if yi < yj { 0.0f32 } else { -1e12 });
        }
    }
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, n]), device);
    let terms = Tensor::cat(
        vec![
            Tensor::<1>::zeros([1], device),
            (diff + mask).reshape([n * n]),
        ],
        0,
    );
    // log-sum-exp, shifted by the largest term for stability.
    let top = terms.clone().max().detach();
    (terms - top.clone()).exp().sum().log() + top
}

/// Cosines of the pairs `(a, b)` (embedded as `data` says).
fn cosines(
    model: &Model,
    data: &StepData<'_>,
    a: &[Vec<u32>],
    b: &[Vec<u32>],
    device: &Device,
) -> Tensor<1> {
    let how = data.objective.embed_spec();
    let tok = &data.corpus.tokenizer;
    let ea = embed(model, &as_refs(a), how, tok, device);
    let eb = embed(model, &as_refs(b), how, tok, device);
    let n = a.len();
    (ea * eb).sum_dim(1).reshape([n])
}

fn pairs<'a>(data: &StepData<'a>) -> &'a PairSet {
    data.pairs
        .expect("the worker loads the scored pairs of a CoSENT run before training")
}

/// The CoSENT loss of `data.batch_size` training pairs drawn with `rng`.
fn train_batch_loss(
    model: &Model,
    data: &StepData<'_>,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<1> {
    let set = pairs(data);
    let n = data.batch_size.max(2);
    let (mut a, mut b, mut scores) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let i = rng.random_range(0..set.train.len());
        a.push(set.train[i].0.clone());
        b.push(set.train[i].1.clone());
        scores.push(set.scores.get(i).copied().unwrap_or(0.0));
    }
    cosent_loss(cosines(model, data, &a, &b, device), &scores, device)
}

/// The held-out pairs' cosines and their gold scores.
fn held_out_cosines(model: &Model, data: &StepData<'_>, device: &Device) -> (Vec<f64>, Vec<f64>) {
    let set = pairs(data);
    let n = set.held_out.len().min(HELD_OUT_MAX);
    let a: Vec<Vec<u32>> = set.held_out[..n].iter().map(|p| p.0.clone()).collect();
    let b: Vec<Vec<u32>> = set.held_out[..n].iter().map(|p| p.1.clone()).collect();
    let tok = &data.corpus.tokenizer;
    let cos = pair_cosines(model, &a, &b, data.objective.embed_spec(), tok, device);
    let gold = set.held_out_scores[..n]
        .iter()
        .map(|&s| f64::from(s))
        .collect();
    (cos, gold)
}

/// The held-out pairs on the embedding map: first sentences, then second sentences.
fn embedding_map(
    model: &Model,
    data: &StepData<'_>,
    device: &Device,
    step: usize,
) -> Option<EmbeddingSnapshot> {
    let set = pairs(data);
    let n = set.held_out.len().min(200);
    if n < 2 {
        return None;
    }
    let first = set.held_out[..n].iter().map(|p| p.0.clone()).collect();
    let second = set.held_out[..n].iter().map(|p| p.1.clone()).collect();
    super::contrastive::paired_map(model, data, first, second, device, step)
}

/// Fine-tuning an encoder on scored pairs with CoSENT ([`ObjectiveKind::COSENT`]).
pub struct Cosent;

impl Objective for Cosent {
    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::COSENT
    }

    fn attention_mode(&self) -> AttentionMode {
        AttentionMode::Bidirectional
    }

    fn needs_specials(&self, _spec: &ObjectiveSpec) -> bool {
        // Sentences of uneven length are padded with `[pad]`.
        true
    }

    fn uses_embeddings(&self) -> bool {
        true
    }

    fn scored_pairs(&self) -> bool {
        true
    }

    fn validate(&self, spec: &ObjectiveSpec, _dropout: f64) -> Vec<SpecError> {
        let mut errors = Vec::new();
        if spec.pairs_file.is_none() {
            errors.push(SpecError::new(
                "objective.pairs_file",
                "CoSENT trains on scored sentence pairs: give a pairs file (--pairs FILE, STS \
                 tab-separated or JSONL {\"a\", \"b\", \"score\"})",
            ));
        }
        if spec.lexical != 0.0 {
            errors.push(SpecError::new(
                "objective.lexical",
                "CoSENT trains the pooled states alone; set the lexical share to 0",
            ));
        }
        errors
    }

    fn recipe(&self) -> Recipe {
        Recipe {
            lr: 2e-5,
            min_lr: 0.0,
            warmup_steps: 34,
            steps: Some(340),
            eval_interval: Some(85),
            batch: Some(16),
            pretrained_lr: true,
            pooling: None,
            lexical: Some(0.0),
            batch_hint: 16,
            why: "sentence-transformers' STS-B recipe for a pretrained encoder: CoSENT (scale \
                  20), batch 16, AdamW at 2e-5 with 10% linear warm-up and decay to 0, about \
                  four epochs of 1,350 training pairs (340 steps), evaluated every epoch. The rate is for pretrained \
                  weights and applies as it is from --init-from. The pooling stays the base \
                  model's.",
            ..Recipe::default()
        }
    }

    fn settings(&self) -> Vec<super::Setting> {
        vec![
            super::Setting::file(
                "pairs_file",
                "Scored pairs",
                "sts-train.tsv or pairs.jsonl",
                |o| o.pairs_file.as_deref(),
                |o, path| o.pairs_file = path,
            )
            .with_help(
                "Sentence pairs with a gold similarity score (STS benchmark tab-separated, or \
                 JSONL a, b, score); the last tenth is held out",
            ),
            super::Setting::choice(
                "pooling",
                "Pooling",
                super::Pooling::ALL.iter().map(|p| p.name()).collect(),
                |o| o.pooling.name(),
                |o, name| o.pooling = super::Pooling::parse(name).unwrap_or(o.pooling),
            ),
            super::Setting::sts_file(),
        ]
    }

    fn metrics(&self) -> &'static [MetricKey] {
        &[MetricKey::VAL_SPEARMAN, MetricKey::VAL_PEARSON]
    }

    fn charts(&self, spec: &ObjectiveSpec) -> super::Charts {
        let mut charts = super::Charts::new(super::LossQuantities::both("CoSENT loss"));
        // The count models' reference lines measure next-token loss: not this loss.
        charts.loss_references = false;
        charts.map_groups = ["first sentences", "second sentences"];
        charts.metrics_chart = super::MetricsChart::Together {
            title: "Held-out pairs: cosine against gold score",
            y_label: "correlation",
            curves: vec![
                super::ChartCurve {
                    legend: "Spearman",
                    source: super::CurveSource::Metric(MetricKey::VAL_SPEARMAN),
                },
                super::ChartCurve {
                    legend: "Pearson",
                    source: super::CurveSource::Metric(MetricKey::VAL_PEARSON),
                },
            ],
        };
        if spec.sts_file.is_some()
            && let super::MetricsChart::Together { curves, title, .. } = &mut charts.metrics_chart
        {
            *title = "Cosine against gold score: held-out pairs and the STS file";
            curves.extend([
                super::ChartCurve {
                    legend: "Spearman (STS file)",
                    source: super::CurveSource::Metric(MetricKey::VAL_STS_SPEARMAN),
                },
                super::ChartCurve {
                    legend: "Pearson (STS file)",
                    source: super::CurveSource::Metric(MetricKey::VAL_STS_PEARSON),
                },
            ]);
        }
        charts
    }

    fn train_loss(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1> {
        train_batch_loss(model, data, rng, device)
    }

    fn evaluate(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Evaluation {
        let train_loss = mean_of_batches(data, rng, |r| {
            train_batch_loss(model, data, r, device).into_scalar()
        });
        let (cos, gold) = held_out_cosines(model, data, device);
        // The same quantity as the training curve: CoSENT over batches of the run's size
        // (the loss sums over pairs of pairs, so it grows with the batch).
        let size = data.batch_size.max(2);
        let chunks: Vec<f32> = cos
            .chunks(size)
            .zip(gold.chunks(size))
            .filter(|(c, _)| c.len() >= 2)
            .map(|(c, g)| {
                let t = Tensor::<1>::from_data(
                    TensorData::new(c.iter().map(|&c| c as f32).collect::<Vec<_>>(), [c.len()]),
                    device,
                );
                let g: Vec<f32> = g.iter().map(|&g| g as f32).collect();
                cosent_loss(t, &g, device).into_scalar()
            })
            .collect();
        let val_loss = chunks.iter().sum::<f32>() / chunks.len().max(1) as f32;
        Evaluation {
            train_loss,
            val_loss,
            metrics: vec![
                (MetricKey::VAL_SPEARMAN, spearman(&cos, &gold)),
                (MetricKey::VAL_PEARSON, pearson(&cos, &gold)),
            ],
        }
    }

    fn views(
        &self,
        model: &Model,
        data: &StepData<'_>,
        _rng: &mut StdRng,
        device: &Device,
        step: usize,
    ) -> Vec<EvalView> {
        embedding_map(model, data, device, step)
            .map(EvalView::EmbeddingMap)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_is_small_when_cosines_follow_the_scores_and_large_when_reversed() {
        let device = crate::backend::BackendKind::Flex.device().unwrap();
        let scores = [0.0f32, 2.5, 5.0];
        let loss = |c: [f32; 3]| -> f32 {
            cosent_loss(
                Tensor::<1>::from_data(TensorData::new(c.to_vec(), [3]), &device),
                &scores,
                &device,
            )
            .into_scalar()
        };
        let ordered = loss([0.1, 0.5, 0.9]);
        let reversed = loss([0.9, 0.5, 0.1]);
        // Ordered: log(1 + e^-8 + e^-8 + e^-16); reversed: about 20 * 0.8 + log(1 + ...).
        let want = (1.0f64 + 2.0 * (-8.0f64).exp() + (-16.0f64).exp()).ln();
        assert!(
            (f64::from(ordered) - want).abs() < 1e-4,
            "{ordered} vs {want}"
        );
        assert!(reversed > 15.0, "{reversed}");
        // Ties in the gold scores add nothing.
        let tied: f32 = cosent_loss(
            Tensor::<1>::from_data(TensorData::new(vec![0.9f32, 0.1], [2]), &device),
            &[3.0, 3.0],
            &device,
        )
        .into_scalar();
        assert!(tied.abs() < 1e-6, "{tied}");
    }
}
