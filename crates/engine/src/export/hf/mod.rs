//! Hearth's weights in Hugging Face layouts, both ways.
//!
//! Hearth's GPT is GPT-2's architecture: pre-LayerNorm blocks (epsilon 1e-5), a fused q/k/v
//! projection whose output is `[q | k | v]` with heads in order, attention scaled by
//! `1/sqrt(head_dim)`, a 4x MLP with exact (erf) GELU, a final LayerNorm and an optional tied
//! head. Burn keeps linear weights as `[in, out]`, which is GPT-2's `Conv1D` layout; the
//! untied head is a `nn.Linear` in GPT-2 (`[out, in]`) and is transposed. A model trained
//! without biases is written with zero biases.
//!
//! Encoders (bidirectional attention) are written as MegatronBERT, which computes the same
//! thing: no LayerNorm on the embeddings, a LayerNorm before attention and before the MLP, a
//! final LayerNorm; its token-type embeddings are zero and its positions absolute. Its
//! `nn.Linear` weights are `[out, in]`, so every matrix is transposed and q/k/v are split.
//!
//! `MegatronBertForMaskedLM` puts a transform (dense, GELU, LayerNorm) between the final
//! LayerNorm and the output matrix, which Hearth's masked models do not have. The export makes
//! it an identity to float precision: the dense layer maps each feature `h = g * n + b` of the
//! final LayerNorm back to `M * n` with `M` tiny ([`MLM_HEAD_SCALE`]), where GELU is exactly
//! `x / 2` in `f32` and the transform's LayerNorm, its variance far below epsilon, only centres
//! and scales; its weight `g * 2 * sqrt(eps) / M` and bias `b` give back `h`. (A final
//! LayerNorm weight of exactly zero would lose its feature's share of the centring.)

pub mod bert;
mod config;
pub mod llama;
mod names;

pub use config::{Gpt2Config, generation_config, gpt2_config, megatron_config, pooling_config};
use names::pooler_tensors;
pub use names::{gpt2_tensors, masked_head_tensors, megatron_tensors, params_from_gpt2};

use super::tokenizer_json::HfTokenizer;
use super::weights::{Array, write_safetensors};
use super::{HfError, write_json};
use crate::eval::Pooling;
use crate::model::{Arch, ModelSpec};
use crate::spec::RunSpec;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The `transformers` class of exported decoders.
pub const GPT2_CLASS: &str = "GPT2LMHeadModel";
/// The `transformers` class of exported masked-token encoders.
pub const MASKED_CLASS: &str = "MegatronBertForMaskedLM";
/// The `transformers` class of exported embedding encoders.
pub const ENCODER_CLASS: &str = "MegatronBertModel";
/// Hearth's LayerNorm epsilon (Burn's default, GPT-2's).
pub const LAYER_NORM_EPS: f64 = 1e-5;
/// `M` of the masked-LM head transform: small enough that `f32` GELU is `x / 2` on `M * n`.
pub const MLM_HEAD_SCALE: f64 = 1e-9;
/// Token types of exported encoders (all zero; two so pair inputs index in range).
const TYPE_VOCAB: usize = 2;

/// Tensors by name.
pub(crate) type Tensors = BTreeMap<String, Array>;

/// Fails unless `spec` is the classic architecture: GPT-2 and Megatron-BERT have learned
/// position embeddings, LayerNorm and a GELU MLP, so a modern model's weights have no place in
/// them. `path` is the file or folder the error is reported on.
pub fn classic_only(spec: &ModelSpec, path: &Path) -> Result<(), HfError> {
    match spec.arch {
        Arch::Classic => Ok(()),
        arch => Err(HfError::Unsupported {
            path: path.to_path_buf(),
            key: "model.arch".to_string(),
            value: arch.name().to_string(),
            reason: "the Hugging Face export writes GPT-2 and Megatron-BERT models, which have \
                     the classic architecture (learned positions, LayerNorm, GELU MLP); only \
                     model.arch = classic runs can be exported"
                .to_string(),
        }),
    }
}

/// `Err` naming `objective.lexical` in `path` when the run's embeddings carry a lexical
/// channel: sentence-transformers pools the model's states and has no module that adds hashed
/// character n-gram counts, so an exported encoder would embed differently from the run.
pub fn without_lexical(spec: &RunSpec, path: &Path) -> Result<(), HfError> {
    if !spec.objective.uses_embeddings() || spec.objective.lexical <= 0.0 {
        return Ok(());
    }
    Err(HfError::Unsupported {
        path: path.to_path_buf(),
        key: "objective.lexical".to_string(),
        value: spec.objective.lexical.to_string(),
        reason: "the run's embeddings end with a lexical channel (hashed character n-gram \
                 counts) that sentence-transformers cannot compute; only runs trained with \
                 objective.lexical = 0 (`--lexical 0`) can be exported"
            .to_string(),
    })
}

pub(crate) const SAFETENSORS_METADATA: &[(&str, &str)] = &[("format", "pt")];

/// Writes a decoder folder: `config.json`, `generation_config.json`, `model.safetensors` and
/// the tokenizer files.
pub fn write_decoder(
    dir: &Path,
    spec: &ModelSpec,
    params: &Tensors,
    tokenizer: &HfTokenizer,
    run: &RunSpec,
) -> Result<(), HfError> {
    classic_only(spec, dir)?;
    let tensors = gpt2_tensors(params, spec)?;
    write_json(
        &dir.join("generation_config.json"),
        &generation_config(tokenizer, run.train.sample_tokens),
    )?;
    let config = gpt2_config(spec, tokenizer);
    write_model_folder(dir, &tensors, &config, tokenizer, spec)
}

/// Writes a model folder's weights, `config.json` and tokenizer files.
fn write_model_folder(
    dir: &Path,
    tensors: &Tensors,
    config: &Value,
    tokenizer: &HfTokenizer,
    spec: &ModelSpec,
) -> Result<(), HfError> {
    write_safetensors(
        &dir.join("model.safetensors"),
        tensors,
        SAFETENSORS_METADATA,
    )?;
    write_json(&dir.join("config.json"), config)?;
    tokenizer.write(dir, spec.context)
}

/// Writes a masked-token encoder folder (`MegatronBertForMaskedLM`).
pub fn write_masked_encoder(
    dir: &Path,
    spec: &ModelSpec,
    params: &Tensors,
    tokenizer: &HfTokenizer,
) -> Result<(), HfError> {
    classic_only(spec, dir)?;
    let mut tensors = megatron_tensors(params, spec, "bert.")?;
    tensors.extend(masked_head_tensors(params, spec)?);
    let config = megatron_config(spec, tokenizer, MASKED_CLASS);
    write_model_folder(dir, &tensors, &config, tokenizer, spec)
}

/// Writes an embedding encoder folder: `MegatronBertModel` and the sentence-transformers
/// modules that pool (as the run pools) and normalise its token states.
pub fn write_embedding_encoder(
    dir: &Path,
    spec: &ModelSpec,
    params: &Tensors,
    tokenizer: &HfTokenizer,
    pooling: Pooling,
) -> Result<(), HfError> {
    classic_only(spec, dir)?;
    // Texts of unequal length are padded: a tokenizer without `[pad]` gets one, embedded as
    // zeros (padded positions are masked).
    let tokenizer = &tokenizer.with_pad()?;
    let mut tensors = megatron_tensors(params, spec, "")?;
    let word = "embeddings.word_embeddings.weight";
    if let Some(emb) = tensors.get_mut(word) {
        let d = spec.d_model;
        emb.values.resize(tokenizer.vocab_size * d, 0.0);
        emb.shape = vec![tokenizer.vocab_size, d];
    }
    tensors.extend(pooler_tensors(spec.d_model));
    let config = megatron_config(spec, tokenizer, ENCODER_CLASS);
    write_model_folder(dir, &tensors, &config, tokenizer, spec)?;
    write_sentence_transformers(dir, spec, pooling)
}

/// `modules.json` and the module folders: the transformer, pooling, then normalisation to unit
/// length (Hearth's embeddings are normalised).
pub(crate) fn write_sentence_transformers(
    dir: &Path,
    spec: &ModelSpec,
    pooling: Pooling,
) -> Result<(), HfError> {
    write_json(
        &dir.join("modules.json"),
        &json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]),
    )?;
    write_json(
        &dir.join("sentence_bert_config.json"),
        &json!({"max_seq_length": spec.context, "do_lower_case": false}),
    )?;
    write_json(
        &dir.join("config_sentence_transformers.json"),
        &json!({"prompts": {}, "default_prompt_name": null, "similarity_fn_name": "cosine"}),
    )?;
    let pooling_dir = dir.join("1_Pooling");
    super::create_dir(&pooling_dir)?;
    write_json(
        &pooling_dir.join("config.json"),
        &pooling_config(spec.d_model, pooling),
    )?;
    super::create_dir(&dir.join("2_Normalize"))
}
