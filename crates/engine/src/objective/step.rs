//! What a training step or an evaluation reads besides the model.

use super::ObjectiveSpec;
use crate::data::pairs::{Pair, ScoredPair};
use crate::data::{Corpus, Tokenizer};
use rand::rngs::StdRng;

/// The tokens of a training pair: query, positive and optional hard negative.
pub type TrainPair = (Vec<u32>, Vec<u32>, Option<Vec<u32>>);

/// Tokenized pairs, split into training and held-out pairs (the last tenth, at least one).
pub struct PairSet {
    /// Query, positive and optional hard negative of each training pair.
    pub train: Vec<TrainPair>,
    /// Query and positive of each held-out pair.
    pub held_out: Vec<(Vec<u32>, Vec<u32>)>,
    /// The gold score of each training pair (scored pairs only; empty otherwise).
    pub scores: Vec<f32>,
    /// The gold score of each held-out pair (scored pairs only; empty otherwise).
    pub held_out_scores: Vec<f32>,
}

impl PairSet {
    /// Encodes `pairs` with `tokenizer` and splits off the held-out pairs.
    pub fn new(pairs: &[Pair], tokenizer: &Tokenizer) -> Self {
        let encoded: Vec<_> = pairs
            .iter()
            .map(|p| {
                (
                    tokenizer.encode_text(&p.a),
                    tokenizer.encode_text(&p.b),
                    p.negative.as_deref().map(|n| tokenizer.encode_text(n)),
                )
            })
            .collect();
        let held = (encoded.len() / 10)
            .max(1)
            .min(encoded.len().saturating_sub(1))
            .max(1);
        let split = encoded.len() - held;
        Self {
            held_out: encoded[split..]
                .iter()
                .map(|(a, b, _)| (a.clone(), b.clone()))
                .collect(),
            train: encoded[..split.max(1)].to_vec(),
            scores: Vec::new(),
            held_out_scores: Vec::new(),
        }
    }

    /// Encodes scored pairs with `tokenizer` and splits off the held-out pairs (the last
    /// tenth, as [`PairSet::new`]), keeping each pair's score.
    pub fn scored(pairs: &[ScoredPair], tokenizer: &Tokenizer) -> Self {
        let plain: Vec<Pair> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| Pair {
                a: p.a.clone(),
                b: p.b.clone(),
                negative: None,
                score: Some(p.score),
                line: i + 1,
            })
            .collect();
        let mut set = Self::new(&plain, tokenizer);
        let scores: Vec<f32> = pairs.iter().map(|p| p.score as f32).collect();
        let split = pairs.len() - set.held_out.len();
        set.held_out_scores = scores[split..].to_vec();
        set.scores = scores[..set.train.len()].to_vec();
        set
    }
}

/// What a step or an evaluation reads besides the model: the run's objective settings, batch
/// shape and data.
#[derive(Clone, Copy)]
pub struct StepData<'a> {
    /// The objective and its options.
    pub objective: &'a ObjectiveSpec,
    /// Tokens per row (the model's context).
    pub context: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Batches per loss estimate at an evaluation.
    pub eval_batches: usize,
    /// The tokenized data.
    pub corpus: &'a Corpus,
    /// Labelled pairs, when the objective trains on a pairs file.
    pub pairs: Option<&'a PairSet>,
    /// How far training has come: the share of the run's steps done (0 at the first step; 1
    /// at evaluations, which always measure the objective's final task).
    pub progress: f64,
}

/// Mean of `loss` over `data.eval_batches` batches, each drawn from `rng` (an evaluation's loss
/// estimate).
pub fn mean_of_batches(
    data: &StepData<'_>,
    rng: &mut StdRng,
    mut loss: impl FnMut(&mut StdRng) -> f32,
) -> f32 {
    let batches = data.eval_batches;
    (0..batches).map(|_| f64::from(loss(rng))).sum::<f64>() as f32 / batches.max(1) as f32
}

/// Mean loss and accuracy over `data.eval_batches` batches; `batch` returns one batch's loss and
/// its `(correct, counted)` predictions.
pub fn loss_and_accuracy(
    data: &StepData<'_>,
    rng: &mut StdRng,
    mut batch: impl FnMut(&mut StdRng) -> (f32, (usize, usize)),
) -> (f32, f64) {
    let batches = data.eval_batches;
    let (mut total, mut correct, mut counted) = (0.0f64, 0usize, 0usize);
    for _ in 0..batches {
        let (loss, (c, n)) = batch(rng);
        total += f64::from(loss);
        correct += c;
        counted += n;
    }
    (
        (total / batches.max(1) as f64) as f32,
        correct as f64 / counted.max(1) as f64,
    )
}
