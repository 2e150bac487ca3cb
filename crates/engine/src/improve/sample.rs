//! Batched sampling: many prompts continued at once on the model's device, each row stopped at
//! its newline.

use crate::data::Tokenizer;
use crate::eval::generate::pick_token;
use crate::eval::{Sampling, tokens_tensor};
use crate::model::Model;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;

/// Answers prompts. The stage asks it for every sample and every greedy evaluation, so a test
/// can put a sampler that fails in its place.
pub trait Sampler: Send + Sync {
    /// Continues each of `prompts` (token ids) by at most `max_new` tokens picked as `sampling`
    /// says, stopping a row after the token that writes a newline; returns each row's text up
    /// to that newline. An error fails the stage.
    #[allow(clippy::too_many_arguments)]
    fn sample(
        &self,
        model: &Model,
        tokenizer: &Tokenizer,
        prompts: &[Vec<u32>],
        max_new: usize,
        sampling: Sampling,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<Vec<String>, String>;
}

/// Samples `rows` prompts per forward pass (rows of similar length together, padded on the
/// right); only rows still writing are computed at each token.
#[derive(Debug, Clone, Copy)]
pub struct BatchedSampler {
    /// Rows per forward pass.
    pub rows: usize,
}

impl Default for BatchedSampler {
    fn default() -> Self {
        Self { rows: 256 }
    }
}

/// The text of generated tokens up to (without) the first newline.
pub fn first_line(tokenizer: &Tokenizer, ids: &[u32]) -> String {
    let text = tokenizer.decode(ids);
    match text.split_once('\n') {
        Some((line, _)) => line.to_string(),
        None => text,
    }
}

impl Sampler for BatchedSampler {
    fn sample(
        &self,
        model: &Model,
        tokenizer: &Tokenizer,
        prompts: &[Vec<u32>],
        max_new: usize,
        sampling: Sampling,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<Vec<String>, String> {
        let ctx = model.context();
        let vocab = model.vocab();
        let stops: Vec<bool> = (0..vocab as u32)
            .map(|id| tokenizer.is_special(id) || tokenizer.decode(&[id]).contains('\n'))
            .collect();
        let pad = 0u32;
        let mut order: Vec<usize> = (0..prompts.len()).collect();
        order.sort_by_key(|&i| prompts[i].len());
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        for chunk in order.chunks(self.rows.max(1)) {
            let mut seqs: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&i| {
                    let p = &prompts[i];
                    if p.is_empty() { vec![pad] } else { p.clone() }
                })
                .collect();
            let mut active: Vec<usize> = (0..chunk.len()).collect();
            for _ in 0..max_new {
                if active.is_empty() {
                    break;
                }
                let windows: Vec<&[u32]> = active
                    .iter()
                    .map(|&j| &seqs[j][seqs[j].len().saturating_sub(ctx)..])
                    .collect();
                let len = windows.iter().map(|w| w.len()).max().unwrap_or(1);
                let n = windows.len();
                let mut flat = Vec::with_capacity(n * len);
                let mut last = Vec::with_capacity(n * vocab);
                for w in &windows {
                    flat.extend(w.iter().map(|&t| i64::from(t)));
                    flat.extend(std::iter::repeat_n(i64::from(pad), len - w.len()));
                    last.extend(std::iter::repeat_n((w.len() - 1) as i64, vocab));
                }
                let logits = model.forward(tokens_tensor(flat, n, len, device));
                let index =
                    Tensor::<3, Int>::from_data(TensorData::new(last, [n, 1, vocab]), device);
                let rows = logits.gather(1, index).reshape([n, vocab]);
                let rows = if sampling.temperature > 0.0 {
                    // Stable at any temperature: the softmax on the device, the draw here.
                    softmax(rows / sampling.temperature, 1).log()
                } else {
                    rows
                };
                let values = rows
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .map_err(|e| format!("cannot read the logits: {e:?}"))?;
                let mut still = Vec::with_capacity(n);
                for (r, &j) in active.iter().enumerate() {
                    let row = &values[r * vocab..(r + 1) * vocab];
                    let id = pick_token(row, sampling_of(sampling), rng);
                    seqs[j].push(id);
                    generated[chunk[j]].push(id);
                    if !stops.get(id as usize).copied().unwrap_or(true) {
                        still.push(j);
                    }
                }
                active = still;
            }
        }
        Ok(generated
            .iter()
            .map(|ids| first_line(tokenizer, ids))
            .collect())
    }
}

/// Log-probabilities are already divided by the temperature: the draw takes them at 1.
fn sampling_of(sampling: Sampling) -> Sampling {
    if sampling.temperature > 0.0 {
        Sampling {
            temperature: 1.0,
            top_k: sampling.top_k,
            top_p: sampling.top_p,
        }
    } else {
        sampling
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TokenizerKind;
    use crate::eval::generate_with;
    use crate::model::ModelSpec;
    use rand::SeedableRng;

    #[test]
    fn batched_greedy_matches_one_prompt_at_a_time() {
        let device = Device::flex();
        device.seed(3);
        let tokenizer = Tokenizer::fit(TokenizerKind::Char, "abcdef\n");
        let spec = ModelSpec {
            n_layer: 1,
            n_head: 2,
            d_model: 16,
            context: 8,
            ..ModelSpec::default()
        };
        let model = Model::new(&spec, tokenizer.vocab_size(), &device);
        let prompts: Vec<Vec<u32>> = ["ab", "abcde", "f", "cafe"]
            .iter()
            .map(|p| tokenizer.encode(p))
            .collect();
        let greedy = Sampling {
            temperature: 0.0,
            top_k: 0,
            ..Sampling::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        let got = BatchedSampler { rows: 3 }
            .sample(&model, &tokenizer, &prompts, 10, greedy, &mut rng, &device)
            .unwrap();
        for (p, g) in prompts.iter().zip(&got) {
            let ids = generate_with(&model, p, 10, greedy, &mut rng, &device);
            assert_eq!(*g, first_line(&tokenizer, &ids));
        }
        // A seed repeats a sample; top-1 is greedy.
        let free = Sampling {
            temperature: 1.3,
            top_k: 0,
            ..Sampling::default()
        };
        let draw = |seed| {
            BatchedSampler::default()
                .sample(
                    &model,
                    &tokenizer,
                    &prompts,
                    6,
                    free,
                    &mut StdRng::seed_from_u64(seed),
                    &device,
                )
                .unwrap()
        };
        assert_eq!(draw(4), draw(4));
        let top_1 = Sampling {
            temperature: 1.0,
            top_k: 1,
            ..Sampling::default()
        };
        let mut rng = StdRng::seed_from_u64(9);
        assert_eq!(
            BatchedSampler::default()
                .sample(&model, &tokenizer, &prompts, 10, top_1, &mut rng, &device)
                .unwrap(),
            got
        );
    }
}
