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

type Tensors = BTreeMap<String, Array>;

/// The parameters of a Hearth model, by [`super::weights::model_params`] path.
struct Params<'a> {
    map: &'a Tensors,
}

impl Params<'_> {
    fn get(&self, name: &str) -> Result<&Array, HfError> {
        self.map.get(name).ok_or_else(|| {
            HfError::invalid(
                Path::new("model.safetensors"),
                format!("the checkpoint has no parameter {name}"),
            )
        })
    }

    /// A LayerNorm's weight and bias (zeros when the model has none).
    fn layer_norm(&self, name: &str) -> Result<(Array, Array), HfError> {
        let weight = self.get(&format!("{name}.gamma"))?.clone();
        let bias = self
            .map
            .get(&format!("{name}.beta"))
            .cloned()
            .unwrap_or_else(|| Array::zeros(weight.shape.clone()));
        Ok((weight, bias))
    }

    /// A linear layer's `[in, out]` weight and its bias (zeros when the model has none).
    fn linear(&self, name: &str) -> Result<(Array, Array), HfError> {
        let weight = self.get(&format!("{name}.weight"))?.clone();
        let bias = self
            .map
            .get(&format!("{name}.bias"))
            .cloned()
            .unwrap_or_else(|| Array::zeros(vec![weight.shape[1]]));
        Ok((weight, bias))
    }
}

fn put(out: &mut Tensors, name: String, array: Array) {
    out.insert(name, array);
}

/// GPT-2 (`GPT2LMHeadModel`) tensors of a Hearth model.
pub fn gpt2_tensors(params: &Tensors, spec: &ModelSpec) -> Result<Tensors, HfError> {
    let p = Params { map: params };
    let mut out = Tensors::new();
    put(
        &mut out,
        "transformer.wte.weight".into(),
        p.get("tok_emb.weight")?.clone(),
    );
    put(
        &mut out,
        "transformer.wpe.weight".into(),
        p.get("pos_emb.weight")?.clone(),
    );
    let pair = |out: &mut Tensors, prefix: String, (w, b): (Array, Array)| {
        put(out, format!("{prefix}.weight"), w);
        put(out, format!("{prefix}.bias"), b);
    };
    for i in 0..spec.n_layer {
        let (b, h) = (format!("blocks.{i}"), format!("transformer.h.{i}"));
        pair(
            &mut out,
            format!("{h}.ln_1"),
            p.layer_norm(&format!("{b}.ln_1"))?,
        );
        pair(
            &mut out,
            format!("{h}.attn.c_attn"),
            p.linear(&format!("{b}.attn.qkv"))?,
        );
        pair(
            &mut out,
            format!("{h}.attn.c_proj"),
            p.linear(&format!("{b}.attn.proj"))?,
        );
        pair(
            &mut out,
            format!("{h}.ln_2"),
            p.layer_norm(&format!("{b}.ln_2"))?,
        );
        pair(
            &mut out,
            format!("{h}.mlp.c_fc"),
            p.linear(&format!("{b}.mlp.fc"))?,
        );
        pair(
            &mut out,
            format!("{h}.mlp.c_proj"),
            p.linear(&format!("{b}.mlp.proj"))?,
        );
    }
    pair(&mut out, "transformer.ln_f".into(), p.layer_norm("ln_f")?);
    if !spec.tie_weights {
        put(
            &mut out,
            "lm_head.weight".into(),
            p.get("lm_head.weight")?.transpose(),
        );
    }
    Ok(out)
}

/// MegatronBERT encoder tensors of a Hearth model, each name after `prefix` (`bert.` inside
/// a model with a head, empty for `MegatronBertModel`).
pub fn megatron_tensors(
    params: &Tensors,
    spec: &ModelSpec,
    prefix: &str,
) -> Result<Tensors, HfError> {
    let p = Params { map: params };
    let d = spec.d_model;
    let mut out = Tensors::new();
    let e = format!("{prefix}embeddings");
    put(
        &mut out,
        format!("{e}.word_embeddings.weight"),
        p.get("tok_emb.weight")?.clone(),
    );
    put(
        &mut out,
        format!("{e}.position_embeddings.weight"),
        p.get("pos_emb.weight")?.clone(),
    );
    put(
        &mut out,
        format!("{e}.token_type_embeddings.weight"),
        Array::zeros(vec![TYPE_VOCAB, d]),
    );
    // `nn.Linear` keeps `[out, in]`: Burn's `[in, out]` transposed.
    let linear = |out: &mut Tensors, name: String, (w, b): (Array, Array)| {
        put(out, format!("{name}.weight"), w.transpose());
        put(out, format!("{name}.bias"), b);
    };
    let norm = |out: &mut Tensors, name: String, (w, b): (Array, Array)| {
        put(out, format!("{name}.weight"), w);
        put(out, format!("{name}.bias"), b);
    };
    for i in 0..spec.n_layer {
        let (b, l) = (format!("blocks.{i}"), format!("{prefix}encoder.layer.{i}"));
        norm(
            &mut out,
            format!("{l}.attention.ln"),
            p.layer_norm(&format!("{b}.ln_1"))?,
        );
        let (w, bias) = p.linear(&format!("{b}.attn.qkv"))?;
        for (k, name) in ["query", "key", "value"].iter().enumerate() {
            linear(
                &mut out,
                format!("{l}.attention.self.{name}"),
                (w.columns(k * d, d), bias.range(k * d, d)),
            );
        }
        linear(
            &mut out,
            format!("{l}.attention.output.dense"),
            p.linear(&format!("{b}.attn.proj"))?,
        );
        norm(
            &mut out,
            format!("{l}.ln"),
            p.layer_norm(&format!("{b}.ln_2"))?,
        );
        linear(
            &mut out,
            format!("{l}.intermediate.dense"),
            p.linear(&format!("{b}.mlp.fc"))?,
        );
        linear(
            &mut out,
            format!("{l}.output.dense"),
            p.linear(&format!("{b}.mlp.proj"))?,
        );
    }
    norm(
        &mut out,
        format!("{prefix}encoder.ln"),
        p.layer_norm("ln_f")?,
    );
    Ok(out)
}

/// `MegatronBertModel`'s pooler (unused by Hearth's pooling): identity weights, zero bias.
fn pooler_tensors(d: usize) -> Tensors {
    let mut identity = Array::zeros(vec![d, d]);
    for i in 0..d {
        identity.values[i * d + i] = 1.0;
    }
    let mut out = Tensors::new();
    put(&mut out, "pooler.dense.weight".into(), identity);
    put(&mut out, "pooler.dense.bias".into(), Array::zeros(vec![d]));
    out
}

/// `MegatronBertForMaskedLM`'s head (`cls.predictions.*`) made an identity before the output
/// matrix (see the module documentation).
pub fn masked_head_tensors(params: &Tensors, spec: &ModelSpec) -> Result<Tensors, HfError> {
    let p = Params { map: params };
    let d = spec.d_model;
    let (gamma, beta) = p.layer_norm("ln_f")?;
    let m = MLM_HEAD_SCALE;
    let restore = 2.0 * LAYER_NORM_EPS.sqrt() / m;
    let mut dense = Array::zeros(vec![d, d]);
    let mut dense_bias = Array::zeros(vec![d]);
    let mut ln_weight = Array::zeros(vec![d]);
    for i in 0..d {
        let g = f64::from(gamma.values[i]);
        if g != 0.0 {
            dense.values[i * d + i] = (m / g) as f32;
            dense_bias.values[i] = (-m * f64::from(beta.values[i]) / g) as f32;
            ln_weight.values[i] = (g * restore) as f32;
        }
    }
    let mut out = Tensors::new();
    let t = "cls.predictions.transform";
    put(&mut out, format!("{t}.dense.weight"), dense);
    put(&mut out, format!("{t}.dense.bias"), dense_bias);
    put(&mut out, format!("{t}.LayerNorm.weight"), ln_weight);
    put(&mut out, format!("{t}.LayerNorm.bias"), beta);
    // The output bias (zero: Hearth's head has none) under both of its names; transformers
    // ties `decoder.bias` to `bias` only along with tied embeddings.
    let vocab = p.get("tok_emb.weight")?.shape[0];
    for name in ["cls.predictions.bias", "cls.predictions.decoder.bias"] {
        put(&mut out, name.into(), Array::zeros(vec![vocab]));
    }
    if !spec.tie_weights {
        put(
            &mut out,
            "cls.predictions.decoder.weight".into(),
            p.get("lm_head.weight")?.transpose(),
        );
    }
    Ok(out)
}

/// `config.json` of an exported decoder.
pub fn gpt2_config(spec: &ModelSpec, tokenizer: &HfTokenizer) -> Value {
    let (bos, eos, pad) = tokenizer.bos_eos_pad();
    json!({
        "architectures": [GPT2_CLASS],
        "model_type": "gpt2",
        "vocab_size": tokenizer.vocab_size,
        "n_positions": spec.context,
        "n_embd": spec.d_model,
        "n_layer": spec.n_layer,
        "n_head": spec.n_head,
        "n_inner": null,
        "activation_function": "gelu",
        "resid_pdrop": spec.dropout,
        "embd_pdrop": spec.dropout,
        "attn_pdrop": spec.dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": 0.02,
        "scale_attn_weights": true,
        "scale_attn_by_inverse_layer_idx": false,
        "reorder_and_upcast_attn": false,
        "add_cross_attention": false,
        "use_cache": true,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "tie_word_embeddings": spec.tie_weights,
        "dtype": "float32",
    })
}

/// `generation_config.json` of an exported decoder: sampling from the model's distribution,
/// as Hearth's samples are, for as many tokens as the run's samples. Without reserved tokens
/// there is no end-of-text token, so generation stops at the length only.
pub fn generation_config(tokenizer: &HfTokenizer, max_new_tokens: usize) -> Value {
    let (bos, eos, pad) = tokenizer.bos_eos_pad();
    let mut config = json!({
        "pad_token_id": pad,
        "do_sample": true,
        "temperature": 1.0,
        "top_k": 0,
        "max_new_tokens": max_new_tokens.max(1),
    });
    if tokenizer.specials {
        let map = config.as_object_mut().expect("an object");
        map.insert("bos_token_id".into(), json!(bos));
        map.insert("eos_token_id".into(), json!(eos));
    }
    config
}

/// `config.json` of an exported encoder of class `class`.
pub fn megatron_config(spec: &ModelSpec, tokenizer: &HfTokenizer, class: &str) -> Value {
    let (bos, eos, pad) = tokenizer.bos_eos_pad();
    json!({
        "architectures": [class],
        "model_type": "megatron-bert",
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": spec.d_model,
        "num_hidden_layers": spec.n_layer,
        "num_attention_heads": spec.n_head,
        "intermediate_size": 4 * spec.d_model,
        "hidden_act": "gelu",
        "hidden_dropout_prob": spec.dropout,
        "attention_probs_dropout_prob": spec.dropout,
        "max_position_embeddings": spec.context,
        "type_vocab_size": TYPE_VOCAB,
        "initializer_range": 0.02,
        "layer_norm_eps": LAYER_NORM_EPS,
        "position_embedding_type": "absolute",
        "is_decoder": false,
        "add_cross_attention": false,
        "use_cache": false,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "tie_word_embeddings": spec.tie_weights,
        "dtype": "float32",
    })
}

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

const SAFETENSORS_METADATA: &[(&str, &str)] = &[("format", "pt")];

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
    write_safetensors(
        &dir.join("model.safetensors"),
        &gpt2_tensors(params, spec)?,
        SAFETENSORS_METADATA,
    )?;
    write_json(&dir.join("config.json"), &gpt2_config(spec, tokenizer))?;
    write_json(
        &dir.join("generation_config.json"),
        &generation_config(tokenizer, run.train.sample_tokens),
    )?;
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
    write_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        SAFETENSORS_METADATA,
    )?;
    write_json(
        &dir.join("config.json"),
        &megatron_config(spec, tokenizer, MASKED_CLASS),
    )?;
    tokenizer.write(dir, spec.context)
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
    write_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        SAFETENSORS_METADATA,
    )?;
    write_json(
        &dir.join("config.json"),
        &megatron_config(spec, tokenizer, ENCODER_CLASS),
    )?;
    tokenizer.write(dir, spec.context)?;
    write_sentence_transformers(dir, spec, pooling)
}

/// sentence-transformers' pooling module settings for Hearth's pooling.
pub fn pooling_config(d_model: usize, pooling: Pooling) -> Value {
    json!({
        "word_embedding_dimension": d_model,
        "pooling_mode_cls_token": pooling == Pooling::Cls,
        "pooling_mode_mean_tokens": pooling == Pooling::Mean,
        "pooling_mode_max_tokens": pooling == Pooling::Max,
        "pooling_mode_mean_sqrt_len_tokens": false,
        "pooling_mode_weightedmean_tokens": false,
        "pooling_mode_lasttoken": pooling == Pooling::Last,
        "include_prompt": true,
    })
}

/// `modules.json` and the module folders: the transformer, pooling, then normalisation to unit
/// length (Hearth's embeddings are normalised).
fn write_sentence_transformers(
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

/// The shape of a GPT-2 folder Hearth can import, read from its `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    /// `vocab_size`.
    pub vocab_size: usize,
    /// `n_positions` (the context).
    pub n_positions: usize,
    /// `n_embd`.
    pub n_embd: usize,
    /// `n_layer`.
    pub n_layer: usize,
    /// `n_head`.
    pub n_head: usize,
    /// `tie_word_embeddings`.
    pub tie_word_embeddings: bool,
    /// `resid_pdrop` (kept as the run's dropout).
    pub dropout: f64,
}

impl Gpt2Config {
    /// Reads `config.json` at `path`, refusing (with the key and its value) every setting
    /// Hearth's model computes differently. Absent keys take `GPT2Config`'s defaults.
    pub fn read(path: &Path) -> Result<Self, HfError> {
        let text = std::fs::read_to_string(path).map_err(|e| HfError::io(path, e))?;
        let config: Value = serde_json::from_str(&text)
            .map_err(|e| HfError::invalid(path, format!("not JSON: {e}")))?;
        Self::from_json(&config, path)
    }

    /// [`Gpt2Config::read`] on parsed JSON; `path` names the file in errors.
    pub fn from_json(config: &Value, path: &Path) -> Result<Self, HfError> {
        let unsupported = |key: &str, value: &Value, reason: &str| HfError::Unsupported {
            path: path.to_path_buf(),
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let get = |key: &str| config.get(key).filter(|v| !v.is_null());
        let model_type = get("model_type").cloned().unwrap_or(Value::Null);
        if model_type != "gpt2" {
            return Err(unsupported(
                "model_type",
                &model_type,
                "Hearth imports GPT-2 (model_type \"gpt2\")",
            ));
        }
        if let Some(archs) = get("architectures") {
            let known = ["GPT2LMHeadModel", "GPT2Model"];
            let ok = archs.as_array().is_some_and(|a| {
                a.iter()
                    .all(|x| x.as_str().is_some_and(|s| known.contains(&s)))
            });
            if !ok {
                return Err(unsupported(
                    "architectures",
                    archs,
                    "Hearth imports GPT2LMHeadModel or GPT2Model",
                ));
            }
        }
        let activation = get("activation_function")
            .cloned()
            .unwrap_or_else(|| json!("gelu_new"));
        if activation != "gelu" {
            return Err(unsupported(
                "activation_function",
                &activation,
                "Hearth's MLP uses exact GELU (\"gelu\"), not a tanh approximation",
            ));
        }
        let bool_of = |key: &str, default: bool| -> Result<bool, HfError> {
            match get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| unsupported(key, v, "expected true or false")),
            }
        };
        for (key, default, want, reason) in [
            (
                "scale_attn_weights",
                true,
                true,
                "Hearth scales attention by 1/sqrt(head_dim)",
            ),
            (
                "scale_attn_by_inverse_layer_idx",
                false,
                false,
                "Hearth does not scale attention by layer",
            ),
            (
                "reorder_and_upcast_attn",
                false,
                false,
                "Hearth does not reorder or upcast attention",
            ),
            (
                "add_cross_attention",
                false,
                false,
                "Hearth's blocks have no cross-attention",
            ),
        ] {
            if bool_of(key, default)? != want {
                return Err(unsupported(key, &json!(!want), reason));
            }
        }
        let usize_of = |key: &str, default: usize| -> Result<usize, HfError> {
            match get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_u64()
                    .filter(|&n| n > 0)
                    .map(|n| n as usize)
                    .ok_or_else(|| unsupported(key, v, "expected a positive whole number")),
            }
        };
        let n_embd = usize_of("n_embd", 768)?;
        let n_head = usize_of("n_head", 12)?;
        if !n_embd.is_multiple_of(n_head) {
            return Err(unsupported(
                "n_head",
                &json!(n_head),
                &format!("it must divide n_embd ({n_embd})"),
            ));
        }
        if let Some(inner) = get("n_inner")
            && inner.as_u64() != Some(4 * n_embd as u64)
        {
            return Err(unsupported(
                "n_inner",
                inner,
                &format!("Hearth's MLP is 4 * n_embd = {} wide", 4 * n_embd),
            ));
        }
        if let Some(eps) = get("layer_norm_epsilon") {
            let close = eps
                .as_f64()
                .is_some_and(|e| (e - LAYER_NORM_EPS).abs() <= 1e-12);
            if !close {
                return Err(unsupported(
                    "layer_norm_epsilon",
                    eps,
                    "Hearth's LayerNorm epsilon is 1e-5",
                ));
            }
        }
        let dropout = match get("resid_pdrop") {
            None => 0.1,
            Some(v) => v
                .as_f64()
                .filter(|p| (0.0..1.0).contains(p))
                .ok_or_else(|| unsupported("resid_pdrop", v, "expected a probability below 1"))?,
        };
        Ok(Self {
            vocab_size: usize_of("vocab_size", 50257)?,
            n_positions: usize_of("n_positions", 1024)?,
            n_embd,
            n_layer: usize_of("n_layer", 12)?,
            n_head,
            tie_word_embeddings: bool_of("tie_word_embeddings", true)?,
            dropout,
        })
    }

    /// Hearth's model shape for these settings (GPT-2 always has biases).
    pub fn model_spec(&self) -> ModelSpec {
        ModelSpec {
            n_layer: self.n_layer,
            n_head: self.n_head,
            d_model: self.n_embd,
            context: self.n_positions,
            dropout: self.dropout,
            tie_weights: self.tie_word_embeddings,
            bias: true,
            relation_classes: 0,
            arch: Arch::Classic,
        }
    }
}

/// Buffers older GPT-2 checkpoints carry (the causal mask), which hold no weights.
fn is_buffer(name: &str) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")
}

/// Hearth parameters (by [`super::weights::model_params`] path) from GPT-2 tensors, with or
/// without the `transformer.` prefix. Fails naming the first missing tensor, a tensor of the
/// wrong shape, or the tensors it has no place for; `path` names the weights file.
pub fn params_from_gpt2(
    tensors: &Tensors,
    config: &Gpt2Config,
    path: &Path,
) -> Result<Tensors, HfError> {
    let prefix = if tensors.contains_key("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    };
    let d = config.n_embd;
    let mut used = std::collections::BTreeSet::new();
    let mut take = |name: &str, shape: &[usize]| -> Result<Array, HfError> {
        let key = format!("{prefix}{name}");
        let array = tensors
            .get(&key)
            .ok_or_else(|| HfError::invalid(path, format!("no tensor {key}")))?;
        if array.shape != shape {
            return Err(HfError::invalid(
                path,
                format!(
                    "{key} has shape {:?}; config.json makes it {shape:?}",
                    array.shape
                ),
            ));
        }
        used.insert(key);
        Ok(array.clone())
    };
    let mut out = Tensors::new();
    out.insert(
        "tok_emb.weight".into(),
        take("wte.weight", &[config.vocab_size, d])?,
    );
    out.insert(
        "pos_emb.weight".into(),
        take("wpe.weight", &[config.n_positions, d])?,
    );
    let mut norm = |out: &mut Tensors, from: &str, to: &str| -> Result<(), HfError> {
        out.insert(
            format!("{to}.gamma"),
            take(&format!("{from}.weight"), &[d])?,
        );
        out.insert(format!("{to}.beta"), take(&format!("{from}.bias"), &[d])?);
        Ok(())
    };
    for i in 0..config.n_layer {
        norm(
            &mut out,
            &format!("h.{i}.ln_1"),
            &format!("blocks.{i}.ln_1"),
        )?;
        norm(
            &mut out,
            &format!("h.{i}.ln_2"),
            &format!("blocks.{i}.ln_2"),
        )?;
    }
    norm(&mut out, "ln_f", "ln_f")?;
    for i in 0..config.n_layer {
        for (from, to, d_in, d_out) in [
            ("attn.c_attn", "attn.qkv", d, 3 * d),
            ("attn.c_proj", "attn.proj", d, d),
            ("mlp.c_fc", "mlp.fc", d, 4 * d),
            ("mlp.c_proj", "mlp.proj", 4 * d, d),
        ] {
            // `Conv1D` weights are `[in, out]`, as Burn's.
            out.insert(
                format!("blocks.{i}.{to}.weight"),
                take(&format!("h.{i}.{from}.weight"), &[d_in, d_out])?,
            );
            out.insert(
                format!("blocks.{i}.{to}.bias"),
                take(&format!("h.{i}.{from}.bias"), &[d_out])?,
            );
        }
    }
    if let Some(head) = tensors.get("lm_head.weight") {
        if head.shape != [config.vocab_size, d] {
            return Err(HfError::invalid(
                path,
                format!(
                    "lm_head.weight has shape {:?}; config.json makes it {:?}",
                    head.shape,
                    [config.vocab_size, d]
                ),
            ));
        }
        used.insert("lm_head.weight".to_string());
        if !config.tie_word_embeddings {
            out.insert("lm_head.weight".into(), head.transpose());
        }
    } else if !config.tie_word_embeddings {
        return Err(HfError::invalid(
            path,
            "no tensor lm_head.weight, and config.json unties it (tie_word_embeddings: false)",
        ));
    }
    let unknown: Vec<&str> = tensors
        .keys()
        .filter(|k| !used.contains(*k) && !is_buffer(k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(HfError::invalid(
            path,
            format!(
                "tensors GPT-2 has no place for: {}",
                unknown[..unknown.len().min(8)].join(", ")
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::weights::model_params;
    use crate::model::Gpt;
    use burn::tensor::Device;

    fn spec(bias: bool, tie: bool) -> ModelSpec {
        ModelSpec {
            n_layer: 2,
            n_head: 2,
            d_model: 8,
            context: 6,
            bias,
            tie_weights: tie,
            ..ModelSpec::default()
        }
    }

    #[test]
    fn gpt2_tensors_read_back_as_the_same_parameters() {
        let device = Device::flex();
        for tie in [true, false] {
            let spec = spec(true, tie);
            let params = model_params(&Gpt::new(&spec, 11, &device));
            let tensors = gpt2_tensors(&params, &spec).unwrap();
            assert_eq!(tensors.contains_key("lm_head.weight"), !tie);
            assert_eq!(tensors["transformer.h.1.attn.c_attn.weight"].shape, [8, 24]);
            let config = Gpt2Config {
                vocab_size: 11,
                n_positions: 6,
                n_embd: 8,
                n_layer: 2,
                n_head: 2,
                tie_word_embeddings: tie,
                dropout: 0.0,
            };
            let back = params_from_gpt2(&tensors, &config, Path::new("m")).unwrap();
            assert_eq!(back, params);
        }
    }

    #[test]
    fn a_model_without_biases_gets_zero_biases() {
        let device = Device::flex();
        let spec = spec(false, true);
        let params = model_params(&Gpt::new(&spec, 11, &device));
        let tensors = gpt2_tensors(&params, &spec).unwrap();
        let bias = &tensors["transformer.h.0.mlp.c_fc.bias"];
        assert_eq!(bias.shape, [32]);
        assert!(bias.values.iter().all(|&b| b == 0.0));
        assert!(
            tensors["transformer.ln_f.bias"]
                .values
                .iter()
                .all(|&b| b == 0.0)
        );
    }

    #[test]
    fn megatron_splits_and_transposes_qkv() {
        let device = Device::flex();
        let spec = spec(true, true);
        let params = model_params(&Gpt::new(&spec, 11, &device));
        let tensors = megatron_tensors(&params, &spec, "bert.").unwrap();
        let qkv = &params["blocks.0.attn.qkv.weight"]; // [in 8, out 24]
        let key = &tensors["bert.encoder.layer.0.attention.self.key.weight"]; // [out 8, in 8]
        assert_eq!(key.values[2 * 8 + 5], qkv.values[5 * 24 + 8 + 2]);
        let fc = &tensors["bert.encoder.layer.1.intermediate.dense.weight"];
        assert_eq!(fc.shape, [32, 8]);
    }

    #[test]
    fn refused_settings_name_key_and_value() {
        let base = json!({
            "model_type": "gpt2", "activation_function": "gelu", "n_embd": 8, "n_head": 2,
            "n_layer": 1, "n_positions": 4, "vocab_size": 5,
        });
        assert!(Gpt2Config::from_json(&base, Path::new("config.json")).is_ok());
        for (key, value, expect) in [
            (
                "activation_function",
                json!("gelu_new"),
                "activation_function = \"gelu_new\"",
            ),
            (
                "scale_attn_by_inverse_layer_idx",
                json!(true),
                "scale_attn_by_inverse_layer_idx = true",
            ),
            (
                "reorder_and_upcast_attn",
                json!(true),
                "reorder_and_upcast_attn = true",
            ),
            ("n_inner", json!(40), "n_inner = 40"),
            ("model_type", json!("llama"), "model_type = \"llama\""),
            (
                "layer_norm_epsilon",
                json!(1e-6),
                "layer_norm_epsilon = 1e-6",
            ),
        ] {
            let mut config = base.clone();
            config[key] = value;
            let err = Gpt2Config::from_json(&config, Path::new("config.json"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("config.json: ") && err.contains(expect),
                "{err}"
            );
        }
        let mut absent = base.clone();
        absent
            .as_object_mut()
            .unwrap()
            .remove("activation_function");
        let err = Gpt2Config::from_json(&absent, Path::new("config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("activation_function = \"gelu_new\""), "{err}");
    }
}
