//! A Llama-family run as a Hugging Face folder (`LlamaForCausalLM`, or `Qwen2ForCausalLM` /
//! `Qwen3ForCausalLM` where the model has their q/k/v biases or QK-norm) with any LoRA
//! adapters merged into the weights, and its adapters alone as a PEFT folder
//! (`adapter_config.json`, `adapter_model.safetensors`) that `peft.PeftModel.from_pretrained`
//! loads on the base model.

use super::SAFETENSORS_METADATA;
use super::Tensors;
use crate::data::Tokenizer;
use crate::export::import::llama::llama_names;
use crate::export::weights::{Array, write_safetensors};
use crate::export::{HfError, write_file, write_json};
use crate::model::{LoraSpec, ModelSpec};
use serde_json::{Value, json};
use std::path::Path;

/// Hearth's projection names and Hugging Face's module names (`q` is `q_proj`).
pub const PROJECTIONS: [(&str, &str, &str); 7] = [
    ("q", "attn.q", "self_attn.q_proj"),
    ("k", "attn.k", "self_attn.k_proj"),
    ("v", "attn.v", "self_attn.v_proj"),
    ("o", "attn.proj", "self_attn.o_proj"),
    ("gate", "mlp.gate", "mlp.gate_proj"),
    ("up", "mlp.up", "mlp.up_proj"),
    ("down", "mlp.proj", "mlp.down_proj"),
];

/// `a [n, r] x b [r, m]`.
fn matmul(a: &Array, b: &Array) -> Array {
    let (n, r, m) = (a.shape[0], a.shape[1], b.shape[1]);
    let mut out = vec![0.0f32; n * m];
    for i in 0..n {
        for k in 0..r {
            let x = a.values[i * r + k];
            let row = &b.values[k * m..(k + 1) * m];
            for (o, &y) in out[i * m..(i + 1) * m].iter_mut().zip(row) {
                *o += x * y;
            }
        }
    }
    Array::new(vec![n, m], out)
}

/// The parameters with every adapter merged into its weight (`W + (alpha / rank) A B`) and
/// the adapters left out.
pub fn merged(params: &Tensors, lora: Option<&LoraSpec>) -> Tensors {
    let mut out: Tensors = params
        .iter()
        .filter(|(k, _)| !k.ends_with("lora_a") && !k.ends_with("lora_b"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let Some(lora) = lora else { return out };
    let scale = (lora.alpha / lora.rank as f64) as f32;
    for (name, a) in params.iter().filter(|(k, _)| k.ends_with("lora_a")) {
        let prefix = name.trim_end_matches("lora_a");
        let (Some(b), Some(w)) = (
            params.get(&format!("{prefix}lora_b")),
            out.get_mut(&format!("{prefix}weight")),
        ) else {
            continue;
        };
        let delta = matmul(a, b);
        for (w, d) in w.values.iter_mut().zip(&delta.values) {
            *w += scale * d;
        }
    }
    out
}

/// The architecture a Hugging Face config names for the model: Qwen3 with QK-norm, Qwen2
/// with q/k/v biases, Llama otherwise.
fn model_type(spec: &ModelSpec) -> (&'static str, &'static str) {
    if spec.llama.qk_norm {
        ("qwen3", "Qwen3ForCausalLM")
    } else if spec.llama.qkv_bias {
        ("qwen2", "Qwen2ForCausalLM")
    } else {
        ("llama", "LlamaForCausalLM")
    }
}

/// `config.json` of the model.
pub fn llama_config(spec: &ModelSpec, vocab: usize, tokenizer: &Tokenizer) -> Value {
    let (kind, class) = model_type(spec);
    let (bos, eos) = match tokenizer {
        Tokenizer::Pretrained { specials, .. } => (specials.bos, specials.eos.first().copied()),
        _ => (None, None),
    };
    json!({
        "architectures": [class],
        "model_type": kind,
        "hidden_size": spec.d_model,
        "intermediate_size": spec.mlp_hidden(),
        "num_hidden_layers": spec.n_layer,
        "num_attention_heads": spec.n_head,
        "num_key_value_heads": spec.kv_heads(),
        "head_dim": spec.head_dim(),
        "hidden_act": "silu",
        "max_position_embeddings": spec.context,
        "rms_norm_eps": spec.llama.norm_eps,
        "rope_theta": spec.llama.rope_theta,
        "rope_parameters": {"rope_theta": spec.llama.rope_theta, "rope_type": "default"},
        "attention_bias": false,
        "mlp_bias": false,
        "tie_word_embeddings": spec.tie_weights,
        "vocab_size": vocab,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    })
}

/// The tokenizer files: `tokenizer.json` as the model's own, `tokenizer_config.json` naming
/// its special tokens and carrying its chat template.
pub fn write_tokenizer(dir: &Path, tokenizer: &Tokenizer, context: usize) -> Result<(), HfError> {
    let Tokenizer::Pretrained { model, specials } = tokenizer else {
        return Err(HfError::invalid(
            dir,
            "a Llama-family export needs the model's own (pretrained) tokenizer",
        ));
    };
    write_file(&dir.join("tokenizer.json"), model.json.as_bytes())?;
    let name = |id: Option<u32>| -> Value {
        id.map(|id| Value::from(model.token_text(id)))
            .unwrap_or(Value::Null)
    };
    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": context,
        "bos_token": name(specials.bos),
        "eos_token": name(specials.eos.first().copied()),
        "pad_token": name(specials.pad),
        "clean_up_tokenization_spaces": false,
    });
    if let Some(template) = &specials.chat_template {
        config["chat_template"] = Value::from(template.as_str());
    }
    write_json(&dir.join("tokenizer_config.json"), &config)
}

/// Writes the merged model as a Hugging Face folder.
pub fn write_llama(
    dir: &Path,
    spec: &ModelSpec,
    params: &Tensors,
    tokenizer: &Tokenizer,
) -> Result<&'static str, HfError> {
    let params = merged(params, spec.lora.as_ref());
    let plain = ModelSpec {
        lora: None,
        ..spec.clone()
    };
    let mut tensors = Tensors::new();
    for (ours, theirs, transposed) in llama_names(&plain) {
        let array = params
            .get(&ours)
            .ok_or_else(|| HfError::invalid(dir, format!("the model has no parameter {ours}")))?;
        tensors.insert(
            theirs,
            if transposed {
                array.transpose()
            } else {
                array.clone()
            },
        );
    }
    let vocab = params
        .get("tok_emb.weight")
        .map(|a| a.shape[0])
        .unwrap_or_default();
    write_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        SAFETENSORS_METADATA,
    )?;
    write_json(
        &dir.join("config.json"),
        &llama_config(spec, vocab, tokenizer),
    )?;
    let (bos, eos) = match tokenizer {
        Tokenizer::Pretrained { specials, .. } => (specials.bos, specials.eos.clone()),
        _ => (None, Vec::new()),
    };
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": bos, "eos_token_id": eos, "do_sample": false}),
    )?;
    write_tokenizer(dir, tokenizer, spec.context)?;
    Ok(model_type(spec).1)
}

/// Writes the adapters as a PEFT LoRA folder: `base_model.model.model.layers.{i}.<module>.
/// lora_A.weight` `[rank, in]` and `lora_B.weight` `[out, rank]`, scaling alpha / rank.
pub fn write_peft(
    dir: &Path,
    spec: &ModelSpec,
    params: &Tensors,
    base: &str,
) -> Result<(), HfError> {
    let lora = spec.lora.as_ref().ok_or_else(|| {
        HfError::invalid(
            dir,
            "the run has no LoRA adapters (train with --lora-rank); export it with --format hf",
        )
    })?;
    let mut tensors = Tensors::new();
    let mut modules = Vec::new();
    for (short, ours, theirs) in PROJECTIONS {
        if !lora.targets(short) {
            continue;
        }
        modules.push(theirs.rsplit('.').next().unwrap_or(theirs).to_string());
        for i in 0..spec.n_layer {
            let get = |part: &str| {
                params
                    .get(&format!("blocks.{i}.{ours}.{part}"))
                    .ok_or_else(|| {
                        HfError::invalid(dir, format!("no adapter blocks.{i}.{ours}.{part}"))
                    })
            };
            let prefix = format!("base_model.model.model.layers.{i}.{theirs}");
            tensors.insert(
                format!("{prefix}.lora_A.weight"),
                get("lora_a")?.transpose(),
            );
            tensors.insert(
                format!("{prefix}.lora_B.weight"),
                get("lora_b")?.transpose(),
            );
        }
    }
    write_safetensors(
        &dir.join("adapter_model.safetensors"),
        &tensors,
        SAFETENSORS_METADATA,
    )?;
    write_json(
        &dir.join("adapter_config.json"),
        &json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base,
            "r": lora.rank,
            "lora_alpha": lora.alpha,
            "lora_dropout": lora.dropout,
            "target_modules": modules,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "use_rslora": false,
            "use_dora": false,
            "init_lora_weights": true,
            "modules_to_save": null,
        }),
    )
}
