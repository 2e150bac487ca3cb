//! Llama (Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language Models") in
//! Burn, as Hugging Face's `LlamaForCausalLM` computes it, with the settings that make the
//! decoders built like it load: pre-RMSNorm blocks (epsilon from the config), rotary positions
//! (Su et al. 2021) in the "rotate half" layout with the config's base, grouped-query
//! attention (Ainslie et al. 2023, "GQA": `n_kv_head` key/value heads shared by groups of
//! query heads), a SwiGLU MLP (Shazeer 2020) of any width, optional RMSNorm on each head's
//! queries and keys (Qwen3), optional q/k/v biases (Qwen2), tied or untied output head.
//!
//! Parameter paths follow Hearth's modern GPT (`tok_emb`, `blocks.{i}.attn.{q,k,v,proj}`,
//! `blocks.{i}.mlp.{gate,up,proj}`, `blocks.{i}.rms_{1,2}`, `rms_f`, `lm_head`), so freezing,
//! Muon's choice of block matrices and the views work alike.
//!
//! A projection may carry a LoRA adapter ([`super::LoraSpec`]): `lora_a` and `lora_b` beside its
//! `weight`, the weight frozen. [`KvCache`] keeps each layer's rotated keys and values so
//! generation feeds one new token per step.

use super::fused::{self, AttnMask};
use super::gpt::{AttentionMode, attention_mask, first_position_logits};
use super::{LoraSpec, ModelSpec};
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};

/// A projection `x W (+ b)` with an optional LoRA adapter `(alpha / rank) (dropout(x) A) B`.
#[derive(Module, Debug)]
pub struct Proj {
    /// `[in, out]`, as Burn's `Linear` keeps it.
    weight: Param<Tensor<2>>,
    bias: Option<Param<Tensor<1>>>,
    /// The adapter's down projection `[in, rank]`.
    lora_a: Option<Param<Tensor<2>>>,
    /// The adapter's up projection `[rank, out]` (zero when the adapter is new).
    lora_b: Option<Param<Tensor<2>>>,
    lora_scale: f64,
    lora_dropout: Dropout,
}

impl Proj {
    fn new(d_in: usize, d_out: usize, bias: bool, std: f64, device: &Device) -> Self {
        let Linear { weight, bias: b } = LinearConfig::new(d_in, d_out)
            .with_bias(bias)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        Self {
            weight,
            bias: b.map(|b| b.map(|t| t.zeros_like())),
            lora_a: None,
            lora_b: None,
            lora_scale: 0.0,
            lora_dropout: DropoutConfig::new(0.0).init(),
        }
    }

    /// The same projection with a fresh adapter of `lora` (A ~ N(0, 1 / rank), B = 0, so the
    /// output is unchanged until it trains) and its own weight and bias frozen.
    fn with_lora(self, lora: &LoraSpec, device: &Device) -> Self {
        let [d_in, d_out] = self.weight.dims();
        let std = 1.0 / lora.rank as f64;
        let a = Tensor::<2>::random([d_in, lora.rank], Distribution::Normal(0.0, std), device);
        Self {
            weight: self.weight.set_require_grad(false),
            bias: self.bias.map(|b| b.set_require_grad(false)),
            lora_a: Some(Param::from_tensor(a)),
            lora_b: Some(Param::from_tensor(Tensor::zeros(
                [lora.rank, d_out],
                device,
            ))),
            lora_scale: lora.alpha / lora.rank as f64,
            lora_dropout: DropoutConfig::new(lora.dropout).init(),
        }
    }

    /// The projection with an adapter when `lora` targets `name` (q, k, v, o, gate, up, down);
    /// frozen either way.
    fn adapted(self, name: &str, lora: &LoraSpec, device: &Device) -> Self {
        if lora.targets(name) {
            self.with_lora(lora, device)
        } else {
            Self {
                weight: self.weight.set_require_grad(false),
                bias: self.bias.map(|b| b.set_require_grad(false)),
                ..self
            }
        }
    }

    /// `x: [batch, seq, in]` to `[batch, seq, out]`, as one matrix product over all rows.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_in] = x.dims();
        let flat = x.reshape([batch * seq, d_in]);
        let mut y = flat.clone().matmul(self.weight.val());
        if let Some(b) = &self.bias {
            y = y + b.val().unsqueeze_dim(0);
        }
        if let (Some(a), Some(b)) = (&self.lora_a, &self.lora_b) {
            // Scaled at rank width, where it costs `rank` values a row instead of `out`.
            let low = self.lora_dropout.forward(flat).matmul(a.val());
            y = y + low.mul_scalar(self.lora_scale).matmul(b.val());
        }
        let [_, d_out] = y.dims();
        y.reshape([batch, seq, d_out])
    }

    /// The weight with the adapter merged in: `W + (alpha / rank) A B`.
    pub fn merged_weight(&self) -> Tensor<2> {
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => {
                self.weight.val() + a.val().matmul(b.val()).mul_scalar(self.lora_scale)
            }
            _ => self.weight.val(),
        }
    }
}

fn rms_norm(d: usize, eps: f64, device: &Device) -> RmsNorm {
    RmsNormConfig::new(d).with_epsilon(eps).init(device)
}

fn apply_rms_norm<const D: usize>(rms: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    fused::rms_norm(x, rms.gamma.val(), rms.epsilon)
}

/// Rotary tables for positions `start..start + seq`: `(cos, sin)`, each `[seq, head_dim / 2]`,
/// of the angles `position * theta^(-2i / head_dim)` (computed as Hugging Face does: the
/// inverse frequencies in f32).
fn rope_tables(
    start: usize,
    seq: usize,
    head_dim: usize,
    theta: f64,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
        .collect();
    let mut cos = Vec::with_capacity(seq * half);
    let mut sin = Vec::with_capacity(seq * half);
    for pos in start..start + seq {
        for &f in &inv_freq {
            let angle = pos as f32 * f;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    let table =
        |values: Vec<f32>| Tensor::<2>::from_data(TensorData::new(values, [seq, half]), device);
    (table(cos), table(sin))
}

/// Rotates each pair `(x_i, x_{i + head_dim / 2})` of `x: [batch, head, seq, head_dim]`.
fn apply_rope(x: Tensor<4>, rope: &(Tensor<2>, Tensor<2>)) -> Tensor<4> {
    fused::rope(x, &rope.0, &rope.1)
}

/// Each layer's rotated keys and values of the positions generated so far
/// (`[batch, kv_head, seq, head_dim]`), so the next token's step reads them instead of
/// recomputing the prefix.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Grouped-query self-attention.
#[derive(Module, Debug)]
pub struct LlamaAttention {
    q: Proj,
    k: Proj,
    v: Proj,
    /// The output projection (`o_proj`).
    proj: Proj,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
}

impl LlamaAttention {
    fn new(spec: &ModelSpec, device: &Device) -> Self {
        let d = spec.d_model;
        let hd = spec.head_dim();
        let resid_std = 0.02 / ((2 * spec.n_layer) as f64).sqrt();
        let bias = spec.llama.qkv_bias;
        let eps = spec.llama.norm_eps;
        Self {
            q: Proj::new(d, spec.q_width(), bias, 0.02, device),
            k: Proj::new(d, spec.kv_width(), bias, 0.02, device),
            v: Proj::new(d, spec.kv_width(), bias, 0.02, device),
            proj: Proj::new(spec.q_width(), d, false, resid_std, device),
            q_norm: spec.llama.qk_norm.then(|| rms_norm(hd, eps, device)),
            k_norm: spec.llama.qk_norm.then(|| rms_norm(hd, eps, device)),
            n_head: spec.n_head,
            n_kv_head: spec.kv_heads(),
            head_dim: hd,
        }
    }

    fn with_lora(self, lora: &LoraSpec, device: &Device) -> Self {
        Self {
            q: self.q.adapted("q", lora, device),
            k: self.k.adapted("k", lora, device),
            v: self.v.adapted("v", lora, device),
            proj: self.proj.adapted("o", lora, device),
            ..self
        }
    }

    /// `x: [batch, seq, d_model]` at positions `rope`'s; with `cache`, the keys and values
    /// of earlier positions come first. Returns the output and, when `keep_weights`, the
    /// attention weights `[batch, head, seq, keys]`.
    fn forward(
        &self,
        x: Tensor<3>,
        mask: &AttnMask,
        rope: &(Tensor<2>, Tensor<2>),
        keep_weights: bool,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let [batch, seq, _] = x.dims();
        let heads = |p: &Proj, n: usize, x: Tensor<3>| -> Tensor<4> {
            p.forward(x)
                .reshape([batch, seq, n, self.head_dim])
                .swap_dims(1, 2)
        };
        let norm = |norm: &Option<RmsNorm>, t: Tensor<4>| match norm {
            Some(norm) => apply_rms_norm(norm, t),
            None => t,
        };
        let q = apply_rope(
            norm(&self.q_norm, heads(&self.q, self.n_head, x.clone())),
            rope,
        );
        let mut k = apply_rope(
            norm(&self.k_norm, heads(&self.k, self.n_kv_head, x.clone())),
            rope,
        );
        let mut v = heads(&self.v, self.n_kv_head, x);
        if let Some(slot) = cache {
            if let Some((past_k, past_v)) = slot.take() {
                k = Tensor::cat(vec![past_k, k], 2);
                v = Tensor::cat(vec![past_v, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let (y, kept) = if keep_weights {
            let group = self.n_head / self.n_kv_head;
            let (k, v) = (fused::repeat_kv(k, group), fused::repeat_kv(v, group));
            let weights = fused::attention_weights(q, k, mask);
            (weights.clone().matmul(v), Some(weights))
        } else {
            // Grouped heads go in as they are; the attention shares them.
            (fused::attention(q, k, v, mask), None)
        };
        let y = y
            .swap_dims(1, 2)
            .reshape([batch, seq, self.n_head * self.head_dim]);
        (self.proj.forward(y), kept)
    }
}

/// The SwiGLU MLP `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct LlamaMlp {
    gate: Proj,
    up: Proj,
    /// The down projection back to the model width.
    proj: Proj,
}

impl LlamaMlp {
    fn new(spec: &ModelSpec, device: &Device) -> Self {
        let (d, hidden) = (spec.d_model, spec.mlp_hidden());
        let resid_std = 0.02 / ((2 * spec.n_layer) as f64).sqrt();
        Self {
            gate: Proj::new(d, hidden, false, 0.02, device),
            up: Proj::new(d, hidden, false, 0.02, device),
            proj: Proj::new(hidden, d, false, resid_std, device),
        }
    }

    fn with_lora(self, lora: &LoraSpec, device: &Device) -> Self {
        Self {
            gate: self.gate.adapted("gate", lora, device),
            up: self.up.adapted("up", lora, device),
            proj: self.proj.adapted("down", lora, device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.proj.forward(fused::swiglu(
            self.gate.forward(x.clone()),
            self.up.forward(x),
        ))
    }
}

/// A pre-RMSNorm block.
#[derive(Module, Debug)]
pub struct LlamaBlock {
    rms_1: RmsNorm,
    attn: LlamaAttention,
    rms_2: RmsNorm,
    mlp: LlamaMlp,
    dropout: Dropout,
}

/// The Llama language model.
#[derive(Module, Debug)]
pub struct Llama {
    tok_emb: Embedding,
    dropout: Dropout,
    blocks: Vec<LlamaBlock>,
    rms_f: RmsNorm,
    /// `None` when the head shares the token embedding.
    lm_head: Option<Linear>,
    /// The relation classifier on the first position's state (LinkBERT).
    relation_head: Option<Linear>,
    context: usize,
    vocab: usize,
    head_dim: usize,
    rope_theta: f64,
    /// With adapters: the base checkpoint holding the frozen weights.
    #[module(skip)]
    lora_base: Option<std::path::PathBuf>,
}

impl Llama {
    /// A freshly initialised model for `vocab` tokens (with fresh adapters when `spec.lora`
    /// is set). `spec` must be valid.
    pub fn new(spec: &ModelSpec, vocab: usize, device: &Device) -> Self {
        let d = spec.d_model;
        let eps = spec.llama.norm_eps;
        let model = Self {
            tok_emb: EmbeddingConfig::new(vocab, d)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
            dropout: DropoutConfig::new(spec.dropout).init(),
            blocks: (0..spec.n_layer)
                .map(|_| LlamaBlock {
                    rms_1: rms_norm(d, eps, device),
                    attn: LlamaAttention::new(spec, device),
                    rms_2: rms_norm(d, eps, device),
                    mlp: LlamaMlp::new(spec, device),
                    dropout: DropoutConfig::new(spec.dropout).init(),
                })
                .collect(),
            rms_f: rms_norm(d, eps, device),
            lm_head: (!spec.tie_weights).then(|| {
                LinearConfig::new(d, vocab)
                    .with_bias(false)
                    .with_initializer(Initializer::Normal {
                        mean: 0.0,
                        std: 0.02,
                    })
                    .init(device)
            }),
            relation_head: (spec.relation_classes > 0).then(|| {
                LinearConfig::new(d, spec.relation_classes)
                    .with_initializer(Initializer::Normal {
                        mean: 0.0,
                        std: 0.02,
                    })
                    .init(device)
            }),
            context: spec.context,
            vocab,
            head_dim: spec.head_dim(),
            rope_theta: spec.llama.rope_theta,
            lora_base: spec.lora.as_ref().map(|l| l.base.clone()),
        };
        match &spec.lora {
            Some(lora) => model.with_lora(lora, device),
            None => model,
        }
    }

    /// The model with adapters on `lora`'s targets; every other weight frozen.
    fn with_lora(self, lora: &LoraSpec, device: &Device) -> Self {
        let freeze = |rms: RmsNorm| rms.no_grad();
        Self {
            tok_emb: self.tok_emb.no_grad(),
            blocks: self
                .blocks
                .into_iter()
                .map(|b| LlamaBlock {
                    rms_1: freeze(b.rms_1),
                    attn: LlamaAttention {
                        q_norm: b.attn.q_norm.map(freeze),
                        k_norm: b.attn.k_norm.map(freeze),
                        ..b.attn
                    }
                    .with_lora(lora, device),
                    rms_2: freeze(b.rms_2),
                    mlp: b.mlp.with_lora(lora, device),
                    dropout: b.dropout,
                })
                .collect(),
            rms_f: freeze(self.rms_f),
            lm_head: self.lm_head.map(|h| h.no_grad()),
            relation_head: self.relation_head.map(|h| h.no_grad()),
            ..self
        }
    }

    /// Whether the model carries LoRA adapters.
    pub fn has_lora(&self) -> bool {
        self.blocks.iter().any(|b| {
            [
                &b.attn.q,
                &b.attn.k,
                &b.attn.v,
                &b.attn.proj,
                &b.mlp.gate,
                &b.mlp.up,
                &b.mlp.proj,
            ]
            .iter()
            .any(|p| p.lora_a.is_some())
        })
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

    /// Relation logits `[batch, classes]` from the first position of `hidden`.
    pub fn relation_logits(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        first_position_logits(self.relation_head.as_ref()?, hidden)
    }

    fn run_blocks(
        &self,
        tokens: Tensor<2, Int>,
        start: usize,
        mask: &AttnMask,
        keep_weights: bool,
        mut cache: Option<&mut KvCache>,
        mut residuals: Option<&mut Vec<Tensor<3>>>,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        let device = tokens.device();
        let seq = tokens.dims()[1];
        let rope = rope_tables(start, seq, self.head_dim, self.rope_theta, &device);
        let mut x = self.dropout.forward(self.tok_emb.forward(tokens));
        if let Some(cache) = cache.as_deref_mut() {
            cache.layers.resize(self.blocks.len(), None);
        }
        let mut maps = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let (attn, weights) = block.attn.forward(
                apply_rms_norm(&block.rms_1, x.clone()),
                mask,
                &rope,
                keep_weights,
                slot,
            );
            x = x + block.dropout.forward(attn);
            x = x.clone()
                + block
                    .dropout
                    .forward(block.mlp.forward(apply_rms_norm(&block.rms_2, x)));
            maps.extend(weights);
            if let Some(residuals) = residuals.as_deref_mut() {
                residuals.push(x.clone());
            }
        }
        if let Some(cache) = cache {
            cache.len += seq;
        }
        (apply_rms_norm(&self.rms_f, x), maps)
    }

    pub(super) fn hidden_inner(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
        keep_weights: bool,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        let device = tokens.device();
        let [batch, seq] = tokens.dims();
        let mask = attention_mask(mode, padding, [batch, seq], &device);
        self.run_blocks(tokens, 0, &mask, keep_weights, None, None)
    }

    /// [`Llama::hidden_inner`] that also pushes the residual stream after each block onto
    /// `residuals`.
    pub(super) fn hidden_traced(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
        keep_weights: bool,
        residuals: Option<&mut Vec<Tensor<3>>>,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        let device = tokens.device();
        let [batch, seq] = tokens.dims();
        let mask = attention_mask(mode, padding, [batch, seq], &device);
        self.run_blocks(tokens, 0, &mask, keep_weights, None, residuals)
    }

    /// The final norm, which turns a residual stream into hidden states the head reads.
    pub(super) fn final_norm(&self, x: Tensor<3>) -> Tensor<3> {
        apply_rms_norm(&self.rms_f, x)
    }

    /// Logits `[batch, seq, vocab]` of `tokens` following the positions `cache` holds, which
    /// it then holds too (causal attention).
    pub fn forward_cached(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        let device = tokens.device();
        let [batch, seq] = tokens.dims();
        let past = cache.len;
        let mask = if seq == 1 {
            AttnMask::None
        } else if past == 0 {
            AttnMask::Causal
        } else {
            // Query i (position past + i) sees keys up to past + i.
            let total = past + seq;
            let blocked: Vec<bool> = (0..seq)
                .flat_map(|i| (0..total).map(move |j| j > past + i))
                .collect();
            AttnMask::Masked(Box::new(
                Tensor::<4, Bool>::from_data(TensorData::new(blocked, [1, 1, seq, total]), &device)
                    .expand([batch, 1, seq, total]),
            ))
        };
        let (hidden, _) = self.run_blocks(tokens, past, &mask, false, Some(cache), None);
        self.logits(hidden)
    }

    /// Every projection with its name in a block (`q`, `k`, `v`, `o`, `gate`, `up`, `down`).
    pub fn projections(&self, layer: usize) -> [(&'static str, &Proj); 7] {
        let b = &self.blocks[layer];
        [
            ("q", &b.attn.q),
            ("k", &b.attn.k),
            ("v", &b.attn.v),
            ("o", &b.attn.proj),
            ("gate", &b.mlp.gate),
            ("up", &b.mlp.up),
            ("down", &b.mlp.proj),
        ]
    }

    /// The base checkpoint of a model with adapters.
    pub fn lora_base(&self) -> Option<&std::path::Path> {
        self.lora_base.as_deref()
    }

    /// Blocks.
    pub fn n_layer(&self) -> usize {
        self.blocks.len()
    }
}
