//! The transformer families, their configuration and the attention maps they capture.
//!
//! A run's model is a [`Model`]: one variant per family ([`Family`]), each in its own module
//! (`gpt`, `bert`). Everything outside this folder (objectives, evaluation, the worker,
//! export) works on [`Model`] and asks it for hidden states, logits and attention; a family
//! adds a module, a variant here and one line in [`family::FAMILIES`].

pub mod bert;
pub mod config;
pub mod family;
mod flex_ops;
pub mod fused;
pub mod gpt;
pub mod llama;
mod lora_file;
pub use lora_file::adapter_file_reads;

pub use bert::Bert;
pub use config::{Arch, BertShape, LORA_TARGETS, LlamaShape, LoraSpec, ModelSpec, SpecError};
pub use family::{FAMILIES, Family, FamilyInfo};
pub use gpt::{AttentionMaps, AttentionMode, Gpt};
pub use llama::{KvCache, Llama};

use burn::module::Module;
use burn::store::RecordError;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use std::path::Path;

/// A run's model, of any family.
#[derive(Module, Debug)]
pub enum Model {
    /// Hearth's GPT (classic or modern).
    Gpt(Gpt),
    /// A BERT encoder.
    Bert(Bert),
    /// A Llama-family decoder.
    Llama(Llama),
}

/// Calls the same method on whichever family the model is.
macro_rules! each_family {
    ($model:expr, $m:ident => $body:expr) => {
        match $model {
            Model::Gpt($m) => $body,
            Model::Bert($m) => $body,
            Model::Llama($m) => $body,
        }
    };
}

/// Whether a module visitor's `enter_module` / `exit_module` call is the family wrapper
/// ([`Model`]'s variant), which parameter paths leave out: `blocks.0.attn.qkv.weight`, not
/// `Gpt.blocks.0.attn.qkv.weight`.
pub fn is_family_level(container_type: &str) -> bool {
    container_type == "Enum:Model"
}

/// Where a module visitor or mapper is in the model: the names of the modules entered, without
/// the family level, so parameter paths read `blocks.0.attn.qkv.weight` whatever the family.
/// Visitors that need a parameter's path keep one and call [`ParamPath::enter`] and
/// [`ParamPath::exit`] from `enter_module` and `exit_module`.
#[derive(Debug, Clone, Default)]
pub struct ParamPath(Vec<String>);

impl ParamPath {
    /// Entering the submodule `name` of type `container_type`.
    pub fn enter(&mut self, name: &str, container_type: &str) {
        if !is_family_level(container_type) {
            self.0.push(name.to_string());
        }
    }

    /// Leaving a submodule of type `container_type`.
    pub fn exit(&mut self, container_type: &str) {
        if !is_family_level(container_type) {
            self.0.pop();
        }
    }

    /// The names, outermost first.
    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The dotted path (`blocks.0.attn.qkv`).
    pub fn joined(&self) -> String {
        self.0.join(".")
    }
}

impl Model {
    /// A freshly initialised model of `spec`'s family for `vocab` tokens. `spec` must be
    /// valid.
    pub fn new(spec: &ModelSpec, vocab: usize, device: &Device) -> Self {
        match spec.family {
            Family::Gpt => Model::Gpt(Gpt::new(spec, vocab, device)),
            Family::Bert => Model::Bert(Bert::new(spec, vocab, device)),
            Family::Llama => Model::Llama(Llama::new(spec, vocab, device)),
        }
    }

    /// The model's family.
    pub fn family(&self) -> Family {
        match self {
            Model::Gpt(_) => Family::Gpt,
            Model::Bert(_) => Family::Bert,
            Model::Llama(_) => Family::Llama,
        }
    }

    /// The GPT architecture (BERT counts as classic: learned positions, LayerNorm, GELU;
    /// Llama as modern: rotary, RMSNorm, SwiGLU).
    pub fn arch(&self) -> Arch {
        match self {
            Model::Gpt(gpt) => gpt.arch(),
            Model::Bert(_) => Arch::Classic,
            Model::Llama(_) => Arch::Modern,
        }
    }

    /// Whether the model carries LoRA adapters (its checkpoints hold the adapters only).
    pub fn has_lora(&self) -> bool {
        matches!(self, Model::Llama(m) if m.has_lora())
    }

    /// Logits `[batch, seq, vocab]` of `tokens` following the positions `cache` holds (which
    /// then holds them too); `None` for a family without a cache (generation re-reads the
    /// window instead).
    pub fn forward_cached(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Option<Tensor<3>> {
        match self {
            Model::Llama(m) => Some(m.forward_cached(tokens, cache)),
            _ => None,
        }
    }

    /// The token embedding matrix `[vocab, d_model]`.
    pub fn token_embedding(&self) -> Tensor<2> {
        each_family!(self, m => m.token_embedding())
    }

    /// Tokens the model embeds and predicts.
    pub fn vocab(&self) -> usize {
        each_family!(self, m => m.vocab())
    }

    /// The longest input it takes, in tokens.
    pub fn context(&self) -> usize {
        each_family!(self, m => m.context())
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
        let (hidden, maps) = each_family!(self, m => m.hidden_inner(tokens, mode, None, true));
        (self.logits(hidden), maps)
    }

    /// The forward pass on `tokens` that keeps every layer's attention weights and the
    /// residual stream after each block: `(logits, attention maps, residuals)`. Used on
    /// probe inputs only.
    pub fn forward_traced(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
    ) -> (Tensor<3>, Vec<Tensor<4>>, Vec<Tensor<3>>) {
        let mut residuals = Vec::new();
        let (hidden, maps) = each_family!(
            self,
            m => m.hidden_traced(tokens, mode, None, true, Some(&mut residuals))
        );
        (self.logits(hidden), maps, residuals)
    }

    /// The logits a residual stream `[batch, seq, d_model]` read through the final norm and
    /// the output head would give (the logit lens; BERT's blocks end normalised already).
    pub fn lens_logits(&self, residual: Tensor<3>) -> Tensor<3> {
        match self {
            Model::Gpt(m) => m.logits(m.final_norm(residual)),
            Model::Llama(m) => m.logits(m.final_norm(residual)),
            Model::Bert(m) => m.logits(residual),
        }
    }

    /// The final hidden states `[batch, seq, d_model]`. `padding: [batch, seq]` marks padded
    /// positions, which no query attends to.
    pub fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        each_family!(self, m => m.hidden_inner(tokens, mode, padding, false).0)
    }

    /// Output logits `[batch, seq, vocab]` from hidden states.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        each_family!(self, m => m.logits(hidden))
    }

    /// Relation logits `[batch, classes]` from the first position of `hidden`; `None` without
    /// a relation head.
    pub fn relation_logits(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        each_family!(self, m => m.relation_logits(hidden))
    }

    /// Runs `tokens` (one sequence) and returns its attention maps as plain numbers.
    pub fn capture_attention(
        &self,
        tokens: &[u32],
        mode: AttentionMode,
        device: &Device,
    ) -> AttentionMaps {
        let seq = tokens.len().min(self.context());
        let ids: Vec<i64> = tokens[tokens.len() - seq..]
            .iter()
            .map(|&t| i64::from(t))
            .collect();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq]), device);
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

    /// Saves the weights to a burnpack file. The file holds the family's own parameters
    /// (no variant name in their paths), so a checkpoint reads back into the family its
    /// run's spec names.
    pub fn save_file<P: AsRef<Path>>(self, path: P) -> Result<(), RecordError> {
        if self.has_lora() {
            return lora_file::save_adapters(&self, path.as_ref());
        }
        each_family!(self, m => m.save_file(path))
    }

    /// [`Model::try_load_file`] that panics when the file does not load (tests and tools).
    pub fn load_file<P: AsRef<Path>>(self, path: P) -> Self {
        let path = path.as_ref();
        self.try_load_file(path)
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
    }

    /// Loads the weights of a file [`Model::save_file`] wrote into this model.
    /// For a model with adapters: its frozen weights read from its base checkpoint
    /// ([`LoraSpec::base`]), the adapters kept as they are (fresh, when a fine-tune starts).
    /// Other models are returned as they are.
    pub fn load_lora_base(self) -> Result<Self, RecordError> {
        match self {
            Model::Llama(m) if m.has_lora() => lora_file::load_base(m).map(Model::Llama),
            other => Ok(other),
        }
    }

    /// A model with adapters reads its frozen weights from its base checkpoint
    /// ([`LoraSpec::base`]) and its adapters from `path`.
    pub fn try_load_file<P: AsRef<Path>>(self, path: P) -> Result<Self, RecordError> {
        match self {
            Model::Gpt(m) => m.try_load_file(path).map(Model::Gpt),
            Model::Bert(m) => m.try_load_file(path).map(Model::Bert),
            Model::Llama(m) if m.has_lora() => lora_file::load_adapters(m, path.as_ref()),
            Model::Llama(m) => m.try_load_file(path).map(Model::Llama),
        }
    }
}
