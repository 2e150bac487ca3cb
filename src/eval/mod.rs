//! Evaluation: loss estimates on held-out batches and text generation.

use crate::data::{Corpus, Split};
use crate::model::Gpt;
use crate::objective::next_token;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::rngs::StdRng;

/// Uploads `[batch, seq]` token ids.
pub fn tokens_tensor(ids: Vec<i64>, batch: usize, seq: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(ids, [batch, seq]), device)
}

/// Mean next-token loss over `batches` random batches of `split`. `model` should be a
/// validation snapshot (`Module::valid`) so no graph is recorded.
pub fn estimate_loss(
    model: &Gpt,
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
        let loss: f32 = next_token::loss(model.forward(inputs), targets).into_scalar();
        total += f64::from(loss);
    }
    (total / batches.max(1) as f64) as f32
}

/// Samples `n_tokens` continuing `prompt` at temperature `temperature` (1.0 = the model's own
/// distribution). Returns the new tokens only.
pub fn generate(
    model: &Gpt,
    prompt: &[u32],
    n_tokens: usize,
    temperature: f64,
    rng: &mut StdRng,
    device: &Device,
) -> Vec<u32> {
    let context = model.context();
    let mut ids: Vec<u32> = prompt.to_vec();
    if ids.is_empty() {
        ids.push(0);
    }
    let start = ids.len();
    for _ in 0..n_tokens {
        let window = &ids[ids.len().saturating_sub(context)..];
        let seq = window.len();
        let input = tokens_tensor(
            window.iter().map(|&t| i64::from(t)).collect(),
            1,
            seq,
            device,
        );
        let logits = model.forward(input); // [1, seq, vocab]
        let vocab = logits.dims()[2];
        let last = logits.narrow(1, seq - 1, 1).reshape([vocab]);
        let probs = softmax(last / temperature.max(1e-6), 0)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        ids.push(sample_index(&probs, rng) as u32);
    }
    ids.split_off(start)
}

/// Draws an index from a probability vector.
pub fn sample_index(probs: &[f32], rng: &mut StdRng) -> usize {
    let total: f32 = probs.iter().sum();
    let mut r = rng.random::<f32>() * total;
    for (i, &p) in probs.iter().enumerate() {
        r -= p;
        if r <= 0.0 {
            return i;
        }
    }
    probs.len().saturating_sub(1)
}

/// Next-token loss over the whole of `split`, in consecutive windows of the model's context
/// (the expectation that [`estimate_loss`] samples). Windows are batched `batch_size` at a time.
pub fn full_split_loss(
    model: &Gpt,
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
            inputs.extend(ids[start..start + context].iter().map(|&i| i64::from(i)));
            targets.extend(
                ids[start + 1..start + context + 1]
                    .iter()
                    .map(|&i| i64::from(i)),
            );
        }
        let x = tokens_tensor(inputs, chunk.len(), context, device);
        let y = tokens_tensor(targets, chunk.len(), context, device);
        let loss: f32 = next_token::loss(model.forward(x), y).into_scalar();
        total += f64::from(loss) * chunk.len() as f64;
        count += chunk.len();
    }
    (total / count.max(1) as f64) as f32
}
