//! Learning-rate schedule: linear warmup, then cosine decay to a minimum (nanoGPT's `get_lr`).

/// The learning rate at step `step` (0-based).
pub fn warmup_cosine(step: usize, lr: f64, min_lr: f64, warmup: usize, decay_steps: usize) -> f64 {
    if step < warmup {
        return lr * (step as f64 + 1.0) / (warmup as f64 + 1.0);
    }
    if step > decay_steps || decay_steps <= warmup {
        return min_lr;
    }
    let ratio = (step - warmup) as f64 / (decay_steps - warmup) as f64;
    let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
    min_lr + coeff * (lr - min_lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_minimum() {
        let lr = |s| warmup_cosine(s, 1e-3, 1e-4, 100, 2000);
        assert!((lr(0) - 1e-3 / 101.0).abs() < 1e-12);
        assert!((lr(100) - 1e-3).abs() < 1e-12, "peak right after warmup");
        assert!((lr(1050) - 5.5e-4).abs() < 1e-9, "half way down the cosine");
        assert!((lr(2000) - 1e-4).abs() < 1e-12);
        assert!((lr(5000) - 1e-4).abs() < 1e-12);
        for s in 100..2000 {
            assert!(lr(s + 1) <= lr(s), "monotone after warmup at {s}");
        }
    }
}
