//! What the methods train on and the losses they minimise: the answer-only loss of STaR and
//! self-correct, and the DPO loss.

use crate::data::corpus::{Example, IGNORE};
use crate::data::{Special, Tokenizer};
use crate::eval::tokens_tensor;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::{Device, Int, Tensor};

/// A batch of examples as the model reads it: inputs and labels `[rows, len]`, the labels
/// [`IGNORE`] everywhere but on the trained tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// Input token ids, row-major.
    pub inputs: Vec<i64>,
    /// The token each position predicts, or [`IGNORE`].
    pub labels: Vec<i64>,
    /// Rows.
    pub rows: usize,
    /// Positions per row.
    pub len: usize,
}

impl Rows {
    /// The rows of `examples` (tokens, and how many of them are not trained: `prompt_len`),
    /// padded on the right to the longest; an example longer than `context + 1` tokens keeps
    /// its end.
    pub fn new(examples: &[&Example], tokenizer: &Tokenizer, context: usize) -> Self {
        let pad = i64::from(tokenizer.special(Special::Pad).unwrap_or(0));
        let len = examples
            .iter()
            .map(|e| e.ids.len().saturating_sub(1))
            .max()
            .unwrap_or(1)
            .clamp(1, context);
        let mut inputs = Vec::with_capacity(examples.len() * len);
        let mut labels = Vec::with_capacity(examples.len() * len);
        for e in examples {
            let start = e.ids.len().saturating_sub(len + 1);
            for t in start..start + len {
                inputs.push(e.ids.get(t).map_or(pad, |&i| i64::from(i)));
                labels.push(match e.ids.get(t + 1) {
                    Some(&id) if t + 1 >= e.prompt_len => i64::from(id),
                    _ => IGNORE,
                });
            }
        }
        Self {
            inputs,
            labels,
            rows: examples.len(),
            len,
        }
    }

    /// Input and label tensors on `device`.
    pub fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
        (
            tokens_tensor(self.inputs.clone(), self.rows, self.len, device),
            tokens_tensor(self.labels.clone(), self.rows, self.len, device),
        )
    }
}

/// A self-correction example: `prompt`, the first answer and a newline, `marker`, then the
/// second answer and a newline; only the second answer (and its newline) is trained.
pub fn correction_example(
    tokenizer: &Tokenizer,
    prompt: &str,
    first: &str,
    marker: &str,
    second: &str,
) -> Example {
    Example::encode(
        tokenizer,
        &format!("{prompt}{first}\n{marker}"),
        &format!("{second}\n"),
    )
}

/// Log-probability of each labelled token, 0 where the label is [`IGNORE`]: `logits
/// [rows, len, vocab]`, `labels [rows, len]` give `[rows, len]`.
pub fn token_logps(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<2> {
    let [rows, len, vocab] = logits.dims();
    let labels = labels.reshape([rows * len, 1]);
    let chosen = labels.clone().greater_equal_elem(0).float();
    let log_probs = log_softmax(logits.reshape([rows * len, vocab]), 1);
    let picked = log_probs.gather(1, labels.clamp_min(0)) * chosen;
    picked.reshape([rows, len])
}

/// Mean negative log-likelihood of the labelled tokens (the answer-only loss).
pub fn answer_loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let count = labels
        .clone()
        .greater_equal_elem(0)
        .float()
        .sum()
        .clamp_min(1.0);
    token_logps(logits, labels).sum().neg() / count
}

/// Summed log-probability of each row's labelled tokens: `[rows]` (an answer's log-likelihood).
pub fn sequence_logps(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let rows = logits.dims()[0];
    token_logps(logits, labels).sum_dim(1).reshape([rows])
}

/// The DPO loss of a batch of pairs and the implicit rewards.
pub struct DpoTerms {
    /// Mean over pairs of `-log sigmoid(beta * ((pc - rc) - (pr - rr)))`.
    pub loss: Tensor<1>,
    /// `beta * (pc - rc)` per pair, outside the graph.
    pub chosen_rewards: Tensor<1>,
    /// `beta * (pr - rr)` per pair, outside the graph.
    pub rejected_rewards: Tensor<1>,
}

/// The sigmoid DPO loss (Rafailov et al. 2023; TRL's `sigmoid` loss without label smoothing)
/// from the answers' summed log-probabilities under the policy (`policy_chosen`,
/// `policy_rejected`) and the frozen reference (`ref_chosen`, `ref_rejected`).
pub fn dpo_loss(
    policy_chosen: Tensor<1>,
    policy_rejected: Tensor<1>,
    ref_chosen: Tensor<1>,
    ref_rejected: Tensor<1>,
    beta: f64,
) -> DpoTerms {
    let chosen = policy_chosen - ref_chosen;
    let rejected = policy_rejected - ref_rejected;
    let logits = chosen.clone() - rejected.clone();
    let loss = log_sigmoid(logits * beta).mean().neg();
    DpoTerms {
        loss,
        chosen_rewards: chosen.detach() * beta,
        rejected_rewards: rejected.detach() * beta,
    }
}

/// Share of pairs whose chosen reward is larger, and the mean margin.
pub fn reward_stats(terms: &DpoTerms) -> (f64, f64) {
    let c = to_vec(terms.chosen_rewards.clone());
    let r = to_vec(terms.rejected_rewards.clone());
    let n = c.len().max(1) as f64;
    let wins = c.iter().zip(&r).filter(|(c, r)| c > r).count() as f64;
    let margin: f64 = c.iter().zip(&r).map(|(c, r)| f64::from(c - r)).sum();
    (wins / n, margin / n)
}

/// A rank-1 tensor's values.
pub fn to_vec(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TokenizerKind;

    #[test]
    fn the_correction_format_trains_the_second_answer_only() {
        let tok = Tokenizer::fit(TokenizerKind::Byte, "");
        let prompt = "### Instruction:\n12+30\n### Response:\n";
        let marker = "### Check:\n";
        let ex = correction_example(&tok, prompt, "41", marker, "42");
        assert_eq!(
            tok.decode(&ex.ids),
            format!("{prompt}41\n{marker}42\n"),
            "prompt, first answer, marker, second answer"
        );
        let rows = Rows::new(&[&ex], &tok, 256);
        let trained: Vec<u32> = rows
            .labels
            .iter()
            .filter(|&&l| l != IGNORE)
            .map(|&l| l as u32)
            .collect();
        assert_eq!(tok.decode(&trained), "42\n");
        // The labels sit where the model predicts them: position t predicts token t + 1.
        let first = rows.labels.iter().position(|&l| l != IGNORE).unwrap();
        assert_eq!(first + 1, ex.prompt_len);
        // The first answer, marker and prompt are read but never trained on.
        assert!(rows.labels[..first].iter().all(|&l| l == IGNORE));
        // A context shorter than the example keeps its end: still only the second answer.
        let short = Rows::new(&[&ex], &tok, 8);
        assert_eq!(short.len, 8);
        let kept: Vec<u32> = short
            .labels
            .iter()
            .filter(|&&l| l != IGNORE)
            .map(|&l| l as u32)
            .collect();
        assert_eq!(tok.decode(&kept), "42\n");
    }

    #[test]
    fn answer_loss_covers_labelled_tokens_only() {
        let device = Device::flex();
        let logits = Tensor::<3>::zeros([1, 3, 4], &device);
        let labels = tokens_tensor(vec![IGNORE, 2, IGNORE], 1, 3, &device);
        let value: f32 = answer_loss(logits.clone(), labels.clone()).into_scalar();
        assert!((value - 4f32.ln()).abs() < 1e-6);
        let seq: f32 = sequence_logps(logits, labels).into_scalar();
        assert!((seq + 4f32.ln()).abs() < 1e-6);
    }
}
