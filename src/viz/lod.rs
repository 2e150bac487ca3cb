//! Level of detail for curves: per x bucket the min, max and last point, so a one-point spike
//! stays visible however far the view is zoomed out.

/// Reduces sorted `(x, y)` points in `[x_min, x_max]` to at most about `3 * buckets` points.
/// Points outside the range are dropped, except the nearest one on each side so lines reach the
/// edges of the view.
pub fn min_max_last(points: &[[f64; 2]], x_min: f64, x_max: f64, buckets: usize) -> Vec<[f64; 2]> {
    if points.is_empty() || buckets == 0 || x_max <= x_min {
        return Vec::new();
    }
    let start = points.partition_point(|p| p[0] < x_min).saturating_sub(1);
    let end = (points.partition_point(|p| p[0] <= x_max) + 1).min(points.len());
    let visible = &points[start..end];
    if visible.len() <= 3 * buckets {
        return visible.to_vec();
    }
    let width = (x_max - x_min) / buckets as f64;
    let mut out = Vec::with_capacity(3 * buckets + 2);
    let mut i = 0;
    while i < visible.len() {
        let bucket = ((visible[i][0] - x_min) / width).floor();
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < visible.len() && ((visible[j][0] - x_min) / width).floor() == bucket {
            if visible[j][1] < visible[lo][1] {
                lo = j;
            }
            if visible[j][1] > visible[hi][1] {
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
                out.push(visible[p]);
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
        let mut points: Vec<[f64; 2]> = (0..1_000_000).map(|i| [i as f64, 1.0]).collect();
        points[654_321][1] = 50.0;
        points[123_456][1] = -7.0;
        let out = min_max_last(&points, 0.0, 999_999.0, 1_000);
        assert!(out.len() <= 3_002, "reduced to {} points", out.len());
        assert!(out.contains(&[654_321.0, 50.0]), "spike kept");
        assert!(out.contains(&[123_456.0, -7.0]), "dip kept");
        assert!(out.windows(2).all(|w| w[0][0] <= w[1][0]), "x stays sorted");
    }

    #[test]
    fn few_points_pass_through() {
        let points = vec![[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]];
        assert_eq!(min_max_last(&points, 0.0, 2.0, 100), points);
    }
}
