//! Training dynamics: what the optimizer did to each weight matrix, what the blocks compute on
//! the probe text, and the rules that turn those figures into words.
//!
//! The update-to-weight ratio `|W_after - W_before| / |W_before|` (Frobenius norms) is the
//! fraction of a matrix one step changes; around 1e-3 is the healthy range Karpathy's CS231n
//! notes give ("Neural Networks Part 3: ratio of weights:updates", 2015). Far above, the
//! learning rate is too high for that matrix; far below, it barely learns.

use serde::{Deserialize, Serialize};

/// The healthy update-to-weight ratio, as a power of ten.
pub const HEALTHY_LOG10_RATIO: f64 = -3.0;
/// A ratio above this power of ten is "far above" the healthy one.
pub const HIGH_LOG10_RATIO: f64 = -1.5;
/// A ratio below this power of ten is "far below" the healthy one.
pub const LOW_LOG10_RATIO: f64 = -5.0;
/// Share of recent steps that clipped above which the clipping rule fires.
pub const HIGH_CLIP_RATE: f64 = 0.5;
/// Steps the clipping rule looks back over.
pub const CLIP_WINDOW: usize = 50;
/// Bins of each weight and gradient histogram.
pub const HISTOGRAM_BINS: usize = 32;

/// One weight matrix at one recorded step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRecord {
    /// Its path in the model (`blocks.0.attn.qkv.weight`).
    pub name: String,
    /// Frobenius norm of its gradient before clipping.
    pub grad_norm: f32,
    /// Frobenius norm of the change the optimizer made (weight decay included).
    pub update_norm: f32,
    /// Frobenius norm of the weights before the step.
    pub weight_norm: f32,
}

impl MatrixRecord {
    /// `update_norm / weight_norm` (0 for an all-zero matrix).
    pub fn update_ratio(&self) -> f32 {
        if self.weight_norm > 0.0 {
            self.update_norm / self.weight_norm
        } else {
            0.0
        }
    }
}

/// Every weight matrix at one recorded step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DynamicsRecord {
    /// The step (counted from 1) whose update was measured.
    pub step: usize,
    /// One entry per matrix, in the model's order.
    pub matrices: Vec<MatrixRecord>,
}

impl DynamicsRecord {
    /// The median update ratio over the matrices (`None` without matrices).
    pub fn update_ratio_median(&self) -> Option<f64> {
        median(
            self.matrices
                .iter()
                .map(|m| f64::from(m.update_ratio()))
                .collect(),
        )
    }
}

/// The median of `values` (`None` when empty; NaNs sort last).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

/// Which values a histogram counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistogramKind {
    /// The weights after the step.
    Weight,
    /// The gradients of the step, before clipping.
    Grad,
}

impl HistogramKind {
    /// The word for it.
    pub fn label(self) -> &'static str {
        match self {
            HistogramKind::Weight => "weights",
            HistogramKind::Grad => "gradients",
        }
    }
}

/// Counts of values in equal bins between `lo` and `hi`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The layer whose matrices it counts ([`layer_of`]).
    pub layer: String,
    /// Weights or gradients.
    pub kind: HistogramKind,
    /// The lowest value.
    pub lo: f32,
    /// The highest value.
    pub hi: f32,
    /// Values per bin.
    pub counts: Vec<u32>,
}

impl Histogram {
    /// The histogram of `values` in [`HISTOGRAM_BINS`] bins over their range; non-finite
    /// values are left out.
    pub fn of(layer: String, kind: HistogramKind, values: &[f32]) -> Self {
        let finite = || values.iter().copied().filter(|v| v.is_finite());
        let lo = finite().fold(f32::INFINITY, f32::min);
        let hi = finite().fold(f32::NEG_INFINITY, f32::max);
        let mut counts = vec![0u32; HISTOGRAM_BINS];
        if lo.is_finite() && hi.is_finite() {
            let width = (hi - lo).max(f32::MIN_POSITIVE);
            for v in finite() {
                let bin = (((v - lo) / width) * HISTOGRAM_BINS as f32) as usize;
                counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
            }
        }
        Self {
            layer,
            kind,
            lo: if lo.is_finite() { lo } else { 0.0 },
            hi: if hi.is_finite() { hi } else { 0.0 },
            counts,
        }
    }
}

/// The weight and gradient histograms of every layer at one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HistogramSet {
    /// The step.
    pub step: usize,
    /// Weights and gradients of each layer.
    pub histograms: Vec<Histogram>,
}

/// A token and what the model ranked most likely there.
pub type Guess = (String, f32);

/// Each block's residual stream size and attention entropy on the probe text, at a step that
/// records the matrices.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlockRecord {
    /// The step.
    pub step: usize,
    /// Root mean square of the residual stream after each block.
    pub act_rms: Vec<f32>,
    /// Mean entropy (nats) of each block's attention rows, over heads and positions.
    pub attn_entropy: Vec<f32>,
}

/// What the model computes on the probe text at one evaluation: each token's loss with the
/// model's top guesses for it, each block's residual-stream RMS and attention entropy, and the
/// logit lens (what each block's residual stream would predict, read through the final norm
/// and the output head).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProbeInsight {
    /// The step.
    pub step: usize,
    /// The probe's tokens as text.
    pub tokens: Vec<String>,
    /// `losses[i]`: the loss (nats) of token `i + 1` given the tokens before it (the first
    /// token has none: nothing predicts it).
    pub losses: Vec<f32>,
    /// `guesses[i]`: the model's most likely tokens for token `i + 1`, with probabilities.
    pub guesses: Vec<Vec<Guess>>,
    /// `lens[i][layer]`: the top tokens for token `i + 1` that the residual stream after
    /// block `layer` predicts.
    pub lens: Vec<Vec<Vec<Guess>>>,
    /// Root mean square of the residual stream after each block.
    pub act_rms: Vec<f32>,
    /// Mean entropy (nats) of each block's attention rows, over heads and positions.
    pub attn_entropy: Vec<f32>,
}

impl ProbeInsight {
    /// The mean loss over the predicted tokens.
    pub fn mean_loss(&self) -> Option<f32> {
        let finite: Vec<f32> = self
            .losses
            .iter()
            .copied()
            .filter(|l| l.is_finite())
            .collect();
        (!finite.is_empty()).then(|| finite.iter().sum::<f32>() / finite.len() as f32)
    }
}

/// A readable name of a parameter path: `blocks.3.attn.qkv.weight` reads
/// `layer 3 attention qkv`, `tok_emb.weight` reads `token embedding`.
pub fn matrix_label(name: &str) -> String {
    let parts: Vec<&str> = name
        .split('.')
        .filter(|p| !matches!(*p, "weight" | "base" | "linear" | "gamma" | "beta"))
        .collect();
    let word = |p: &str| -> String {
        match p {
            "attn" | "attention" | "self_attn" => "attention".into(),
            "mlp" | "ffn" => "MLP".into(),
            "tok_emb" | "wte" => "token embedding".into(),
            "pos_emb" | "wpe" => "position embedding".into(),
            "type_emb" => "type embedding".into(),
            "lm_head" | "head" => "output head".into(),
            other => other.replace('_', " "),
        }
    };
    match parts.as_slice() {
        ["blocks" | "layers" | "h", index, rest @ ..] => {
            let mut out = format!("layer {index}");
            for p in rest {
                out.push(' ');
                out.push_str(&word(p));
            }
            out
        }
        other => other.iter().map(|p| word(p)).collect::<Vec<_>>().join(" "),
    }
}

/// The layer a parameter belongs to, for histograms: `layer 3` for anything in block 3,
/// otherwise its [`matrix_label`].
pub fn layer_of(name: &str) -> String {
    let mut parts = name.split('.');
    match (parts.next(), parts.next()) {
        (Some("blocks" | "layers" | "h"), Some(index)) if index.parse::<usize>().is_ok() => {
            format!("layer {index}")
        }
        _ => matrix_label(name),
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth a look.
    Note,
    /// Likely hurts training.
    Warning,
}

/// One rule that fired, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// The matrix it is about (its path), if one.
    pub matrix: Option<String>,
    /// The sentence shown.
    pub text: String,
}

/// Records the update-ratio rules judge: the newest few, so one unusual step does not fire.
pub const RULE_WINDOW: usize = 3;

/// The rules over a run's dynamics: each matrix whose update ratio over the newest
/// [`RULE_WINDOW`] records (median) is far above or far below the healthy 1e-3, and clipping
/// that fires on most recent steps. `grad_norms` are the steps' global gradient norms before
/// clipping, in step order, and `grad_clip` the run's clipping threshold (0: none).
pub fn findings(records: &[DynamicsRecord], grad_norms: &[f32], grad_clip: f64) -> Vec<Finding> {
    let mut out = Vec::new();
    let recent = &records[records.len().saturating_sub(RULE_WINDOW)..];
    if let Some(last) = recent.last() {
        for matrix in &last.matrices {
            let ratios: Vec<f64> = recent
                .iter()
                .filter_map(|r| r.matrices.iter().find(|m| m.name == matrix.name))
                .map(|m| f64::from(m.update_ratio()))
                .collect();
            let Some(ratio) = median(ratios) else {
                continue;
            };
            if ratio <= 0.0 || !ratio.is_finite() {
                continue;
            }
            let log = ratio.log10();
            let label = matrix_label(&matrix.name);
            if log > HIGH_LOG10_RATIO {
                out.push(Finding {
                    severity: Severity::Warning,
                    matrix: Some(matrix.name.clone()),
                    text: format!(
                        "{label}: update ratio 10^{log:.1}, far above 10^-3: the learning rate may be too high for it"
                    ),
                });
            } else if log < LOW_LOG10_RATIO {
                out.push(Finding {
                    severity: Severity::Note,
                    matrix: Some(matrix.name.clone()),
                    text: format!(
                        "{label}: update ratio 10^{log:.1}, far below 10^-3: it barely changes; the learning rate may be too low for it, or its gradients vanish"
                    ),
                });
            }
        }
    }
    if let Some(rate) = clip_rate(grad_norms, grad_clip, CLIP_WINDOW)
        && rate > HIGH_CLIP_RATE
    {
        let window = grad_norms.len().min(CLIP_WINDOW);
        out.push(Finding {
            severity: Severity::Warning,
            matrix: None,
            text: format!(
                "clipping fired on {:.0}% of the last {window} steps (gradient norm above {grad_clip}): the learning rate may be too high, or the limit too low",
                rate * 100.0
            ),
        });
    }
    out
}

/// Whether a step with global gradient norm `grad_norm` was clipped at `grad_clip` (as the
/// optimizer decides: clipping on, and the norm above the limit).
pub fn clipped(grad_norm: f32, grad_clip: f64) -> bool {
    grad_clip > 0.0 && f64::from(grad_norm) > grad_clip
}

/// The share of the last `window` steps that were clipped (`None` without steps or
/// clipping).
pub fn clip_rate(grad_norms: &[f32], grad_clip: f64, window: usize) -> Option<f64> {
    if grad_clip <= 0.0 || grad_norms.is_empty() || window == 0 {
        return None;
    }
    let recent = &grad_norms[grad_norms.len().saturating_sub(window)..];
    let n = recent.iter().filter(|&&g| clipped(g, grad_clip)).count();
    Some(n as f64 / recent.len() as f64)
}

/// Mean entropy (nats) of attention rows `weights` laid out `[heads, seq, seq]` (each row a
/// distribution over keys).
pub fn attention_entropy(weights: &[f32], seq: usize) -> f32 {
    if seq == 0 || weights.is_empty() {
        return 0.0;
    }
    let rows = weights.chunks(seq);
    let n = rows.len();
    let total: f64 = rows
        .map(|row| {
            row.iter()
                .filter(|&&p| p > 0.0)
                .map(|&p| -f64::from(p) * f64::from(p).ln())
                .sum::<f64>()
        })
        .sum();
    (total / n as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize, ratio: f32) -> DynamicsRecord {
        DynamicsRecord {
            step,
            matrices: vec![
                MatrixRecord {
                    name: "blocks.3.attn.qkv.weight".into(),
                    grad_norm: 1.0,
                    update_norm: ratio * 2.0,
                    weight_norm: 2.0,
                },
                MatrixRecord {
                    name: "blocks.0.mlp.fc.weight".into(),
                    grad_norm: 1.0,
                    update_norm: 2e-3,
                    weight_norm: 2.0,
                },
            ],
        }
    }

    #[test]
    fn a_high_update_ratio_is_told_in_words_naming_the_layer() {
        let records: Vec<_> = (1..=3).map(|s| record(s, 10f32.powf(-1.2))).collect();
        let found = findings(&records, &[], 0.0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].text,
            "layer 3 attention qkv: update ratio 10^-1.2, far above 10^-3: the learning rate may be too high for it"
        );
        assert_eq!(found[0].severity, Severity::Warning);
    }

    #[test]
    fn one_unusual_record_does_not_fire_and_healthy_ratios_say_nothing() {
        let mut records: Vec<_> = (1..=3).map(|s| record(s, 1e-3)).collect();
        assert!(findings(&records, &[], 0.0).is_empty());
        records[2] = record(3, 0.5);
        assert!(findings(&records, &[], 0.0).is_empty());
        records.push(record(4, 1e-7));
        records.push(record(5, 1e-7));
        let found = findings(&records, &[], 0.0);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].text.contains("far below 10^-3"),
            "{}",
            found[0].text
        );
    }

    #[test]
    fn clipping_on_most_recent_steps_fires() {
        let norms: Vec<f32> = (0..100)
            .map(|i| if i % 4 == 0 { 0.5 } else { 3.0 })
            .collect();
        assert_eq!(clip_rate(&norms, 1.0, 4), Some(0.75));
        let found = findings(&[], &norms, 1.0);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .text
                .starts_with("clipping fired on 76% of the last 50 steps")
        );
        assert!(
            findings(&[], &norms, 0.0).is_empty(),
            "no clipping, no rule"
        );
        assert!(findings(&[], &[0.5; 60], 1.0).is_empty());
    }

    #[test]
    fn labels_and_layers_read_as_words() {
        assert_eq!(matrix_label("blocks.0.mlp.fc.weight"), "layer 0 MLP fc");
        assert_eq!(matrix_label("tok_emb.weight"), "token embedding");
        assert_eq!(layer_of("blocks.11.attn.proj.weight"), "layer 11");
        assert_eq!(layer_of("lm_head.weight"), "output head");
    }

    #[test]
    fn histograms_count_every_finite_value_once() {
        let values = [-1.0, 0.0, 0.5, 1.0, f32::NAN];
        let h = Histogram::of("layer 0".into(), HistogramKind::Weight, &values);
        assert_eq!(h.counts.iter().sum::<u32>(), 4);
        assert_eq!((h.lo, h.hi), (-1.0, 1.0));
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[HISTOGRAM_BINS - 1], 1);
    }

    #[test]
    fn entropy_of_uniform_rows_is_log_n() {
        let e = attention_entropy(&[0.25; 8], 4);
        assert!((e - 4f32.ln()).abs() < 1e-6);
        assert_eq!(attention_entropy(&[1.0, 0.0, 0.0, 1.0], 2), 0.0);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
