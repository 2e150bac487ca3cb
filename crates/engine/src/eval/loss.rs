//! Next-token cross-entropy and the loss estimates built on it.

use super::tokens_tensor;
use crate::data::{Corpus, Split};
use crate::model::Model;
use crate::model::fused;
use burn::tensor::{Device, Int, Tensor};
use rand::rngs::StdRng;

/// Mean cross-entropy in nats of each position's logits against its target.
/// `logits: [batch, seq, vocab]`, `targets: [batch, seq]`.
pub fn cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    let [batch, seq, vocab] = logits.dims();
    fused::cross_entropy(
        logits.reshape([batch * seq, vocab]),
        targets.reshape([batch * seq]),
    )
}

/// Mean next-token loss over `batches` random batches of `split`. `model` should be a
/// validation snapshot (`Module::valid`) so no graph is recorded.
pub fn estimate_loss(
    model: &Model,
    corpus: &Corpus,
    split: Split,
    batches: usize,
    batch_size: usize,
    rng: &mut StdRng,
    device: &Device,
) -> f32 {
    let context = model.context();
    let mut total = 0.0f64;
    for _ in 0..batches {
        let batch = corpus.sample_batch(split, batch_size, context, rng);
        let inputs = tokens_tensor(batch.inputs, batch_size, context, device);
        let targets = tokens_tensor(batch.targets, batch_size, context, device);
        let loss: f32 = cross_entropy(model.forward(inputs), targets).into_scalar();
        total += f64::from(loss);
    }
    (total / batches.max(1) as f64) as f32
}

/// Next-token loss over the whole of `split`, in consecutive windows of the model's context
/// (the expectation that [`estimate_loss`] samples). Windows are batched `batch_size` at a time.
pub fn full_split_loss(
    model: &Model,
    corpus: &Corpus,
    split: Split,
    batch_size: usize,
    device: &Device,
) -> f32 {
    let context = model.context();
    let ids = corpus.split(split);
    let windows: Vec<usize> = (0..ids.len().saturating_sub(context + 1) / context)
        .map(|w| w * context)
        .collect();
    let mut total = 0.0f64;
    let mut count = 0usize;
    for chunk in windows.chunks(batch_size.max(1)) {
        let mut inputs = Vec::with_capacity(chunk.len() * context);
        let mut targets = Vec::with_capacity(chunk.len() * context);
        for &start in chunk {
            ids.extend_i64(start..start + context, &mut inputs);
            ids.extend_i64(start + 1..start + context + 1, &mut targets);
        }
        let x = tokens_tensor(inputs, chunk.len(), context, device);
        let y = tokens_tensor(targets, chunk.len(), context, device);
        let loss: f32 = cross_entropy(model.forward(x), y).into_scalar();
        total += f64::from(loss) * chunk.len() as f64;
        count += chunk.len();
    }
    (total / count.max(1) as f64) as f32
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
        let value: f32 = cross_entropy(logits, targets).into_scalar();
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
        let value: f32 = cross_entropy(logits, targets).into_scalar();
        let expected = -(1.0f32 - (1f32.exp() + 2f32.exp() + 3f32.exp()).ln());
        assert!(
            (value - expected).abs() < 1e-5,
            "expected {expected}, got {value}"
        );
    }
}
