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

/// Counts of every n-gram up to `order`, by context. Keys are 64-bit hashes of (context
/// length, context) and of (that, token), counts 32-bit: 12 bytes an entry, so the counts of
/// millions of tokens stay in a few hundred megabytes.
struct Counts {
    order: usize,
    /// Context hash -> count of the context followed by any token.
    context: HashMap<u64, u32, KeyHash>,
    /// N-gram hash -> count.
    ngram: HashMap<u64, u32, KeyHash>,
}

/// The keys are mixed hashes already: the table uses them as they are.
type KeyHash = std::hash::BuildHasherDefault<KeyHasher>;

/// A hasher that passes a mixed 64-bit key through.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// SplitMix64's finalizer: every bit of the result depends on every bit of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One key for a context of length `len` whose tokens hash to `key`.
fn context_key(key: u64, len: usize) -> u64 {
    mix(key ^ (len as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// One key for `token` after the context `context` (a [`context_key`]).
fn ngram_key(context: u64, token: u32) -> u64 {
    mix(context ^ (u64::from(token) + 1).wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
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
        // Sized for the distinct n-grams there can be, so the tables never grow by copying.
        let room = tokens.len().min(1 << 24);
        let mut counts = Counts {
            order,
            context: HashMap::with_capacity_and_hasher(room / 2, KeyHash::default()),
            ngram: HashMap::with_capacity_and_hasher(room, KeyHash::default()),
        };
        for at in 0..tokens.len() {
            let len = (order - 1).min(at);
            let ctx = context_key(key(tokens, at, len), len);
            *counts.context.entry(ctx).or_insert(0) += 1;
            *counts.ngram.entry(ngram_key(ctx, tokens[at])).or_insert(0) += 1;
        }
        counts
    }

    /// For each position of `tokens`: the count of its context and of its n-gram.
    fn lookups(&self, tokens: &[u32]) -> Vec<(u32, u32)> {
        (0..tokens.len())
            .map(|at| {
                let len = (self.order - 1).min(at);
                let ctx = context_key(key(tokens, at, len), len);
                let c_ctx = self.context.get(&ctx).copied().unwrap_or(0);
                let c = self
                    .ngram
                    .get(&ngram_key(ctx, tokens[at]))
                    .copied()
                    .unwrap_or(0);
                (c_ctx, c)
            })
            .collect()
    }

    /// Mean negative log-likelihood (nats per token) of the positions whose counts are
    /// `lookups`, add-k smoothed. A position with fewer than `order - 1` tokens before it
    /// uses the context it has.
    fn cross_entropy(lookups: &[(u32, u32)], vocab: usize, k: f64) -> f64 {
        let total: f64 = lookups
            .iter()
            .map(|&(c_ctx, c)| -((f64::from(c) + k) / (f64::from(c_ctx) + k * vocab as f64)).ln())
            .sum();
        total / lookups.len().max(1) as f64
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
    use rayon::prelude::*;
    // The orders in parallel (on the cores a run has before its first step).
    (1..=max_order)
        .into_par_iter()
        .map(|order| {
            let probe = Counts::fit(fit_part, order);
            // Each k scored on the held-out tenth's counts, looked up once.
            let held = probe.lookups(held_out);
            let (k, _) = K_GRID
                .iter()
                .map(|&k| (k, Counts::cross_entropy(&held, vocab, k)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("a grid");
            // One table at a time: the held-out fit's counts go before the full fit's come.
            drop(probe);
            let full = Counts::fit(train, order);
            CountBaseline {
                order,
                k,
                val_loss: Counts::cross_entropy(&full.lookups(val), vocab, k),
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

/// Accuracy of a count model that fills in a hidden token from the `width` tokens on each
/// side of it (the masked objective's count-model baseline): the most frequent token of the
/// training split between the same neighbours, backing off to fewer neighbours (`width - 1`
/// on each side, down to none) where the training split never saw them. Ties go to the lower
/// token id. Every position of `val` with `width` tokens on both sides is scored.
pub fn masked_count_accuracy(train: &[u32], val: &[u32], width: usize) -> f64 {
    // (width, key of the neighbours) -> counts of the middle token.
    let mut tables: Vec<HashMap<u64, HashMap<u32, u64>>> = vec![HashMap::new(); width + 1];
    for at in width..train.len().saturating_sub(width) {
        for (w, table) in tables.iter_mut().enumerate() {
            *table
                .entry(around(train, at, w))
                .or_default()
                .entry(train[at])
                .or_insert(0) += 1;
        }
    }
    let best: Vec<HashMap<u64, u32>> = tables
        .iter()
        .map(|table| {
            table
                .iter()
                .map(|(&k, counts)| {
                    let (&token, _) = counts
                        .iter()
                        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                        .expect("a seen context has a token");
                    (k, token)
                })
                .collect()
        })
        .collect();
    let (mut correct, mut scored) = (0usize, 0usize);
    for at in width..val.len().saturating_sub(width) {
        let guess = (0..=width)
            .rev()
            .find_map(|w| best[w].get(&around(val, at, w)).copied());
        scored += 1;
        correct += usize::from(guess == Some(val[at]));
    }
    correct as f64 / scored.max(1) as f64
}

/// The `w` tokens before and after `at`, as one key.
fn around(tokens: &[u32], at: usize, w: usize) -> u64 {
    tokens[at - w..at]
        .iter()
        .chain(&tokens[at + 1..at + 1 + w])
        .fold(0xcbf2_9ce4_8422_2325u64 ^ w as u64, |h, &t| {
            (h ^ u64::from(t)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// Words of a text for [`tfidf_retrieval`]: maximal runs of letters, digits and `_`,
/// lower-cased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Retrieval of `candidates[i]` for `queries[i]` among all candidates by the cosine of word
/// TF-IDF vectors: term weight `1 + ln(tf)`, idf `ln((1 + N) / (1 + df))` over the N texts of
/// both lists. The baseline an embedding model must beat on the same pairs.
pub fn tfidf_retrieval(queries: &[String], candidates: &[String]) -> crate::eval::Retrieval {
    let bags: Vec<HashMap<String, f64>> = queries
        .iter()
        .chain(candidates)
        .map(|t| {
            let mut bag = HashMap::new();
            for w in words(t) {
                *bag.entry(w).or_insert(0.0) += 1.0;
            }
            bag
        })
        .collect();
    let mut df: HashMap<&str, f64> = HashMap::new();
    for bag in &bags {
        for w in bag.keys() {
            *df.entry(w.as_str()).or_insert(0.0) += 1.0;
        }
    }
    let n = bags.len() as f64;
    let vectors: Vec<HashMap<&str, f64>> = bags
        .iter()
        .map(|bag| {
            let mut v: HashMap<&str, f64> = bag
                .iter()
                .map(|(w, tf)| {
                    let idf = ((1.0 + n) / (1.0 + df[w.as_str()])).ln();
                    (w.as_str(), (1.0 + tf.ln()) * idf)
                })
                .collect();
            let norm = v.values().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 0.0 {
                v.values_mut().for_each(|x| *x /= norm);
            }
            v
        })
        .collect();
    let (q, c) = vectors.split_at(queries.len());
    let m = c.len();
    let mut sims = Vec::with_capacity(q.len() * m);
    for a in q {
        for b in c {
            let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            let dot: f64 = small
                .iter()
                .map(|(w, x)| x * large.get(w).copied().unwrap_or(0.0))
                .sum();
            sims.push(dot as f32);
        }
    }
    crate::eval::retrieval(&sims, q.len().min(m), m)
}

/// What picking a candidate at random scores on `n` pairs: recall@1 `1/n`, recall@10
/// `min(10, n)/n`, MRR `H_n / n`.
pub fn chance_retrieval(n: usize) -> crate::eval::Retrieval {
    let n = n.max(1);
    crate::eval::Retrieval {
        recall_at_1: 1.0 / n as f64,
        recall_at_10: n.min(10) as f64 / n as f64,
        mrr: (1..=n).map(|r| 1.0 / r as f64).sum::<f64>() / n as f64,
    }
}

pub use crate::events::Reference;

/// Tokens of the training split count models are fitted on: a corpus larger than this is
/// sampled (evenly spaced runs). A run computes its references before its first step, so this
/// bounds that wait (a few seconds) and its memory (a few hundred megabytes at order 5).
pub const BASELINE_TRAIN_TOKENS: usize = 2_000_000;
/// Tokens of the validation split count models are scored on.
pub const BASELINE_VAL_TOKENS: usize = 500_000;

/// The splits count models are fitted and scored on: `(train, val, sampled)`, the whole
/// splits when they are small, evenly spaced runs of them otherwise.
pub fn baseline_splits(corpus: &crate::data::Corpus) -> (Vec<u32>, Vec<u32>, bool) {
    use crate::data::Split;
    let (train, a) = corpus.split(Split::Train).sample(BASELINE_TRAIN_TOKENS);
    let (val, b) = corpus.split(Split::Val).sample(BASELINE_VAL_TOKENS);
    (train, val, a || b)
}

/// The count models' validation cross-entropies (unigram to 5-gram) as references of
/// `metric` (a next-token loss); on a sample of a large corpus ([`baseline_splits`]).
pub fn ngram_references(corpus: &crate::data::Corpus, metric: &str) -> Vec<Reference> {
    let (train, val, _) = baseline_splits(corpus);
    ngram_baselines(&train, &val, corpus.tokenizer.vocab_size(), 5)
        .into_iter()
        .map(|b| Reference::new(metric, format!("{}-gram count model", b.order), b.val_loss))
        .collect()
}

/// The masked objective's count models (filling in a token from 1 and from 2 neighbours on
/// each side) as references of `metric` (a masked-token accuracy). The training split is
/// capped at two million tokens.
pub fn masked_references(corpus: &crate::data::Corpus, metric: &str) -> Vec<Reference> {
    use crate::data::Split;
    let train = corpus.split(Split::Train).to_vec(0..2_000_000);
    let (val, _) = corpus.split(Split::Val).sample(BASELINE_VAL_TOKENS);
    let (train, val) = (&train[..], &val[..]);
    if train.len() < 10 || val.len() < 5 {
        return Vec::new();
    }
    (1..=2)
        .map(|w| {
            Reference::new(
                metric,
                format!("count model, \u{b1}{w} tokens"),
                masked_count_accuracy(train, val, w),
            )
        })
        .collect()
}

/// Word TF-IDF and chance retrieval of `candidates[i]` for `queries[i]` as references of
/// `val_recall_at_1`, `val_recall_at_10` and `val_mrr`.
pub fn retrieval_references(queries: &[String], candidates: &[String]) -> Vec<Reference> {
    if queries.len() < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (label, r) in [
        ("word TF-IDF", tfidf_retrieval(queries, candidates)),
        ("chance", chance_retrieval(candidates.len())),
    ] {
        out.push(Reference::new("val_recall_at_1", label, r.recall_at_1));
        out.push(Reference::new("val_recall_at_10", label, r.recall_at_10));
        out.push(Reference::new("val_mrr", label, r.mrr));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_between_known_neighbours_is_filled_in() {
        // "abcabc...": the token between `a` and `c` is always `b`; without neighbours the
        // guess is the most frequent token (all tie, so the lowest id, `a`).
        let tokens: Vec<u32> = (0..300).map(|i| i % 3).collect();
        assert_eq!(
            masked_count_accuracy(&tokens[..270], &tokens[270..], 1),
            1.0
        );
        let zero = masked_count_accuracy(&tokens[..270], &tokens[270..], 0);
        assert!((zero - 1.0 / 3.0).abs() < 0.02, "{zero}");
    }

    #[test]
    fn chance_retrieval_of_one_pair_is_certain() {
        let c = chance_retrieval(1);
        assert_eq!((c.recall_at_1, c.recall_at_10, c.mrr), (1.0, 1.0, 1.0));
        let c = chance_retrieval(4);
        assert!((c.mrr - (1.0 + 0.5 + 1.0 / 3.0 + 0.25) / 4.0).abs() < 1e-12);
    }

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
