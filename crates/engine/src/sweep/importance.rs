//! Which parameters mattered: the mean decrease in impurity of a random forest (Breiman 2001,
//! "Random Forests") fitted from the trials' values to their metric, as W&B's sweep importance
//! panel does. Log ranges enter as their logarithm, lists as the index of the value.

use super::record::{SweepRecord, TrialState};
use super::space::{Domain, ParamValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Trees in the forest.
const TREES: usize = 64;
/// Deepest split.
const MAX_DEPTH: usize = 4;
/// Fewest trials in a leaf.
const MIN_LEAF: usize = 2;

/// Each parameter's share of the forest's variance reduction (summing to 1), in parameter
/// order; `None` with fewer than four trials that have a value. Completed trials count with
/// their last value; pruned ones with the value they were stopped at, so a setting that gets
/// trials stopped shows as mattering.
pub fn importance(record: &SweepRecord) -> Option<Vec<f64>> {
    let params = &record.spec.params;
    let rows: Vec<(Vec<f64>, f64)> = record
        .trials
        .iter()
        .filter(|t| !matches!(t.state, TrialState::Failed { .. }))
        .filter_map(|t| {
            let y = t.last_value().filter(|v| v.is_finite())?;
            let x = params
                .iter()
                .zip(&t.values)
                .map(|(p, v)| feature(&p.domain, v))
                .collect::<Option<Vec<f64>>>()?;
            Some((x, record.score(y)))
        })
        .collect();
    forest_importance(&rows, params.len(), 0x5eed)
}

/// A value as a number the trees split on.
fn feature(domain: &Domain, value: &ParamValue) -> Option<f64> {
    match domain {
        Domain::List { values } => values.iter().position(|v| v == value).map(|i| i as f64),
        Domain::Log { .. } => value.as_f64().filter(|v| *v > 0.0).map(f64::ln),
        Domain::Int { .. } | Domain::Real { .. } => value.as_f64(),
    }
}

/// Mean decrease in impurity per feature of a bagged forest of regression trees over `rows`
/// (features, target), normalised to sum to 1.
pub fn forest_importance(rows: &[(Vec<f64>, f64)], features: usize, seed: u64) -> Option<Vec<f64>> {
    if rows.len() < 4 || features == 0 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut total = vec![0.0; features];
    for _ in 0..TREES {
        let sample: Vec<usize> = (0..rows.len())
            .map(|_| rng.random_range(0..rows.len()))
            .collect();
        grow(rows, sample, 0, &mut total);
    }
    let sum: f64 = total.iter().sum();
    if sum <= 0.0 {
        return Some(vec![0.0; features]);
    }
    Some(total.iter().map(|v| v / sum).collect())
}

/// Sum of squared deviations from the mean.
fn sse(rows: &[(Vec<f64>, f64)], idx: &[usize]) -> f64 {
    if idx.is_empty() {
        return 0.0;
    }
    let mean = idx.iter().map(|&i| rows[i].1).sum::<f64>() / idx.len() as f64;
    idx.iter().map(|&i| (rows[i].1 - mean).powi(2)).sum()
}

/// Splits `idx` on the best feature and threshold, adding the decrease in squared error to
/// that feature's total, and recurses.
fn grow(rows: &[(Vec<f64>, f64)], idx: Vec<usize>, depth: usize, total: &mut [f64]) {
    if depth >= MAX_DEPTH || idx.len() < 2 * MIN_LEAF {
        return;
    }
    let parent = sse(rows, &idx);
    if parent <= 0.0 {
        return;
    }
    let mut best: Option<(f64, usize, f64)> = None;
    for f in 0..total.len() {
        let mut values: Vec<f64> = idx.iter().map(|&i| rows[i].0[f]).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        for pair in values.windows(2) {
            let threshold = 0.5 * (pair[0] + pair[1]);
            let (left, right): (Vec<usize>, Vec<usize>) =
                idx.iter().partition(|&&i| rows[i].0[f] <= threshold);
            if left.len() < MIN_LEAF || right.len() < MIN_LEAF {
                continue;
            }
            let gain = parent - sse(rows, &left) - sse(rows, &right);
            if best.is_none_or(|(g, _, _)| gain > g) {
                best = Some((gain, f, threshold));
            }
        }
    }
    let Some((gain, f, threshold)) = best else {
        return;
    };
    total[f] += gain.max(0.0);
    let (left, right): (Vec<usize>, Vec<usize>) =
        idx.iter().partition(|&&i| rows[i].0[f] <= threshold);
    grow(rows, left, depth + 1, total);
    grow(rows, right, depth + 1, total);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameter_that_drives_the_metric_gets_the_importance() {
        // y depends on feature 0 (strongly) and not at all on feature 1.
        let mut rng = StdRng::seed_from_u64(4);
        let rows: Vec<(Vec<f64>, f64)> = (0..40)
            .map(|_| {
                let (a, b) = (rng.random::<f64>(), rng.random::<f64>());
                (vec![a, b], (3.0 * a).sin() + 0.01 * rng.random::<f64>())
            })
            .collect();
        let imp = forest_importance(&rows, 2, 1).unwrap();
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(imp[0] > 0.8, "feature 0 drives y: {imp:?}");
        assert!(
            forest_importance(&rows[..3], 2, 1).is_none(),
            "too few trials"
        );
    }
}
