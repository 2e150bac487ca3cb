//! A GPT in Burn: token + position embeddings, pre-LayerNorm blocks of causal multi-head
//! attention and a 4x GELU MLP, a final LayerNorm and the LM head (optionally tied).
//!
//! Initialisation follows nanoGPT: weights ~ N(0, 0.02), residual projections
//! ~ N(0, 0.02 / sqrt(2 * n_layer)), biases zero.

use super::ModelSpec;
use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Gelu, Initializer, LayerNorm,
    LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor};

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

fn layer_norm(d: usize, bias: bool, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_bias(bias).init(device)
}

/// Causal multi-head self-attention with a fused q/k/v projection (nanoGPT's `c_attn`).
#[derive(Module, Debug)]
pub struct CausalSelfAttention {
    qkv: Linear,
    proj: Linear,
    resid_dropout: Dropout,
    attn_dropout: Dropout,
    n_head: usize,
}

impl CausalSelfAttention {
    fn new(spec: &ModelSpec, device: &Device) -> Self {
        let d = spec.d_model;
        let resid_std = 0.02 / ((2 * spec.n_layer) as f64).sqrt();
        Self {
            qkv: linear(d, 3 * d, spec.bias, 0.02, device),
            proj: linear(d, d, spec.bias, resid_std, device),
            resid_dropout: DropoutConfig::new(spec.dropout).init(),
            attn_dropout: DropoutConfig::new(spec.dropout).init(),
            n_head: spec.n_head,
        }
    }

    /// `x: [batch, seq, d_model]`; `mask: [batch or 1, 1, seq or 1, seq]`, true where a query
    /// may not look (future positions, padding).
    /// Returns the output and, when `keep_weights`, the attention weights `[batch, head, seq, seq]`.
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<4, Bool>>,
        keep_weights: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let [batch, seq, d_model] = x.dims();
        let head_dim = d_model / self.n_head;
        // [batch, seq, 3 * d_model] -> [batch, seq, 3, head, head_dim] -> [3, batch, head, seq, head_dim]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([batch, seq, 3, self.n_head, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let q: Tensor<4> = qkv.clone().narrow(0, 0, 1).squeeze_dim(0);
        let k: Tensor<4> = qkv.clone().narrow(0, 1, 1).squeeze_dim(0);
        let v: Tensor<4> = qkv.narrow(0, 2, 1).squeeze_dim(0);

        // [batch, head, seq, seq]
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
        let scores = match mask {
            Some(mask) => scores.mask_fill(
                mask.clone().expand([batch, self.n_head, seq, seq]),
                f32::NEG_INFINITY,
            ),
            None => scores,
        };
        let weights = softmax(scores, 3);
        let kept = keep_weights.then(|| weights.clone());
        let y = self.attn_dropout.forward(weights).matmul(v); // [batch, head, seq, head_dim]
        let y = y.swap_dims(1, 2).reshape([batch, seq, d_model]);
        (self.resid_dropout.forward(self.proj.forward(y)), kept)
    }
}

/// The MLP of a block: d -> 4d, GELU, 4d -> d.
#[derive(Module, Debug)]
pub struct Mlp {
    fc: Linear,
    proj: Linear,
    act: Gelu,
    dropout: Dropout,
}

impl Mlp {
    fn new(spec: &ModelSpec, device: &Device) -> Self {
        let d = spec.d_model;
        let resid_std = 0.02 / ((2 * spec.n_layer) as f64).sqrt();
        Self {
            fc: linear(d, 4 * d, spec.bias, 0.02, device),
            proj: linear(4 * d, d, spec.bias, resid_std, device),
            act: Gelu::new(),
            dropout: DropoutConfig::new(spec.dropout).init(),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.dropout
            .forward(self.proj.forward(self.act.forward(self.fc.forward(x))))
    }
}

/// A pre-LayerNorm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    ln_1: LayerNorm,
    attn: CausalSelfAttention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<&Tensor<4, Bool>>,
        keep_weights: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (attn, weights) = self
            .attn
            .forward(self.ln_1.forward(x.clone()), mask, keep_weights);
        let x = x + attn;
        let x = x.clone() + self.mlp.forward(self.ln_2.forward(x));
        (x, weights)
    }
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

/// The GPT language model.
#[derive(Module, Debug)]
pub struct Gpt {
    tok_emb: Embedding,
    pos_emb: Embedding,
    dropout: Dropout,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// `None` when the head shares the token embedding.
    lm_head: Option<Linear>,
    /// The relation classifier on the first position's state (LinkBERT).
    relation_head: Option<Linear>,
    context: usize,
    vocab: usize,
}

impl Gpt {
    /// A freshly initialised model for `vocab` tokens. `spec` must be valid.
    pub fn new(spec: &ModelSpec, vocab: usize, device: &Device) -> Self {
        let emb_init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Self {
            tok_emb: EmbeddingConfig::new(vocab, spec.d_model)
                .with_initializer(emb_init.clone())
                .init(device),
            pos_emb: EmbeddingConfig::new(spec.context, spec.d_model)
                .with_initializer(emb_init)
                .init(device),
            dropout: DropoutConfig::new(spec.dropout).init(),
            blocks: (0..spec.n_layer)
                .map(|_| Block {
                    ln_1: layer_norm(spec.d_model, spec.bias, device),
                    attn: CausalSelfAttention::new(spec, device),
                    ln_2: layer_norm(spec.d_model, spec.bias, device),
                    mlp: Mlp::new(spec, device),
                })
                .collect(),
            ln_f: layer_norm(spec.d_model, spec.bias, device),
            lm_head: (!spec.tie_weights).then(|| linear(spec.d_model, vocab, false, 0.02, device)),
            relation_head: (spec.relation_classes > 0)
                .then(|| linear(spec.d_model, spec.relation_classes, true, 0.02, device)),
            context: spec.context,
            vocab,
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

    /// `tokens: [batch, seq]` with `seq <= context`; returns logits `[batch, seq, vocab]` of
    /// causal (next-token) attention.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.logits(self.hidden(tokens, AttentionMode::Causal, None))
    }

    /// The forward pass that also keeps every layer's attention weights. Used on probe inputs
    /// only, so training steps never pay for the copies.
    pub fn forward_with_attention(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        let (hidden, maps) = self.hidden_inner(tokens, mode, None, true);
        (self.logits(hidden), maps)
    }

    /// The final hidden states `[batch, seq, d_model]` (after the last LayerNorm).
    /// `padding: [batch, seq]` marks padded positions, which no query attends to.
    pub fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        self.hidden_inner(tokens, mode, padding, false).0
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
        let head = self.relation_head.as_ref()?;
        let [batch, _, d_model] = hidden.dims();
        Some(head.forward(hidden.slice([0..batch, 0..1]).reshape([batch, d_model])))
    }

    fn hidden_inner(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
        keep_weights: bool,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        let device = tokens.device();
        let [batch, seq] = tokens.dims();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        let mut x = self
            .dropout
            .forward(self.tok_emb.forward(tokens) + self.pos_emb.forward(positions));
        // True where a query may not look: future positions (causal) and padded keys.
        let causal = match mode {
            AttentionMode::Causal => {
                Some(Tensor::<2, Bool>::tril_mask([seq, seq], 0, &device).reshape([1, 1, seq, seq]))
            }
            AttentionMode::Bidirectional => None,
        };
        let padded = padding.map(|p| p.reshape([batch, 1, 1, seq]));
        let mask = match (causal, padded) {
            (Some(c), Some(p)) => Some(
                c.expand([batch, 1, seq, seq])
                    .bool_or(p.expand([batch, 1, seq, seq])),
            ),
            (Some(c), None) => Some(c),
            (None, Some(p)) => Some(p),
            (None, None) => None,
        };
        let mut maps = Vec::new();
        for block in &self.blocks {
            let (next, weights) = block.forward(x, mask.as_ref(), keep_weights);
            x = next;
            maps.extend(weights);
        }
        (self.ln_f.forward(x), maps)
    }

    /// Runs `tokens` (one sequence) and returns its attention maps as plain numbers.
    pub fn capture_attention(
        &self,
        tokens: &[u32],
        mode: AttentionMode,
        device: &Device,
    ) -> AttentionMaps {
        let seq = tokens.len().min(self.context);
        let ids: Vec<i64> = tokens[tokens.len() - seq..]
            .iter()
            .map(|&t| i64::from(t))
            .collect();
        let input =
            Tensor::<2, Int>::from_data(burn::tensor::TensorData::new(ids, [1, seq]), device);
        let model = self.valid();
        let (_, maps) = model.forward_with_attention(input, mode);
        let n_layer = maps.len();
        let n_head = maps.first().map(|m| m.dims()[1]).unwrap_or(0);
        let mut weights = Vec::with_capacity(n_layer * n_head * seq * seq);
        for map in maps {
            weights.extend(
                map.into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap_or_default(),
            );
        }
        AttentionMaps {
            n_layer,
            n_head,
            seq,
            weights,
        }
    }
}
