//! Two-dimensional projections of embeddings: PCA by power iteration, and sign alignment so a
//! sequence of snapshots does not flip between frames.

/// Projects `n` rows of `d` values (row-major) onto their top two principal components.
pub fn pca_2d(data: &[f32], n: usize, d: usize) -> Vec<[f32; 2]> {
    if n == 0 || d == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; d];
    for row in data.chunks_exact(d) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centered: Vec<f64> = data
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).map(|(&x, m)| f64::from(x) - m))
        .collect();
    // Covariance [d, d].
    let mut cov = vec![0f64; d * d];
    for row in centered.chunks_exact(d) {
        for i in 0..d {
            let ri = row[i];
            if ri == 0.0 {
                continue;
            }
            for j in i..d {
                cov[i * d + j] += ri * row[j];
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            cov[i * d + j] = cov[j * d + i];
        }
    }
    let first = top_eigenvector(&cov, d, None);
    let second = top_eigenvector(&cov, d, Some(&first));
    centered
        .chunks_exact(d)
        .map(|row| {
            let dot = |v: &[f64]| row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() as f32;
            [dot(&first), dot(&second)]
        })
        .collect()
}

/// The dominant eigenvector of the symmetric matrix `m` (orthogonal to `exclude`).
fn top_eigenvector(m: &[f64], d: usize, exclude: Option<&[f64]>) -> Vec<f64> {
    // A fixed, non-degenerate start keeps the result deterministic.
    let mut v: Vec<f64> = (0..d)
        .map(|i| 1.0 + (i as f64 * 0.618).sin() * 0.5)
        .collect();
    for _ in 0..200 {
        if let Some(e) = exclude {
            let p: f64 = v.iter().zip(e).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(e).for_each(|(a, b)| *a -= p * b);
        }
        let mut next = vec![0f64; d];
        for i in 0..d {
            next[i] = (0..d).map(|j| m[i * d + j] * v[j]).sum();
        }
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-300 {
            break;
        }
        next.iter_mut().for_each(|x| *x /= norm);
        let delta: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        if delta < 1e-10 {
            break;
        }
    }
    v
}

/// Flips the axes of `current` whose direction disagrees with `previous` (same points in the
/// same order), so successive snapshots keep their orientation.
pub fn align(previous: &[[f32; 2]], current: &mut [[f32; 2]]) {
    for axis in 0..2 {
        let dot: f64 = previous
            .iter()
            .zip(current.iter())
            .map(|(p, c)| f64::from(p[axis]) * f64::from(c[axis]))
            .sum();
        if dot < 0.0 {
            current.iter_mut().for_each(|c| c[axis] = -c[axis]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_direction_of_largest_spread() {
        // Points spread along (1, 1, 0) with small noise along (1, -1, 0) and z.
        let mut data = Vec::new();
        for i in 0..50 {
            let t = i as f32 - 25.0;
            let e = ((i * 7 % 5) as f32 - 2.0) * 0.1;
            data.extend([t + e, t - e, 0.05 * e]);
        }
        let p = pca_2d(&data, 50, 3);
        let spread = |k: usize| p.iter().map(|x| x[k] * x[k]).sum::<f32>();
        assert!(
            spread(0) > 100.0 * spread(1),
            "first axis carries the spread"
        );
        // Projection on the first axis is +-(t - mean t) * sqrt 2, and mean t = -0.5.
        assert!(
            (p[0][0].abs() - 24.5 * 2f32.sqrt()).abs() < 0.01,
            "{:?}",
            p[0]
        );
    }

    #[test]
    fn alignment_undoes_a_flip() {
        let previous = vec![[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]];
        let mut current: Vec<[f32; 2]> = previous.iter().map(|p| [-p[0], p[1]]).collect();
        align(&previous, &mut current);
        assert_eq!(current, previous);
    }
}
