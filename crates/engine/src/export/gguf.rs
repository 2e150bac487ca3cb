//! A Llama-family run as a GGUF file (llama.cpp's format, see [`crate::gguf`]): the header's
//! shape settings under the architecture's keys, every tensor under llama.cpp's name (matrices
//! in F16 or F32, norms in F32), LoRA adapters merged, and the tokenizer and chat template as
//! `tokenizer.ggml.*`. Query and key rows of `llama` files are put in llama.cpp's order for
//! its interleaved rotation (the inverse of what import undoes).

use super::hf::llama::merged;
use super::weights::{Array, model_params};
use super::{ExportSummary, HfError, LoadedRun};
use crate::data::Tokenizer;
use crate::gguf::{GgufWriter, TensorDtype, write_tokenizer_metadata};
use crate::model::Family;
use std::path::Path;

/// Hugging Face's row `(h, t, d)` of a query or key projection `[heads * head_dim, in]` goes
/// to llama.cpp's row `(h, d, t)`.
fn permute(array: &Array, heads: usize) -> Array {
    let (rows, cols) = (array.shape[0], array.shape.get(1).copied().unwrap_or(1));
    let half = rows / heads / 2;
    let mut out = vec![0.0; array.values.len()];
    for h in 0..heads {
        for t in 0..2 {
            for d in 0..half {
                let from = h * 2 * half + t * half + d;
                let to = h * 2 * half + d * 2 + t;
                out[to * cols..(to + 1) * cols]
                    .copy_from_slice(&array.values[from * cols..(from + 1) * cols]);
            }
        }
    }
    Array::new(array.shape.clone(), out)
}

/// Writes the run's newest checkpoint (adapters merged) to the GGUF file `out`, its matrices
/// as F16 when `f16` (else F32).
pub fn export_gguf(run: &LoadedRun, out: &Path, f16: bool) -> Result<ExportSummary, HfError> {
    let spec = &run.spec.model;
    if spec.family != Family::Llama {
        return Err(HfError::invalid(
            &run.dir.join("spec.json"),
            format!(
                "GGUF export writes Llama-family models; this run is {} (export it with --format hf)",
                spec.family.name()
            ),
        ));
    }
    let Tokenizer::Pretrained { model, specials } = &run.tokenizer else {
        return Err(HfError::invalid(
            &run.dir.join("tokenizer.json"),
            "GGUF export needs the model's own (pretrained) tokenizer",
        ));
    };
    let params = merged(&model_params(&run.model), spec.lora.as_ref());
    let arch = if spec.llama.qk_norm {
        "qwen3"
    } else if spec.llama.qkv_bias {
        "qwen2"
    } else {
        "llama"
    };
    let mut w = GgufWriter::new();
    w.set_str("general.architecture", arch);
    w.set_str("general.name", run.spec.name.as_str());
    w.set_u32("general.file_type", if f16 { 1 } else { 0 });
    let key = |k: &str| format!("{arch}.{k}");
    let as_u32 = |n: usize| n as u32;
    w.set_u32(key("block_count"), as_u32(spec.n_layer));
    w.set_u32(key("context_length"), as_u32(spec.context));
    w.set_u32(key("embedding_length"), as_u32(spec.d_model));
    w.set_u32(key("feed_forward_length"), as_u32(spec.mlp_hidden()));
    w.set_u32(key("attention.head_count"), as_u32(spec.n_head));
    w.set_u32(key("attention.head_count_kv"), as_u32(spec.kv_heads()));
    w.set_u32(key("attention.key_length"), as_u32(spec.head_dim()));
    w.set_u32(key("attention.value_length"), as_u32(spec.head_dim()));
    w.set_f32(
        key("attention.layer_norm_rms_epsilon"),
        spec.llama.norm_eps as f32,
    );
    w.set_f32(key("rope.freq_base"), spec.llama.rope_theta as f32);
    w.set_u32(key("vocab_size"), as_u32(run.model.vocab()));
    write_tokenizer_metadata(
        &mut w,
        &model.json,
        specials.bos,
        specials.eos.first().copied(),
        specials.pad,
        specials.chat_template.as_deref(),
    )
    .map_err(|e| HfError::invalid(out, e.to_string()))?;
    let matrix = if f16 {
        TensorDtype::F16
    } else {
        TensorDtype::F32
    };
    let mut put = |name: String, array: Array, dtype: TensorDtype| {
        let shape = array.shape.clone();
        w.add_tensor(name, &shape, dtype, array.values)
            .map_err(|e| HfError::invalid(out, e.to_string()))
    };
    let get = |name: &str| -> Result<Array, HfError> {
        params
            .get(name)
            .cloned()
            .ok_or_else(|| HfError::invalid(out, format!("the model has no parameter {name}")))
    };
    put("token_embd.weight".into(), get("tok_emb.weight")?, matrix)?;
    put(
        "output_norm.weight".into(),
        get("rms_f.gamma")?,
        TensorDtype::F32,
    )?;
    if !spec.tie_weights {
        put(
            "output.weight".into(),
            get("lm_head.weight")?.transpose(),
            matrix,
        )?;
    }
    for i in 0..spec.n_layer {
        let ours = |n: &str| format!("blocks.{i}.{n}");
        let blk = |n: &str| format!("blk.{i}.{n}");
        put(
            blk("attn_norm.weight"),
            get(&ours("rms_1.gamma"))?,
            TensorDtype::F32,
        )?;
        put(
            blk("ffn_norm.weight"),
            get(&ours("rms_2.gamma"))?,
            TensorDtype::F32,
        )?;
        for (to, from, heads) in [
            ("attn_q", "attn.q", Some(spec.n_head)),
            ("attn_k", "attn.k", Some(spec.kv_heads())),
            ("attn_v", "attn.v", None),
            ("attn_output", "attn.proj", None),
            ("ffn_gate", "mlp.gate", None),
            ("ffn_up", "mlp.up", None),
            ("ffn_down", "mlp.proj", None),
        ] {
            let mut weight = get(&ours(&format!("{from}.weight")))?.transpose();
            if let (true, Some(heads)) = (arch == "llama", heads) {
                weight = permute(&weight, heads);
            }
            put(blk(&format!("{to}.weight")), weight, matrix)?;
            if spec.llama.qkv_bias && matches!(to, "attn_q" | "attn_k" | "attn_v") {
                put(
                    blk(&format!("{to}.bias")),
                    get(&ours(&format!("{from}.bias")))?,
                    TensorDtype::F32,
                )?;
            }
        }
        if spec.llama.qk_norm {
            for (to, from) in [
                ("attn_q_norm", "attn.q_norm"),
                ("attn_k_norm", "attn.k_norm"),
            ] {
                put(
                    blk(&format!("{to}.weight")),
                    get(&ours(&format!("{from}.gamma")))?,
                    TensorDtype::F32,
                )?;
            }
        }
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::create_dir(dir)?;
    }
    w.write(out)
        .map_err(|e| HfError::invalid(out, e.to_string()))?;
    Ok(ExportSummary {
        dir: out.to_path_buf(),
        models: vec![(
            out.to_path_buf(),
            if f16 { "GGUF (F16)" } else { "GGUF (F32)" },
        )],
        step: run.step,
    })
}
