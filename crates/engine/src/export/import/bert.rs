//! A BERT folder into a run: plain (`config.json`, `model.safetensors`, `tokenizer.json`) or
//! as sentence-transformers saves an encoder (`modules.json`, `1_Pooling/config.json`,
//! `sentence_bert_config.json` beside them). The run is an embedding run (objective
//! `contrastive`, the folder's pooling), so STS evaluation, the embedding map and fine-tuning
//! on pairs start from it as they are.

use super::{ImportSummary, read_weights, write_run};
use crate::data::tokenizer::{BpeModel, PretrainedSpecials};
use crate::data::{DataSpec, Tokenizer, TokenizerKind};
use crate::eval::Pooling;
use crate::export::HfError;
use crate::export::weights::{Array, load_params};
use crate::model::{BertShape, Family, Model, ModelSpec};
use crate::objective::{ObjectiveKind, ObjectiveSpec};
use crate::spec::RunSpec;
use burn::tensor::Device;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a BERT folder says about its model and how it embeds.
#[derive(Debug, Clone, PartialEq)]
pub struct BertFolder {
    /// The model's shape.
    pub model: ModelSpec,
    /// Tokens in the vocabulary (`vocab_size`).
    pub vocab_size: usize,
    /// How sentence-transformers pools the token states (mean for a plain BERT folder).
    pub pooling: Pooling,
    /// Whether the folder's pipeline ends with a `Normalize` module.
    pub normalized: bool,
}

/// Reads a JSON file.
pub(super) fn read_json(path: &Path) -> Result<Value, HfError> {
    let text = std::fs::read_to_string(path).map_err(|e| HfError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| HfError::invalid(path, format!("not JSON: {e}")))
}

pub(super) fn unsupported(path: &Path, key: &str, value: &Value, reason: &str) -> HfError {
    HfError::Unsupported {
        path: path.to_path_buf(),
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// `config.json` of a BERT model as Hearth's spec, refusing what the BERT family does not
/// compute (naming the key and its value).
pub fn bert_spec(config: &Value, path: &Path) -> Result<(ModelSpec, usize), HfError> {
    let get = |key: &str| config.get(key).filter(|v| !v.is_null());
    let usize_of = |key: &str, default: usize| -> Result<usize, HfError> {
        match get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| unsupported(path, key, v, "expected a positive whole number")),
        }
    };
    let f64_of = |key: &str, default: f64| -> Result<f64, HfError> {
        match get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| unsupported(path, key, v, "expected a number")),
        }
    };
    let model_type = get("model_type").cloned().unwrap_or(Value::Null);
    if model_type != "bert" {
        return Err(unsupported(
            path,
            "model_type",
            &model_type,
            "this reader takes BERT (model_type \"bert\")",
        ));
    }
    for (key, want, reason) in [
        (
            "hidden_act",
            "gelu",
            "the BERT family's MLP uses exact (erf) GELU",
        ),
        (
            "position_embedding_type",
            "absolute",
            "the BERT family has learned absolute positions",
        ),
    ] {
        if let Some(v) = get(key)
            && v != want
        {
            return Err(unsupported(path, key, v, reason));
        }
    }
    for key in ["is_decoder", "add_cross_attention"] {
        if let Some(v) = get(key)
            && v != false
        {
            return Err(unsupported(
                path,
                key,
                v,
                "the BERT family is an encoder without cross-attention",
            ));
        }
    }
    let d_model = usize_of("hidden_size", 768)?;
    let n_head = usize_of("num_attention_heads", 12)?;
    if !d_model.is_multiple_of(n_head) {
        return Err(unsupported(
            path,
            "num_attention_heads",
            &Value::from(n_head),
            &format!("it must divide hidden_size ({d_model})"),
        ));
    }
    let dropout = f64_of("hidden_dropout_prob", 0.1)?;
    if !(0.0..1.0).contains(&dropout) {
        return Err(unsupported(
            path,
            "hidden_dropout_prob",
            &Value::from(dropout),
            "expected a probability below 1",
        ));
    }
    let norm_eps = f64_of("layer_norm_eps", 1e-12)?;
    if norm_eps <= 0.0 {
        return Err(unsupported(
            path,
            "layer_norm_eps",
            &Value::from(norm_eps),
            "the LayerNorm epsilon must be positive",
        ));
    }
    let positions = usize_of("max_position_embeddings", 512)?;
    let spec = ModelSpec {
        n_layer: usize_of("num_hidden_layers", 12)?,
        n_head,
        d_model,
        context: positions,
        dropout,
        tie_weights: true,
        bias: true,
        family: Family::Bert,
        bert: BertShape {
            norm_eps,
            type_vocab: usize_of("type_vocab_size", 2)?,
            mlp_width: usize_of("intermediate_size", 4 * d_model)?,
            positions,
        },
        ..ModelSpec::default()
    };
    Ok((spec, usize_of("vocab_size", 30_522)?))
}

/// The sentence-transformers modules of `dir` (from `modules.json`): the pooling, whether the
/// embeddings are normalised, and the longest input. `None` for a plain BERT folder.
fn sentence_modules(dir: &Path) -> Result<Option<(Pooling, bool, Option<usize>)>, HfError> {
    let modules_path = dir.join("modules.json");
    if !modules_path.exists() {
        return Ok(None);
    }
    let modules = read_json(&modules_path)?;
    let list = modules
        .as_array()
        .ok_or_else(|| HfError::invalid(&modules_path, "expected a list of modules"))?;
    // Every module is checked before any is read, so an unsupported one is what is named.
    let mut pooling_dir = None;
    let mut normalized = false;
    for (i, module) in list.iter().enumerate() {
        let kind = module.get("type").and_then(Value::as_str).unwrap_or("");
        let sub = module.get("path").and_then(Value::as_str).unwrap_or("");
        match kind.rsplit('.').next().unwrap_or("") {
            "Transformer" if sub.is_empty() => {}
            "Pooling" => pooling_dir = Some(dir.join(sub)),
            "Normalize" => normalized = true,
            _ => {
                return Err(unsupported(
                    &modules_path,
                    &format!("[{i}].type"),
                    &Value::from(kind),
                    "Hearth reads a Transformer at the folder's root, then Pooling and Normalize",
                ));
            }
        }
    }
    let pooling_dir = pooling_dir.ok_or_else(|| {
        HfError::invalid(&modules_path, "no sentence_transformers Pooling module")
    })?;
    let pooling = read_pooling(&pooling_dir.join("config.json"))?;
    // The longest input: `max_seq_length` (sentence-transformers before 6), else the
    // tokenizer's `model_max_length` (where sentence-transformers 6 keeps it).
    let number = |file: &str, key: &str| -> Option<usize> {
        let path = dir.join(file);
        let config = read_json(&path).ok()?;
        config.get(key).and_then(Value::as_u64).map(|n| n as usize)
    };
    let max_len = number("sentence_bert_config.json", "max_seq_length")
        .or_else(|| number("tokenizer_config.json", "model_max_length"));
    Ok(Some((pooling, normalized, max_len)))
}

/// The pooling `1_Pooling/config.json` (or wherever `modules.json` points) asks for: one
/// `pooling_mode` name, or exactly one true `pooling_mode_*` flag (before sentence-transformers
/// 6); mean, cls, max or last token.
fn read_pooling(path: &Path) -> Result<Pooling, HfError> {
    let config = read_json(path)?;
    // sentence-transformers 6 writes one `pooling_mode` name.
    if let Some(mode) = config.get("pooling_mode") {
        return match mode.as_str() {
            Some("mean") => Ok(Pooling::Mean),
            Some("cls") => Ok(Pooling::Cls),
            Some("max") => Ok(Pooling::Max),
            Some("lasttoken") => Ok(Pooling::Last),
            _ => Err(unsupported(
                path,
                "pooling_mode",
                mode,
                "Hearth pools by mean, cls, max or lasttoken",
            )),
        };
    }
    let on = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
    let modes = [
        ("pooling_mode_mean_tokens", Some(Pooling::Mean)),
        ("pooling_mode_cls_token", Some(Pooling::Cls)),
        ("pooling_mode_max_tokens", Some(Pooling::Max)),
        ("pooling_mode_lasttoken", Some(Pooling::Last)),
        ("pooling_mode_mean_sqrt_len_tokens", None),
        ("pooling_mode_weightedmean_tokens", None),
    ];
    let chosen: Vec<_> = modes.iter().filter(|(key, _)| on(key)).collect();
    match chosen[..] {
        [(_, Some(pooling))] => Ok(*pooling),
        [(key, None)] => Err(unsupported(
            path,
            key,
            &Value::Bool(true),
            "Hearth pools by mean, cls, max or last token",
        )),
        [] => Err(HfError::invalid(path, "no pooling mode is true")),
        _ => Err(unsupported(
            path,
            chosen[1].0,
            &Value::Bool(true),
            "Hearth pools one way at a time (several modes are concatenated upstream)",
        )),
    }
}

/// The folder's `tokenizer.json` as a pretrained tokenizer, without its padding and
/// truncation, its vocabulary checked against the model's.
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
    if size != vocab_size {
        return Err(HfError::Unsupported {
            path: dir.join("config.json"),
            key: "vocab_size".into(),
            value: vocab_size.to_string(),
            reason: format!(
                "tokenizer.json has {size} tokens; the model's vocabulary and the tokenizer's must be the same size"
            ),
        });
    }
    // The names tokenizer_config.json gives, else BERT's.
    let config = read_json(&dir.join("tokenizer_config.json")).unwrap_or(Value::Null);
    let id_of = |key: &str, default: &str| {
        let name = config.get(key).and_then(Value::as_str).unwrap_or(default);
        hf.token_to_id(name)
    };
    let mut all: Vec<u32> = hf
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, token)| token.special)
        .map(|(id, _)| id)
        .collect();
    all.sort_unstable();
    let specials = PretrainedSpecials {
        pad: id_of("pad_token", "[PAD]"),
        mask: id_of("mask_token", "[MASK]"),
        cls: id_of("cls_token", "[CLS]"),
        sep: id_of("sep_token", "[SEP]"),
        all,
        ..PretrainedSpecials::default()
    };
    let json = hf
        .to_string(false)
        .map_err(|e| HfError::invalid(&path, e.to_string()))?;
    let model = BpeModel::from_json(json).map_err(|e| HfError::invalid(&path, e.to_string()))?;
    Ok(Tokenizer::Pretrained { model, specials })
}

/// BERT's tensor names (bare, or under `bert.`) as Hearth's parameters. The pooler, a
/// masked-LM head (`cls.`) and the `position_ids` buffer are left out; any other name is
/// refused.
pub fn params_from_bert(
    tensors: &BTreeMap<String, Array>,
    spec: &ModelSpec,
    path: &Path,
) -> Result<BTreeMap<String, Array>, HfError> {
    let bare: BTreeMap<&str, &Array> = tensors
        .iter()
        .map(|(k, v)| (k.strip_prefix("bert.").unwrap_or(k), v))
        .collect();
    let take = |name: &str| -> Result<&Array, HfError> {
        bare.get(name)
            .copied()
            .ok_or_else(|| HfError::invalid(path, format!("no tensor {name}")))
    };
    let mut out = BTreeMap::new();
    let mut put = |to: String, array: Array| {
        out.insert(to, array);
    };
    for (from, to) in [
        ("word_embeddings", "tok_emb"),
        ("position_embeddings", "pos_emb"),
        ("token_type_embeddings", "type_emb"),
    ] {
        put(
            format!("{to}.weight"),
            take(&format!("embeddings.{from}.weight"))?.clone(),
        );
    }
    put(
        "emb_ln.gamma".into(),
        take("embeddings.LayerNorm.weight")?.clone(),
    );
    put(
        "emb_ln.beta".into(),
        take("embeddings.LayerNorm.bias")?.clone(),
    );
    for i in 0..spec.n_layer {
        let layer = |name: &str| take(&format!("encoder.layer.{i}.{name}"));
        let qkv = ["query", "key", "value"];
        let weights: Vec<Array> = qkv
            .iter()
            .map(|p| layer(&format!("attention.self.{p}.weight")).map(Array::transpose))
            .collect::<Result<_, _>>()?;
        let biases: Vec<Array> = qkv
            .iter()
            .map(|p| layer(&format!("attention.self.{p}.bias")).cloned())
            .collect::<Result<_, _>>()?;
        let block = format!("blocks.{i}");
        put(format!("{block}.attn.qkv.weight"), Array::hstack(&weights));
        put(format!("{block}.attn.qkv.bias"), Array::concat(&biases));
        for (from, to) in [
            ("attention.output.dense", "attn.proj"),
            ("intermediate.dense", "mlp.fc"),
            ("output.dense", "mlp.proj"),
        ] {
            put(
                format!("{block}.{to}.weight"),
                layer(&format!("{from}.weight"))?.transpose(),
            );
            put(
                format!("{block}.{to}.bias"),
                layer(&format!("{from}.bias"))?.clone(),
            );
        }
        for (from, to) in [
            ("attention.output.LayerNorm", "ln_1"),
            ("output.LayerNorm", "ln_2"),
        ] {
            put(
                format!("{block}.{to}.gamma"),
                layer(&format!("{from}.weight"))?.clone(),
            );
            put(
                format!("{block}.{to}.beta"),
                layer(&format!("{from}.bias"))?.clone(),
            );
        }
    }
    let known = |name: &str| {
        name.starts_with("embeddings.")
            || name.starts_with("pooler.")
            || name.starts_with("cls.")
            || name
                .strip_prefix("encoder.layer.")
                .and_then(|rest| rest.split('.').next())
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < spec.n_layer)
    };
    if let Some(name) = bare.keys().find(|name| !known(name)) {
        return Err(HfError::invalid(
            path,
            format!(
                "tensor {name} has no place in a {}-layer BERT",
                spec.n_layer
            ),
        ));
    }
    Ok(out)
}

/// Reads everything a BERT folder says (config, sentence-transformers modules) without the
/// weights.
pub fn read_bert_folder(dir: &Path) -> Result<BertFolder, HfError> {
    let config_path = dir.join("config.json");
    let (mut model, vocab_size) = bert_spec(&read_json(&config_path)?, &config_path)?;
    let (pooling, normalized) = match sentence_modules(dir)? {
        Some((pooling, normalized, max_len)) => {
            if let Some(max_len) = max_len {
                model.context = max_len.min(model.bert.positions);
            }
            (pooling, normalized)
        }
        None => (Pooling::Mean, false),
    };
    if let Some(error) = model.validate().first() {
        return Err(HfError::invalid(&config_path, error.to_string()));
    }
    Ok(BertFolder {
        model,
        vocab_size,
        pooling,
        normalized,
    })
}

/// Imports the BERT folder `hf_dir` as a new run in `run_dir` named `name` (see
/// [`super::import_hf`]).
pub fn import_bert(
    hf_dir: &Path,
    run_dir: &Path,
    name: &str,
    device: &Device,
) -> Result<ImportSummary, HfError> {
    let folder = read_bert_folder(hf_dir)?;
    let tokenizer = read_tokenizer(hf_dir, folder.vocab_size)?;
    let (tensors, weights_path): (_, PathBuf) = read_weights(hf_dir)?;
    let params = params_from_bert(&tensors, &folder.model, &weights_path)?;
    let model = load_params(
        Model::new(&folder.model, folder.vocab_size, device),
        &params,
    )
    .map_err(|problems| HfError::invalid(&weights_path, problems.join("; ")))?;
    let spec = RunSpec {
        name: name.to_string(),
        model: folder.model.clone(),
        data: DataSpec {
            tokenizer: TokenizerKind::Pretrained {
                vocab_size: tokenizer.vocab_size(),
            },
            ..DataSpec::default()
        },
        objective: ObjectiveSpec {
            kind: ObjectiveKind::CONTRASTIVE,
            pooling: folder.pooling,
            lexical: 0.0,
            ..ObjectiveSpec::default()
        },
        ..RunSpec::default()
    };
    let what = if hf_dir.join("modules.json").exists() {
        format!("BERT sentence encoder, {} pooling", folder.pooling.name())
    } else {
        "BERT".to_string()
    };
    write_run(hf_dir, run_dir, &spec, &tokenizer, model, &what)
}
