//! The model's shape, its validation and the size estimates the studio shows.

pub use super::family::Family;
use serde::{Deserialize, Serialize};

/// A settings value that cannot train, with the field it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// Dotted field name, e.g. `model.n_head`; the studio shows the message next to that field.
    pub field: &'static str,
    /// What is wrong with the value.
    pub message: String,
}

impl SpecError {
    /// An error on `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Which transformer the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// nanoGPT's GPT-2: learned position embeddings, pre-LayerNorm blocks, a 4x GELU MLP and
    /// (optionally) biases.
    #[default]
    Classic,
    /// Rotary position embeddings (Su et al. 2021, "RoFormer"), RMSNorm (Zhang & Sennrich
    /// 2019) in place of LayerNorm, a SwiGLU MLP (Shazeer 2020, "GLU Variants Improve
    /// Transformer") of width 8/3 d rounded up to a multiple of 8, RMSNorm on each head's
    /// queries and keys before the rotation (QK-norm, as in the modded-nanogpt speedruns) and
    /// no biases.
    Modern,
}

impl Arch {
    /// Every architecture, in the order the studio lists them.
    pub const ALL: [Arch; 2] = [Arch::Classic, Arch::Modern];

    /// The name used in spec files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Classic => "classic",
            Arch::Modern => "modern",
        }
    }
}

/// The shape settings only a BERT encoder has (read from its `config.json` on import).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertShape {
    /// Epsilon of every LayerNorm (`layer_norm_eps`; BERT's is 1e-12).
    pub norm_eps: f64,
    /// Rows of the token-type embedding (`type_vocab_size`).
    pub type_vocab: usize,
    /// Hidden width of each block's MLP (`intermediate_size`); 0 for 4 x d_model.
    pub mlp_width: usize,
    /// Rows of the learned position table (`max_position_embeddings`); 0 for the context.
    /// The context (inputs are cut to it) may be shorter, as sentence-transformers'
    /// `max_seq_length` is.
    pub positions: usize,
}

impl Default for BertShape {
    /// BERT-base's settings.
    fn default() -> Self {
        Self {
            norm_eps: 1e-12,
            type_vocab: 2,
            mlp_width: 0,
            positions: 0,
        }
    }
}

/// The shape settings only the Llama family has (read from a `config.json` or GGUF header on
/// import; from scratch, the defaults follow SmolLM2's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlamaShape {
    /// Key/value heads of grouped-query attention (`num_key_value_heads`); 0 for as many as
    /// the query heads. Must divide `n_head`.
    pub n_kv_head: usize,
    /// Width of one attention head (`head_dim`); 0 for `d_model / n_head`.
    pub head_dim: usize,
    /// Hidden width of each block's SwiGLU MLP (`intermediate_size`); 0 for 8/3 d rounded up
    /// to a multiple of 8.
    pub mlp_width: usize,
    /// Base of the rotary frequencies (`rope_theta`).
    pub rope_theta: f64,
    /// Epsilon of every RMSNorm (`rms_norm_eps`).
    pub norm_eps: f64,
    /// RMSNorm on each head's queries and keys before the rotation (Qwen3).
    pub qk_norm: bool,
    /// Biases on the query, key and value projections (Qwen2, `attention_bias`).
    pub qkv_bias: bool,
}

impl Default for LlamaShape {
    fn default() -> Self {
        Self {
            n_kv_head: 0,
            head_dim: 0,
            mlp_width: 0,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            qk_norm: false,
            qkv_bias: false,
        }
    }
}

/// Low-rank adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models")
/// on a fine-tune's projection matrices: each targeted `W` computes `x W + (alpha / rank)
/// (dropout(x) A) B`, `A: [in, rank]`, `B: [rank, out]` (zero at the start), and only the
/// adapters train. Llama family only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoraSpec {
    /// Rank of each adapter.
    pub rank: usize,
    /// Scale numerator: adapters add `alpha / rank` times their product.
    pub alpha: f64,
    /// Projections that get adapters: any of q, k, v, o, gate, up, down.
    pub targets: Vec<String>,
    /// Dropout on the adapters' input.
    pub dropout: f64,
    /// The base checkpoint whose frozen weights the adapters modify (a run's checkpoints hold
    /// the adapters only).
    pub base: std::path::PathBuf,
}

impl Default for LoraSpec {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            targets: ["q", "k", "v", "o"].map(String::from).to_vec(),
            dropout: 0.0,
            base: std::path::PathBuf::new(),
        }
    }
}

/// Every projection LoRA can target, in the order of a block.
pub const LORA_TARGETS: [&str; 7] = ["q", "k", "v", "o", "gate", "up", "down"];

impl LoraSpec {
    /// Whether projection `name` (one of [`LORA_TARGETS`]) gets an adapter.
    pub fn targets(&self, name: &str) -> bool {
        self.targets.iter().any(|t| t == name)
    }

    /// Adapter parameters on a model of `spec`'s shape.
    pub fn n_params(&self, spec: &ModelSpec) -> usize {
        let d = spec.d_model;
        let (q, kv) = (spec.q_width(), spec.kv_width());
        let hidden = spec.mlp_hidden();
        let per_layer: usize = LORA_TARGETS
            .iter()
            .filter(|t| self.targets(t))
            .map(|t| match *t {
                "q" => d + q,
                "k" | "v" => d + kv,
                "o" => q + d,
                _ => d + hidden,
            })
            .sum();
        spec.n_layer * per_layer * self.rank
    }
}

/// The shape of a model: nanoGPT's `GPTConfig`, the family and, for GPT, the choice of
/// architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelSpec {
    /// Transformer blocks (`n_layer`).
    pub n_layer: usize,
    /// Attention heads per block (`n_head`); must divide `d_model`.
    pub n_head: usize,
    /// Embedding width (`n_embd`).
    pub d_model: usize,
    /// Context length in tokens (`block_size`).
    pub context: usize,
    /// Dropout probability on embeddings, attention weights and residual branches.
    pub dropout: f64,
    /// Share the token embedding with the output head.
    pub tie_weights: bool,
    /// Biases in linear layers and layer norms.
    pub bias: bool,
    /// Classes of the sentence-pair relation head on the first position (LinkBERT: 3); 0 for
    /// none. Set from the objective when a run starts.
    pub relation_classes: usize,
    /// The transformer: nanoGPT's classic GPT-2 or the modern variant (spec files without the
    /// field read as classic). GPT only.
    pub arch: Arch,
    /// The model family (spec files without the field read as `gpt`).
    pub family: Family,
    /// BERT's own settings (family `bert` only).
    pub bert: BertShape,
    /// Llama's own settings (family `llama` only).
    pub llama: LlamaShape,
    /// Low-rank adapters of a fine-tune (family `llama` only); `None` trains every weight.
    pub lora: Option<LoraSpec>,
}

impl Default for ModelSpec {
    /// nanoGPT's CPU configuration for Tiny Shakespeare.
    fn default() -> Self {
        Self {
            n_layer: 4,
            n_head: 4,
            d_model: 128,
            context: 64,
            dropout: 0.0,
            tie_weights: true,
            bias: false,
            relation_classes: 0,
            arch: Arch::Classic,
            family: Family::Gpt,
            bert: BertShape::default(),
            llama: LlamaShape::default(),
            lora: None,
        }
    }
}

impl ModelSpec {
    /// Every shape setting that cannot train, each naming its field.
    pub fn validate(&self) -> Vec<SpecError> {
        let mut errors = Vec::new();
        if self.n_layer == 0 {
            errors.push(SpecError::new("model.n_layer", "needs at least one layer"));
        }
        if self.n_head == 0 {
            errors.push(SpecError::new("model.n_head", "needs at least one head"));
        }
        if self.d_model == 0 {
            errors.push(SpecError::new("model.d_model", "width must be positive"));
        } else if self.n_head > 0 && !self.d_model.is_multiple_of(self.n_head) {
            errors.push(SpecError::new(
                "model.d_model",
                format!(
                    "width {} is not divisible by {} heads",
                    self.d_model, self.n_head
                ),
            ));
        }
        if self.context == 0 {
            errors.push(SpecError::new(
                "model.context",
                "context must be at least 1 token",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            errors.push(SpecError::new("model.dropout", "dropout must be in [0, 1)"));
        }
        if self.family == Family::Bert {
            if self.arch != Arch::Classic {
                errors.push(SpecError::new(
                    "model.arch",
                    "the bert family has one architecture (post-LayerNorm, learned positions); \
                     set model.arch to classic",
                ));
            }
            if self.bert.positions != 0 && self.bert.positions < self.context {
                errors.push(SpecError::new(
                    "model.bert.positions",
                    format!(
                        "{} learned positions cannot cover a context of {} tokens",
                        self.bert.positions, self.context
                    ),
                ));
            }
            if self.bert.norm_eps.is_nan() || self.bert.norm_eps <= 0.0 {
                errors.push(SpecError::new(
                    "model.bert.norm_eps",
                    "the LayerNorm epsilon must be positive",
                ));
            }
        }
        if self.family == Family::Llama {
            self.validate_llama(&mut errors);
        } else if self.lora.is_some() {
            errors.push(SpecError::new(
                "model.lora",
                "LoRA adapters are for the llama family; fine-tune this model's weights instead",
            ));
        }
        if self.arch == Arch::Modern && self.family == Family::Gpt {
            let head_dim = self.head_dim();
            if self.n_head > 0
                && self.d_model.is_multiple_of(self.n_head)
                && !head_dim.is_multiple_of(2)
            {
                errors.push(SpecError::new(
                    "model.arch",
                    format!(
                        "modern: rotary embeddings rotate pairs of dimensions, so the head width \
                         must be even (width {} / {} heads = {head_dim})",
                        self.d_model, self.n_head
                    ),
                ));
            }
            if self.bias {
                errors.push(SpecError::new(
                    "model.bias",
                    "the modern architecture has no biases (set bias to false, or model.arch to classic)",
                ));
            }
        }
        errors
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        if self.family == Family::Llama && self.llama.head_dim > 0 {
            return self.llama.head_dim;
        }
        self.d_model / self.n_head.max(1)
    }

    /// Key/value heads: grouped-query attention's (Llama), else one per query head.
    pub fn kv_heads(&self) -> usize {
        if self.family == Family::Llama && self.llama.n_kv_head > 0 {
            return self.llama.n_kv_head;
        }
        self.n_head
    }

    /// Width of the queries of all heads.
    pub fn q_width(&self) -> usize {
        self.n_head * self.head_dim()
    }

    /// Width of the keys (or values) of all key/value heads.
    pub fn kv_width(&self) -> usize {
        self.kv_heads() * self.head_dim()
    }

    /// Hidden width of a block's MLP: 4 d for classic; for modern's SwiGLU, which has three
    /// matrices instead of two, 8/3 d rounded up to a multiple of 8, so the parameter count
    /// stays close to classic's.
    pub fn mlp_hidden(&self) -> usize {
        if self.family == Family::Llama && self.llama.mlp_width > 0 {
            return self.llama.mlp_width;
        }
        if self.family == Family::Bert {
            return match self.bert.mlp_width {
                0 => 4 * self.d_model,
                width => width,
            };
        }
        match self.arch {
            Arch::Classic => 4 * self.d_model,
            Arch::Modern => (8 * self.d_model).div_ceil(3).div_ceil(8) * 8,
        }
    }

    /// Trainable parameters for a vocabulary of `vocab` tokens (`usize::MAX` when the count
    /// does not fit).
    pub fn n_params(&self, vocab: usize) -> usize {
        self.n_params_checked(vocab).unwrap_or(usize::MAX)
    }

    /// [`ModelSpec::n_params`], or `None` when the count overflows.
    fn n_params_checked(&self, vocab: usize) -> Option<usize> {
        if self.family == Family::Bert {
            return self.bert_params_checked(vocab);
        }
        if self.family == Family::Llama {
            return self.llama_params_checked(vocab);
        }
        if self.arch == Arch::Modern {
            return self.modern_params_checked(vocab);
        }
        let d = self.d_model;
        let b = usize::from(self.bias);
        let dd = d.checked_mul(d)?;
        let layer_norm = d.checked_add(b * d)?;
        // Attention: q, k, v and the output projection; MLP: up (4 d) and down.
        let attn = dd
            .checked_mul(4)?
            .checked_add(b.checked_mul(d)?.checked_mul(4)?)?;
        let mlp = dd
            .checked_mul(8)?
            .checked_add(b.checked_mul(d)?.checked_mul(5)?)?;
        let block = layer_norm
            .checked_mul(2)?
            .checked_add(attn)?
            .checked_add(mlp)?;
        let embed = vocab.checked_mul(d)?;
        let head = if self.tie_weights { 0 } else { embed };
        embed
            .checked_add(self.context.checked_mul(d)?)?
            .checked_add(self.n_layer.checked_mul(block)?)?
            .checked_add(layer_norm)?
            .checked_add(head)
    }

    /// [`ModelSpec::n_params_checked`] of the modern architecture: no position embedding, no
    /// biases, RMSNorm gains (two per block, one final, one for each of the queries and keys
    /// of a head), q, k, v and output projections and the three SwiGLU matrices.
    fn modern_params_checked(&self, vocab: usize) -> Option<usize> {
        let d = self.d_model;
        let attn = d.checked_mul(d)?.checked_mul(4)?;
        let mlp = d.checked_mul(self.mlp_hidden())?.checked_mul(3)?;
        let norms = d
            .checked_mul(2)?
            .checked_add(self.head_dim().checked_mul(2)?)?;
        let block = attn.checked_add(mlp)?.checked_add(norms)?;
        let embed = vocab.checked_mul(d)?;
        let head = if self.tie_weights { 0 } else { embed };
        embed
            .checked_add(self.n_layer.checked_mul(block)?)?
            .checked_add(d)?
            .checked_add(head)
    }

    /// [`ModelSpec::n_params_checked`] of Llama: q, k, v (grouped) and output projections,
    /// the SwiGLU MLP, two RMSNorm gains per block (and QK-norm gains), the final RMSNorm;
    /// adapters not counted (see [`LoraSpec::n_params`]).
    fn llama_params_checked(&self, vocab: usize) -> Option<usize> {
        let d = self.d_model;
        let (q, kv) = (self.q_width(), self.kv_width());
        let attn = d
            .checked_mul(q.checked_mul(2)?.checked_add(kv.checked_mul(2)?)?)?
            .checked_add(if self.llama.qkv_bias { q + 2 * kv } else { 0 })?;
        let mlp = d.checked_mul(self.mlp_hidden())?.checked_mul(3)?;
        let qk = if self.llama.qk_norm {
            2 * self.head_dim()
        } else {
            0
        };
        let block = attn.checked_add(mlp)?.checked_add(2 * d + qk)?;
        let embed = vocab.checked_mul(d)?;
        let head = if self.tie_weights { 0 } else { embed };
        embed
            .checked_add(self.n_layer.checked_mul(block)?)?
            .checked_add(d)?
            .checked_add(head)
    }

    /// Rows of the learned position table: the context, or more for an imported BERT.
    pub fn position_rows(&self) -> usize {
        if self.family == Family::Bert {
            self.bert.positions.max(self.context)
        } else {
            self.context
        }
    }

    /// [`ModelSpec::n_params_checked`] of BERT: token, position and token-type embeddings with
    /// their LayerNorm; per block q, k, v and output projections, two LayerNorms and the MLP,
    /// all with biases. The output head shares the token embedding.
    fn bert_params_checked(&self, vocab: usize) -> Option<usize> {
        let d = self.d_model;
        let hidden = self.mlp_hidden();
        let embed = vocab
            .checked_add(self.position_rows())?
            .checked_add(self.bert.type_vocab)?
            .checked_mul(d)?
            .checked_add(d.checked_mul(2)?)?;
        let attn = d.checked_mul(d)?.checked_add(d)?.checked_mul(4)?;
        let mlp = d
            .checked_mul(hidden)?
            .checked_mul(2)?
            .checked_add(hidden)?
            .checked_add(d)?;
        let block = attn.checked_add(mlp)?.checked_add(d.checked_mul(4)?)?;
        let relation = self
            .relation_classes
            .checked_mul(d)?
            .checked_add(self.relation_classes)?;
        embed
            .checked_add(self.n_layer.checked_mul(block)?)?
            .checked_add(relation)
    }

    /// The Llama family's rules: grouped heads that divide the query heads, an even head width
    /// for the rotation, positive epsilon and theta, and adapters that name known targets.
    fn validate_llama(&self, errors: &mut Vec<SpecError>) {
        let kv = self.kv_heads();
        if self.n_head > 0 && (kv == 0 || !self.n_head.is_multiple_of(kv)) {
            errors.push(SpecError::new(
                "model.llama.n_kv_head",
                format!(
                    "{kv} key/value heads must divide the {} query heads",
                    self.n_head
                ),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            errors.push(SpecError::new(
                "model.llama.head_dim",
                format!(
                    "rotary embeddings rotate pairs of dimensions, so the head width ({}) must be even",
                    self.head_dim()
                ),
            ));
        }
        if self.llama.norm_eps.is_nan() || self.llama.norm_eps <= 0.0 {
            errors.push(SpecError::new(
                "model.llama.norm_eps",
                "the RMSNorm epsilon must be positive",
            ));
        }
        if self.llama.rope_theta.is_nan() || self.llama.rope_theta <= 0.0 {
            errors.push(SpecError::new(
                "model.llama.rope_theta",
                "the rotary base must be positive",
            ));
        }
        if let Some(lora) = &self.lora {
            if lora.rank == 0 {
                errors.push(SpecError::new(
                    "model.lora.rank",
                    "the rank must be at least 1",
                ));
            }
            if !(lora.alpha.is_finite() && lora.alpha > 0.0) {
                errors.push(SpecError::new("model.lora.alpha", "alpha must be positive"));
            }
            if !(0.0..1.0).contains(&lora.dropout) {
                errors.push(SpecError::new(
                    "model.lora.dropout",
                    "dropout must be in [0, 1)",
                ));
            }
            if lora.targets.is_empty() {
                errors.push(SpecError::new(
                    "model.lora.targets",
                    "name at least one projection (q, k, v, o, gate, up, down)",
                ));
            }
            if let Some(bad) = lora
                .targets
                .iter()
                .find(|t| !LORA_TARGETS.contains(&t.as_str()))
            {
                errors.push(SpecError::new(
                    "model.lora.targets",
                    format!("unknown projection {bad:?}; expected q, k, v, o, gate, up or down"),
                ));
            }
        }
    }

    /// Rough peak training memory in bytes for `batch` rows: weights, AdamW's two moments and
    /// gradients (4 copies of f32 weights; with LoRA, one copy of the frozen weights and 4 of
    /// the adapters) plus the activations a backward pass keeps, with each head's context x
    /// context attention matrix when `keeps_attention` (decomposed attention; LibTorch's flash
    /// kernel keeps one log-sum-exp per query instead) (`usize::MAX` when the estimate does not
    /// fit).
    pub fn train_memory_bytes(&self, vocab: usize, batch: usize, keeps_attention: bool) -> usize {
        let estimate = || -> Option<usize> {
            // AdamW's moments and gradients for what trains: everything, or the adapters
            // alone beside one frozen copy of the weights.
            let n = self.n_params_checked(vocab)?;
            let weights = match &self.lora {
                Some(lora) => n
                    .checked_add(lora.n_params(self).checked_mul(4)?)?
                    .checked_mul(4)?,
                None => n.checked_mul(16)?,
            };
            let tokens = batch.checked_mul(self.context)?;
            // Per layer: about 16 d-wide activations per token, and the attention matrix per
            // head where the backward keeps it.
            let attention = if keeps_attention {
                batch
                    .checked_mul(self.n_head)?
                    .checked_mul(self.context)?
                    .checked_mul(self.context)?
                    .checked_mul(3)?
            } else {
                tokens.checked_mul(self.n_head)?
            };
            let per_layer = tokens
                .checked_mul(self.d_model)?
                .checked_mul(16)?
                .checked_add(attention)?;
            let logits = tokens.checked_mul(vocab)?.checked_mul(3)?;
            let activations = self.n_layer.checked_mul(per_layer)?.checked_add(logits)?;
            weights.checked_add(activations.checked_mul(4)?)
        };
        estimate().unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanogpt_cpu_shape_has_about_0_8m_params() {
        let n = ModelSpec::default().n_params(65);
        // nanoGPT reports 0.80M for this shape (its count leaves out position embeddings).
        assert!((795_000..=815_000).contains(&n), "got {n}");
    }

    #[test]
    fn width_not_divisible_by_heads_is_refused() {
        let spec = ModelSpec {
            d_model: 130,
            ..ModelSpec::default()
        };
        let errors = spec.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "model.d_model");
    }

    #[test]
    fn modern_keeps_the_parameter_count_close_to_classic() {
        let classic = ModelSpec::default();
        let modern = ModelSpec {
            arch: Arch::Modern,
            ..ModelSpec::default()
        };
        assert_eq!(modern.mlp_hidden(), 344);
        assert!(modern.validate().is_empty());
        let (c, m) = (classic.n_params(65), modern.n_params(65));
        // Modern drops the position embedding (64 x 128) and gains a little in the MLP.
        assert!(m < c && c - m < 10_000, "classic {c}, modern {m}");
    }

    #[test]
    fn modern_needs_an_even_head_width_and_no_biases() {
        let spec = ModelSpec {
            arch: Arch::Modern,
            d_model: 100,
            n_head: 4,
            bias: true,
            ..ModelSpec::default()
        };
        let fields: Vec<_> = spec.validate().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["model.arch", "model.bias"]);
        // Classic has no such rule.
        let classic = ModelSpec {
            arch: Arch::Classic,
            ..spec
        };
        assert!(classic.validate().is_empty());
    }

    #[test]
    fn specs_without_an_arch_read_as_classic() {
        let spec: ModelSpec = serde_json::from_str(r#"{"n_layer": 2}"#).unwrap();
        assert_eq!(spec.arch, Arch::Classic);
        let modern: ModelSpec = serde_json::from_str(r#"{"arch": "modern"}"#).unwrap();
        assert_eq!(modern.arch, Arch::Modern);
        assert_eq!(serde_json::to_value(Arch::Modern).unwrap(), "modern");
        assert_eq!(Arch::ALL.map(Arch::name), ["classic", "modern"]);
    }

    #[test]
    fn zero_context_is_refused() {
        let spec = ModelSpec {
            context: 0,
            ..ModelSpec::default()
        };
        assert!(spec.validate().iter().any(|e| e.field == "model.context"));
    }
}
