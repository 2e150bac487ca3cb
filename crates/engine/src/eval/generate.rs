//! Text generation: sampling at a temperature, and batched greedy decoding to the end of a line.

use super::tokens_tensor;
use crate::data::{Corpus, Special};
use crate::model::{KvCache, Model};
use burn::tensor::Device;
use rand::Rng;
use rand::rngs::StdRng;

/// Samples `n_tokens` continuing `prompt` at temperature `temperature` (1.0 = the model's own
/// distribution). Returns the new tokens only.
pub fn generate(
    model: &Model,
    prompt: &[u32],
    n_tokens: usize,
    temperature: f64,
    rng: &mut StdRng,
    device: &Device,
) -> Vec<u32> {
    let sampling = Sampling {
        temperature: temperature.max(1e-6),
        top_k: 0,
        ..Sampling::default()
    };
    generate_with(model, prompt, n_tokens, sampling, rng, device)
}

/// How [`generate_with`] picks each new token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Divides the logits before the softmax (1.0: the model's own distribution); 0 or less
    /// picks the most likely token every time.
    pub temperature: f64,
    /// Draws among the `top_k` most likely tokens only (ties with the last one kept); 0 draws
    /// among all.
    pub top_k: usize,
    /// Draws among the most likely tokens whose probabilities first reach `top_p` (nucleus
    /// sampling, Holtzman et al. 2020); 1 or more draws among all.
    pub top_p: f64,
}

impl Default for Sampling {
    /// The model's own distribution.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

/// Continues `prompt` by `n_tokens` tokens picked as `sampling` says. Returns the new tokens
/// only.
pub fn generate_with(
    model: &Model,
    prompt: &[u32],
    n_tokens: usize,
    sampling: Sampling,
    rng: &mut StdRng,
    device: &Device,
) -> Vec<u32> {
    generate_streaming(model, prompt, n_tokens, sampling, &[], rng, device, |_| {
        true
    })
}

/// The last row of `logits: [1, seq, vocab]` as numbers.
fn last_row(logits: burn::tensor::Tensor<3>) -> Vec<f32> {
    let [_, seq, vocab] = logits.dims();
    logits
        .narrow(1, seq - 1, 1)
        .reshape([vocab])
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// Continues `prompt` by up to `n_tokens` tokens picked as `sampling` says, handing each to
/// `on_token` as it is picked (which returns false to stop), and stopping after any token of
/// `stop` (kept in the result). Families with a key/value cache feed one token per step; the
/// others re-read the last context window. Returns the new tokens.
#[allow(clippy::too_many_arguments)]
pub fn generate_streaming(
    model: &Model,
    prompt: &[u32],
    n_tokens: usize,
    sampling: Sampling,
    stop: &[u32],
    rng: &mut StdRng,
    device: &Device,
    mut on_token: impl FnMut(u32) -> bool,
) -> Vec<u32> {
    let context = model.context();
    let mut ids: Vec<u32> = prompt.to_vec();
    if ids.is_empty() {
        ids.push(0);
    }
    let start = ids.len();
    let to_input = |window: &[u32]| {
        tokens_tensor(
            window.iter().map(|&t| i64::from(t)).collect(),
            1,
            window.len(),
            device,
        )
    };
    let mut cache = KvCache::new();
    let mut cached = false;
    for _ in 0..n_tokens {
        // With a cache: the whole (last) window once, then one token per step; when the cache
        // reaches the context, it starts again from the last half window.
        let logits = if cached && cache.len() < context {
            model.forward_cached(to_input(&ids[ids.len() - 1..]), &mut cache)
        } else {
            cache = KvCache::new();
            let keep = if cached { context / 2 } else { context };
            let window = &ids[ids.len().saturating_sub(keep.max(1))..];
            model.forward_cached(to_input(window), &mut cache)
        };
        let row = match logits {
            Some(logits) => {
                cached = true;
                last_row(logits)
            }
            None => {
                let window = &ids[ids.len().saturating_sub(context)..];
                last_row(model.forward(to_input(window)))
            }
        };
        let token = pick_token(&row, sampling, rng);
        ids.push(token);
        if !on_token(token) || stop.contains(&token) {
            break;
        }
    }
    ids.split_off(start)
}

/// Picks the next token from one row of logits as `sampling` says: at temperature 0 or less
/// the most likely token (the first of equals); otherwise a draw from the softmax of
/// `logits / temperature`, among the `top_k` most likely tokens when `top_k` is set.
pub fn pick_token(logits: &[f32], sampling: Sampling, rng: &mut StdRng) -> u32 {
    if sampling.temperature <= 0.0 {
        let mut best = 0;
        for (i, &logit) in logits.iter().enumerate() {
            if logit > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let temperature = sampling.temperature as f32;
    // Shifted by the largest logit so no weight overflows; the draw needs no normalising.
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut weights: Vec<f32> = logits
        .iter()
        .map(|&logit| ((logit - max) / temperature).exp())
        .collect();
    keep_top_k(&mut weights, sampling.top_k);
    keep_top_p(&mut weights, sampling.top_p);
    sample_index(&weights, rng) as u32
}

/// Zeroes every weight below the `top_k`-th largest (ties with it kept); 0 keeps all.
fn keep_top_k(weights: &mut [f32], top_k: usize) {
    if top_k == 0 || top_k >= weights.len() {
        return;
    }
    let mut sorted = weights.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let kth = sorted[top_k - 1];
    for w in weights.iter_mut() {
        if *w < kth {
            *w = 0.0;
        }
    }
}

/// Zeroes the weights outside the smallest set of largest ones holding `top_p` of the total
/// (the largest always kept); `top_p` of 1 or more keeps all.
fn keep_top_p(weights: &mut [f32], top_p: f64) {
    // NaN keeps all too.
    if top_p.is_nan() || top_p >= 1.0 {
        return;
    }
    let total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_unstable_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    let mut mass = 0.0;
    let mut keep = order.len();
    for (rank, &i) in order.iter().enumerate() {
        mass += f64::from(weights[i]) / total;
        if mass >= top_p {
            keep = rank + 1;
            break;
        }
    }
    for &i in &order[keep..] {
        weights[i] = 0.0;
    }
}

/// Draws an index from a vector of weights (probabilities, or any non-negative weights: the
/// draw is proportional to them).
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

/// Greedy continuations of `prompts` (batched), each stopped after a newline or `max_new`
/// tokens; prompts longer than the context keep their end.
pub fn greedy_until_newline(
    model: &Model,
    corpus: &Corpus,
    prompts: &[Vec<u32>],
    max_new: usize,
    device: &Device,
) -> Vec<String> {
    let ctx = model.context();
    let tok = &corpus.tokenizer;
    let pad = tok.special(Special::Pad).unwrap_or(0);
    let mut outputs = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(32) {
        let mut seqs: Vec<Vec<u32>> = chunk.to_vec();
        let mut done = vec![false; seqs.len()];
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); seqs.len()];
        for _ in 0..max_new {
            if done.iter().all(|&d| d) {
                break;
            }
            let lens: Vec<usize> = seqs.iter().map(|s| s.len().min(ctx)).collect();
            let len = lens.iter().copied().max().unwrap_or(1).max(1);
            let mut flat = Vec::with_capacity(seqs.len() * len);
            for s in &seqs {
                let w = &s[s.len().saturating_sub(ctx)..];
                flat.extend(w.iter().map(|&i| i64::from(i)));
                flat.extend(std::iter::repeat_n(i64::from(pad), len - w.len()));
            }
            let n = seqs.len();
            let logits = model.forward(tokens_tensor(flat, n, len, device));
            let next = logits
                .argmax(2)
                .reshape([n, len])
                .into_data()
                .convert::<i64>();
            let next = next.as_slice::<i64>().unwrap_or_default().to_vec();
            for (i, &w_len) in lens.iter().enumerate() {
                if done[i] {
                    continue;
                }
                let id = next[i * len + w_len - 1] as u32;
                generated[i].push(id);
                seqs[i].push(id);
                if tok.decode(&[id]).contains('\n') || tok.is_special(id) {
                    done[i] = true;
                }
            }
        }
        outputs.extend(generated.iter().map(|g| tok.decode(g)));
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelSpec;
    use rand::SeedableRng;

    #[test]
    fn top_1_sampling_is_greedy_and_a_seed_repeats() {
        let device = Device::flex();
        let spec = ModelSpec {
            n_layer: 1,
            n_head: 2,
            d_model: 16,
            context: 8,
            ..ModelSpec::default()
        };
        let model = Model::new(&spec, 12, &device);
        let run = |sampling: Sampling, seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed);
            generate_with(&model, &[1, 2, 3], 12, sampling, &mut rng, &device)
        };
        let greedy = Sampling {
            temperature: 0.0,
            top_k: 0,
            ..Sampling::default()
        };
        let top_1 = Sampling {
            temperature: 1.0,
            top_k: 1,
            ..Sampling::default()
        };
        assert_eq!(run(top_1, 1), run(greedy, 2));
        let free = Sampling {
            temperature: 1.5,
            top_k: 0,
            ..Sampling::default()
        };
        assert_eq!(run(free, 7), run(free, 7));
        assert_eq!(run(free, 7).len(), 12);
    }
}
