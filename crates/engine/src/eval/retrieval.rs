//! Retrieval and correlation metrics.

use super::embed::{EmbedSpec, embed_all, similarities};
use crate::data::Tokenizer;
use crate::model::Model;
use burn::tensor::Device;

/// Retrieval quality of queries against candidates, where candidate `i` is query `i`'s match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retrieval {
    /// Share of queries whose match ranks first.
    pub recall_at_1: f64,
    /// Share of queries whose match ranks among the first ten.
    pub recall_at_10: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
}

/// `sims` is `[n, m]` row-major (`m >= n`). A query's rank is one plus the number of candidates
/// scoring strictly higher than its match (ties count in the query's favour).
pub fn retrieval(sims: &[f32], n: usize, m: usize) -> Retrieval {
    let mut hits_1 = 0usize;
    let mut hits_10 = 0usize;
    let mut rr = 0.0f64;
    for i in 0..n {
        let row = &sims[i * m..(i + 1) * m];
        let target = row[i];
        let rank = 1 + row.iter().filter(|&&s| s > target).count();
        hits_1 += usize::from(rank <= 1);
        hits_10 += usize::from(rank <= 10);
        rr += 1.0 / rank as f64;
    }
    let n_f = n.max(1) as f64;
    Retrieval {
        recall_at_1: hits_1 as f64 / n_f,
        recall_at_10: hits_10 as f64 / n_f,
        mrr: rr / n_f,
    }
}

/// Retrieval of `candidates` by `queries` (candidate `i` matches query `i`) through the model's
/// embeddings; `None` with fewer than two queries, where ranking means nothing.
pub fn embedded_retrieval(
    model: &Model,
    queries: &[Vec<u32>],
    candidates: &[Vec<u32>],
    how: EmbedSpec,
    tokenizer: &Tokenizer,
    device: &Device,
) -> Option<Retrieval> {
    if queries.len() < 2 {
        return None;
    }
    let embed_set = |texts: &[Vec<u32>]| embed_all(model, texts, how, tokenizer, device);
    let sims = similarities(embed_set(queries), embed_set(candidates));
    Some(retrieval(&sims, queries.len(), candidates.len()))
}

/// Ranks from 1, ties sharing their average rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation (Pearson correlation of average ranks).
pub fn spearman(xs: &[f64], ys: &[f64]) -> f64 {
    pearson(&ranks(xs), &ranks(ys))
}

/// Pearson's correlation of `xs` and `ys` (0 when either is constant).
pub fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len().min(ys.len()) as f64;
    if n == 0.0 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = xs.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ys.iter().map(|b| (b - my).powi(2)).sum();
    if vx == 0.0 || vy == 0.0 {
        0.0
    } else {
        cov / (vx * vy).sqrt()
    }
}

/// How well a model's cosine similarities follow gold scores (semantic textual similarity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StsScore {
    /// Pairs scored.
    pub pairs: usize,
    /// Pearson's correlation of cosine and gold score.
    pub pearson: f64,
    /// Spearman's rank correlation of cosine and gold score.
    pub spearman: f64,
}

/// The metric names an STS score is recorded under, at a run's evaluations and by
/// `hearth eval --sts --record`.
pub const STS_SPEARMAN: &str = "val_sts_spearman";
/// See [`STS_SPEARMAN`].
pub const STS_PEARSON: &str = "val_sts_pearson";

/// An STS score as named metrics (`val_sts_spearman`, `val_sts_pearson`).
pub fn sts_metrics(score: &StsScore) -> Vec<(String, f64)> {
    vec![
        (STS_SPEARMAN.to_string(), score.spearman),
        (STS_PEARSON.to_string(), score.pearson),
    ]
}

/// The cosine of each pair `(a[i], b[i])` of token sequences, embedded as `how` says.
pub fn pair_cosines(
    model: &Model,
    a: &[Vec<u32>],
    b: &[Vec<u32>],
    how: EmbedSpec,
    tokenizer: &Tokenizer,
    device: &Device,
) -> Vec<f64> {
    let a = embed_all(model, a, how, tokenizer, device);
    let b = embed_all(model, b, how, tokenizer, device);
    // Rows are L2-normalised: the row-wise dot product is the cosine.
    (a * b)
        .sum_dim(1)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Embeds both sentences of every pair (as `how` says) and correlates their cosine with the
/// gold score.
pub fn sts_score(
    model: &Model,
    pairs: &[crate::data::pairs::ScoredPair],
    how: EmbedSpec,
    tokenizer: &Tokenizer,
    device: &Device,
) -> StsScore {
    let encode = |texts: Vec<&str>| -> Vec<Vec<u32>> {
        texts
            .into_iter()
            .map(|t| tokenizer.encode_text(t))
            .collect()
    };
    let a = encode(pairs.iter().map(|p| p.a.as_str()).collect());
    let b = encode(pairs.iter().map(|p| p.b.as_str()).collect());
    let cosines = pair_cosines(model, &a, &b, how, tokenizer, device);
    let gold: Vec<f64> = pairs.iter().map(|p| p.score).collect();
    StsScore {
        pairs: pairs.len(),
        pearson: pearson(&cosines, &gold),
        spearman: spearman(&cosines, &gold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_by_hand() {
        // Query 0's match ranks 1st, query 1's 3rd, query 2's 2nd.
        let sims = [0.9, 0.1, 0.2, 0.5, 0.1, 0.7, 0.3, 0.8, 0.6];
        let r = retrieval(&sims, 3, 3);
        assert_eq!(r.recall_at_1, 1.0 / 3.0);
        assert_eq!(r.recall_at_10, 1.0);
        assert!((r.mrr - (1.0 + 1.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn spearman_by_hand() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Ties: ranks x = [1.5, 1.5, 3], y = [1, 2, 3].
        let expected = 0.866_025_403_784_438_6;
        assert!((spearman(&[5.0, 5.0, 7.0], &[1.0, 2.0, 3.0]) - expected).abs() < 1e-12);
    }

    #[test]
    fn pearson_by_hand() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // x = (1, 2, 3, 4), y = (1, 3, 2, 4): cov 4, var 5 and 5.
        assert!((pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }
}
