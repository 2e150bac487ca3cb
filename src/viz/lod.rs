//! Level of detail for curves: per x bucket the min, max and last point, so a one-point spike
//! stays visible however far the view is zoomed out.

/// Reduces the sorted series `(xs[i], ys[i])` in `[x_min, x_max]` to at most `3 * buckets`
/// points (plus one neighbour on each side, so lines reach the edges of the view). Bucket
/// boundaries depend on the view only, so the same view always gives the same points.
pub fn min_max_last(
    xs: &[f64],
    ys: &[f64],
    x_min: f64,
    x_max: f64,
    buckets: usize,
) -> Vec<[f64; 2]> {
    let n = xs.len().min(ys.len());
    if n == 0 || buckets == 0 || x_max <= x_min {
        return Vec::new();
    }
    let (xs, ys) = (&xs[..n], &ys[..n]);
    let start = xs.partition_point(|&x| x < x_min).saturating_sub(1);
    let end = (xs.partition_point(|&x| x <= x_max) + 1).min(n);
    if end - start <= 3 * buckets {
        return (start..end).map(|i| [xs[i], ys[i]]).collect();
    }
    let width = (x_max - x_min) / buckets as f64;
    let bucket_of = |x: f64| ((x - x_min) / width).floor();
    let mut out = Vec::with_capacity(3 * buckets + 2);
    let mut i = start;
    while i < end {
        let bucket = bucket_of(xs[i]);
        let (mut lo, mut hi, mut j) = (i, i, i);
        while j < end && bucket_of(xs[j]) == bucket {
            if ys[j] < ys[lo] {
                lo = j;
            }
            if ys[j] > ys[hi] {
                hi = j;
            }
            j += 1;
        }
        // Keep x order inside the bucket so the line does not double back.
        let mut picks = [lo, hi, j - 1];
        picks.sort_unstable();
        let mut prev = usize::MAX;
        for p in picks {
            if p != prev {
                out.push([xs[p], ys[p]]);
                prev = p;
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_spike_survives_a_million_to_a_thousand_reduction() {
        let xs: Vec<f64> = (0..1_000_000).map(f64::from).collect();
        let mut ys = vec![1.0; 1_000_000];
        ys[654_321] = 50.0;
        ys[123_456] = -7.0;
        let out = min_max_last(&xs, &ys, 0.0, 999_999.0, 1_000);
        assert!(out.len() <= 3_002, "reduced to {} points", out.len());
        assert!(out.contains(&[654_321.0, 50.0]), "spike kept");
        assert!(out.contains(&[123_456.0, -7.0]), "dip kept");
        assert!(out.windows(2).all(|w| w[0][0] <= w[1][0]), "x stays sorted");
    }

    #[test]
    fn every_bucket_keeps_its_min_and_max() {
        let xs: Vec<f64> = (0..10_000).map(f64::from).collect();
        let ys: Vec<f64> = (0..10_000).map(|i| ((i * 7919) % 1000) as f64).collect();
        let out = min_max_last(&xs, &ys, 0.0, 10_000.0, 100);
        for b in 0..100 {
            let bucket = &ys[b * 100..(b + 1) * 100];
            let (lo, hi) = bucket
                .iter()
                .fold((f64::MAX, f64::MIN), |(l, h), &y| (l.min(y), h.max(y)));
            let kept: Vec<f64> = out
                .iter()
                .filter(|p| (p[0] / 100.0).floor() as usize == b)
                .map(|p| p[1])
                .collect();
            assert!(
                kept.contains(&lo) && kept.contains(&hi),
                "bucket {b}: {kept:?} lacks {lo} or {hi}"
            );
        }
    }

    #[test]
    fn zooming_in_shows_the_raw_points() {
        let xs: Vec<f64> = (0..1_000_000).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|x| x.sin()).collect();
        let out = min_max_last(&xs, &ys, 500_000.0, 500_100.0, 1_000);
        assert_eq!(
            out.len(),
            103,
            "101 points in view plus a neighbour each side"
        );
        assert_eq!(out[1], [500_000.0, 500_000f64.sin()]);
    }
}
