//! Next-token prediction: causal attention, cross-entropy of each position's logits against the
//! token that follows it.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Mean cross-entropy in nats. `logits: [batch, seq, vocab]`, `targets: [batch, seq]`.
pub fn loss(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    let [batch, seq, vocab] = logits.dims();
    let log_probs = log_softmax(logits.reshape([batch * seq, vocab]), 1);
    let picked = log_probs.gather(1, targets.reshape([batch * seq, 1]));
    picked.mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn uniform_logits_give_ln_vocab() {
        let device = Device::flex();
        let logits = Tensor::<3>::zeros([2, 3, 10], &device);
        let targets = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [2, 3]),
            &device,
        );
        let value: f32 = loss(logits, targets).into_scalar();
        assert!(
            (value - 10f32.ln()).abs() < 1e-5,
            "expected ln 10, got {value}"
        );
    }

    #[test]
    fn matches_hand_computed_cross_entropy() {
        let device = Device::flex();
        let logits =
            Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 1, 3]), &device);
        let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64], [1, 1]), &device);
        let value: f32 = loss(logits, targets).into_scalar();
        let expected = -(1.0f32 - (1f32.exp() + 2f32.exp() + 3f32.exp()).ln());
        assert!(
            (value - expected).abs() < 1e-5,
            "expected {expected}, got {value}"
        );
    }
}
