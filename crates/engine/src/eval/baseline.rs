//! Count-model baselines: what a model must beat. The cross-entropy on the validation split of
//! add-k smoothed n-gram models (unigram to 5-gram) fitted on the training split, in the run's
//! own tokens, so the figure is directly comparable with the run's next-token loss.

use std::collections::HashMap;

/// The add-k values tried; the one with the lowest cross-entropy on a held-out tenth of the
/// training split is used.
pub const K_GRID: [f64; 8] = [1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0];

/// One count model's figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountBaseline {
    /// n of the n-gram model (1: unigram).
    pub order: usize,
    /// The add-k smoothing constant chosen.
    pub k: f64,
    /// Cross-entropy on the validation split, nats per token.
    pub val_loss: f64,
}

/// Counts of every n-gram up to `order`, by context.
struct Counts {
    order: usize,
    /// `(context length, context key)` -> count of the context followed by any token.
    context: HashMap<(usize, u64), u64>,
    /// `(context length, context key, token)` -> count.
    ngram: HashMap<(usize, u64, u32), u64>,
}

/// A context (the `len` tokens before `at`) as one key.
fn key(tokens: &[u32], at: usize, len: usize) -> u64 {
    tokens[at - len..at]
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &t| {
            (h ^ u64::from(t)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

impl Counts {
    fn fit(tokens: &[u32], order: usize) -> Self {
        let mut counts = Counts {
            order,
            context: HashMap::new(),
            ngram: HashMap::new(),
        };
        for at in 0..tokens.len() {
            let len = (order - 1).min(at);
            let k = key(tokens, at, len);
            *counts.context.entry((len, k)).or_insert(0) += 1;
            *counts.ngram.entry((len, k, tokens[at])).or_insert(0) += 1;
        }
        counts
    }

    /// Mean negative log-likelihood of `tokens` (nats per token). A position with fewer than
    /// `order - 1` tokens before it uses the context it has.
    fn cross_entropy(&self, tokens: &[u32], vocab: usize, k: f64) -> f64 {
        let mut total = 0.0;
        for at in 0..tokens.len() {
            let len = (self.order - 1).min(at);
            let ctx = key(tokens, at, len);
            let c_ctx = self.context.get(&(len, ctx)).copied().unwrap_or(0) as f64;
            let c = self
                .ngram
                .get(&(len, ctx, tokens[at]))
                .copied()
                .unwrap_or(0) as f64;
            total -= ((c + k) / (c_ctx + k * vocab as f64)).ln();
        }
        total / tokens.len().max(1) as f64
    }
}

/// The validation cross-entropy of add-k n-gram models of order 1 to `max_order` fitted on
/// `train`, each with the k of [`K_GRID`] that does best on the last tenth of `train` when
/// fitted on the rest. Empty when either split is empty.
pub fn ngram_baselines(
    train: &[u32],
    val: &[u32],
    vocab: usize,
    max_order: usize,
) -> Vec<CountBaseline> {
    if train.len() < 10 || val.is_empty() || vocab == 0 {
        return Vec::new();
    }
    let cut = train.len() - train.len() / 10;
    let (fit_part, held_out) = train.split_at(cut);
    (1..=max_order)
        .map(|order| {
            let probe = Counts::fit(fit_part, order);
            let k = K_GRID
                .iter()
                .copied()
                .min_by(|a, b| {
                    probe
                        .cross_entropy(held_out, vocab, *a)
                        .total_cmp(&probe.cross_entropy(held_out, vocab, *b))
                })
                .expect("a grid");
            let full = Counts::fit(train, order);
            CountBaseline {
                order,
                k,
                val_loss: full.cross_entropy(val, vocab, k),
            }
        })
        .collect()
}

/// `1-gram 3.292 · 2-gram 2.478 · ...` for logs and command output.
pub fn describe(baselines: &[CountBaseline]) -> String {
    baselines
        .iter()
        .map(|b| format!("{}-gram {:.3}", b.order, b.val_loss))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_periodic_text_is_learnt_by_a_long_enough_context() {
        // "abcabc...": a unigram model sees three equally likely tokens; a bigram predicts
        // every next token.
        let tokens: Vec<u32> = (0..3000).map(|i| i % 3).collect();
        let b = ngram_baselines(&tokens[..2700], &tokens[2700..], 3, 2);
        assert!((b[0].val_loss - 3f64.ln()).abs() < 1e-3, "{b:?}");
        assert!(b[1].val_loss < 0.01, "{b:?}");
        assert_eq!(
            b[1].k, K_GRID[0],
            "the smallest smoothing wins on a certain text"
        );
    }
}
