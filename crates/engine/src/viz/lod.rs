//! Level of detail for curves: per x bucket the min, max and last point, so a one-point spike
//! stays visible however far the view is zoomed out.

/// The visible part of a sorted series and the buckets it is reduced into.
#[derive(Debug, Clone, Copy)]
struct View {
    /// First index drawn (one neighbour left of the view when there is one).
    start: usize,
    /// One past the last index drawn (one neighbour right of the view when there is one).
    end: usize,
    /// Left edge of the first bucket.
    x_min: f64,
    /// Width of a bucket on the x axis.
    width: f64,
}

impl View {
    /// The bucket `x` falls in (a whole number, as a float).
    fn bucket_of(&self, x: f64) -> f64 {
        ((x - self.x_min) / self.width).floor()
    }
}

/// The min, max and last point of each bucket of `(xs[i], ys[i])` in `[x_min, x_max]`, or the
/// raw points when there are few. `bucket` is given the view and the first index `i` of a
/// bucket and returns `(j, lo, hi)`: the first index of the next bucket and the indices of
/// the bucket's minimum and maximum (ties to the first).
fn pick_points(
    xs: &[f64],
    ys: &[f64],
    x_min: f64,
    x_max: f64,
    buckets: usize,
    mut bucket: impl FnMut(&View, usize) -> (usize, usize, usize),
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
    let view = View {
        start,
        end,
        x_min,
        width: (x_max - x_min) / buckets as f64,
    };
    let mut out = Vec::with_capacity(3 * buckets + 2);
    let mut i = start;
    while i < end {
        let (j, lo, hi) = bucket(&view, i);
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
    pick_points(xs, ys, x_min, x_max, buckets, |view, i| {
        let bucket = view.bucket_of(xs[i]);
        let (mut lo, mut hi, mut j) = (i, i, i);
        while j < view.end && view.bucket_of(xs[j]) == bucket {
            if ys[j] < ys[lo] {
                lo = j;
            }
            if ys[j] > ys[hi] {
                hi = j;
            }
            j += 1;
        }
        (j, lo, hi)
    })
}

/// Where the minimum and maximum of each block of points are, at two block sizes
/// ([`BlockIndex::FINE`] and [`BlockIndex::COARSE`] points), so a bucket spanning many points
/// costs a few dozen lookups instead of a scan. Extended as points are appended.
#[derive(Debug, Clone, Default)]
pub struct BlockIndex {
    /// Extremes per fine block (the last may be partial).
    fine: Vec<Extremes>,
    /// The same per coarse block.
    coarse: Vec<Extremes>,
    /// Points covered.
    len: usize,
}

/// A block's minimum and maximum with their indices (values kept to avoid indirect loads).
#[derive(Debug, Clone, Copy)]
struct Extremes {
    lo: u32,
    hi: u32,
    lo_value: f64,
    hi_value: f64,
}

impl BlockIndex {
    /// Points per fine block.
    pub const FINE: usize = 16;
    /// Points per coarse block.
    pub const COARSE: usize = 256;

    /// The index of `ys`.
    pub fn new(ys: &[f64]) -> Self {
        let mut index = Self::default();
        index.extend(ys);
        index
    }

    /// Brings the index up to date with `ys` (which only ever grows, or is replaced).
    pub fn extend(&mut self, ys: &[f64]) {
        if ys.len() < self.len {
            *self = Self::default();
        }
        if ys.len() == self.len {
            return;
        }
        Self::extend_level(&mut self.fine, Self::FINE, self.len, ys);
        Self::extend_level(&mut self.coarse, Self::COARSE, self.len, ys);
        self.len = ys.len();
    }

    fn extend_level(blocks: &mut Vec<Extremes>, size: usize, covered: usize, ys: &[f64]) {
        // Redo the trailing partial block, then add the new ones.
        let mut start = (covered / size) * size;
        blocks.truncate(start / size);
        while start < ys.len() {
            let end = (start + size).min(ys.len());
            let (mut lo, mut hi) = (start, start);
            for i in start..end {
                if ys[i] < ys[lo] {
                    lo = i;
                }
                if ys[i] > ys[hi] {
                    hi = i;
                }
            }
            blocks.push(Extremes {
                lo: lo as u32,
                hi: hi as u32,
                lo_value: ys[lo],
                hi_value: ys[hi],
            });
            start = end;
        }
    }

    /// Points covered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no point is covered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Indices of the minimum and maximum of `ys[a..b]` (`a < b <= len`); ties go to the
    /// first index, as a left-to-right scan would.
    pub fn min_max(&self, ys: &[f64], a: usize, b: usize) -> (usize, usize) {
        let mut best = Extremes {
            lo: a as u32,
            hi: a as u32,
            lo_value: ys[a],
            hi_value: ys[a],
        };
        // Blocks and points are visited left to right, so strict comparisons keep the first.
        let take = |best: &mut Extremes, e: &Extremes| {
            if e.lo_value < best.lo_value {
                best.lo = e.lo;
                best.lo_value = e.lo_value;
            }
            if e.hi_value > best.hi_value {
                best.hi = e.hi;
                best.hi_value = e.hi_value;
            }
        };
        let point = |best: &mut Extremes, i: usize| {
            let v = ys[i];
            take(
                best,
                &Extremes {
                    lo: i as u32,
                    hi: i as u32,
                    lo_value: v,
                    hi_value: v,
                },
            );
        };
        let (f, c) = (Self::FINE, Self::COARSE);
        let (fine_a, fine_b) = (a.div_ceil(f) * f, b / f * f);
        if fine_a >= fine_b {
            (a..b).for_each(|i| point(&mut best, i));
            return (best.lo as usize, best.hi as usize);
        }
        (a..fine_a).for_each(|i| point(&mut best, i));
        let (coarse_a, coarse_b) = (fine_a.div_ceil(c) * c, fine_b / c * c);
        if coarse_a >= coarse_b {
            self.fine[fine_a / f..fine_b / f]
                .iter()
                .for_each(|e| take(&mut best, e));
        } else {
            self.fine[fine_a / f..coarse_a / f]
                .iter()
                .for_each(|e| take(&mut best, e));
            self.coarse[coarse_a / c..coarse_b / c]
                .iter()
                .for_each(|e| take(&mut best, e));
            self.fine[coarse_b / f..fine_b / f]
                .iter()
                .for_each(|e| take(&mut best, e));
        }
        (fine_b..b).for_each(|i| point(&mut best, i));
        (best.lo as usize, best.hi as usize)
    }
}

/// The first index in `xs[from..]` (sorted) whose value is not below `edge`, searched by
/// doubling steps outwards from `guess` (`from <= guess <= len`): a few probes when the guess is
/// close, as it is for evenly spaced points.
fn search_from(xs: &[f64], from: usize, guess: usize, edge: f64) -> usize {
    let n = xs.len();
    let (mut lo, mut hi);
    if guess < n && xs[guess] < edge {
        // Answer after the guess.
        let mut step = 1;
        lo = guess + 1;
        hi = (guess + 1).min(n);
        while hi < n && xs[hi] < edge {
            lo = hi + 1;
            hi = (hi + step).min(n);
            step *= 2;
        }
    } else {
        // Answer at or before the guess.
        let mut step = 1;
        hi = guess;
        lo = guess;
        while lo > from && xs[lo - 1] >= edge {
            hi = lo - 1;
            lo = lo.saturating_sub(step).max(from);
            step *= 2;
        }
    }
    lo + xs[lo..hi].partition_point(|&x| x < edge)
}

/// [`min_max_last`] with a [`BlockIndex`] of `ys`: bucket edges are found by binary search and
/// each bucket's extremes from whole blocks, so the cost follows the number of buckets, not of
/// points. Gives the same points as [`min_max_last`].
pub fn min_max_last_indexed(
    xs: &[f64],
    ys: &[f64],
    index: &BlockIndex,
    x_min: f64,
    x_max: f64,
    buckets: usize,
) -> Vec<[f64; 2]> {
    let n = xs.len().min(ys.len()).min(index.len());
    let xs = &xs[..n];
    pick_points(xs, ys, x_min, x_max, buckets, |view, i| {
        let (start, end) = (view.start, view.end);
        let bucket = view.bucket_of(xs[i]);
        // Average spacing, to guess where each bucket ends (exact for evenly logged steps).
        let dx = (xs[end - 1] - xs[start]) / (end - start - 1).max(1) as f64;
        // First index of the next bucket: x >= x_min + (bucket + 1) * width, searched from a
        // guess, then checked against the same floor rule the scan uses.
        let edge = view.x_min + (bucket + 1.0) * view.width;
        let guess = if dx > 0.0 {
            i + ((edge - xs[i]) / dx).ceil().max(1.0) as usize
        } else {
            i + 1
        };
        let mut j = search_from(&xs[..end], i, guess.min(end), edge);
        while j > i + 1 && view.bucket_of(xs[j - 1]) != bucket {
            j -= 1;
        }
        while j < end && view.bucket_of(xs[j]) == bucket {
            j += 1;
        }
        let j = j.max(i + 1);
        let (lo, hi) = index.min_max(ys, i, j);
        (j, lo, hi)
    })
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
    fn the_block_index_gives_the_same_points_as_the_scan() {
        let xs: Vec<f64> = (0..200_003).map(|i| f64::from(i) * 0.5).collect();
        let ys: Vec<f64> = (0..200_003)
            .map(|i| ((i * 7919 % 10_007) as f64).sin())
            .collect();
        let mut index = BlockIndex::new(&ys[..1_000]);
        index.extend(&ys); // grown in two parts, as a live run grows
        for (lo, hi, buckets) in [
            (0.0, 100_001.0, 997),
            (1234.5, 5678.25, 300),
            (50_000.0, 50_400.0, 1_000),
        ] {
            assert_eq!(
                min_max_last_indexed(&xs, &ys, &index, lo, hi, buckets),
                min_max_last(&xs, &ys, lo, hi, buckets),
                "view {lo}..{hi}"
            );
        }
    }

    #[test]
    fn the_block_index_matches_the_scan_on_uneven_spacing() {
        // Wall-clock axes: gaps of very different sizes (pauses, evaluations).
        let mut x = 0.0;
        let xs: Vec<f64> = (0..50_000)
            .map(|i| {
                x += if i % 977 == 0 {
                    250.0
                } else {
                    0.01 + (i % 13) as f64 * 0.003
                };
                x
            })
            .collect();
        let ys: Vec<f64> = (0..50_000).map(|i| ((i * 31 % 101) as f64).cos()).collect();
        let index = BlockIndex::new(&ys);
        let last = *xs.last().unwrap();
        for (lo, hi, buckets) in [
            (0.0, last, 640),
            (100.0, last / 3.0, 200),
            (-50.0, last + 50.0, 1200),
        ] {
            assert_eq!(
                min_max_last_indexed(&xs, &ys, &index, lo, hi, buckets),
                min_max_last(&xs, &ys, lo, hi, buckets),
                "view {lo}..{hi}"
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
