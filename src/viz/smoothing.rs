//! Smoothing computed on full-resolution series, before any down-sampling.

/// TensorBoard's debiased exponential moving average: `weight` in [0, 1), 0 = no smoothing.
/// The bias correction keeps the first points from being pulled towards zero.
pub fn debiased_ema(values: &[f64], weight: f64) -> Vec<f64> {
    let weight = weight.clamp(0.0, 0.999_999);
    let mut last = 0.0;
    let mut num_accum = 0i32;
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                return v;
            }
            last = last * weight + (1.0 - weight) * v;
            num_accum += 1;
            let debias = 1.0 - weight.powi(num_accum);
            if debias > 0.0 { last / debias } else { v }
        })
        .collect()
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
}
