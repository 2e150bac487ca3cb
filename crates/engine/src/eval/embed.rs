//! Sentence embeddings: token states pooled to one vector per text, scaled to unit length, and
//! the cosine similarities between them. An embedding may carry a lexical channel beside the
//! pooled states: the text's hashed character n-gram counts, so two texts that share rare
//! strings meet even where the learned part has not learned them.

use super::tokens_tensor;
use crate::data::{Special, Tokenizer};
use crate::model::{AttentionMode, Model};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How token states become one embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Pooling {
    /// The mean over the non-padding positions.
    #[default]
    Mean,
    /// The first position (a `[cls]` token when the text starts with one).
    Cls,
    /// The last non-padding position.
    Last,
    /// The largest value of each feature over the non-padding positions (as InferSent,
    /// Conneau et al. 2017): a feature fires for a text when any of its tokens has it.
    Max,
}

impl Pooling {
    /// Every pooling, in the order the studio lists them.
    pub const ALL: [Pooling; 4] = [Pooling::Mean, Pooling::Cls, Pooling::Last, Pooling::Max];

    /// The name used on the command line and in spec files.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
            Pooling::Max => "max",
        }
    }

    /// The pooling of that name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Buckets the lexical channel hashes character n-grams into (its width).
pub const LEXICAL_BUCKETS: usize = 32_768;

/// Characters per n-gram of the lexical channel (of the lowercased text, spaces and newlines
/// included).
pub const LEXICAL_NGRAM: usize = 5;

/// How a text becomes one embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedSpec {
    /// How the token states become the learned part.
    pub pooling: Pooling,
    /// Share of the cosine similarity that the lexical channel carries, in `[0, 1)`; 0 embeds
    /// the pooled states alone.
    pub lexical: f64,
}

impl From<Pooling> for EmbedSpec {
    fn from(pooling: Pooling) -> Self {
        Self {
            pooling,
            lexical: 0.0,
        }
    }
}

impl EmbedSpec {
    /// Whether embeddings end with the lexical channel's [`LEXICAL_BUCKETS`] columns.
    pub fn has_lexical(self) -> bool {
        self.lexical > 0.0
    }

    /// The learned part of embeddings `[n, d]` made this way, scaled back to unit length: the
    /// pooled states the model trains (health statistics and the embedding map read these).
    pub fn learned_part(self, x: Tensor<2>) -> Tensor<2> {
        if !self.has_lexical() {
            return x;
        }
        let [_, d] = x.dims();
        normalize(x.narrow(1, 0, d.saturating_sub(LEXICAL_BUCKETS).max(1)))
    }
}

/// Counts of the lowercased character [`LEXICAL_NGRAM`]-grams of each text, hashed (FNV-1a) into
/// [`LEXICAL_BUCKETS`] signed buckets, each row scaled to unit length: `[texts,
/// LEXICAL_BUCKETS]`. A second bit of the hash gives each n-gram a sign, so n-grams that share
/// a bucket cancel out on average instead of adding up, and a dot product estimates the
/// cosine of the exact counts without bias (the hashing trick, Weinberger et al. 2009,
/// "Feature Hashing for Large Scale Multitask Learning"). A text shorter than one n-gram has a
/// zero row.
pub fn lexical_features(texts: &[String], device: &Device) -> Tensor<2> {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    /// The hash bit that chooses the sign (the bucket reads the low bits).
    const SIGN_BIT: u32 = 40;
    let step = |hash: u64, byte: u8| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
    let mut values = vec![0.0f32; texts.len() * LEXICAL_BUCKETS];
    for (row, text) in values.chunks_mut(LEXICAL_BUCKETS).zip(texts) {
        let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
        for gram in chars.windows(LEXICAL_NGRAM) {
            let hash = gram
                .iter()
                .flat_map(|&c| u32::from(c).to_le_bytes())
                .fold(FNV_OFFSET, step);
            let sign = if (hash >> SIGN_BIT) & 1 == 1 {
                1.0
            } else {
                -1.0
            };
            row[(hash % LEXICAL_BUCKETS as u64) as usize] += sign;
        }
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
    Tensor::from_data(
        TensorData::new(values, [texts.len(), LEXICAL_BUCKETS]),
        device,
    )
}

/// Pools hidden states `[batch, seq, d]` to `[batch, d]`. `keep: [batch, seq]` is 1 for real
/// tokens and 0 for padding (`None`: no padding).
pub fn pool(hidden: Tensor<3>, keep: Option<Tensor<2>>, pooling: Pooling) -> Tensor<2> {
    let [batch, seq, d] = hidden.dims();
    match (pooling, keep) {
        (Pooling::Mean, None) => hidden.mean_dim(1).reshape([batch, d]),
        (Pooling::Mean, Some(keep)) => {
            let weights = keep.clone().reshape([batch, seq, 1]);
            let summed = (hidden * weights).sum_dim(1).reshape([batch, d]);
            summed / keep.sum_dim(1).clamp_min(1.0)
        }
        (Pooling::Cls, _) => hidden.narrow(1, 0, 1).reshape([batch, d]),
        (Pooling::Last, None) => hidden.narrow(1, seq - 1, 1).reshape([batch, d]),
        (Pooling::Last, Some(keep)) => {
            // Index of the last real token of each row.
            let last = (keep.sum_dim(1) - 1.0).clamp_min(0.0).int(); // [batch, 1]
            let index = last.reshape([batch, 1, 1]).expand([batch, 1, d]);
            hidden.gather(1, index).reshape([batch, d])
        }
        (Pooling::Max, None) => hidden.max_dim(1).reshape([batch, d]),
        (Pooling::Max, Some(keep)) => {
            // Padding sits far below any state, so it never wins the maximum.
            let shift = (keep.reshape([batch, seq, 1]) - 1.0) * 1e4;
            (hidden + shift).max_dim(1).reshape([batch, d])
        }
    }
}

/// Rows scaled to unit length (as `torch.nn.functional.normalize`, eps 1e-12).
pub fn normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Cosine similarities of normalised `a: [n, d]` against `b: [m, d]`, row-major `[n, m]`.
pub fn similarities(a: Tensor<2>, b: Tensor<2>) -> Vec<f32> {
    a.matmul(b.transpose())
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// Unit-length embeddings of token sequences (bidirectional attention; padded to the longest,
/// at most the model's context): the pooled states `[texts, d_model]`, followed with a lexical
/// channel by its [`LEXICAL_BUCKETS`] columns, the two parts weighted so that a dot product is
/// `(1 - lexical) * cos(states) + lexical * cos(n-grams)`.
pub fn embed(
    model: &Model,
    texts: &[&[u32]],
    how: impl Into<EmbedSpec>,
    tokenizer: &Tokenizer,
    device: &Device,
) -> Tensor<2> {
    let how = how.into();
    let context = model.context();
    let pad = tokenizer.special(Special::Pad).unwrap_or(0);
    let len = texts
        .iter()
        .map(|t| t.len().min(context))
        .max()
        .unwrap_or(1)
        .max(1);
    let fixed = texts.iter().all(|t| t.len() >= len);
    let mut ids = Vec::with_capacity(texts.len() * len);
    let mut keep = Vec::with_capacity(texts.len() * len);
    for t in texts {
        let t = &t[..t.len().min(len)];
        ids.extend(t.iter().map(|&i| i64::from(i)));
        keep.extend(std::iter::repeat_n(1.0f32, t.len()));
        ids.extend(std::iter::repeat_n(i64::from(pad), len - t.len()));
        keep.extend(std::iter::repeat_n(0.0f32, len - t.len()));
    }
    let b = texts.len();
    let x = tokens_tensor(ids, b, len, device);
    let hidden;
    let keep_tensor = if fixed {
        hidden = model.hidden(x, AttentionMode::Bidirectional, None);
        None
    } else {
        let padding: Vec<bool> = keep.iter().map(|&k| k == 0.0).collect();
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(padding, [b, len]), device);
        hidden = model.hidden(x, AttentionMode::Bidirectional, Some(padding));
        Some(Tensor::<2>::from_data(
            TensorData::new(keep, [b, len]),
            device,
        ))
    };
    let states = normalize(pool(hidden, keep_tensor, how.pooling));
    if !how.has_lexical() {
        return states;
    }
    let seen: Vec<String> = texts
        .iter()
        .map(|t| tokenizer.decode(&t[..t.len().min(len)]))
        .collect();
    let lexical = lexical_features(&seen, device);
    Tensor::cat(
        vec![
            states * (1.0 - how.lexical).sqrt(),
            lexical * how.lexical.sqrt(),
        ],
        1,
    )
}

/// [`embed`] for any number of texts, 64 at a time, in the order given. The texts are
/// embedded sorted by length (as sentence-transformers does), so each batch pads to a length
/// near its own texts' and little compute goes to padding; rows come back in input order.
pub fn embed_all(
    model: &Model,
    texts: &[Vec<u32>],
    how: impl Into<EmbedSpec>,
    tokenizer: &Tokenizer,
    device: &Device,
) -> Tensor<2> {
    let how = how.into();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
    let sorted: Vec<&[u32]> = order.iter().map(|&i| texts[i].as_slice()).collect();
    let chunks: Vec<Tensor<2>> = sorted
        .chunks(64)
        .map(|c| embed(model, c, how, tokenizer, device))
        .collect();
    let embedded = Tensor::cat(chunks, 0);
    if order.iter().enumerate().all(|(k, &i)| k == i) {
        return embedded;
    }
    // Row `k` of `embedded` is text `order[k]`: put each text back in its place.
    let mut back = vec![0i64; order.len()];
    for (k, &i) in order.iter().enumerate() {
        back[i] = k as i64;
    }
    let n = back.len();
    embedded.select(
        0,
        Tensor::<1, burn::tensor::Int>::from_data(TensorData::new(back, [n]), device),
    )
}

/// Borrowed views of owned token sequences, as [`embed`] takes them.
pub fn as_refs(texts: &[Vec<u32>]) -> Vec<&[u32]> {
    texts.iter().map(Vec::as_slice).collect()
}
