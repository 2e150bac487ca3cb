//! BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for
//! Language Understanding") in Burn, as Hugging Face's `BertModel` computes it: the sum of
//! token, learned position and token-type embeddings through a LayerNorm, then post-LayerNorm
//! blocks (`x = LN(x + attention(x))`, `x = LN(x + MLP(x))`) of multi-head attention with
//! biases and an exact (erf) GELU MLP; every LayerNorm with the config's epsilon. The pooler
//! (a dense layer and tanh on the first position) is not part of the model: sentence encoders
//! pool the token states themselves. The output head, for masked-token training, shares the
//! token embedding.
//!
//! Parameter paths follow Hearth's GPT where the parts agree (`tok_emb`, `pos_emb`,
//! `blocks.{i}.attn.qkv`, `blocks.{i}.attn.proj`, `blocks.{i}.mlp.fc`, `blocks.{i}.mlp.proj`),
//! so freezing, Muon's choice of block matrices and checkpoints work alike; q, k and v are one
//! fused projection whose output is `[q | k | v]`.

use super::fused::{self, AttnMask};
use super::gpt::{AttentionMode, CausalSelfAttention, Mlp, attention_mask, first_position_logits};
use super::{Arch, ModelSpec};
use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::{Bool, Device, Int, Tensor};

fn layer_norm(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// A LayerNorm's forward with epsilon `eps`, as one fused op where the backend has it.
fn apply_layer_norm<const D: usize>(ln: &LayerNorm, x: Tensor<D>, eps: f64) -> Tensor<D> {
    fused::layer_norm(x, ln.gamma.val(), ln.beta.as_ref().map(|b| b.val()), eps)
}

/// The parts of a spec a BERT block is built from: GPT's classic attention and MLP, with
/// biases.
fn block_spec(spec: &ModelSpec) -> ModelSpec {
    ModelSpec {
        arch: Arch::Classic,
        bias: true,
        ..spec.clone()
    }
}

/// A post-LayerNorm block.
#[derive(Module, Debug)]
pub struct BertBlock {
    attn: CausalSelfAttention,
    /// LayerNorm after the attention's residual sum (`attention.output.LayerNorm`).
    ln_1: LayerNorm,
    mlp: Mlp,
    /// LayerNorm after the MLP's residual sum (`output.LayerNorm`).
    ln_2: LayerNorm,
    eps: f64,
}

impl BertBlock {
    fn new(spec: &ModelSpec, device: &Device) -> Self {
        let d = spec.d_model;
        let eps = spec.bert.norm_eps;
        Self {
            attn: CausalSelfAttention::new(&block_spec(spec), device),
            ln_1: layer_norm(d, eps, device),
            mlp: Mlp::new(&block_spec(spec), device),
            ln_2: layer_norm(d, eps, device),
            eps,
        }
    }

    fn forward(
        &self,
        x: Tensor<3>,
        mask: &AttnMask,
        keep_weights: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (attn, weights) = self.attn.forward(x.clone(), mask, None, keep_weights);
        let x = apply_layer_norm(&self.ln_1, x + attn, self.eps);
        let x = apply_layer_norm(&self.ln_2, x.clone() + self.mlp.forward(x), self.eps);
        (x, weights)
    }
}

/// The BERT encoder.
#[derive(Module, Debug)]
pub struct Bert {
    tok_emb: Embedding,
    pos_emb: Embedding,
    /// Token-type (segment) embeddings; single texts are all type 0.
    type_emb: Embedding,
    /// LayerNorm of the summed embeddings.
    emb_ln: LayerNorm,
    dropout: Dropout,
    blocks: Vec<BertBlock>,
    /// The relation classifier on the first position's state (LinkBERT).
    relation_head: Option<Linear>,
    context: usize,
    vocab: usize,
    eps: f64,
}

impl Bert {
    /// A freshly initialised encoder for `vocab` tokens (weights ~ N(0, 0.02), as BERT's
    /// `initializer_range`). `spec` must be valid.
    pub fn new(spec: &ModelSpec, vocab: usize, device: &Device) -> Self {
        let d = spec.d_model;
        let init = || Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let embedding = |rows: usize| {
            EmbeddingConfig::new(rows.max(1), d)
                .with_initializer(init())
                .init(device)
        };
        Self {
            tok_emb: embedding(vocab),
            pos_emb: embedding(spec.position_rows()),
            type_emb: embedding(spec.bert.type_vocab),
            emb_ln: layer_norm(d, spec.bert.norm_eps, device),
            dropout: DropoutConfig::new(spec.dropout).init(),
            blocks: (0..spec.n_layer)
                .map(|_| BertBlock::new(spec, device))
                .collect(),
            relation_head: (spec.relation_classes > 0).then(|| {
                LinearConfig::new(d, spec.relation_classes)
                    .with_initializer(init())
                    .init(device)
            }),
            context: spec.context,
            vocab,
            eps: spec.bert.norm_eps,
        }
    }

    /// The token embedding matrix `[vocab, d_model]`.
    pub fn token_embedding(&self) -> Tensor<2> {
        self.tok_emb.weight.val()
    }

    /// Tokens the model embeds and predicts.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The longest input it takes, in tokens.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Output logits `[batch, seq, vocab]` from hidden states (the head shares the token
    /// embedding).
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_model] = hidden.dims();
        hidden
            .reshape([batch * seq, d_model])
            .matmul(self.tok_emb.weight.val().transpose())
            .reshape([batch, seq, self.vocab])
    }

    /// Relation logits `[batch, classes]` from the first position of `hidden`; `None` without
    /// a relation head.
    pub fn relation_logits(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        first_position_logits(self.relation_head.as_ref()?, hidden)
    }

    /// The last block's states `[batch, seq, d_model]` and, when `keep_weights`, every
    /// layer's attention weights. `padding: [batch, seq]` marks padded positions.
    pub fn hidden_inner(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
        keep_weights: bool,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        self.hidden_traced(tokens, mode, padding, keep_weights, None)
    }

    /// [`Bert::hidden_inner`] that also pushes the residual stream after each block onto
    /// `residuals` (post-norm: the block's output is already normalised).
    pub(super) fn hidden_traced(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
        keep_weights: bool,
        mut residuals: Option<&mut Vec<Tensor<3>>>,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        let device = tokens.device();
        let [batch, seq] = tokens.dims();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        let types = Tensor::<2, Int>::zeros([batch, seq], &device);
        let embedded = self.tok_emb.forward(tokens)
            + self.pos_emb.forward(positions)
            + self.type_emb.forward(types);
        let mut x = self
            .dropout
            .forward(apply_layer_norm(&self.emb_ln, embedded, self.eps));
        let mask = attention_mask(mode, padding, [batch, seq], &device);
        let mut maps = Vec::new();
        for block in &self.blocks {
            let (next, weights) = block.forward(x, &mask, keep_weights);
            x = next;
            maps.extend(weights);
            if let Some(residuals) = residuals.as_deref_mut() {
                residuals.push(x.clone());
            }
        }
        (x, maps)
    }
}
