//! Sentence-pair relations (LinkBERT): the hidden states of `[cls] a [sep] b [sep]` rows.

use super::tokens_tensor;
use crate::data::{Special, Tokenizer};
use crate::model::{AttentionMode, Model};
use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Bidirectional hidden states `[rows, context, d_model]` of LinkBERT `inputs` (the `rows`,
/// possibly masked), no query attending to the rows' padding.
pub fn relation_hidden(
    model: &Model,
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
