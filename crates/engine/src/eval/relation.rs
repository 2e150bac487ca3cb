//! Sentence-pair relations (LinkBERT): the hidden states of `[cls] a [sep] b [sep]` rows and
//! the accuracy of the relation head over every validation pair.

use super::tokens_tensor;
use crate::data::{Corpus, RelationExample, Special, Tokenizer};
use crate::model::{AttentionMode, Gpt};
use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Bidirectional hidden states `[rows, context, d_model]` of LinkBERT `inputs` (the `rows`,
/// possibly masked), no query attending to the rows' padding.
pub fn relation_hidden(
    model: &Gpt,
    tokenizer: &Tokenizer,
    rows: &[i64],
    inputs: Vec<i64>,
    context: usize,
    device: &Device,
) -> Tensor<3> {
    let pad = i64::from(
        tokenizer
            .special(Special::Pad)
            .expect("LinkBERT reserves [pad]"),
    );
    let n = rows.len() / context;
    let padding: Vec<bool> = rows.iter().map(|&t| t == pad).collect();
    let padding = Tensor::<2, Bool>::from_data(TensorData::new(padding, [n, context]), device);
    model.hidden(
        tokens_tensor(inputs, n, context, device),
        AttentionMode::Bidirectional,
        Some(padding),
    )
}

/// Relation accuracy of a LinkBERT model over every validation pair (inputs unmasked): overall
/// and per relation (next, random, linked), with the number of pairs.
pub fn relation_accuracy(
    model: &Gpt,
    corpus: &Corpus,
    context: usize,
    device: &Device,
) -> (f64, [f64; 3], usize) {
    let (mut hits, mut counts) = ([0usize; 3], [0usize; 3]);
    for chunk in corpus.relations_val.chunks(64) {
        let pairs: Vec<&RelationExample> = chunk.iter().collect();
        let (rows, _) = corpus.relation_rows(&pairs, context);
        let hidden = relation_hidden(
            model,
            &corpus.tokenizer,
            &rows,
            rows.clone(),
            context,
            device,
        );
        let Some(logits) = model.relation_logits(hidden) else {
            break;
        };
        let predicted = logits.argmax(1).into_data().convert::<i64>();
        let predicted = predicted.as_slice::<i64>().unwrap_or_default();
        for (p, &guess) in chunk.iter().zip(predicted) {
            let r = usize::from(p.relation);
            counts[r] += 1;
            hits[r] += usize::from(guess == i64::from(p.relation));
        }
    }
    let total: usize = counts.iter().sum();
    let per = [0, 1, 2].map(|r| hits[r] as f64 / counts[r].max(1) as f64);
    (
        hits.iter().sum::<usize>() as f64 / total.max(1) as f64,
        per,
        total,
    )
}
