//! Embedding similarity: pooled, L2-normalised encodings trained with InfoNCE over in-batch
//! negatives (plus optional hard negatives) at a temperature. Evaluations report retrieval of
//! held-out positives and the health of their embeddings (alignment, uniformity, pairwise
//! cosine, effective rank; see [`crate::eval::health`]), and show the embedding map and one
//! batch's similarities.

mod describe;

pub use describe::{
    EMBEDDING_HEALTH_CHARTS, EMBEDDING_HEALTH_TITLE, embedding_settings, lexical_note,
};

use super::step::{StepData, mean_of_batches};
use super::{
    EvalView, Evaluation, MetricKey, Objective, ObjectiveKind, ObjectiveSpec, Positives, StepLoss,
};
use crate::data::Split;
use crate::eval::embed::as_refs;
use crate::eval::health::{self, Health};
use crate::eval::{Retrieval, embed, embed_all, retrieval, similarities};
use crate::events::{ContrastiveBatch, EmbeddingSnapshot};
use crate::model::{AttentionMode, Model, SpecError};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use rand::Rng;
use rand::rngs::StdRng;

impl MetricKey {
    /// Embedding objectives: the share of held-out queries whose positive ranks first.
    pub const VAL_RECALL_AT_1: MetricKey = MetricKey::new("val_recall_at_1");
    /// Embedding objectives: the share of held-out queries whose positive ranks in the top ten.
    pub const VAL_RECALL_AT_10: MetricKey = MetricKey::new("val_recall_at_10");
    /// Embedding objectives: the mean reciprocal rank of the held-out positives.
    pub const VAL_MRR: MetricKey = MetricKey::new("val_mrr");
    /// Embedding objectives: mean squared distance between held-out positives' normalised
    /// embeddings (alignment, Wang & Isola 2020; lower is better aligned).
    pub const VAL_ALIGNMENT: MetricKey = MetricKey::new("val_alignment");
    /// Embedding objectives: `log E exp(-2 ||x - y||^2)` over pairs of held-out embeddings
    /// (uniformity, Wang & Isola 2020; at most 0, near 0 when collapsed).
    pub const VAL_UNIFORMITY: MetricKey = MetricKey::new("val_uniformity");
    /// Embedding objectives: mean cosine between distinct held-out embeddings.
    pub const VAL_COS_MEAN: MetricKey = MetricKey::new("val_cos_mean");
    /// Embedding objectives: standard deviation of the cosine between distinct held-out
    /// embeddings.
    pub const VAL_COS_STD: MetricKey = MetricKey::new("val_cos_std");
    /// Embedding objectives: effective rank of the centred held-out embeddings (Roy & Vetterli
    /// 2007; near 1 when collapsed).
    pub const VAL_EFF_RANK: MetricKey = MetricKey::new("val_eff_rank");
    /// Contrastive training steps: the InfoNCE term of the step's loss.
    pub const STEP_INFONCE: MetricKey = MetricKey::new("step_infonce");
    /// Contrastive training steps: the masked-token term of the step's loss (the masked
    /// warm-up, or the masked-token loss kept beside InfoNCE), unweighted.
    pub const STEP_MASKED_LOSS: MetricKey = MetricKey::new("step_masked_loss");
}

/// Texts of the embedding map: this many validation windows, each as a query and a positive.
const MAP_PROBES: usize = 100;

/// Validation windows scored for retrieval at each evaluation (at most).
const RETRIEVAL_WINDOWS: usize = 4_000;

/// InfoNCE: row `i` of `queries` should pick row `i` of `positives` among all positives (and
/// all hard negatives). Inputs are normalised embeddings `[batch, d]` / `[m, d]`.
pub fn info_nce(
    queries: Tensor<2>,
    positives: Tensor<2>,
    hard_negatives: Option<Tensor<2>>,
    temperature: f64,
) -> Tensor<1> {
    let [batch, _] = queries.dims();
    let candidates = match hard_negatives {
        Some(hard) => Tensor::cat(vec![positives, hard], 0),
        None => positives,
    };
    let logits = queries.matmul(candidates.transpose()) / temperature; // [batch, batch + m]
    let device = logits.device();
    let targets = Tensor::<1, Int>::arange(0..batch as i64, &device).reshape([batch, 1]);
    log_softmax(logits, 1).gather(1, targets).mean().neg()
}

/// Uniformity (Wang & Isola 2020, "Understanding Contrastive Representation Learning through
/// Alignment and Uniformity on the Hypersphere"): `log E exp(-2 ||x - y||^2)` over distinct
/// rows of normalised `x: [n, d]`; 0 when every row is the same, lower when spread.
pub fn uniformity(x: Tensor<2>) -> Tensor<1> {
    let [n, _] = x.dims();
    let sims = x.clone().matmul(x.transpose());
    // ||x - y||^2 = 2 - 2 cos for unit rows; the diagonal adds exactly n * exp(0).
    let kernel = (sims * 4.0 - 4.0).exp().sum();
    let pairs = (n * n.saturating_sub(1)).max(1) as f64;
    ((kernel - n as f64) / pairs).clamp_min(1e-12).log()
}

/// Tokens a `halves` positive shares with its query at `progress` (see
/// [`ObjectiveSpec::overlap_curriculum`]): three quarters of `ctx` at the start, shrinking
/// linearly to none when the curriculum ends.
pub fn halves_overlap(spec: &ObjectiveSpec, ctx: usize, progress: f64) -> usize {
    // The curriculum starts when a masked warm-up ends.
    let start = spec.masked_warmup.clamp(0.0, 0.99);
    let progress = ((progress - start) / (1.0 - start)).max(0.0);
    let span = spec.overlap_curriculum;
    if span <= 0.0 || progress >= span {
        return 0;
    }
    let left = 1.0 - progress / span;
    ((ctx as f64 * 0.75 * left).round() as usize).min(ctx.saturating_sub(1))
}

/// Query, positive and hard-negative token sequences of one batch.
type Triples = (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<Vec<u32>>);

/// Query/positive(/negative) token sequences for one contrastive batch of `split`.
fn batch(data: &StepData<'_>, split: Split, rng: &mut StdRng) -> Triples {
    let (b, ctx) = (data.batch_size, data.context);
    let spec = data.objective;
    match spec.positives {
        Positives::Halves | Positives::Dropout => {
            let overlap = if spec.positives == Positives::Halves {
                halves_overlap(spec, ctx, data.progress)
            } else {
                0
            };
            let len = if spec.positives == Positives::Halves {
                2 * ctx - overlap
            } else {
                ctx
            };
            let flat = data.corpus.sample_windows(split, b, len, rng);
            let rows: Vec<Vec<u32>> = flat
                .chunks(len)
                .map(|r| r.iter().map(|&i| i as u32).collect())
                .collect();
            if spec.positives == Positives::Halves {
                let q = rows.iter().map(|r| r[..ctx].to_vec()).collect();
                let p = rows.iter().map(|r| r[ctx - overlap..].to_vec()).collect();
                (q, p, Vec::new())
            } else {
                (rows.clone(), rows, Vec::new())
            }
        }
        Positives::Pairs => {
            let set = data
                .pairs
                .expect("the worker loads the pairs file of a pairs objective before training");
            let mut q = Vec::new();
            let mut p = Vec::new();
            let mut n = Vec::new();
            for _ in 0..b {
                let (a, pos, neg) = &set.train[rng.random_range(0..set.train.len())];
                q.push(a.clone());
                p.push(pos.clone());
                if spec.hard_negatives
                    && let Some(neg) = neg
                {
                    n.push(neg.clone());
                }
            }
            (q, p, n)
        }
    }
}

/// The InfoNCE loss of one batch of `split` drawn with `rng`.
pub fn batch_loss(
    model: &Model,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<1> {
    let (q, p, n) = batch(data, split, rng);
    let tok = &data.corpus.tokenizer;
    // InfoNCE trains the pooled states alone: the lexical channel has no weights, and trained
    // beside it the states learn to memorise the training pairs it misses.
    let pooling = data.objective.pooling;
    let eq = embed(model, &as_refs(&q), pooling, tok, device);
    let ep = embed(model, &as_refs(&p), pooling, tok, device);
    let en = (!n.is_empty()).then(|| embed(model, &as_refs(&n), pooling, tok, device));
    let weight = data.objective.uniformity_weight;
    if weight > 0.0 {
        let spread = uniformity(Tensor::cat(vec![eq.clone(), ep.clone()], 0));
        info_nce(eq, ep, en, data.objective.temperature) + spread * weight
    } else {
        info_nce(eq, ep, en, data.objective.temperature)
    }
}

/// Similarities of one validation batch and each query's margin over its hardest negative.
pub fn batch_view(
    model: &Model,
    data: &StepData<'_>,
    rng: &mut StdRng,
    device: &Device,
    step: usize,
) -> ContrastiveBatch {
    let (q, p, _) = batch(data, Split::Val, rng);
    let tok = &data.corpus.tokenizer;
    let how = data.objective.embed_spec();
    let sims = similarities(
        embed(model, &as_refs(&q), how, tok, device),
        embed(model, &as_refs(&p), how, tok, device),
    );
    let n = q.len();
    let margins = (0..n)
        .map(|i| {
            let row = &sims[i * n..(i + 1) * n];
            let hardest = row
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, &s)| s)
                .fold(f32::NEG_INFINITY, f32::max);
            row[i] - hardest
        })
        .collect();
    ContrastiveBatch {
        step,
        sims,
        n,
        margins,
    }
}

/// The probe set (the first validation windows: query halves and their positive halves)
/// embedded and projected to 2-D, axes as PCA leaves them; `None` with too few windows.
pub fn embedding_map(
    model: &Model,
    data: &StepData<'_>,
    device: &Device,
    step: usize,
) -> Option<EmbeddingSnapshot> {
    let ctx = data.context;
    let windows = data.corpus.windows(Split::Val, 2 * ctx, MAP_PROBES);
    if windows.len() < 3 {
        return None;
    }
    let queries: Vec<Vec<u32>> = windows.iter().map(|w| w[..ctx].to_vec()).collect();
    let positives: Vec<Vec<u32>> = windows.iter().map(|w| w[ctx..].to_vec()).collect();
    paired_map(model, data, queries, positives, device, step)
}

/// The embedding map of texts in two groups (queries and their positives; first and second
/// sentences): the learned part of their embeddings projected to 2-D, group 0 then group 1.
pub fn paired_map(
    model: &Model,
    data: &StepData<'_>,
    first: Vec<Vec<u32>>,
    second: Vec<Vec<u32>>,
    device: &Device,
    step: usize,
) -> Option<EmbeddingSnapshot> {
    let groups: Vec<u8> = std::iter::repeat_n(0, first.len())
        .chain(std::iter::repeat_n(1, second.len()))
        .collect();
    let mut texts = first;
    texts.extend(second);
    let how = data.objective.embed_spec();
    let embeddings = how.learned_part(embed_all(
        model,
        &texts,
        how,
        &data.corpus.tokenizer,
        device,
    ));
    let [n, d] = embeddings.dims();
    let values = embeddings
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    Some(EmbeddingSnapshot {
        step,
        points: crate::viz::pca::pca_2d(&values, n, d),
        groups,
        texts: texts
            .iter()
            .map(|t| data.corpus.tokenizer.decode(t))
            .collect(),
    })
}

/// Held-out pairs whose embeddings the health statistics use (at most).
const HEALTH_PAIRS: usize = 512;

/// What an evaluation measures on the held-out pairs: retrieval, and the embedding space's
/// health on the first of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeldOut {
    /// Retrieval of the positives (`None` with fewer than two pairs).
    pub retrieval: Option<Retrieval>,
    /// Alignment, uniformity, cosine spread and effective rank (`None` with fewer than
    /// [`health::MIN_EMBEDDINGS`] embeddings).
    pub health: Option<Health>,
}

/// The token sequences an evaluation scores: for text positives the consecutive windows of
/// `2 * context` tokens of the validation split (first half queries, second half candidates),
/// else the held-out pairs.
fn held_out_pairs(data: &StepData<'_>) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let ctx = data.context;
    match (data.objective.positives, data.pairs) {
        (Positives::Pairs, Some(set)) => set.held_out.iter().cloned().unzip(),
        _ => data
            .corpus
            .windows(Split::Val, 2 * ctx, RETRIEVAL_WINDOWS)
            .into_iter()
            .map(|w| (w[..ctx].to_vec(), w[ctx..].to_vec()))
            .unzip(),
    }
}

/// Held-out retrieval and health: for text positives the consecutive windows of `2 * context`
/// tokens of the validation split (first half queries, second half candidates), else the
/// held-out pairs. Both come from one embedding of each text.
pub fn held_out(model: &Model, data: &StepData<'_>, device: &Device) -> HeldOut {
    let (queries, candidates) = held_out_pairs(data);
    if queries.len() < 2 {
        return HeldOut::default();
    }
    let (how, tok) = (data.objective.embed_spec(), &data.corpus.tokenizer);
    let eq = embed_all(model, &queries, how, tok, device);
    let ec = embed_all(model, &candidates, how, tok, device);
    let sims = similarities(eq.clone(), ec.clone());
    let n = queries.len().min(candidates.len());
    let probe = n.min(HEALTH_PAIRS);
    let health = if 2 * probe >= health::MIN_EMBEDDINGS {
        // Health reads the learned part: a lexical channel spreads texts by itself.
        let [_, d] = how.learned_part(eq.clone().narrow(0, 0, 1)).dims();
        let host = |x: Tensor<2>| {
            how.learned_part(x.narrow(0, 0, probe))
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        };
        health::health(&host(eq), &host(ec), d)
    } else {
        None
    };
    HeldOut {
        retrieval: Some(retrieval(&sims, queries.len(), candidates.len())),
        health,
    }
}

/// The held-out queries and candidates of [`held_out`] as text.
pub fn held_out_texts(data: &StepData<'_>) -> (Vec<String>, Vec<String>) {
    let tok = &data.corpus.tokenizer;
    let (queries, candidates) = held_out_pairs(data);
    let decode = |t: Vec<Vec<u32>>| t.iter().map(|x| tok.decode(x)).collect();
    (decode(queries), decode(candidates))
}

/// Word TF-IDF and chance on the held-out pairs an evaluation scores.
pub fn references(data: &StepData<'_>) -> Vec<crate::eval::baseline::Reference> {
    let (queries, candidates) = held_out_texts(data);
    crate::eval::baseline::retrieval_references(&queries, &candidates)
}

/// The metrics of [`held_out`], in the order they are reported.
pub fn held_out_metrics(held_out: HeldOut) -> Vec<(MetricKey, f64)> {
    let mut metrics = Vec::new();
    if let Some(r) = held_out.retrieval {
        metrics.extend([
            (MetricKey::VAL_RECALL_AT_1, r.recall_at_1),
            (MetricKey::VAL_RECALL_AT_10, r.recall_at_10),
            (MetricKey::VAL_MRR, r.mrr),
        ]);
    }
    if let Some(h) = held_out.health {
        metrics.extend([
            (MetricKey::VAL_ALIGNMENT, h.alignment),
            (MetricKey::VAL_UNIFORMITY, h.uniformity),
            (MetricKey::VAL_COS_MEAN, h.cos_mean),
            (MetricKey::VAL_COS_STD, h.cos_std),
            (MetricKey::VAL_EFF_RANK, h.eff_rank),
        ]);
    }
    metrics
}

/// The collapse sentence for the evaluation at `step` of a run of `total` steps with
/// `objective`, whose metrics `metric` looks up; `None` when the embeddings are healthy, were
/// not measured, or were not trained yet ([`ObjectiveSpec::embeddings_trained_by`]). The run's
/// warning and every page of the studio judge collapse here.
pub fn collapse_at(
    objective: &ObjectiveSpec,
    step: usize,
    total: usize,
    metric: impl Fn(MetricKey) -> Option<f64>,
) -> Option<String> {
    if !objective.embeddings_trained_by(step, total) {
        return None;
    }
    health::collapse(
        metric(MetricKey::VAL_UNIFORMITY)?,
        metric(MetricKey::VAL_EFF_RANK)?,
        None,
        objective.temperature,
    )
}

/// The embedding options' checks, shared by the objectives that embed.
pub fn validate_embedding(spec: &ObjectiveSpec, dropout: f64) -> Vec<SpecError> {
    let mut errors = Vec::new();
    if !(spec.temperature > 0.0 && spec.temperature.is_finite()) {
        errors.push(SpecError::new("objective.temperature", "must be positive"));
    }
    if !(spec.uniformity_weight >= 0.0 && spec.uniformity_weight.is_finite()) {
        errors.push(SpecError::new(
            "objective.uniformity_weight",
            "must be at least 0",
        ));
    }
    if !(spec.masked_weight >= 0.0 && spec.masked_weight.is_finite()) {
        errors.push(SpecError::new(
            "objective.masked_weight",
            "must be at least 0",
        ));
    }
    if !(0.0..1.0).contains(&spec.masked_warmup) {
        errors.push(SpecError::new(
            "objective.masked_warmup",
            "is a share of the run before InfoNCE, from 0 to below 1",
        ));
    }
    if !(0.0..1.0).contains(&spec.lexical) {
        errors.push(SpecError::new(
            "objective.lexical",
            "is the lexical channel's share of the similarity, from 0 to below 1",
        ));
    }
    if !(0.0..=1.0).contains(&spec.overlap_curriculum) {
        errors.push(SpecError::new(
            "objective.overlap_curriculum",
            "is a share of the run, from 0 to 1",
        ));
    }
    if spec.positives == Positives::Pairs && spec.pairs_file.is_none() {
        errors.push(SpecError::new(
            "objective.pairs_file",
            "pairs positives need a pairs file",
        ));
    }
    if spec.positives == Positives::Dropout && dropout == 0.0 {
        errors.push(SpecError::new(
            "objective.positives",
            "dropout twins need dropout above 0 (model.dropout), or the two views are identical",
        ));
    }
    errors
}

/// What InfoNCE starts near, so a user reads the first losses right.
pub fn start_note(data: &StepData<'_>) -> String {
    let batch = data.batch_size as f64;
    format!(
        "InfoNCE starts near ln(batch) = {:.2} (a uniform guess among {} candidates); below that the model is learning",
        batch.ln(),
        data.batch_size
    )
}

/// The views of an embedding objective: the embedding map, then one validation batch's
/// similarities.
pub fn views(
    model: &Model,
    data: &StepData<'_>,
    rng: &mut StdRng,
    device: &Device,
    step: usize,
) -> Vec<EvalView> {
    let mut views = Vec::new();
    if let Some(map) = embedding_map(model, data, device, step) {
        views.push(EvalView::EmbeddingMap(map));
    }
    views.push(EvalView::ContrastiveBatch(batch_view(
        model, data, rng, device, step,
    )));
    views
}

/// Sentence embeddings trained with InfoNCE ([`ObjectiveKind::CONTRASTIVE`]).
pub struct Contrastive;

impl Objective for Contrastive {
    fn health_warning(
        &self,
        spec: &ObjectiveSpec,
        step: usize,
        total: usize,
        metric: &dyn Fn(MetricKey) -> Option<f64>,
    ) -> Option<String> {
        collapse_at(spec, step, total, metric)
    }

    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::CONTRASTIVE
    }

    fn charts(&self, spec: &ObjectiveSpec) -> super::Charts {
        describe::charts(spec)
    }

    fn step_loss_name(&self, spec: &ObjectiveSpec, step: usize, total: usize) -> String {
        describe::step_loss_name(spec, step, total)
    }

    fn train_curve_note(
        &self,
        spec: &ObjectiveSpec,
        total_steps: usize,
        terms_recorded: bool,
    ) -> Option<super::ChartNote> {
        describe::train_curve_note(spec, total_steps, terms_recorded)
    }

    fn metric_note(&self, spec: &ObjectiveSpec, metric: &str) -> Option<String> {
        lexical_note(spec, metric)
    }

    fn settings(&self) -> Vec<super::Setting> {
        embedding_settings(true)
    }

    fn attention_mode(&self) -> AttentionMode {
        AttentionMode::Bidirectional
    }

    fn needs_specials(&self, spec: &ObjectiveSpec) -> bool {
        // Labelled pairs have uneven lengths, padded with `[pad]`; windows of text need none,
        // unless a masked warm-up needs `[mask]`.
        spec.positives == Positives::Pairs || spec.masked_warmup > 0.0 || spec.masked_weight > 0.0
    }

    fn uses_embeddings(&self) -> bool {
        true
    }

    fn validate(&self, spec: &ObjectiveSpec, dropout: f64) -> Vec<SpecError> {
        validate_embedding(spec, dropout)
    }

    fn recipe(&self) -> super::Recipe {
        super::Recipe {
            arch: crate::model::Arch::Modern,
            mask_rate: Some(0.3),
            temperature: Some(0.05),
            pooling: Some(super::Pooling::Max),
            masked_warmup: Some(0.4),
            masked_weight: Some(2.0),
            overlap_curriculum: Some(0.0),
            lexical: Some(0.0),
            batch_hint: 32,
            why: "From scratch, InfoNCE on halves of a window finds nothing the two halves share \
                  before the cheapest answer, one vector for every text, takes over (the loss \
                  sits at ln(batch)). The recipe first trains the encoder as a masked model (the \
                  first 40% of the run, 30% masking, rotary positions), then trains InfoNCE on \
                  plain halves, keeping the masked-token loss beside it (weight 2) so the encoder \
                  does not drift back towards one vector. Max pooling (as InferSent, Conneau et \
                  al. 2017) lets a feature of one word mark the whole text, which is how halves \
                  of one passage meet; temperature 0.05 as in SimCSE (Gao et al. 2021). The \
                  embedding is the learned states alone, so a default run exports to \
                  sentence-transformers; from scratch on one corpus they stay near word TF-IDF \
                  on retrieval (the reference line). The lexical channel (hashed character \
                  5-gram counts beside the states, --lexical 0.6) is an opt-in retrieval aid: \
                  it lifts recall on spelling-heavy pairs, has no weights, and makes the run \
                  unexportable.",
            ..super::Recipe::default()
        }
    }

    fn references(&self, data: &StepData<'_>) -> Vec<crate::eval::baseline::Reference> {
        references(data)
    }

    fn start_note(&self, data: &StepData<'_>) -> Option<String> {
        Some(start_note(data))
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
        ]
    }

    fn train_loss(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1> {
        self.train_step_loss(model, data, rng, device).total
    }

    fn train_step_loss(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> StepLoss {
        // The steps of `ObjectiveSpec::masked_warmup_steps`: `progress` is `step / total`.
        if data.progress < data.objective.masked_warmup {
            // Learn the text first: masked-token prediction with the same bidirectional
            // attention the encoder uses.
            let masked = super::masked::batch_loss(model, data, Split::Train, rng, device).1;
            return StepLoss {
                total: masked.clone(),
                terms: vec![(MetricKey::STEP_MASKED_LOSS, masked)],
            };
        }
        let info = batch_loss(model, data, Split::Train, rng, device);
        let weight = data.objective.masked_weight;
        if weight > 0.0 {
            let masked = super::masked::batch_loss(model, data, Split::Train, rng, device).1;
            StepLoss {
                total: info.clone() + masked.clone() * weight,
                terms: vec![
                    (MetricKey::STEP_INFONCE, info),
                    (MetricKey::STEP_MASKED_LOSS, masked),
                ],
            }
        } else {
            StepLoss {
                total: info.clone(),
                terms: vec![(MetricKey::STEP_INFONCE, info)],
            }
        }
    }

    fn evaluate(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Evaluation {
        let train_loss = mean_of_batches(data, rng, |r| {
            batch_loss(model, data, Split::Train, r, device).into_scalar()
        });
        let val_loss = mean_of_batches(data, rng, |r| {
            batch_loss(model, data, Split::Val, r, device).into_scalar()
        });
        Evaluation {
            train_loss,
            val_loss,
            metrics: held_out_metrics(held_out(model, data, device)),
        }
    }

    fn views(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
        step: usize,
    ) -> Vec<EvalView> {
        views(model, data, rng, device, step)
    }
}
