//! A GPT in Burn, in two architectures ([`Arch`]):
//!
//! - classic (nanoGPT's GPT-2): token + position embeddings, pre-LayerNorm blocks of
//!   multi-head attention with a fused q/k/v projection and a 4x GELU MLP, a final LayerNorm
//!   and the LM head (optionally tied);
//! - modern: token embeddings only, with rotary position embeddings applied to queries and
//!   keys (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding"),
//!   pre-RMSNorm blocks (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization") whose
//!   attention has separate q, k and v projections and RMSNorm on each head's queries and keys
//!   before the rotation (QK-norm, as in the modded-nanogpt speedruns), a SwiGLU MLP (Shazeer
//!   2020, "GLU Variants Improve Transformer"), a final RMSNorm, and no biases.
//!
//! Both keep the same parameter paths where the parts agree (`tok_emb`, `blocks.{i}.attn.proj`,
//! `blocks.{i}.mlp.proj`), so freezing, Muon's choice of block matrices and checkpoints work
//! alike. Initialisation follows nanoGPT: weights ~ N(0, 0.02), residual projections
//! ~ N(0, 0.02 / sqrt(2 * n_layer)), biases zero, norm gains one.

use super::ModelSpec;
use super::config::Arch;
use super::fused::{self, AttnMask};
use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Gelu, Initializer, LayerNorm,
    LayerNormConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig,
};
use burn::tensor::activation::silu;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// Base of the rotary embedding's frequencies, `theta_i = BASE^(-2i / head_dim)` (RoFormer).
pub const ROPE_BASE: f64 = 10_000.0;

/// Epsilon of every RMSNorm of the modern architecture (added to the mean square).
pub const RMS_EPS: f64 = 1e-5;

fn linear(d_in: usize, d_out: usize, bias: bool, std: f64, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    if let Some(b) = layer.bias.take() {
        layer.bias = Some(b.map(|t| t.zeros_like()));
    }
    layer
}

/// Epsilon of every LayerNorm of the classic architecture (PyTorch's default).
pub const LN_EPS: f64 = 1e-5;

fn layer_norm(d: usize, bias: bool, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d)
        .with_bias(bias)
        .with_epsilon(LN_EPS)
        .init(device)
}

fn rms_norm(d: usize, device: &Device) -> RmsNorm {
    RmsNormConfig::new(d).with_epsilon(RMS_EPS).init(device)
}

/// A linear layer on `[batch, seq, d_in]` as one `[batch * seq, d_in] x [d_in, d_out]` matrix
/// product, forward and backward (a batched product would copy the weight once per row of the
/// batch on LibTorch).
fn apply_linear(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [batch, seq, d_in] = x.dims();
    let y = layer.forward(x.reshape([batch * seq, d_in]));
    let [_, d_out] = y.dims();
    y.reshape([batch, seq, d_out])
}

/// A LayerNorm module's forward, as one fused op where the backend has it.
fn apply_layer_norm<const D: usize>(ln: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    fused::layer_norm(x, ln.gamma.val(), ln.beta.as_ref().map(|b| b.val()), LN_EPS)
}

/// An RMSNorm module's forward, as one fused op where the backend has it.
fn apply_rms_norm<const D: usize>(rms: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    fused::rms_norm(x, rms.gamma.val(), rms.epsilon)
}

/// The rotary tables of `seq` positions for heads of width `head_dim`: `(cos, sin)`, each
/// `[1, 1, seq, head_dim / 2]`, of the angles `position * BASE^(-2i / head_dim)`.
fn rope_tables(seq: usize, head_dim: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(seq * half);
    let mut sin = Vec::with_capacity(seq * half);
    for pos in 0..seq {
        for i in 0..half {
            let angle = pos as f64 * ROPE_BASE.powf(-2.0 * i as f64 / head_dim as f64);
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    let table = |values: Vec<f32>| {
        Tensor::<4>::from_data(TensorData::new(values, [1, 1, seq, half]), device)
    };
    (table(cos), table(sin))
}

/// Rotates each pair `(x_i, x_{i + head_dim / 2})` of `x: [batch, head, seq, head_dim]` by
/// its position's angle (the "rotate half" layout of GPT-NeoX and Llama).
fn apply_rope(x: Tensor<4>, rope: &(Tensor<4>, Tensor<4>)) -> Tensor<4> {
    let head_dim = x.dims()[3];
    let half = head_dim / 2;
    let (cos, sin) = rope;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    Tensor::cat(
        vec![
            x1.clone() * cos.clone() - x2.clone() * sin.clone(),
            x1 * sin.clone() + x2 * cos.clone(),
        ],
        3,
    )
}

/// Multi-head self-attention: classic with a fused q/k/v projection (nanoGPT's `c_attn`);
/// modern with separate q, k and v projections, QK-norm and rotary embeddings.
#[derive(Module, Debug)]
pub struct CausalSelfAttention {
    /// Classic: the fused q/k/v projection.
    qkv: Option<Linear>,
    /// Modern: the query projection.
    q: Option<Linear>,
    /// Modern: the key projection.
    k: Option<Linear>,
    /// Modern: the value projection.
    v: Option<Linear>,
    /// Modern: RMSNorm of each head's queries (gain shared by the heads).
    q_norm: Option<RmsNorm>,
    /// Modern: RMSNorm of each head's keys.
    k_norm: Option<RmsNorm>,
    proj: Linear,
    resid_dropout: Dropout,
    attn_dropout: Dropout,
    n_head: usize,
}

impl CausalSelfAttention {
    pub(super) fn new(spec: &ModelSpec, device: &Device) -> Self {
        let d = spec.d_model;
        let resid_std = 0.02 / ((2 * spec.n_layer) as f64).sqrt();
        match spec.arch {
            Arch::Classic => Self {
                qkv: Some(linear(d, 3 * d, spec.bias, 0.02, device)),
                q: None,
                k: None,
                v: None,
                q_norm: None,
                k_norm: None,
                proj: linear(d, d, spec.bias, resid_std, device),
                resid_dropout: DropoutConfig::new(spec.dropout).init(),
                attn_dropout: DropoutConfig::new(spec.dropout).init(),
                n_head: spec.n_head,
            },
            Arch::Modern => Self {
                qkv: None,
                q: Some(linear(d, d, false, 0.02, device)),
                k: Some(linear(d, d, false, 0.02, device)),
                v: Some(linear(d, d, false, 0.02, device)),
                q_norm: Some(rms_norm(spec.head_dim(), device)),
                k_norm: Some(rms_norm(spec.head_dim(), device)),
                proj: linear(d, d, false, resid_std, device),
                resid_dropout: DropoutConfig::new(spec.dropout).init(),
                attn_dropout: DropoutConfig::new(spec.dropout).init(),
                n_head: spec.n_head,
            },
        }
    }

    /// Queries, keys and values `[batch, head, seq, head_dim]` of `x: [batch, seq, d_model]`;
    /// for modern, with the queries and keys normalised and rotated by `rope`.
    fn project(
        &self,
        x: Tensor<3>,
        rope: Option<&(Tensor<4>, Tensor<4>)>,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        if let Some(qkv) = &self.qkv {
            return fused::split_heads(apply_linear(qkv, x), self.n_head);
        }
        let [batch, seq, d_model] = x.dims();
        let head_dim = d_model / self.n_head;
        let heads = |layer: &Option<Linear>, x: Tensor<3>| -> Tensor<4> {
            let layer = layer
                .as_ref()
                .expect("a modern attention has q, k and v projections");
            apply_linear(layer, x)
                .reshape([batch, seq, self.n_head, head_dim])
                .swap_dims(1, 2)
        };
        let norm = |norm: &Option<RmsNorm>, t: Tensor<4>| match norm {
            Some(norm) => apply_rms_norm(norm, t),
            None => t,
        };
        let q = norm(&self.q_norm, heads(&self.q, x.clone()));
        let k = norm(&self.k_norm, heads(&self.k, x.clone()));
        let v = heads(&self.v, x);
        match rope {
            Some(rope) => (apply_rope(q, rope), apply_rope(k, rope), v),
            None => (q, k, v),
        }
    }

    /// `x: [batch, seq, d_model]`; `mask` says which keys each query may attend to.
    /// Returns the output and, when `keep_weights`, the attention weights `[batch, head, seq, seq]`.
    pub(super) fn forward(
        &self,
        x: Tensor<3>,
        mask: &AttnMask,
        rope: Option<&(Tensor<4>, Tensor<4>)>,
        keep_weights: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let [batch, seq, _] = x.dims();
        // Attention dropout needs the weights; so do probes. Otherwise one fused op.
        let dropout_active = self.attn_dropout.prob > 0.0 && x.device().is_autodiff();
        let (y, kept) = if keep_weights || dropout_active {
            let (q, k, v) = self.project(x, rope);
            let weights = fused::attention_weights(q, k, mask);
            let kept = keep_weights.then(|| weights.clone());
            let y = self.attn_dropout.forward(weights).matmul(v);
            (fused::merge_heads(y, batch, seq), kept)
        } else if let Some(qkv) = &self.qkv {
            (
                fused::packed_attention(apply_linear(qkv, x), self.n_head, mask),
                None,
            )
        } else {
            let (q, k, v) = self.project(x, rope);
            (
                fused::merge_heads(fused::attention(q, k, v, mask), batch, seq),
                None,
            )
        };
        (
            self.resid_dropout.forward(apply_linear(&self.proj, y)),
            kept,
        )
    }
}

/// The MLP of a block: classic d -> 4d, GELU, 4d -> d; modern SwiGLU
/// `proj(silu(gate(x)) * up(x))` of hidden width [`ModelSpec::mlp_hidden`].
#[derive(Module, Debug)]
pub struct Mlp {
    /// Classic: the up projection before GELU.
    fc: Option<Linear>,
    /// Modern: the gate projection (through SiLU).
    gate: Option<Linear>,
    /// Modern: the linear projection the gate multiplies.
    up: Option<Linear>,
    /// The down projection back to the model width.
    proj: Linear,
    act: Gelu,
    dropout: Dropout,
}

impl Mlp {
    pub(super) fn new(spec: &ModelSpec, device: &Device) -> Self {
        let d = spec.d_model;
        let hidden = spec.mlp_hidden();
        let resid_std = 0.02 / ((2 * spec.n_layer) as f64).sqrt();
        match spec.arch {
            Arch::Classic => Self {
                fc: Some(linear(d, hidden, spec.bias, 0.02, device)),
                gate: None,
                up: None,
                proj: linear(hidden, d, spec.bias, resid_std, device),
                act: Gelu::new(),
                dropout: DropoutConfig::new(spec.dropout).init(),
            },
            Arch::Modern => Self {
                fc: None,
                gate: Some(linear(d, hidden, false, 0.02, device)),
                up: Some(linear(d, hidden, false, 0.02, device)),
                proj: linear(hidden, d, false, resid_std, device),
                act: Gelu::new(),
                dropout: DropoutConfig::new(spec.dropout).init(),
            },
        }
    }

    pub(super) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = match (&self.fc, &self.gate, &self.up) {
            (Some(fc), _, _) => fused::gelu(apply_linear(fc, x), |h| self.act.forward(h)),
            (None, Some(gate), Some(up)) => {
                silu(apply_linear(gate, x.clone())) * apply_linear(up, x)
            }
            _ => unreachable!("an MLP is classic (fc) or modern (gate and up)"),
        };
        self.dropout.forward(apply_linear(&self.proj, hidden))
    }
}

/// The norm before each sub-layer: LayerNorm (classic) or RMSNorm (modern).
fn norm(ln: &Option<LayerNorm>, rms: &Option<RmsNorm>, x: Tensor<3>) -> Tensor<3> {
    match (ln, rms) {
        (Some(ln), _) => apply_layer_norm(ln, x),
        (None, Some(rms)) => apply_rms_norm(rms, x),
        (None, None) => unreachable!("a model has LayerNorms (classic) or RMSNorms (modern)"),
    }
}

/// A pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// Classic: LayerNorm before attention.
    ln_1: Option<LayerNorm>,
    /// Modern: RMSNorm before attention.
    rms_1: Option<RmsNorm>,
    attn: CausalSelfAttention,
    /// Classic: LayerNorm before the MLP.
    ln_2: Option<LayerNorm>,
    /// Modern: RMSNorm before the MLP.
    rms_2: Option<RmsNorm>,
    mlp: Mlp,
}

impl Block {
    fn new(spec: &ModelSpec, device: &Device) -> Self {
        let d = spec.d_model;
        match spec.arch {
            Arch::Classic => Self {
                ln_1: Some(layer_norm(d, spec.bias, device)),
                rms_1: None,
                attn: CausalSelfAttention::new(spec, device),
                ln_2: Some(layer_norm(d, spec.bias, device)),
                rms_2: None,
                mlp: Mlp::new(spec, device),
            },
            Arch::Modern => Self {
                ln_1: None,
                rms_1: Some(rms_norm(d, device)),
                attn: CausalSelfAttention::new(spec, device),
                ln_2: None,
                rms_2: Some(rms_norm(d, device)),
                mlp: Mlp::new(spec, device),
            },
        }
    }

    fn forward(
        &self,
        x: Tensor<3>,
        mask: &AttnMask,
        rope: Option<&(Tensor<4>, Tensor<4>)>,
        keep_weights: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (attn, weights) = self.attn.forward(
            norm(&self.ln_1, &self.rms_1, x.clone()),
            mask,
            rope,
            keep_weights,
        );
        let x = x + attn;
        let x = x.clone() + self.mlp.forward(norm(&self.ln_2, &self.rms_2, x));
        (x, weights)
    }
}

/// Which keys a query may attend to: not future positions (causal), not padded keys
/// (`padding: [batch, seq]`).
pub(super) fn attention_mask(
    mode: AttentionMode,
    padding: Option<Tensor<2, Bool>>,
    [batch, seq]: [usize; 2],
    device: &Device,
) -> AttnMask {
    let padded = padding.map(|p| p.reshape([batch, 1, 1, seq]));
    match (mode, padded) {
        (AttentionMode::Causal, None) => AttnMask::Causal,
        (AttentionMode::Bidirectional, None) => AttnMask::None,
        (AttentionMode::Bidirectional, Some(p)) => AttnMask::Masked(Box::new(p)),
        (AttentionMode::Causal, Some(p)) => AttnMask::Masked(Box::new(
            Tensor::<2, Bool>::tril_mask([seq, seq], 0, device)
                .reshape([1, 1, seq, seq])
                .expand([batch, 1, seq, seq])
                .bool_or(p.expand([batch, 1, seq, seq])),
        )),
    }
}

/// `head` applied to the first position of `hidden: [batch, seq, d]` (a classifier on the
/// `[cls]` state): `[batch, classes]`.
pub(super) fn first_position_logits(head: &Linear, hidden: Tensor<3>) -> Option<Tensor<2>> {
    let [batch, _, d_model] = hidden.dims();
    Some(head.forward(hidden.slice([0..batch, 0..1]).reshape([batch, d_model])))
}

/// Which positions a query may attend to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionMode {
    /// Only itself and earlier positions (generation).
    Causal,
    /// Every position (masked-token and embedding objectives).
    Bidirectional,
}

/// Attention weights captured on a probe input: `weights[layer]` is `[head, seq, seq]`
/// row-major, each row a distribution over the positions it attends to.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMaps {
    /// Layers captured.
    pub n_layer: usize,
    /// Heads per layer.
    pub n_head: usize,
    /// Positions of the probe input.
    pub seq: usize,
    /// Row-major `[layer, head, query, key]`.
    pub weights: Vec<f32>,
}

impl AttentionMaps {
    /// The `[seq, seq]` map of one layer and head.
    pub fn map(&self, layer: usize, head: usize) -> &[f32] {
        let size = self.seq * self.seq;
        let start = (layer * self.n_head + head) * size;
        &self.weights[start..start + size]
    }
}

/// The GPT language model (either [`Arch`]).
#[derive(Module, Debug)]
pub struct Gpt {
    tok_emb: Embedding,
    /// Classic: the learned position embedding (modern rotates queries and keys instead).
    pos_emb: Option<Embedding>,
    dropout: Dropout,
    blocks: Vec<Block>,
    /// Classic: the final LayerNorm.
    ln_f: Option<LayerNorm>,
    /// Modern: the final RMSNorm.
    rms_f: Option<RmsNorm>,
    /// `None` when the head shares the token embedding.
    lm_head: Option<Linear>,
    /// The relation classifier on the first position's state (LinkBERT).
    relation_head: Option<Linear>,
    context: usize,
    vocab: usize,
    /// Width of one attention head (for the rotary tables).
    head_dim: usize,
}

impl Gpt {
    /// A freshly initialised model for `vocab` tokens. `spec` must be valid.
    pub fn new(spec: &ModelSpec, vocab: usize, device: &Device) -> Self {
        let emb_init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let classic = spec.arch == Arch::Classic;
        Self {
            tok_emb: EmbeddingConfig::new(vocab, spec.d_model)
                .with_initializer(emb_init.clone())
                .init(device),
            pos_emb: classic.then(|| {
                EmbeddingConfig::new(spec.context, spec.d_model)
                    .with_initializer(emb_init)
                    .init(device)
            }),
            dropout: DropoutConfig::new(spec.dropout).init(),
            blocks: (0..spec.n_layer)
                .map(|_| Block::new(spec, device))
                .collect(),
            ln_f: classic.then(|| layer_norm(spec.d_model, spec.bias, device)),
            rms_f: (!classic).then(|| rms_norm(spec.d_model, device)),
            lm_head: (!spec.tie_weights).then(|| linear(spec.d_model, vocab, false, 0.02, device)),
            relation_head: (spec.relation_classes > 0)
                .then(|| linear(spec.d_model, spec.relation_classes, classic, 0.02, device)),
            context: spec.context,
            vocab,
            head_dim: spec.head_dim(),
        }
    }

    /// Which architecture the model is.
    pub fn arch(&self) -> Arch {
        if self.pos_emb.is_some() {
            Arch::Classic
        } else {
            Arch::Modern
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

    /// Output logits `[batch, seq, vocab]` from hidden states.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_model] = hidden.dims();
        let flat = hidden.reshape([batch * seq, d_model]);
        let logits = match &self.lm_head {
            Some(head) => head.forward(flat),
            None => flat.matmul(self.tok_emb.weight.val().transpose()),
        };
        logits.reshape([batch, seq, self.vocab])
    }

    /// Relation logits `[batch, classes]` from the first position of `hidden`; `None` without
    /// a relation head.
    pub fn relation_logits(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        first_position_logits(self.relation_head.as_ref()?, hidden)
    }

    pub(super) fn hidden_inner(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
        keep_weights: bool,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        self.hidden_traced(tokens, mode, padding, keep_weights, None)
    }

    /// The final norm, which turns a residual stream into hidden states the head reads.
    pub(super) fn final_norm(&self, x: Tensor<3>) -> Tensor<3> {
        norm(&self.ln_f, &self.rms_f, x)
    }

    /// [`Gpt::hidden_inner`] that also pushes the residual stream after each block onto
    /// `residuals`.
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
        let (embedded, rope) = match &self.pos_emb {
            Some(pos_emb) => {
                let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
                    .reshape([1, seq])
                    .expand([batch, seq]);
                (
                    self.tok_emb.forward(tokens) + pos_emb.forward(positions),
                    None,
                )
            }
            None => (
                self.tok_emb.forward(tokens),
                Some(rope_tables(seq, self.head_dim, &device)),
            ),
        };
        let mut x = self.dropout.forward(embedded);
        let mask = attention_mask(mode, padding, [batch, seq], &device);
        let mut maps = Vec::new();
        for block in &self.blocks {
            let (next, weights) = block.forward(x, &mask, rope.as_ref(), keep_weights);
            x = next;
            maps.extend(weights);
            if let Some(residuals) = residuals.as_deref_mut() {
                residuals.push(x.clone());
            }
        }
        (norm(&self.ln_f, &self.rms_f, x), maps)
    }
}
