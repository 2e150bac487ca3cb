//! `config.json` files of the exported layouts, and the GPT-2 settings Hearth imports.

use super::{GPT2_CLASS, LAYER_NORM_EPS, TYPE_VOCAB};
use crate::eval::Pooling;
use crate::export::HfError;
use crate::export::tokenizer_json::HfTokenizer;
use crate::model::{Arch, ModelSpec};
use serde_json::{Value, json};
use std::path::Path;

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
                "Hearth imports gpt2, bert, llama, mistral, qwen2 and qwen3 folders",
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
            ..ModelSpec::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
