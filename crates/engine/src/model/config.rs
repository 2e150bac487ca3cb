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
        if self.arch == Arch::Modern {
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
        self.d_model / self.n_head.max(1)
    }

    /// Hidden width of a block's MLP: 4 d for classic; for modern's SwiGLU, which has three
    /// matrices instead of two, 8/3 d rounded up to a multiple of 8, so the parameter count
    /// stays close to classic's.
    pub fn mlp_hidden(&self) -> usize {
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

    /// Rough peak training memory in bytes for `batch` rows: weights, AdamW's two moments and
    /// gradients (4 copies of f32 weights) plus the activations a backward pass keeps
    /// (`usize::MAX` when the estimate does not fit).
    pub fn train_memory_bytes(&self, vocab: usize, batch: usize) -> usize {
        let estimate = || -> Option<usize> {
            let weights = self.n_params_checked(vocab)?.checked_mul(4)?;
            let tokens = batch.checked_mul(self.context)?;
            // Per layer: about 16 d-wide activations per token and the attention matrix per
            // head.
            let per_layer = tokens
                .checked_mul(self.d_model)?
                .checked_mul(16)?
                .checked_add(
                    batch
                        .checked_mul(self.n_head)?
                        .checked_mul(self.context)?
                        .checked_mul(self.context)?
                        .checked_mul(3)?,
                )?;
            let logits = tokens.checked_mul(vocab)?.checked_mul(3)?;
            let activations = self.n_layer.checked_mul(per_layer)?.checked_add(logits)?;
            weights
                .checked_mul(4)?
                .checked_add(activations.checked_mul(4)?)
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
