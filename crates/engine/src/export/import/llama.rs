//! A Llama-family folder (`model_type` llama, mistral, qwen2 or qwen3: `config.json`,
//! `model.safetensors` or shards, `tokenizer.json`, `tokenizer_config.json` and the chat
//! template) into a run of the Llama family, and the parameter names the family shares with
//! Hugging Face's `LlamaForCausalLM` (also used by export).

use super::bert::{read_json, unsupported};
use super::{ImportSummary, read_weights, write_run};
use crate::data::tokenizer::{BpeModel, PretrainedSpecials};
use crate::data::{DataSpec, Tokenizer, TokenizerKind};
use crate::export::HfError;
use crate::export::weights::{Array, load_params};
use crate::model::{Family, LlamaShape, Model, ModelSpec};
use crate::spec::RunSpec;
use burn::tensor::Device;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The `model_type`s read as the Llama family.
pub const LLAMA_TYPES: [&str; 4] = ["llama", "mistral", "qwen2", "qwen3"];

/// The longest context an imported decoder gets (its positions may reach further; training
/// windows and generation are cut here).
pub const MAX_IMPORT_CONTEXT: usize = 2048;

/// `config.json` of a Llama-family model as Hearth's spec and vocabulary size, refusing what
/// the family does not compute (naming the key and its value).
pub fn llama_spec(config: &Value, path: &Path) -> Result<(ModelSpec, usize), HfError> {
    let get = |key: &str| config.get(key).filter(|v| !v.is_null());
    let usize_of = |key: &str, default: Option<usize>| -> Result<usize, HfError> {
        match (get(key), default) {
            (None, Some(d)) => Ok(d),
            (None, None) => Err(HfError::invalid(path, format!("no {key}"))),
            (Some(v), _) => v
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| unsupported(path, key, v, "expected a positive whole number")),
        }
    };
    let model_type = get("model_type").cloned().unwrap_or(Value::Null);
    let Some(kind) = model_type.as_str().filter(|t| LLAMA_TYPES.contains(t)) else {
        return Err(unsupported(
            path,
            "model_type",
            &model_type,
            "the Llama family reads llama, mistral, qwen2 and qwen3",
        ));
    };
    if let Some(act) = get("hidden_act").filter(|a| a.as_str() != Some("silu")) {
        return Err(unsupported(
            path,
            "hidden_act",
            act,
            "Llama's MLP is SwiGLU (silu)",
        ));
    }
    if let Some(v) = get("mlp_bias").filter(|v| v.as_bool() == Some(true)) {
        return Err(unsupported(path, "mlp_bias", v, "the MLP has no biases"));
    }
    // transformers 5 keeps the rotary settings in `rope_parameters`; older files in
    // `rope_theta` and `rope_scaling`.
    let rope = get("rope_parameters");
    let rope_type = rope
        .and_then(|r| r.get("rope_type"))
        .or_else(|| get("rope_scaling").and_then(|r| r.get("rope_type").or(r.get("type"))));
    if let Some(t) = rope_type.filter(|t| t.as_str() != Some("default")) {
        let key = if rope.is_some() {
            "rope_parameters.rope_type"
        } else {
            "rope_scaling"
        };
        return Err(unsupported(
            path,
            key,
            t,
            "rope scaling is not computed: Hearth rotates by the plain frequencies",
        ));
    }
    let rope_theta = rope
        .and_then(|r| r.get("rope_theta"))
        .or_else(|| get("rope_theta"))
        .and_then(Value::as_f64)
        .unwrap_or(10_000.0);
    let n_head = usize_of("num_attention_heads", None)?;
    let d_model = usize_of("hidden_size", None)?;
    let vocab = usize_of("vocab_size", None)?;
    let positions = usize_of("max_position_embeddings", Some(MAX_IMPORT_CONTEXT))?;
    let mut context = positions.min(MAX_IMPORT_CONTEXT);
    if kind == "mistral"
        && let Some(window) = get("sliding_window").and_then(Value::as_u64)
    {
        context = context.min(window as usize);
    }
    let qkv_bias = match kind {
        "qwen2" => true,
        _ => get("attention_bias")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let spec = ModelSpec {
        family: Family::Llama,
        arch: crate::model::Arch::Modern,
        n_layer: usize_of("num_hidden_layers", None)?,
        n_head,
        d_model,
        context,
        dropout: 0.0,
        tie_weights: get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(kind != "llama" && kind != "mistral"),
        bias: false,
        llama: LlamaShape {
            n_kv_head: usize_of("num_key_value_heads", Some(n_head))?,
            head_dim: usize_of("head_dim", Some(d_model / n_head))?,
            mlp_width: usize_of("intermediate_size", None)?,
            rope_theta,
            norm_eps: get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6),
            qk_norm: kind == "qwen3",
            qkv_bias,
        },
        ..ModelSpec::default()
    };
    if let Some(error) = spec.validate().first() {
        return Err(HfError::invalid(path, error.to_string()));
    }
    Ok((spec, vocab))
}

/// Hugging Face's name of each Llama parameter (`model.layers.0.self_attn.q_proj.weight`) by
/// Hearth's path (`blocks.0.attn.q.weight`), with whether the values are a transposed matrix
/// (Burn keeps linear weights `[in, out]`).
pub fn llama_names(spec: &ModelSpec) -> Vec<(String, String, bool)> {
    let mut names = vec![
        (
            "tok_emb.weight".to_string(),
            "model.embed_tokens.weight".to_string(),
            false,
        ),
        ("rms_f.gamma".into(), "model.norm.weight".into(), false),
    ];
    if !spec.tie_weights {
        names.push(("lm_head.weight".into(), "lm_head.weight".into(), true));
    }
    for i in 0..spec.n_layer {
        let hf = format!("model.layers.{i}");
        let ours = format!("blocks.{i}");
        names.push((
            format!("{ours}.rms_1.gamma"),
            format!("{hf}.input_layernorm.weight"),
            false,
        ));
        names.push((
            format!("{ours}.rms_2.gamma"),
            format!("{hf}.post_attention_layernorm.weight"),
            false,
        ));
        for (from, to) in [
            ("self_attn.q_proj", "attn.q"),
            ("self_attn.k_proj", "attn.k"),
            ("self_attn.v_proj", "attn.v"),
            ("self_attn.o_proj", "attn.proj"),
            ("mlp.gate_proj", "mlp.gate"),
            ("mlp.up_proj", "mlp.up"),
            ("mlp.down_proj", "mlp.proj"),
        ] {
            names.push((
                format!("{ours}.{to}.weight"),
                format!("{hf}.{from}.weight"),
                true,
            ));
        }
        if spec.llama.qkv_bias {
            for (from, to) in [("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v")] {
                names.push((
                    format!("{ours}.attn.{to}.bias"),
                    format!("{hf}.self_attn.{from}.bias"),
                    false,
                ));
            }
        }
        if spec.llama.qk_norm {
            for n in ["q_norm", "k_norm"] {
                names.push((
                    format!("{ours}.attn.{n}.gamma"),
                    format!("{hf}.self_attn.{n}.weight"),
                    false,
                ));
            }
        }
    }
    names
}

/// The folder's tensors as Hearth's parameters; a tensor the model has no place for is
/// refused (rotary buffers excepted), as is a missing one.
pub fn params_from_llama(
    tensors: &BTreeMap<String, Array>,
    spec: &ModelSpec,
    path: &Path,
) -> Result<BTreeMap<String, Array>, HfError> {
    let names = llama_names(spec);
    let mut out = BTreeMap::new();
    for (ours, theirs, transposed) in &names {
        let array = tensors
            .get(theirs)
            .ok_or_else(|| HfError::invalid(path, format!("no tensor {theirs}")))?;
        out.insert(
            ours.clone(),
            if *transposed {
                array.transpose()
            } else {
                array.clone()
            },
        );
    }
    let known: std::collections::BTreeSet<&str> =
        names.iter().map(|(_, theirs, _)| theirs.as_str()).collect();
    let tied_head = |name: &str| spec.tie_weights && name == "lm_head.weight";
    if let Some(name) = tensors.keys().find(|n| {
        !known.contains(n.as_str()) && !n.ends_with("rotary_emb.inv_freq") && !tied_head(n)
    }) {
        return Err(HfError::invalid(
            path,
            format!(
                "tensor {name} has no place in a {}-layer Llama",
                spec.n_layer
            ),
        ));
    }
    Ok(out)
}

/// The token named by `tokenizer_config.json`'s `key` (a string, or an object with
/// `content`).
fn named_token(config: &Value, key: &str, tok: &tokenizers::Tokenizer) -> Option<u32> {
    let v = config.get(key)?;
    let name = v
        .as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))?;
    tok.token_to_id(name)
}

/// The folder's `tokenizer.json` with its special tokens and chat template.
fn read_tokenizer(dir: &Path, vocab_size: usize) -> Result<Tokenizer, HfError> {
    let path = dir.join("tokenizer.json");
    let json = std::fs::read_to_string(&path).map_err(|e| HfError::io(&path, e))?;
    let mut hf: tokenizers::Tokenizer = json
        .parse()
        .map_err(|e| HfError::invalid(&path, format!("not a tokenizer: {e}")))?;
    hf.with_padding(None);
    hf.with_truncation(None)
        .map_err(|e| HfError::invalid(&path, e.to_string()))?;
    let size = hf.get_vocab_size(true);
    if size > vocab_size {
        return Err(HfError::Unsupported {
            path: dir.join("config.json"),
            key: "vocab_size".into(),
            value: vocab_size.to_string(),
            reason: format!("tokenizer.json has {size} tokens, more than the model embeds"),
        });
    }
    let config = read_json(&dir.join("tokenizer_config.json")).unwrap_or(Value::Null);
    let chat_template = std::fs::read_to_string(dir.join("chat_template.jinja"))
        .ok()
        .or_else(|| {
            config
                .get("chat_template")
                .and_then(Value::as_str)
                .map(String::from)
        });
    let mut eos: Vec<u32> = named_token(&config, "eos_token", &hf).into_iter().collect();
    // generation_config.json may list several (Llama 3's end of turn).
    if let Ok(generation) = read_json(&dir.join("generation_config.json")) {
        match generation.get("eos_token_id") {
            Some(Value::Array(ids)) => {
                eos.extend(ids.iter().filter_map(|v| v.as_u64().map(|n| n as u32)))
            }
            Some(v) => eos.extend(v.as_u64().map(|n| n as u32)),
            None => {}
        }
    }
    eos.sort_unstable();
    eos.dedup();
    let mut all: Vec<u32> = hf
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, token)| token.special)
        .map(|(id, _)| id)
        .collect();
    all.sort_unstable();
    let specials = PretrainedSpecials {
        pad: named_token(&config, "pad_token", &hf),
        bos: named_token(&config, "bos_token", &hf),
        eos,
        chat_template,
        all,
        rows: vocab_size,
        ..PretrainedSpecials::default()
    };
    let json = hf
        .to_string(false)
        .map_err(|e| HfError::invalid(&path, e.to_string()))?;
    let model = BpeModel::from_json(json).map_err(|e| HfError::invalid(&path, e.to_string()))?;
    Ok(Tokenizer::Pretrained { model, specials })
}

/// The run spec of an imported decoder: next-token training with the model's own tokenizer.
pub fn decoder_run_spec(name: &str, model: ModelSpec, tokenizer: &Tokenizer) -> RunSpec {
    RunSpec {
        name: name.to_string(),
        model,
        data: DataSpec {
            tokenizer: TokenizerKind::Pretrained {
                vocab_size: tokenizer.vocab_size(),
            },
            ..DataSpec::default()
        },
        ..RunSpec::default()
    }
}

/// Imports the Llama-family folder `hf_dir` as a new run (see [`super::import_hf`]).
pub fn import_llama(
    hf_dir: &Path,
    run_dir: &Path,
    name: &str,
    device: &Device,
) -> Result<ImportSummary, HfError> {
    let config_path = hf_dir.join("config.json");
    let config = read_json(&config_path)?;
    let (model_spec, vocab) = llama_spec(&config, &config_path)?;
    let tokenizer = read_tokenizer(hf_dir, vocab)?;
    let (tensors, weights_path) = read_weights(hf_dir)?;
    let params = params_from_llama(&tensors, &model_spec, &weights_path)?;
    let model = load_params(Model::new(&model_spec, vocab, device), &params)
        .map_err(|problems| HfError::invalid(&weights_path, problems.join("; ")))?;
    let spec = decoder_run_spec(name, model_spec, &tokenizer);
    let kind = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("llama");
    write_run(hf_dir, run_dir, &spec, &tokenizer, model, kind)
}
