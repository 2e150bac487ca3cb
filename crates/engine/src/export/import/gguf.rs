//! A GGUF file (llama.cpp's format; see `crate::gguf`) of a Llama-family model into a run:
//! the header's shape settings, every tensor dequantized to f32 under Hearth's parameter
//! names, and the tokenizer and chat template rebuilt from `tokenizer.ggml.*`.
//!
//! llama.cpp's converter reorders the rows of each query and key projection of `llama`
//! models for its interleaved rotation; they are put back in the "rotate half" order
//! Hugging Face and Hearth use (as transformers' own GGUF loader does). Qwen2 and Qwen3 files
//! keep Hugging Face's order.

use super::{ImportSummary, write_run};
use crate::data::Tokenizer;
use crate::data::tokenizer::{BpeModel, PretrainedSpecials};
use crate::export::HfError;
use crate::export::import::llama::{MAX_IMPORT_CONTEXT, decoder_run_spec};
use crate::export::weights::{Array, load_params};
use crate::gguf::{GgufError, GgufFile};
use crate::model::{Arch, Family, LlamaShape, Model, ModelSpec};
use burn::tensor::Device;
use std::collections::BTreeMap;
use std::path::Path;

/// The `general.architecture`s read as the Llama family.
pub const GGUF_ARCHITECTURES: [&str; 4] = ["llama", "mistral", "qwen2", "qwen3"];

fn gguf_error(path: &Path, e: GgufError) -> HfError {
    let message = e.to_string();
    // The error names the file already.
    let prefix = format!("{}: ", path.display());
    HfError::invalid(
        path,
        message
            .strip_prefix(&prefix)
            .unwrap_or(&message)
            .to_string(),
    )
}

/// The model's shape from the header (`<arch>.block_count` and so on).
pub fn gguf_spec(file: &GgufFile) -> Result<(ModelSpec, String), HfError> {
    let path = file.path();
    let arch = file
        .get_str("general.architecture")
        .ok_or_else(|| HfError::invalid(path, "no general.architecture"))?
        .to_string();
    if !GGUF_ARCHITECTURES.contains(&arch.as_str()) {
        return Err(HfError::Unsupported {
            path: path.to_path_buf(),
            key: "general.architecture".into(),
            value: arch,
            reason: "the Llama family reads llama, mistral, qwen2 and qwen3".into(),
        });
    }
    let key = |name: &str| format!("{arch}.{name}");
    let count = |name: &str| -> Result<usize, HfError> {
        file.get_u64(&key(name))
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| HfError::invalid(path, format!("no {}", key(name))))
    };
    if let Some(kind) = file
        .get_str(&key("rope.scaling.type"))
        .filter(|t| *t != "none")
    {
        return Err(HfError::Unsupported {
            path: path.to_path_buf(),
            key: key("rope.scaling.type"),
            value: kind.to_string(),
            reason: "rope scaling is not computed: Hearth rotates by the plain frequencies".into(),
        });
    }
    let n_head = count("attention.head_count")?;
    let d_model = count("embedding_length")?;
    let untied = file.tensor("output.weight").is_some();
    let spec = ModelSpec {
        family: Family::Llama,
        arch: Arch::Modern,
        n_layer: count("block_count")?,
        n_head,
        d_model,
        context: count("context_length")
            .unwrap_or(MAX_IMPORT_CONTEXT)
            .min(MAX_IMPORT_CONTEXT),
        dropout: 0.0,
        tie_weights: !untied,
        bias: false,
        llama: LlamaShape {
            n_kv_head: count("attention.head_count_kv").unwrap_or(n_head),
            head_dim: count("attention.key_length").unwrap_or(d_model / n_head),
            mlp_width: count("feed_forward_length")?,
            rope_theta: file.get_f64(&key("rope.freq_base")).unwrap_or(10_000.0),
            norm_eps: file
                .get_f64(&key("attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-5),
            qk_norm: file.tensor("blk.0.attn_q_norm.weight").is_some(),
            qkv_bias: file.tensor("blk.0.attn_q.bias").is_some(),
        },
        ..ModelSpec::default()
    };
    if let Some(error) = spec.validate().first() {
        return Err(HfError::invalid(path, error.to_string()));
    }
    Ok((spec, arch))
}

/// Undoes llama.cpp's reordering of a query or key projection `[heads * head_dim, in]`: its
/// row `(h, d, t)` is Hugging Face's row `(h, t, d)` (`t` the half, `d < head_dim / 2`).
fn unpermute(array: &Array, heads: usize) -> Array {
    let (rows, cols) = (array.shape[0], array.shape.get(1).copied().unwrap_or(1));
    let half = rows / heads / 2;
    let mut out = vec![0.0; array.values.len()];
    for h in 0..heads {
        for d in 0..half {
            for t in 0..2 {
                let from = h * 2 * half + d * 2 + t;
                let to = h * 2 * half + t * half + d;
                out[to * cols..(to + 1) * cols]
                    .copy_from_slice(&array.values[from * cols..(from + 1) * cols]);
            }
        }
    }
    Array::new(array.shape.clone(), out)
}

/// Every tensor of the file under Hearth's parameter names (linear weights `[in, out]`).
pub fn gguf_params(
    file: &GgufFile,
    spec: &ModelSpec,
    arch: &str,
) -> Result<BTreeMap<String, Array>, HfError> {
    let path = file.path();
    let read = |name: &str| -> Result<Array, HfError> {
        let info = file
            .tensor(name)
            .ok_or_else(|| HfError::invalid(path, format!("no tensor {name}")))?;
        let values = file.tensor_f32(name).map_err(|e| gguf_error(path, e))?;
        Ok(Array::new(info.shape(), values))
    };
    let mut out = BTreeMap::new();
    let mut used = Vec::new();
    let mut put = |ours: String, theirs: String, array: Array| {
        out.insert(ours, array);
        used.push(theirs);
    };
    put(
        "tok_emb.weight".into(),
        "token_embd.weight".into(),
        read("token_embd.weight")?,
    );
    put(
        "rms_f.gamma".into(),
        "output_norm.weight".into(),
        read("output_norm.weight")?,
    );
    if !spec.tie_weights {
        put(
            "lm_head.weight".into(),
            "output.weight".into(),
            read("output.weight")?.transpose(),
        );
    }
    let reordered = arch == "llama" || arch == "mistral";
    for i in 0..spec.n_layer {
        let blk = |n: &str| format!("blk.{i}.{n}");
        let ours = |n: &str| format!("blocks.{i}.{n}");
        put(
            ours("rms_1.gamma"),
            blk("attn_norm.weight"),
            read(&blk("attn_norm.weight"))?,
        );
        put(
            ours("rms_2.gamma"),
            blk("ffn_norm.weight"),
            read(&blk("ffn_norm.weight"))?,
        );
        for (from, to, heads) in [
            ("attn_q", "attn.q", Some(spec.n_head)),
            ("attn_k", "attn.k", Some(spec.kv_heads())),
            ("attn_v", "attn.v", None),
            ("attn_output", "attn.proj", None),
            ("ffn_gate", "mlp.gate", None),
            ("ffn_up", "mlp.up", None),
            ("ffn_down", "mlp.proj", None),
        ] {
            let name = blk(&format!("{from}.weight"));
            let mut w = read(&name)?;
            if let (true, Some(heads)) = (reordered, heads) {
                w = unpermute(&w, heads);
            }
            put(ours(&format!("{to}.weight")), name, w.transpose());
            if spec.llama.qkv_bias && matches!(from, "attn_q" | "attn_k" | "attn_v") {
                let name = blk(&format!("{from}.bias"));
                put(ours(&format!("{to}.bias")), name.clone(), read(&name)?);
            }
        }
        if spec.llama.qk_norm {
            for (from, to) in [
                ("attn_q_norm", "attn.q_norm"),
                ("attn_k_norm", "attn.k_norm"),
            ] {
                let name = blk(&format!("{from}.weight"));
                put(ours(&format!("{to}.gamma")), name.clone(), read(&name)?);
            }
        }
    }
    if let Some(extra) = file
        .tensors()
        .iter()
        .map(|t| t.name.as_str())
        .find(|n| !used.iter().any(|u| u == n) && !n.starts_with("rope_freqs"))
    {
        return Err(HfError::invalid(
            path,
            format!(
                "tensor {extra} has no place in a {}-layer Llama",
                spec.n_layer
            ),
        ));
    }
    Ok(out)
}

/// The file's tokenizer as a pretrained tokenizer of `rows` embedding rows.
pub fn gguf_tokenizer(file: &GgufFile, rows: usize) -> Result<Tokenizer, HfError> {
    let path = file.path();
    let tok = crate::gguf::tokenizer(file).map_err(|e| gguf_error(path, e))?;
    let model = BpeModel::from_json(tok.json).map_err(|e| HfError::invalid(path, e.to_string()))?;
    if model.vocab_size() > rows {
        return Err(HfError::invalid(
            path,
            format!(
                "the tokenizer has {} tokens, more than the model's {rows} embedding rows",
                model.vocab_size()
            ),
        ));
    }
    // Generation stops at the end of text and at the end of a turn.
    let mut eos: Vec<u32> = tok.eos.into_iter().collect();
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        eos.extend(file.get_u64(key).map(|n| n as u32));
    }
    if let Some(template) = &tok.chat_template
        && let Some(id) = template
            .contains("<|im_end|>")
            .then(|| model.token_id("<|im_end|>"))
            .flatten()
    {
        eos.push(id);
    }
    eos.sort_unstable();
    eos.dedup();
    Ok(Tokenizer::Pretrained {
        model,
        specials: PretrainedSpecials {
            pad: tok.pad,
            bos: tok.bos,
            eos,
            chat_template: tok.chat_template,
            all: tok.special_ids,
            rows,
            ..PretrainedSpecials::default()
        },
    })
}

/// Imports the GGUF file `file` as a new run in `run_dir` named `name`. Nothing is written
/// unless the whole file reads.
pub fn import_gguf(
    file: &Path,
    run_dir: &Path,
    name: &str,
    device: &Device,
) -> Result<ImportSummary, HfError> {
    let gguf = GgufFile::open(file).map_err(|e| gguf_error(file, e))?;
    let (model_spec, arch) = gguf_spec(&gguf)?;
    let params = gguf_params(&gguf, &model_spec, &arch)?;
    let rows = params["tok_emb.weight"].shape[0];
    let tokenizer = gguf_tokenizer(&gguf, rows)?;
    let model = load_params(Model::new(&model_spec, rows, device), &params)
        .map_err(|problems| HfError::invalid(file, problems.join("; ")))?;
    let spec = decoder_run_spec(name, model_spec, &tokenizer);
    write_run(
        file,
        run_dir,
        &spec,
        &tokenizer,
        model,
        &format!("GGUF, {arch}"),
    )
}
