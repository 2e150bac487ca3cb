//! Evaluation and inference: loss estimates on held-out batches, text generation, exact match,
//! embeddings, retrieval and the health of an embedding space, relation accuracy. Nothing here knows which objective trained the
//! model; objectives build their metrics from these helpers, and `hearth eval` scores saved
//! checkpoints with them.

pub mod baseline;
pub mod embed;
pub mod exact_match;
pub mod generate;
pub mod health;
pub mod insight;
pub mod loss;
pub mod relation;
pub mod retrieval;

pub use embed::{
    EmbedSpec, LEXICAL_BUCKETS, LEXICAL_NGRAM, Pooling, embed, embed_all, lexical_features,
    normalize, pool, similarities,
};
pub use exact_match::exact_match;
pub use generate::{
    Sampling, generate, generate_streaming, generate_with, greedy_until_newline, sample_index,
};
pub use loss::{cross_entropy, estimate_loss, full_split_loss};
pub use relation::relation_hidden;
pub use retrieval::{
    Retrieval, StsScore, embedded_retrieval, pearson, retrieval, spearman, sts_score,
};

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Uploads `[batch, seq]` token ids.
pub fn tokens_tensor(ids: Vec<i64>, batch: usize, seq: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(ids, [batch, seq]), device)
}
