//! A Hugging Face folder into a run folder: the spec, the run store, a step-0 checkpoint and
//! the tokenizer, which `--init-from` fine-tuning, evaluation, generation and export read like
//! any run's. `config.json`'s `model_type` picks the family: `gpt2` (as `transformers`'
//! `save_pretrained` writes it, here) or `bert`, plain or as a sentence-transformers folder
//! ([`bert`]).

pub mod bert;
pub mod gguf;
pub mod llama;

use super::HfError;
use super::hf::{Gpt2Config, params_from_gpt2};
use super::weights::{Array, load_params, read_safetensors};
use crate::data::tokenizer::BpeModel;
use crate::data::{DataSpec, Tokenizer, TokenizerKind};
use crate::model::Model;
use crate::project::store::write_atomic;
use crate::project::{Annotations, RunStatus, RunStore};
use crate::spec::RunSpec;
use burn::tensor::Device;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What [`import_hf`] created.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// The new run folder.
    pub run_dir: PathBuf,
    /// Its spec.
    pub spec: RunSpec,
    /// Trainable parameters.
    pub n_params: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
}

/// The weights of a folder: `model.safetensors`, or the shards a
/// `model.safetensors.index.json` lists.
pub(super) fn read_weights(dir: &Path) -> Result<(BTreeMap<String, Array>, PathBuf), HfError> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok((read_safetensors(&single)?, single));
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| HfError::io(&index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| HfError::invalid(&index, format!("not JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| HfError::invalid(&index, "no weight_map"))?;
        let mut files: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        let mut all = BTreeMap::new();
        for file in files {
            all.extend(read_safetensors(&dir.join(file))?);
        }
        return Ok((all, index));
    }
    let message = if dir.join("pytorch_model.bin").exists() {
        "no model.safetensors (pytorch_model.bin is not read: save with safe_serialization=True)"
    } else {
        "no model.safetensors"
    };
    Err(HfError::invalid(dir, message))
}

/// The folder's `tokenizer.json` as a Hearth tokenizer (its vocabulary must be the model's).
fn read_tokenizer(dir: &Path, vocab_size: usize) -> Result<Tokenizer, HfError> {
    let path = dir.join("tokenizer.json");
    let json = std::fs::read_to_string(&path).map_err(|e| HfError::io(&path, e))?;
    let model = BpeModel::from_json(json).map_err(|e| HfError::invalid(&path, e.to_string()))?;
    let tokenizer = Tokenizer::Bpe {
        model,
        specials: false,
    };
    if tokenizer.vocab_size() != vocab_size {
        return Err(HfError::Unsupported {
            path: dir.join("config.json"),
            key: "vocab_size".into(),
            value: vocab_size.to_string(),
            reason: format!(
                "tokenizer.json has {} tokens; Hearth needs the model's vocabulary and the tokenizer's to be the same size",
                tokenizer.vocab_size()
            ),
        });
    }
    Ok(tokenizer)
}

/// The `model_type` of the folder's `config.json` (`Null` when it has none).
fn model_type(hf_dir: &Path) -> Result<Value, HfError> {
    let path = hf_dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| HfError::io(&path, e))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| HfError::invalid(&path, format!("not JSON: {e}")))?;
    Ok(config.get("model_type").cloned().unwrap_or(Value::Null))
}

/// Imports the Hugging Face folder `hf_dir` (GPT-2, or BERT plain or as a
/// sentence-transformers folder) as a new run in `run_dir` named `name` (the weights are
/// loaded on `device` to be checked and saved). Unsupported settings are refused with the
/// file, the key and its value; nothing is written unless the whole folder reads.
pub fn import_hf(
    hf_dir: &Path,
    run_dir: &Path,
    name: &str,
    device: &Device,
) -> Result<ImportSummary, HfError> {
    match model_type(hf_dir)?.as_str() {
        Some("bert") => bert::import_bert(hf_dir, run_dir, name, device),
        Some(t) if llama::LLAMA_TYPES.contains(&t) => {
            llama::import_llama(hf_dir, run_dir, name, device)
        }
        // Gpt2Config names the key and its value for any other type.
        _ => import_gpt2(hf_dir, run_dir, name, device),
    }
}

/// Imports a GPT-2 folder (see [`import_hf`]).
fn import_gpt2(
    hf_dir: &Path,
    run_dir: &Path,
    name: &str,
    device: &Device,
) -> Result<ImportSummary, HfError> {
    let config = Gpt2Config::read(&hf_dir.join("config.json"))?;
    let model_spec = config.model_spec();
    if let Some(error) = model_spec.validate().first() {
        return Err(HfError::invalid(
            &hf_dir.join("config.json"),
            error.to_string(),
        ));
    }
    let tokenizer = read_tokenizer(hf_dir, config.vocab_size)?;
    let (tensors, weights_path) = read_weights(hf_dir)?;
    let params = params_from_gpt2(&tensors, &config, &weights_path)?;
    let model = load_params(Model::new(&model_spec, config.vocab_size, device), &params)
        .map_err(|problems| HfError::invalid(&weights_path, problems.join("; ")))?;

    let spec = RunSpec {
        name: name.to_string(),
        model: model_spec,
        data: DataSpec {
            tokenizer: TokenizerKind::Bpe {
                vocab_size: tokenizer.vocab_size(),
            },
            ..DataSpec::default()
        },
        ..RunSpec::default()
    };
    write_run(hf_dir, run_dir, &spec, &tokenizer, model, "GPT-2")
}

/// Writes the run folder of an import: the store with `spec`, the tokenizer, a step-0
/// checkpoint of `model` and a note of where it came from (`family` says what it was).
pub(super) fn write_run(
    hf_dir: &Path,
    run_dir: &Path,
    spec: &RunSpec,
    tokenizer: &Tokenizer,
    model: Model,
    family: &str,
) -> Result<ImportSummary, HfError> {
    let store = RunStore::create(run_dir, spec)?;
    let tokenizer_path = run_dir.join("tokenizer.json");
    write_atomic(
        &tokenizer_path,
        serde_json::to_string(&tokenizer)
            .expect("a tokenizer serializes")
            .as_bytes(),
    )?;
    let checkpoint = run_dir.join("checkpoints").join("step-000000.bpk");
    model
        .save_file(&checkpoint)
        .map_err(|e| HfError::invalid(&checkpoint, format!("not written: {e}")))?;
    store.append_checkpoint(0, &checkpoint)?;
    let source = hf_dir
        .canonicalize()
        .unwrap_or_else(|_| hf_dir.to_path_buf());
    store.append_message(
        0,
        "info",
        &format!("imported from {} ({family})", source.display()),
    )?;
    store.set_annotations(&Annotations {
        display_name: None,
        tags: vec!["imported".to_string()],
        notes: format!(
            "Imported from the {} {}.",
            if source.is_file() {
                "file"
            } else {
                "Hugging Face folder"
            },
            source.display()
        ),
    })?;
    store.set_status(&RunStatus::Finished)?;
    Ok(ImportSummary {
        run_dir: run_dir.to_path_buf(),
        n_params: spec.model.n_params(tokenizer.vocab_size()),
        vocab_size: tokenizer.vocab_size(),
        spec: spec.clone(),
    })
}
