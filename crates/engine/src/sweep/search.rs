//! How a sweep picks each trial's values: every combination (`grid`), independent uniform
//! draws (`random`), or the Tree-structured Parzen Estimator (`tpe`).
//!
//! Random draws of trial `i` depend only on the seed and `i`, so the same seed gives the same
//! trials whatever the scheduler does with them, and a sweep extended with more trials keeps
//! the ones it has. TPE starts with those same random draws and then depends on the results.

use super::space::{Domain, Param, ParamValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How a sweep picks the values of its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    /// Every combination of the parameters' values, in order (lists and integer ranges).
    Grid,
    /// Each value drawn independently and uniformly (log ranges uniformly in the logarithm).
    #[default]
    Random,
    /// Tree-structured Parzen Estimator (Bergstra, Bardenet, Bengio & Kégl 2011,
    /// "Algorithms for Hyper-Parameter Optimization"): after [`TPE_STARTUP`] random trials,
    /// each value is the best of [`TPE_CANDIDATES`] draws by the ratio l(x) / g(x) of the
    /// densities of the good trials (the best quarter) and of the others.
    Tpe,
}

impl SearchKind {
    /// The name on the command line and in the sweep file.
    pub fn name(self) -> &'static str {
        match self {
            SearchKind::Grid => "grid",
            SearchKind::Random => "random",
            SearchKind::Tpe => "tpe",
        }
    }
}

/// Random trials TPE runs before it models the results.
pub const TPE_STARTUP: usize = 5;
/// Candidates TPE draws from the good trials' density per parameter.
pub const TPE_CANDIDATES: usize = 24;
/// The share of observed trials TPE counts as good (hyperopt's default gamma).
pub const TPE_GAMMA: f64 = 0.25;

/// A trial's values and how it did, for TPE.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Its values, in parameter order.
    pub values: Vec<ParamValue>,
    /// The metric, oriented so that lower is better.
    pub score: f64,
    /// The step the score was measured at; trials stopped earlier rank below those that went
    /// further (as Optuna's TPE ranks pruned trials).
    pub step: usize,
}

/// The number of trials a grid has (`None` when a parameter is a real range).
pub fn grid_size(params: &[Param]) -> Option<usize> {
    params
        .iter()
        .map(|p| p.domain.grid_values().map(|v| v.len()))
        .try_fold(1usize, |acc, n| n.map(|n| acc.saturating_mul(n)))
}

/// SplitMix64's finaliser: decorrelates seeds that differ in one bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random-number generator of trial `index` of a sweep seeded with `seed`.
fn trial_rng(seed: u64, index: usize, salt: u64) -> StdRng {
    StdRng::seed_from_u64(mix(mix(seed) ^ mix(index as u64 ^ salt.rotate_left(32))))
}

/// Trial `index` of a grid: the last parameter varies fastest. `None` past the grid's end.
pub fn grid_trial(params: &[Param], index: usize) -> Option<Vec<ParamValue>> {
    let grids: Vec<Vec<ParamValue>> = params
        .iter()
        .map(|p| p.domain.grid_values())
        .collect::<Option<_>>()?;
    if index >= grid_size(params)? {
        return None;
    }
    let mut rest = index;
    let mut values = vec![ParamValue::Int(0); grids.len()];
    for (slot, grid) in values.iter_mut().zip(&grids).rev() {
        *slot = grid[rest % grid.len()].clone();
        rest /= grid.len();
    }
    Some(values)
}

/// Trial `index` of a random search seeded with `seed`.
pub fn random_trial(params: &[Param], seed: u64, index: usize) -> Vec<ParamValue> {
    let mut rng = trial_rng(seed, index, 0);
    params
        .iter()
        .map(|p| p.value_at(rng.random::<f64>()))
        .collect()
}

/// Trial `index` of a TPE search seeded with `seed`, given the trials observed so far.
pub fn tpe_trial(
    params: &[Param],
    seed: u64,
    index: usize,
    observed: &[Observation],
) -> Vec<ParamValue> {
    if observed.len() < TPE_STARTUP {
        return random_trial(params, seed, index);
    }
    let mut ranked: Vec<&Observation> = observed.iter().collect();
    // Further first, then better.
    ranked.sort_by(|a, b| b.step.cmp(&a.step).then(a.score.total_cmp(&b.score)));
    let n_good = ((TPE_GAMMA * ranked.len() as f64).ceil() as usize).clamp(1, ranked.len() - 1);
    let (good, bad) = ranked.split_at(n_good);
    let mut rng = trial_rng(seed, index, 1);
    params
        .iter()
        .enumerate()
        .map(|(i, param)| {
            let column = |set: &[&Observation]| -> Vec<ParamValue> {
                set.iter().map(|o| o.values[i].clone()).collect()
            };
            suggest_one(param, &column(good), &column(bad), &mut rng)
        })
        .collect()
}

/// One parameter's TPE value: the best of [`TPE_CANDIDATES`] draws from l by l / g.
fn suggest_one(
    param: &Param,
    good: &[ParamValue],
    bad: &[ParamValue],
    rng: &mut StdRng,
) -> ParamValue {
    match &param.domain {
        Domain::List { values } => {
            let index_of = |v: &ParamValue| values.iter().position(|x| x == v);
            // Counts plus one (a uniform prior) per value.
            let weights = |set: &[ParamValue]| -> Vec<f64> {
                let mut w = vec![1.0; values.len()];
                for v in set {
                    if let Some(k) = index_of(v) {
                        w[k] += 1.0;
                    }
                }
                let total: f64 = w.iter().sum();
                w.iter().map(|x| x / total).collect()
            };
            let (l, g) = (weights(good), weights(bad));
            let mut best = (f64::NEG_INFINITY, 0);
            for _ in 0..TPE_CANDIDATES {
                let k = pick(&l, rng);
                let ratio = l[k].ln() - g[k].ln();
                if ratio > best.0 {
                    best = (ratio, k);
                }
            }
            values[best.1].clone()
        }
        Domain::Int { lo, hi } => {
            let (a, b) = (*lo as f64 - 0.5, *hi as f64 + 0.5);
            let to = |v: &ParamValue| v.as_f64();
            let l = Parzen::new(good.iter().filter_map(to).collect(), a, b);
            let g = Parzen::new(bad.iter().filter_map(to).collect(), a, b);
            let x = best_candidate(&l, &g, rng);
            ParamValue::Int((x.round() as i64).clamp(*lo, *hi))
        }
        Domain::Real { lo, hi } => {
            let to = |v: &ParamValue| v.as_f64();
            let l = Parzen::new(good.iter().filter_map(to).collect(), *lo, *hi);
            let g = Parzen::new(bad.iter().filter_map(to).collect(), *lo, *hi);
            ParamValue::Real(best_candidate(&l, &g, rng).clamp(*lo, *hi))
        }
        Domain::Log { lo, hi } => {
            // The estimator works on the logarithm, where the prior is uniform.
            let to = |v: &ParamValue| v.as_f64().filter(|x| *x > 0.0).map(f64::ln);
            let (a, b) = (lo.ln(), hi.ln());
            let l = Parzen::new(good.iter().filter_map(to).collect(), a, b);
            let g = Parzen::new(bad.iter().filter_map(to).collect(), a, b);
            ParamValue::Real(best_candidate(&l, &g, rng).exp().clamp(*lo, *hi))
        }
    }
}

fn pick(weights: &[f64], rng: &mut StdRng) -> usize {
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (k, w) in weights.iter().enumerate() {
        if u < *w {
            return k;
        }
        u -= w;
    }
    weights.len() - 1
}

fn best_candidate(l: &Parzen, g: &Parzen, rng: &mut StdRng) -> f64 {
    let mut best = (f64::NEG_INFINITY, l.sample(rng));
    for _ in 0..TPE_CANDIDATES {
        let x = l.sample(rng);
        let ratio = l.log_density(x) - g.log_density(x);
        if ratio > best.0 {
            best = (ratio, x);
        }
    }
    best.1
}

/// A Parzen estimator on [a, b]: a uniform prior plus one Gaussian truncated to [a, b] per
/// observation, each as likely; a Gaussian's width is the larger gap to its neighbours,
/// clipped to [(b - a) / min(100, n + 1), b - a] (hyperopt's adaptive Parzen estimator).
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    a: f64,
    b: f64,
}

impl Parzen {
    fn new(mut points: Vec<f64>, a: f64, b: f64) -> Self {
        points.sort_by(f64::total_cmp);
        let n = points.len();
        let span = b - a;
        let min_sigma = span / (n as f64 + 1.0).min(100.0);
        let sigmas = (0..n)
            .map(|i| {
                let left = if i == 0 { a } else { points[i - 1] };
                let right = if i + 1 == n { b } else { points[i + 1] };
                (points[i] - left)
                    .max(right - points[i])
                    .clamp(min_sigma, span)
            })
            .collect();
        Self {
            mus: points,
            sigmas,
            a,
            b,
        }
    }

    /// One component per observation plus the prior, each weighted 1 / (n + 1).
    fn components(&self) -> usize {
        self.mus.len() + 1
    }

    fn sample(&self, rng: &mut StdRng) -> f64 {
        let k = rng.random_range(0..self.components());
        if k == self.mus.len() {
            return self.a + rng.random::<f64>() * (self.b - self.a);
        }
        let (mu, sigma) = (self.mus[k], self.sigmas[k]);
        // Rejection keeps the Gaussian truncated to [a, b].
        for _ in 0..64 {
            let x = mu + sigma * standard_normal(rng);
            if (self.a..=self.b).contains(&x) {
                return x;
            }
        }
        mu.clamp(self.a, self.b)
    }

    fn log_density(&self, x: f64) -> f64 {
        let w = 1.0 / self.components() as f64;
        let mut p = w / (self.b - self.a);
        for (mu, sigma) in self.mus.iter().zip(&self.sigmas) {
            let mass = normal_cdf((self.b - mu) / sigma) - normal_cdf((self.a - mu) / sigma);
            let z = (x - mu) / sigma;
            let pdf = (-0.5 * z * z).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt());
            p += w * pdf / mass.max(1e-12);
        }
        p.max(1e-300).ln()
    }
}

/// Box–Muller.
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Φ(x), from erf by Abramowitz & Stegun 7.1.26 (error below 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + erf.copysign(z))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(specs: &[&str]) -> Vec<Param> {
        specs.iter().map(|s| Param::parse(s).unwrap()).collect()
    }

    #[test]
    fn a_grid_is_every_combination_once_the_last_parameter_fastest() {
        let p = params(&["width=32,64", "layers=int:1:3"]);
        assert_eq!(grid_size(&p), Some(6));
        let all: Vec<Vec<ParamValue>> = (0..6).map(|i| grid_trial(&p, i).unwrap()).collect();
        let int = ParamValue::Int;
        assert_eq!(all[0], [int(32), int(1)]);
        assert_eq!(all[1], [int(32), int(2)]);
        assert_eq!(all[3], [int(64), int(1)]);
        assert_eq!(all[5], [int(64), int(3)]);
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "each combination once");
            }
        }
        assert_eq!(grid_trial(&p, 6), None, "the grid ends");
        assert_eq!(grid_size(&params(&["lr=log:1e-4:1e-2"])), None);
    }

    #[test]
    fn random_draws_stay_in_range_cover_it_and_repeat_with_the_seed() {
        let p = params(&["lr=log:1e-4:1e-2", "width=32,64,128", "dropout=real:0:0.2"]);
        let draws: Vec<Vec<ParamValue>> = (0..400).map(|i| random_trial(&p, 7, i)).collect();
        let mut per_decade = [0usize; 2];
        let mut widths = [0usize; 3];
        for d in &draws {
            let lr = d[0].as_f64().unwrap();
            assert!((1e-4..=1e-2).contains(&lr), "{lr}");
            per_decade[usize::from(lr >= 1e-3)] += 1;
            let w = [32, 64, 128]
                .iter()
                .position(|w| d[1] == ParamValue::Int(*w))
                .expect("a listed width");
            widths[w] += 1;
            assert!((0.0..=0.2).contains(&d[2].as_f64().unwrap()));
        }
        // Uniform in the logarithm: each decade about half (binomial sd 10 of 400).
        assert!(
            per_decade.iter().all(|&n| (160..=240).contains(&n)),
            "{per_decade:?}"
        );
        assert!(
            widths.iter().all(|&n| (100..=170).contains(&n)),
            "{widths:?}"
        );
        let again: Vec<Vec<ParamValue>> = (0..400).map(|i| random_trial(&p, 7, i)).collect();
        assert_eq!(draws, again, "the same seed draws the same trials");
        assert_ne!(
            random_trial(&p, 8, 0),
            draws[0],
            "another seed draws others"
        );
    }

    #[test]
    fn tpe_draws_near_the_good_trials() {
        // Score: distance of log10(lr) from -3; the good region is around 1e-3.
        let p = params(&["lr=log:1e-5:1e-1"]);
        let score = |v: &ParamValue| (v.as_f64().unwrap().log10() + 3.0).abs();
        let mut observed = Vec::new();
        for i in 0..30 {
            let values = tpe_trial(&p, 3, i, &observed);
            observed.push(Observation {
                score: score(&values[0]),
                values,
                step: 100,
            });
        }
        let late: f64 = observed[20..].iter().map(|o| o.score).sum::<f64>() / 10.0;
        // Uniform draws over four decades are 1.0 away from -3 on average.
        assert!(
            late < 0.6,
            "TPE's later trials should close in on 1e-3: mean distance {late}"
        );
        let first: Vec<_> = observed[..TPE_STARTUP]
            .iter()
            .map(|o| o.values.clone())
            .collect();
        let random: Vec<_> = (0..TPE_STARTUP).map(|i| random_trial(&p, 3, i)).collect();
        assert_eq!(first, random, "TPE starts with the random search's trials");
    }

    #[test]
    fn the_normal_cdf_is_accurate() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975_002_1).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }
}
