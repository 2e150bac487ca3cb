//! What a causal model computes on a probe text: each token's loss and the model's top guesses,
//! the residual stream's size and the attention entropy of each block, and the logit lens
//! (nostalgebraist, "interpreting GPT: the logit lens", 2020): each block's residual stream
//! read through the final norm and the output head.

use crate::data::Tokenizer;
use crate::dynamics::{BlockRecord, Guess, ProbeInsight};
use crate::model::{AttentionMode, Model};
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};

/// Guesses kept per position for the per-token view.
pub const TOP_GUESSES: usize = 5;
/// Guesses kept per position and layer for the logit lens.
pub const TOP_LENS: usize = 3;
/// Tokens of the probe's end the insight reads (at most).
pub const MAX_PROBE: usize = 128;

/// The insight of `model` on the end of `probe` (at most [`MAX_PROBE`] tokens and the
/// model's context), at `step`. `None` for a probe shorter than two tokens.
pub fn probe_insight(
    model: &Model,
    probe: &[u32],
    tokenizer: &Tokenizer,
    step: usize,
    device: &Device,
) -> Option<ProbeInsight> {
    let model = model.valid();
    let (ids, (logits, maps, residuals)) = traced(&model, probe, device)?;
    let seq = ids.len();
    let vocab = model.vocab();
    let label = |id: usize| tokenizer.decode(&[id as u32]);
    let log_probs = host(log_softmax(logits.reshape([seq, vocab]), 1));
    let mut losses = Vec::with_capacity(seq - 1);
    let mut guesses = Vec::with_capacity(seq - 1);
    for i in 1..seq {
        let row = &log_probs[(i - 1) * vocab..i * vocab];
        losses.push(-row[ids[i] as usize]);
        guesses.push(top(row, TOP_GUESSES, &label));
    }
    let mut lens: Vec<Vec<Vec<Guess>>> = vec![Vec::new(); seq - 1];
    let (act_rms, attn_entropy) = rms_and_entropy(&residuals, maps);
    for residual in residuals {
        let layer = host(log_softmax(
            model.lens_logits(residual).reshape([seq, vocab]),
            1,
        ));
        for (i, at) in lens.iter_mut().enumerate() {
            at.push(top(&layer[i * vocab..(i + 1) * vocab], TOP_LENS, &label));
        }
    }
    Some(ProbeInsight {
        step,
        tokens: ids.iter().map(|&id| tokenizer.decode(&[id])).collect(),
        losses,
        guesses,
        lens,
        act_rms,
        attn_entropy,
    })
}

/// Each block's residual stream size and attention entropy for `model` on the end of `probe`
/// (as [`probe_insight`] reads it), at `step`: what the worker records with the matrices.
/// `None` for a probe shorter than two tokens.
pub fn block_stats(
    model: &Model,
    probe: &[u32],
    step: usize,
    device: &Device,
) -> Option<BlockRecord> {
    let (_, (_, maps, residuals)) = traced(&model.valid(), probe, device)?;
    let (act_rms, attn_entropy) = rms_and_entropy(&residuals, maps);
    Some(BlockRecord {
        step,
        act_rms,
        attn_entropy,
    })
}

/// The traced forward pass of `model` (without autodiff) on the end of `probe` (at most [`MAX_PROBE`] tokens and
/// the model's context): the tokens read and `(logits, attention maps, residuals)`. `None` for
/// a probe shorter than two tokens.
#[allow(clippy::type_complexity)]
fn traced<'p>(
    model: &Model,
    probe: &'p [u32],
    device: &Device,
) -> Option<(&'p [u32], (Tensor<3>, Vec<Tensor<4>>, Vec<Tensor<3>>))> {
    let seq = probe.len().min(model.context()).min(MAX_PROBE);
    if seq < 2 {
        return None;
    }
    let ids = &probe[probe.len() - seq..];
    let input = super::tokens_tensor(ids.iter().map(|&t| i64::from(t)).collect(), 1, seq, device);
    Some((ids, model.forward_traced(input, AttentionMode::Causal)))
}

/// Root mean square of each residual stream, and the mean entropy (nats) of each attention
/// map's rows, read back in one transfer.
fn rms_and_entropy(residuals: &[Tensor<3>], maps: Vec<Tensor<4>>) -> (Vec<f32>, Vec<f32>) {
    let rms = residuals.iter().map(|r| r.clone().square().mean().sqrt());
    let entropy = maps.into_iter().map(|map| {
        let p = map.clamp_min(1e-12);
        p.clone().mul(p.log()).sum_dim(3).mean().neg()
    });
    let n = residuals.len();
    let all: Vec<Tensor<1>> = rms.chain(entropy).collect();
    if all.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let values = host(Tensor::cat(all, 0));
    let (rms, entropy) = values.split_at(n.min(values.len()));
    (rms.to_vec(), entropy.to_vec())
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// The `k` most likely tokens of a row of log-probabilities, as (text, probability).
fn top(row: &[f32], k: usize, label: &dyn Fn(usize) -> String) -> Vec<Guess> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    let k = k.min(row.len());
    if k == 0 {
        return Vec::new();
    }
    order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
    order.truncate(k);
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    order
        .into_iter()
        .map(|id| (label(id), row[id].exp()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelSpec;

    #[test]
    fn the_insight_covers_every_position_and_block() {
        let device = Device::flex();
        let tokenizer = Tokenizer::fit(crate::data::TokenizerKind::Char, "abcd");
        let spec = ModelSpec {
            n_layer: 2,
            n_head: 2,
            d_model: 16,
            context: 16,
            ..ModelSpec::default()
        };
        let model = Model::new(&spec, tokenizer.vocab_size(), &device);
        let probe = tokenizer.encode("abcdbadc");
        let insight = probe_insight(&model, &probe, &tokenizer, 7, &device).unwrap();
        assert_eq!(insight.step, 7);
        assert_eq!(insight.tokens.concat(), "abcdbadc");
        assert_eq!(insight.losses.len(), 7, "every token but the first");
        assert!(insight.losses.iter().all(|l| l.is_finite() && *l > 0.0));
        // Four tokens, all among the guesses: each loss is -ln of the probability the model
        // gave its token.
        for (i, guesses) in insight.guesses.iter().enumerate() {
            assert_eq!(guesses.len(), 4);
            let (_, p) = guesses
                .iter()
                .find(|(t, _)| *t == insight.tokens[i + 1])
                .unwrap();
            assert!((-p.ln() - insight.losses[i]).abs() < 1e-4);
        }
        let p: Vec<f32> = insight.guesses[3].iter().map(|g| g.1).collect();
        assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
        assert_eq!(insight.lens[5].len(), 2, "one guess list per block");
        // The last block's lens reads what the model itself predicts.
        assert_eq!(insight.lens[5][1][0].0, insight.guesses[5][0].0);
        assert_eq!(insight.act_rms.len(), 2);
        assert_eq!(insight.attn_entropy.len(), 2);
        // Causal rows over at most 8 keys: entropy between 0 and ln 8.
        assert!(
            insight
                .attn_entropy
                .iter()
                .all(|&e| e > 0.0 && e < 8f32.ln())
        );
    }
}
