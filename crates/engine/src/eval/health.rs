//! Health of an embedding space, computed on the CPU in f64 from normalised embedding vectors:
//! alignment and uniformity (Wang & Isola 2020, "Understanding Contrastive Representation
//! Learning through Alignment and Uniformity on the Hypersphere", ICML), the mean and spread of
//! pairwise cosine, and the effective rank (Roy & Vetterli 2007, "The effective rank: a measure
//! of effective dimensionality", EUSIPCO). Collapse, every text mapped to nearly one vector or
//! onto one line, shows as uniformity near 0 or effective rank near 1.

/// Fewest embeddings on which [`collapse`] judges (fewer say little about a space).
pub const MIN_EMBEDDINGS: usize = 32;

/// Uniformity above this is collapse: `log E exp(-2 ||x - y||^2) > -0.05` needs a mean
/// squared distance below about 0.025, i.e. pairwise cosine above about 0.99 on average.
/// Collapsed encoders measure far closer to 0 (a learning rate of 3: -0.002 with cosine
/// 0.9995; InfoNCE stuck at ln(batch): -0.0002), while a max-pooled encoder before or early
/// in training is only anisotropic (every vector shares a positive offset): about -0.09 with
/// cosine 0.98, effective rank above half its width, and retrieval above chance.
pub const COLLAPSED_UNIFORMITY: f64 = -0.05;

/// Effective rank below this is collapse: the centred embeddings vary along about one direction.
pub const COLLAPSED_EFF_RANK: f64 = 1.5;

/// Uniformity above this (pairwise cosine above about 0.97) is collapse when the effective rank
/// is also below [`CROWDED_EFF_RANK`]: a crowded space that has lost its dimensions too. A
/// contrastive run at learning rate 3 ends here (uniformity -0.083, effective rank 1.52,
/// retrieval at chance), while the anisotropic encoders above keep tens of dimensions.
pub const CROWDED_UNIFORMITY: f64 = -0.1;

/// See [`CROWDED_UNIFORMITY`].
pub const CROWDED_EFF_RANK: f64 = 5.0;

/// The health statistics of a set of embeddings and their positives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// Mean squared distance between an embedding and its positive (0 when identical).
    pub alignment: f64,
    /// `log` of the mean over distinct pairs of `exp(-2 ||x - y||^2)` (at most 0; 0 when every
    /// embedding is the same).
    pub uniformity: f64,
    /// Mean cosine over distinct pairs.
    pub cos_mean: f64,
    /// Standard deviation of cosine over distinct pairs.
    pub cos_std: f64,
    /// `exp` of the entropy of the normalised singular values of the centred embeddings
    /// (1 for a line or a point, up to `min(n - 1, d)`).
    pub eff_rank: f64,
    /// Embeddings the statistics were computed on.
    pub n: usize,
}

/// Health of `queries` and `positives` (row-major `[n, d]` each, rows L2-normalised, row `i`
/// of one the positive of row `i` of the other). Alignment is over the `n` positive pairs;
/// uniformity, cosine and effective rank over the `2n` embeddings together. `None` with fewer
/// than two pairs.
pub fn health(queries: &[f32], positives: &[f32], d: usize) -> Option<Health> {
    if d == 0 || queries.len() != positives.len() || !queries.len().is_multiple_of(d) {
        return None;
    }
    let n = queries.len() / d;
    if n < 2 {
        return None;
    }
    let row = |x: &[f32], i: usize| -> Vec<f64> {
        x[i * d..(i + 1) * d]
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    };
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| row(queries, i))
        .chain((0..n).map(|i| row(positives, i)))
        .collect();
    let alignment = (0..n)
        .map(|i| squared_distance(&rows[i], &rows[n + i]))
        .sum::<f64>()
        / n as f64;
    let (uniformity, cos_mean, cos_std) = pair_statistics(&rows);
    Some(Health {
        alignment,
        uniformity,
        cos_mean,
        cos_std,
        eff_rank: effective_rank(&rows),
        n: rows.len(),
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Uniformity (t = 2), cosine mean and cosine standard deviation over the distinct pairs.
fn pair_statistics(rows: &[Vec<f64>]) -> (f64, f64, f64) {
    let norms: Vec<f64> = rows.iter().map(|r| dot(r, r)).collect();
    let (mut kernel, mut sum, mut sum_sq, mut pairs) = (0.0, 0.0, 0.0, 0usize);
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            let ip = dot(&rows[i], &rows[j]);
            let dist = (norms[i] + norms[j] - 2.0 * ip).max(0.0);
            kernel += (-2.0 * dist).exp();
            let cos = ip / (norms[i] * norms[j]).sqrt().max(1e-12);
            sum += cos;
            sum_sq += cos * cos;
            pairs += 1;
        }
    }
    let p = pairs.max(1) as f64;
    let mean = sum / p;
    let var = (sum_sq / p - mean * mean).max(0.0);
    ((kernel / p).ln().min(0.0), mean, var.sqrt())
}

/// Effective rank of the centred rows: `exp(H(p))` with `p_i = s_i / sum(s)` over the singular
/// values `s_i` (Roy & Vetterli 2007). The singular values are the square roots of the
/// eigenvalues of the smaller of the `d x d` scatter and the `n x n` Gram matrix. Rows that are
/// all equal have rank 1.
pub fn effective_rank(rows: &[Vec<f64>]) -> f64 {
    let n = rows.len();
    let Some(d) = rows.first().map(Vec::len) else {
        return 1.0;
    };
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect();
    let matrix = if d <= n {
        // Scatter X^T X, d x d.
        let mut s = vec![vec![0.0; d]; d];
        for r in &centred {
            for (row, &ra) in s.iter_mut().zip(r) {
                if ra == 0.0 {
                    continue;
                }
                for (cell, &rb) in row.iter_mut().zip(r) {
                    *cell += ra * rb;
                }
            }
        }
        s
    } else {
        // Gram X X^T, n x n.
        (0..n)
            .map(|i| (0..n).map(|j| dot(&centred[i], &centred[j])).collect())
            .collect()
    };
    let singular: Vec<f64> = symmetric_eigenvalues(matrix)
        .into_iter()
        .map(|l| l.max(0.0).sqrt())
        .collect();
    let total: f64 = singular.iter().sum();
    let largest = singular.iter().copied().fold(0.0, f64::max);
    if total <= 1e-9 || largest <= 1e-9 {
        return 1.0;
    }
    let entropy: f64 = singular
        .iter()
        .map(|s| s / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations.
fn symmetric_eigenvalues(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    let scale: f64 = a.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    if scale == 0.0 {
        return vec![0.0; n];
    }
    for _sweep in 0..50 {
        let off: f64 = (0..n)
            .flat_map(|p| (p + 1..n).map(move |q| (p, q)))
            .map(|(p, q)| a[p][q] * a[p][q])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-12 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p][q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (top, bottom) = a.split_at_mut(q);
                for (apk, aqk) in top[p].iter_mut().zip(bottom[0].iter_mut()) {
                    let (x, y) = (*apk, *aqk);
                    *apk = c * x - s * y;
                    *aqk = s * x + c * y;
                }
            }
        }
    }
    (0..n).map(|i| a[i][i]).collect()
}

/// Collapse as the latest statistics show it: uniformity above [`COLLAPSED_UNIFORMITY`],
/// effective rank below [`COLLAPSED_EFF_RANK`], or both uniformity above
/// [`CROWDED_UNIFORMITY`] and effective rank below [`CROWDED_EFF_RANK`], judged on at least
/// [`MIN_EMBEDDINGS`] embeddings (`n`, where known). Returns the sentence that says so and what to
/// try; a lower temperature is suggested only above [`SUGGESTED_TEMPERATURE`] (the run's
/// `temperature`).
pub fn collapse(
    uniformity: f64,
    eff_rank: f64,
    n: Option<usize>,
    temperature: f64,
) -> Option<String> {
    if n.is_some_and(|n| n < MIN_EMBEDDINGS) {
        return None;
    }
    let what = if uniformity > COLLAPSED_UNIFORMITY {
        "every text maps to nearly the same vector"
    } else if eff_rank < COLLAPSED_EFF_RANK {
        "the embeddings vary along about one direction only"
    } else if uniformity > CROWDED_UNIFORMITY && eff_rank < CROWDED_EFF_RANK {
        "the texts crowd together and vary along a few directions only"
    } else {
        return None;
    };
    let temperature = if temperature > SUGGESTED_TEMPERATURE + 1e-9 {
        format!("a lower temperature ({SUGGESTED_TEMPERATURE}), ")
    } else {
        String::new()
    };
    Some(format!(
        "the embeddings have collapsed: {what} (uniformity {uniformity:.3}, effective rank \
         {eff_rank:.1}). Try {temperature}a smaller learning rate, mean pooling, or \
         warm-starting from a next-token run (--init-from)."
    ))
}

/// The InfoNCE temperature the collapse advice suggests (SimCSE's, Gao et al. 2021).
pub const SUGGESTED_TEMPERATURE: f64 = 0.05;

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    fn basis(d: usize) -> Vec<f32> {
        let mut x = vec![0.0f32; d * d];
        for i in 0..d {
            x[i * d + i] = 1.0;
        }
        x
    }

    #[test]
    fn identical_vectors_are_collapsed() {
        let d = 8;
        let v: Vec<f32> = (0..d).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
        let x: Vec<f32> = v.iter().copied().cycle().take(20 * d).collect();
        let h = health(&x, &x, d).unwrap();
        assert!(close(h.uniformity, 0.0), "{h:?}");
        assert!(close(h.eff_rank, 1.0), "{h:?}");
        assert!(close(h.alignment, 0.0), "{h:?}");
        assert!(close(h.cos_mean, 1.0) && close(h.cos_std, 0.0), "{h:?}");
        assert_eq!(h.n, 40);
        assert!(collapse(h.uniformity, h.eff_rank, Some(h.n), 0.1).is_some());
    }

    #[test]
    fn an_orthonormal_basis_has_known_statistics() {
        let d = 16;
        let x = basis(d);
        let h = health(&x, &x, d).unwrap();
        // Identical pairs: alignment 0.
        assert!(close(h.alignment, 0.0), "{h:?}");
        // 2d embeddings: the d basis vectors twice. Pairs of equal vectors (d of them) have
        // distance 0, all others distance^2 2 and cosine 0.
        let pairs = (2 * d * (2 * d - 1) / 2) as f64;
        let same = d as f64;
        let expected_u = ((same + (pairs - same) * (-4.0f64).exp()) / pairs).ln();
        assert!(close(h.uniformity, expected_u), "{h:?} vs {expected_u}");
        assert!(close(h.cos_mean, same / pairs), "{h:?}");
        // Centred, the basis spans d - 1 equal singular values: effective rank d - 1.
        assert!(close(h.eff_rank, (d - 1) as f64), "{h:?}");
        assert!(collapse(h.uniformity, h.eff_rank, Some(h.n), 0.1).is_none());
    }

    #[test]
    fn distinct_basis_pairs_reach_uniformity_minus_four() {
        let d = 6;
        let rows: Vec<Vec<f64>> = (0..d)
            .map(|i| (0..d).map(|j| f64::from(u8::from(i == j))).collect())
            .collect();
        let (u, mean, std) = pair_statistics(&rows);
        assert!(close(u, -4.0) && close(mean, 0.0) && close(std, 0.0));
        assert!(close(effective_rank(&rows), (d - 1) as f64));
    }

    #[test]
    fn a_line_has_effective_rank_one() {
        // Points spread along one direction (more dimensions than points: the Gram path).
        let rows: Vec<Vec<f64>> = (0..5)
            .map(|i| {
                let mut r = vec![0.0; 12];
                r[3] = f64::from(i) - 2.0;
                r
            })
            .collect();
        assert!(close(effective_rank(&rows), 1.0));
    }

    #[test]
    fn eigenvalues_of_a_known_matrix() {
        let mut l = symmetric_eigenvalues(vec![
            vec![2.0, 1.0, 0.0],
            vec![1.0, 2.0, 0.0],
            vec![0.0, 0.0, 5.0],
        ]);
        l.sort_by(f64::total_cmp);
        assert!(
            close(l[0], 1.0) && close(l[1], 3.0) && close(l[2], 5.0),
            "{l:?}"
        );
    }

    #[test]
    fn collapse_is_judged_on_enough_embeddings() {
        assert!(collapse(-0.02, 1.1, Some(200), 0.1).is_some());
        assert!(
            collapse(-0.02, 30.0, Some(200), 0.1).is_some(),
            "uniformity alone"
        );
        assert!(
            collapse(-2.5, 1.2, None, 0.1).is_some(),
            "effective rank alone"
        );
        assert!(collapse(-2.5, 30.0, Some(200), 0.1).is_none());
        // Max pooling on a young encoder: every vector shares an offset (cosine 0.98), but the
        // space keeps most of its dimensions: anisotropic, not collapsed.
        assert!(
            collapse(-0.093, 50.0, Some(200), 0.1).is_none(),
            "anisotropic"
        );
        let crowded = collapse(-0.083, 1.52, Some(200), 0.1).expect("crowded onto few directions");
        assert!(crowded.contains("a few directions"), "{crowded}");
        assert!(
            collapse(-0.3, 3.0, Some(200), 0.1).is_none(),
            "spread, if along few directions"
        );
        assert!(
            collapse(-0.002, 11.6, Some(200), 0.1).is_some(),
            "a learning rate of 3"
        );
        assert!(
            collapse(-0.02, 1.1, Some(10), 0.1).is_none(),
            "too few to judge"
        );
        // The advice suggests a lower temperature only to a run above it.
        let hot = collapse(-0.02, 1.1, Some(200), 0.1).unwrap();
        assert!(hot.contains("a lower temperature (0.05)"), "{hot}");
        let cool = collapse(-0.02, 1.1, Some(200), 0.05).unwrap();
        assert!(
            !cool.contains("temperature") && cool.contains("Try a smaller learning rate"),
            "{cool}"
        );
        let text = collapse(-0.02, 1.1, None, 0.1).unwrap();
        assert!(text.contains("uniformity -0.020") && text.contains("effective rank 1.1"));
        assert!(text.contains("the same vector"), "{text}");
        let line = collapse(-2.5, 1.2, None, 0.1).unwrap();
        assert!(line.contains("one direction"), "{line}");
        assert!(text.contains("temperature") && text.contains("--init-from"));
    }
}
