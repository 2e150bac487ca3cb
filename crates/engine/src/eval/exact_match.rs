//! Exact match: whether greedy decoding reproduces an answer.

use super::generate::greedy_until_newline;
use crate::data::Corpus;
use crate::data::corpus::Example;
use crate::model::Model;
use burn::tensor::Device;

/// Share of `examples` (the first `limit`) whose answer greedy decoding reproduces exactly:
/// the model continues each prompt until it writes a newline (or the answer's length plus a
/// few tokens), and the text must equal the answer.
pub fn exact_match(
    model: &Model,
    corpus: &Corpus,
    examples: &[Example],
    limit: usize,
    device: &Device,
) -> f64 {
    let examples = &examples[..limit.min(examples.len())];
    if examples.is_empty() {
        return 0.0;
    }
    let answers: Vec<String> = examples
        .iter()
        .map(|e| corpus.tokenizer.decode(&e.ids[e.prompt_len..]))
        .collect();
    let prompts: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| e.ids[..e.prompt_len].to_vec())
        .collect();
    let max_new = examples
        .iter()
        .map(|e| e.ids.len() - e.prompt_len)
        .max()
        .unwrap_or(1)
        + 4;
    let outputs = greedy_until_newline(model, corpus, &prompts, max_new, device);
    let hits = outputs
        .iter()
        .zip(&answers)
        .filter(|(out, answer)| out.trim_end() == answer.trim_end())
        .count();
    hits as f64 / examples.len() as f64
}
