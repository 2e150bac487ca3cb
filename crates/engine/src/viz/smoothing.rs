//! Smoothing computed on full-resolution series, before any down-sampling.

/// How a curve is smoothed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, Default)]
pub enum SmoothingKind {
    /// TensorBoard's debiased exponential moving average over points.
    #[default]
    DebiasedEma,
    /// An EMA whose decay follows the x distance between points, so series logged at different
    /// rates smooth alike.
    TimeWeightedEma,
}

/// TensorBoard's debiased exponential moving average: `weight` in [0, 1), 0 = no smoothing.
/// The bias correction keeps the first points from being pulled towards zero.
pub fn debiased_ema(values: &[f64], weight: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let mut state = EmaState::default();
    state.extend_debiased(values, weight, &mut out);
    out
}

/// The time-weighted EMA of `ys` at positions `xs` (sorted). Each point gets the weight
/// `alpha = 1 - exp(-dx / tau)`, where `dx` is its distance from the previous point and `tau`
/// the time constant in x units; sums are debiased like [`debiased_ema`]. With evenly spaced
/// points `dx = 1` this equals [`debiased_ema`] with `weight = exp(-1 / tau)`.
pub fn time_weighted_ema(xs: &[f64], ys: &[f64], tau: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(ys.len());
    let mut state = EmaState::default();
    state.extend_time_weighted(xs, ys, tau, &mut out);
    out
}

/// The time constant, in steps, that matches a per-step EMA `weight`.
pub fn tau_for_weight(weight: f64) -> f64 {
    let w = weight.clamp(1e-9, 0.999_999);
    -1.0 / w.ln()
}

/// Running state of either EMA, so a live series is extended without recomputing it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EmaState {
    numerator: f64,
    denominator: f64,
    last_x: Option<f64>,
}

impl EmaState {
    /// Appends the smoothed values of `values` to `out`, continuing from this state.
    pub fn extend_debiased(&mut self, values: &[f64], weight: f64, out: &mut Vec<f64>) {
        let weight = weight.clamp(0.0, 0.999_999);
        for &v in values {
            if !v.is_finite() {
                out.push(v);
                continue;
            }
            self.numerator = self.numerator * weight + (1.0 - weight) * v;
            self.denominator = self.denominator * weight + (1.0 - weight);
            out.push(if self.denominator > 0.0 {
                self.numerator / self.denominator
            } else {
                v
            });
        }
    }

    /// Appends the time-weighted EMA of `(xs, ys)` to `out`, continuing from this state.
    pub fn extend_time_weighted(&mut self, xs: &[f64], ys: &[f64], tau: f64, out: &mut Vec<f64>) {
        let tau = tau.max(1e-12);
        for (&x, &y) in xs.iter().zip(ys) {
            if !y.is_finite() {
                out.push(y);
                continue;
            }
            let dx = self.last_x.map_or(1.0, |last| (x - last).max(0.0));
            self.last_x = Some(x);
            let keep = (-dx / tau).exp();
            self.numerator = self.numerator * keep + (1.0 - keep) * y;
            self.denominator = self.denominator * keep + (1.0 - keep);
            out.push(if self.denominator > 0.0 {
                self.numerator / self.denominator
            } else {
                y
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_matches_hand_computation() {
        let out = debiased_ema(&[1.0, 2.0, 3.0], 0.5);
        // last: 0.5, 1.25, 2.125; debias: 0.5, 0.75, 0.875
        let expected = [1.0, 1.25 / 0.75, 2.125 / 0.875];
        for (a, b) in out.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn zero_weight_is_identity() {
        assert_eq!(debiased_ema(&[3.0, 1.0, 2.0], 0.0), vec![3.0, 1.0, 2.0]);
    }

    #[test]
    fn first_point_is_not_pulled_to_zero() {
        assert!((debiased_ema(&[5.0, 5.0], 0.99)[0] - 5.0).abs() < 1e-12);
    }

    #[test]
    fn time_weighted_equals_debiased_on_unit_spacing() {
        let ys = [4.0, 3.0, 3.5, 2.0, 2.5, 1.0];
        let xs: Vec<f64> = (0..ys.len()).map(|i| i as f64).collect();
        let a = time_weighted_ema(&xs, &ys, tau_for_weight(0.7));
        let b = debiased_ema(&ys, 0.7);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }

    #[test]
    fn time_weighted_matches_hand_computation_on_uneven_spacing() {
        // tau = 2: point 2 is 2 units after point 1 (keep e^-1), point 3 is 4 after (keep e^-2).
        let out = time_weighted_ema(&[0.0, 2.0, 6.0], &[1.0, 3.0, 5.0], 2.0);
        let k0 = (-0.5f64).exp();
        let (n0, d0) = (1.0 - k0, 1.0 - k0);
        let k1 = (-1.0f64).exp();
        let (n1, d1) = (n0 * k1 + (1.0 - k1) * 3.0, d0 * k1 + (1.0 - k1));
        let k2 = (-2.0f64).exp();
        let (n2, d2) = (n1 * k2 + (1.0 - k2) * 5.0, d1 * k2 + (1.0 - k2));
        let expected = [n0 / d0, n1 / d1, n2 / d2];
        for (a, b) in out.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn runs_logged_at_different_rates_smooth_alike() {
        // The same underlying curve logged every step and every 10 steps.
        let f = |x: f64| 3.0 * (-x / 300.0).exp() + 1.0;
        let fine_x: Vec<f64> = (0..=1000).map(f64::from).collect();
        let coarse_x: Vec<f64> = (0..=100).map(|i| f64::from(i) * 10.0).collect();
        let fine = time_weighted_ema(
            &fine_x,
            &fine_x.iter().map(|&x| f(x)).collect::<Vec<_>>(),
            50.0,
        );
        let coarse = time_weighted_ema(
            &coarse_x,
            &coarse_x.iter().map(|&x| f(x)).collect::<Vec<_>>(),
            50.0,
        );
        // Compare at x = 1000, well past the start-up.
        assert!(
            (fine[1000] - coarse[100]).abs() < 0.02,
            "{} vs {}",
            fine[1000],
            coarse[100]
        );
    }

    #[test]
    fn extending_equals_recomputing() {
        let ys = [1.0, 4.0, 2.0, 8.0, 5.0];
        let mut state = EmaState::default();
        let mut out = Vec::new();
        state.extend_debiased(&ys[..2], 0.6, &mut out);
        state.extend_debiased(&ys[2..], 0.6, &mut out);
        assert_eq!(out, debiased_ema(&ys, 0.6));
    }
}
