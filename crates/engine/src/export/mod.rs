//! Models that leave the studio: Hugging Face folders written from a run, and GPT-2 folders
//! read back into a run.
//!
//! - [`export_run`] writes a folder `transformers` loads with no custom code: decoders as
//!   `GPT2LMHeadModel`, masked encoders as `MegatronBertForMaskedLM`, embedding encoders as
//!   `MegatronBertModel` plus a sentence-transformers layout (GRIT runs: the decoder, and the
//!   embedding side in `embedding/`), with `tokenizer.json`, `tokenizer_config.json` and a
//!   model card;
//! - [`import_hf`] turns a GPT-2 folder (`config.json`, safetensors weights, `tokenizer.json`)
//!   into a run folder that fine-tunes and compares like any other.
//!
//! The weight layouts are in [`hf`], the tokenizer conversion in [`tokenizer_json`], the model
//! card in [`card`], and plain tensors and safetensors files in [`weights`].

pub mod card;
pub mod gguf;
pub mod hf;
pub mod import;
pub mod tokenizer_json;
pub mod weights;

pub use import::gguf::import_gguf;
pub use import::{ImportSummary, import_hf};

use crate::data::{Corpus, Tokenizer};
use crate::eval::Pooling;
use crate::model::{AttentionMode, Model};
use crate::project::store::read_tokenizer;
use crate::project::{RunStore, StoreError};
use crate::spec::RunSpec;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// Why a model cannot be exported or imported. Every variant names the file (and, for
/// settings, the key) it is about.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// The run folder does not read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file or folder cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A setting Hearth's model cannot reproduce.
    #[error("{path}: {key} = {value} is not supported: {reason}")]
    Unsupported {
        /// The file holding the setting.
        path: PathBuf,
        /// The setting's key.
        key: String,
        /// Its value as written.
        value: String,
        /// What Hearth supports instead.
        reason: String,
    },
}

impl HfError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        HfError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A file that does not hold what it should.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        HfError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// A run's newest checkpoint, loaded with the tokenizer it was trained with.
pub struct LoadedRun {
    /// The run folder.
    pub dir: PathBuf,
    /// Its spec.
    pub spec: RunSpec,
    /// The run's own tokenizer.
    pub tokenizer: Tokenizer,
    /// The weights of the newest checkpoint.
    pub model: Model,
    /// The step of that checkpoint.
    pub step: usize,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
}

impl LoadedRun {
    /// Loads the newest checkpoint of the run folder `dir` on `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, HfError> {
        let store = RunStore::open(dir)?;
        let spec = store.spec()?;
        let (step, checkpoint) = store.newest_checkpoint_in(dir)?.ok_or_else(|| {
            HfError::invalid(dir, "the run has no checkpoint yet (train it first)")
        })?;
        let tokenizer = match read_tokenizer(dir) {
            Some(tokenizer) => tokenizer,
            None => {
                Corpus::load_for(&spec.data, spec.objective.needs_specials())
                    .map_err(|e| HfError::invalid(dir, format!("no tokenizer.json, and {e}")))?
                    .tokenizer
            }
        };
        let model = Model::new(&spec.model, tokenizer.vocab_size(), device)
            .try_load_file(&checkpoint)
            .map_err(|e| HfError::invalid(&checkpoint, format!("cannot load: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            spec,
            tokenizer,
            model,
            step,
            checkpoint,
        })
    }

    /// What the export writes for this run.
    pub fn layout(&self) -> Layout {
        Layout::of(&self.spec)
    }
}

/// Scores the newest checkpoint of the run in `run_dir` on the STS file `sts` (embedding runs)
/// and records Spearman and Pearson in its history at that checkpoint's step
/// (`val_sts_spearman`, `val_sts_pearson`); returns the step and the score.
pub fn record_sts(
    run_dir: &Path,
    sts: &Path,
) -> Result<(usize, crate::eval::retrieval::StsScore), HfError> {
    let pairs = crate::data::pairs::read_scored_pairs(sts)
        .map_err(|e| HfError::invalid(sts, e.to_string()))?;
    let backend = crate::backend::BackendKind::preferred();
    let device = backend
        .device()
        .map_err(|e| HfError::invalid(run_dir, e.to_string()))?;
    let run = LoadedRun::load(run_dir, &device)?;
    if !run.spec.objective.uses_embeddings() {
        return Err(HfError::invalid(
            run_dir,
            format!(
                "the {} objective does not train the model to embed: STS scores embeddings",
                run.spec.objective.kind
            ),
        ));
    }
    let score = crate::eval::retrieval::sts_score(
        &run.model,
        &pairs,
        run.spec.objective.embed_spec(),
        &run.tokenizer,
        &device,
    );
    RunStore::open(run_dir)?
        .append_eval_metrics(run.step, &crate::eval::retrieval::sts_metrics(&score))?;
    Ok((run.step, score))
}

/// Which Hugging Face models an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// A causal decoder (`GPT2LMHeadModel`) in the folder itself.
    pub decoder: bool,
    /// The embedding encoder with this pooling: in the folder itself, or in `embedding/` when
    /// the folder holds the decoder (GRIT).
    pub embedding: Option<Pooling>,
    /// A masked-token encoder (`MegatronBertForMaskedLM`) in the folder itself.
    pub masked: bool,
}

impl Layout {
    /// Sub-folder of the embedding encoder when the decoder takes the export folder.
    pub const EMBEDDING_DIR: &'static str = "embedding";

    /// The layout of a run: objectives that generate text (or train causal attention) export
    /// a decoder, objectives that embed export an embedding encoder, the other bidirectional
    /// ones (masked tokens, LinkBERT) a masked-token encoder.
    pub fn of(spec: &RunSpec) -> Self {
        let objective = spec.objective.objective().ok();
        let generates = objective.as_ref().is_some_and(|o| o.generates_text());
        let causal = spec.objective.attention_mode() == AttentionMode::Causal;
        let embeds = spec.objective.uses_embeddings();
        let decoder = generates || causal;
        Self {
            decoder,
            embedding: embeds.then_some(spec.objective.pooling),
            masked: !decoder && !embeds,
        }
    }

    /// The folder the embedding encoder goes in, under the export folder `out`.
    pub fn embedding_dir(&self, out: &Path) -> PathBuf {
        if self.decoder {
            out.join(Self::EMBEDDING_DIR)
        } else {
            out.to_path_buf()
        }
    }
}

/// What [`export_run`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// The export folder.
    pub dir: PathBuf,
    /// `(folder, transformers class)` of each model written.
    pub models: Vec<(PathBuf, &'static str)>,
    /// The checkpoint's step.
    pub step: usize,
}

/// Writes the run's newest checkpoint as a Hugging Face folder `out` (created if missing).
pub fn export_run(run_dir: &Path, out: &Path, device: &Device) -> Result<ExportSummary, HfError> {
    let run = LoadedRun::load(run_dir, device)?;
    export_loaded(&run, out)
}

/// [`export_run`] for a run already loaded.
pub fn export_loaded(run: &LoadedRun, out: &Path) -> Result<ExportSummary, HfError> {
    if run.spec.model.family == crate::model::Family::Llama {
        return export_llama(run, out);
    }
    // Before anything is written: a modern model has no GPT-2 or BERT layout.
    hf::classic_only(&run.spec.model, &run.dir.join("spec.json"))?;
    hf::without_lexical(&run.spec, &run.dir.join("spec.json"))?;
    let layout = run.layout();
    let params = weights::model_params(&run.model);
    let tokenizer = tokenizer_json::HfTokenizer::new(&run.tokenizer)?;
    let mut models = Vec::new();
    create_dir(out)?;
    if run.spec.model.family == crate::model::Family::Bert {
        // A BERT-family run is a BertModel, with sentence-transformers modules when it embeds.
        hf::bert::write_bert(out, &run.spec.model, &params, &tokenizer, layout.embedding)?;
        models.push((out.to_path_buf(), hf::bert::BERT_CLASS));
    } else {
        write_gpt_family(run, out, &layout, &params, &tokenizer, &mut models)?;
    }
    let text = card::model_card(run, &layout)?;
    write_file(&out.join("README.md"), text.as_bytes())?;
    Ok(ExportSummary {
        dir: out.to_path_buf(),
        models,
        step: run.step,
    })
}

/// A Llama-family run as a decoder folder, adapters merged.
fn export_llama(run: &LoadedRun, out: &Path) -> Result<ExportSummary, HfError> {
    let params = weights::model_params(&run.model);
    create_dir(out)?;
    let class = hf::llama::write_llama(out, &run.spec.model, &params, &run.tokenizer)?;
    let text = card::model_card(run, &run.layout())?;
    write_file(&out.join("README.md"), text.as_bytes())?;
    Ok(ExportSummary {
        dir: out.to_path_buf(),
        models: vec![(out.to_path_buf(), class)],
        step: run.step,
    })
}

/// Writes the LoRA adapters of the run in `run_dir` as a PEFT folder `out` (created if
/// missing), for `peft.PeftModel.from_pretrained` on the base model.
pub fn export_peft(run_dir: &Path, out: &Path, device: &Device) -> Result<ExportSummary, HfError> {
    let run = LoadedRun::load(run_dir, device)?;
    let params = weights::model_params(&run.model);
    create_dir(out)?;
    let base = run
        .spec
        .init
        .as_ref()
        .map(|init| init.from_run.display().to_string())
        .unwrap_or_default();
    hf::llama::write_peft(out, &run.spec.model, &params, &base)?;
    Ok(ExportSummary {
        dir: out.to_path_buf(),
        models: vec![(out.to_path_buf(), "PeftModel (LoRA)")],
        step: run.step,
    })
}

/// What a run's newest checkpoint can be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A folder `transformers` loads (adapters merged into the weights).
    Hf,
    /// A LoRA fine-tune's adapters alone, as a PEFT folder for the base model.
    Peft,
    /// A Llama-family model as one GGUF file (adapters merged), matrices in F16 when `f16`.
    Gguf {
        /// F16 matrices (else F32).
        f16: bool,
    },
}

impl ExportFormat {
    /// The formats a run with `spec` can be written as: a Hugging Face folder always, PEFT
    /// adapters for a LoRA fine-tune, GGUF for the Llama family.
    pub fn offered(spec: &RunSpec) -> Vec<Self> {
        let mut formats = vec![Self::Hf];
        if spec.model.lora.is_some() {
            formats.push(Self::Peft);
        }
        if spec.model.family == crate::model::Family::Llama {
            formats.push(Self::Gguf { f16: true });
        }
        formats
    }

    /// What it writes, in words.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hf => "Hugging Face folder",
            Self::Peft => "PEFT adapter folder",
            Self::Gguf { f16: true } => "GGUF file (F16)",
            Self::Gguf { f16: false } => "GGUF file (F32)",
        }
    }

    /// True when it writes one file (GGUF), not a folder.
    pub fn is_file(self) -> bool {
        matches!(self, Self::Gguf { .. })
    }
}

/// Writes the newest checkpoint of the run in `run_dir` as `format` to `out` (a folder, or
/// the file for GGUF).
pub fn export_as(
    run_dir: &Path,
    out: &Path,
    format: ExportFormat,
    device: &Device,
) -> Result<ExportSummary, HfError> {
    match format {
        ExportFormat::Hf => export_run(run_dir, out, device),
        ExportFormat::Peft => export_peft(run_dir, out, device),
        ExportFormat::Gguf { f16 } => {
            LoadedRun::load(run_dir, device).and_then(|run| gguf::export_gguf(&run, out, f16))
        }
    }
}

/// The folders of a GPT-family run: the decoder, the masked encoder or the embedding encoder
/// its layout asks for.
fn write_gpt_family(
    run: &LoadedRun,
    out: &Path,
    layout: &Layout,
    params: &hf::Tensors,
    tokenizer: &tokenizer_json::HfTokenizer,
    models: &mut Vec<(PathBuf, &'static str)>,
) -> Result<(), HfError> {
    if layout.decoder {
        hf::write_decoder(out, &run.spec.model, params, tokenizer, &run.spec)?;
        models.push((out.to_path_buf(), hf::GPT2_CLASS));
    }
    if layout.masked {
        hf::write_masked_encoder(out, &run.spec.model, params, tokenizer)?;
        models.push((out.to_path_buf(), hf::MASKED_CLASS));
    }
    if let Some(pooling) = layout.embedding {
        let dir = layout.embedding_dir(out);
        create_dir(&dir)?;
        hf::write_embedding_encoder(&dir, &run.spec.model, params, tokenizer, pooling)?;
        models.push((dir, hf::ENCODER_CLASS));
    }
    Ok(())
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir(dir: &Path) -> Result<(), HfError> {
    std::fs::create_dir_all(dir).map_err(|e| HfError::io(dir, e))
}

/// Writes `bytes` to `path`.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), HfError> {
    std::fs::write(path, bytes).map_err(|e| HfError::io(path, e))
}

/// Writes `value` to `path` as indented JSON.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), HfError> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    text.push('\n');
    write_file(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TokenizerKind;
    use crate::model::ModelSpec;
    use crate::objective::ObjectiveKind;
    use burn::tensor::{Int, Tensor, TensorData};

    /// A run folder holding a fresh model's checkpoint, as training leaves one.
    fn run_folder(dir: &Path, spec: &RunSpec, tokenizer: &Tokenizer, device: &Device) -> Model {
        let store = RunStore::create(dir, spec).unwrap();
        std::fs::write(
            dir.join("tokenizer.json"),
            serde_json::to_string(tokenizer).unwrap(),
        )
        .unwrap();
        let model = Model::new(&spec.model, tokenizer.vocab_size(), device);
        let path = dir.join("checkpoints/step-000005.bpk");
        model.clone().save_file(&path).unwrap();
        store.append_checkpoint(5, &path).unwrap();
        model
    }

    fn logits(model: &Model, ids: &[u32], device: &Device) -> Vec<f32> {
        let x = Tensor::<2, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [1, ids.len()]),
            device,
        );
        model
            .forward(x)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn a_decoder_export_imports_back_to_the_same_model() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let spec = RunSpec {
            name: "small".into(),
            model: ModelSpec {
                n_layer: 1,
                n_head: 2,
                d_model: 16,
                context: 16,
                bias: false,
                tie_weights: false,
                ..ModelSpec::default()
            },
            ..RunSpec::default()
        };
        let tokenizer = Tokenizer::fit(TokenizerKind::Byte, "");
        let run = dir.path().join("run");
        let model = run_folder(&run, &spec, &tokenizer, &device);
        let out = dir.path().join("hf");
        let summary = export_run(&run, &out, &device).unwrap();
        assert_eq!(summary.models, [(out.clone(), hf::GPT2_CLASS)]);
        assert_eq!(summary.step, 5);
        for file in [
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "README.md",
        ] {
            assert!(out.join(file).is_file(), "{file}");
        }
        let back = dir.path().join("back");
        let imported = import_hf(&out, &back, "back", &device).unwrap();
        assert!(imported.spec.model.bias, "GPT-2 always has biases");
        let loaded = LoadedRun::load(&back, &device).unwrap();
        let text = "Hello, world!\n";
        let ids = tokenizer.encode(text);
        assert_eq!(loaded.tokenizer.encode(text), ids);
        assert_eq!(loaded.tokenizer.decode(&ids), text);
        assert_eq!(
            logits(&loaded.model, &ids, &device),
            logits(&model, &ids, &device)
        );
        let err = import_hf(&out, &back, "again", &device).unwrap_err();
        assert!(err.to_string().contains("already holds a run"), "{err}");
    }

    #[test]
    fn a_modern_run_is_refused_naming_model_arch_before_anything_is_written() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let spec = RunSpec {
            name: "modern".into(),
            model: ModelSpec {
                n_layer: 1,
                n_head: 2,
                d_model: 16,
                context: 16,
                arch: crate::model::Arch::Modern,
                ..ModelSpec::default()
            },
            ..RunSpec::default()
        };
        let tokenizer = Tokenizer::fit(TokenizerKind::Byte, "");
        let run = dir.path().join("run");
        let model = run_folder(&run, &spec, &tokenizer, &device);
        // The checkpoint loads back (generation and evaluation read it) ...
        let loaded = LoadedRun::load(&run, &device).unwrap();
        let ids = tokenizer.encode("Hi!");
        assert_eq!(
            logits(&loaded.model, &ids, &device),
            logits(&model, &ids, &device)
        );
        // ... but has no Hugging Face layout.
        let out = dir.path().join("hf");
        let err = export_run(&run, &out, &device).unwrap_err();
        assert!(
            matches!(&err, HfError::Unsupported { key, value, .. } if key == "model.arch" && value == "modern"),
            "{err}"
        );
        assert!(!out.exists(), "nothing written");
    }

    #[test]
    fn an_embedding_run_with_a_lexical_channel_is_refused_naming_objective_lexical() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let mut spec = RunSpec {
            name: "lexical".into(),
            model: ModelSpec {
                n_layer: 1,
                n_head: 2,
                d_model: 16,
                context: 16,
                ..ModelSpec::default()
            },
            ..RunSpec::default()
        };
        spec.objective.kind = ObjectiveKind::CONTRASTIVE;
        spec.objective.lexical = 0.4;
        let tokenizer = Tokenizer::fit(TokenizerKind::Byte, "");
        let run = dir.path().join("run");
        run_folder(&run, &spec, &tokenizer, &device);
        let out = dir.path().join("hf");
        let err = export_run(&run, &out, &device).unwrap_err();
        assert!(
            matches!(&err, HfError::Unsupported { key, value, .. } if key == "objective.lexical" && value == "0.4"),
            "{err}"
        );
        assert!(!out.exists(), "nothing written");
        // Without the channel the same run exports its encoder.
        spec.objective.lexical = 0.0;
        let plain = dir.path().join("plain");
        run_folder(&plain, &spec, &tokenizer, &device);
        let summary = export_run(&plain, &out, &device).unwrap();
        assert_eq!(summary.models, [(out.clone(), hf::ENCODER_CLASS)]);
    }

    #[test]
    fn layouts_follow_the_objective() {
        let layout = |kind: ObjectiveKind| {
            let mut spec = RunSpec::default();
            spec.objective.kind = kind;
            Layout::of(&spec)
        };
        let decoder = layout(ObjectiveKind::NEXT_TOKEN);
        assert!(decoder.decoder && !decoder.masked && decoder.embedding.is_none());
        let masked = layout(ObjectiveKind::MASKED);
        assert!(!masked.decoder && masked.masked && masked.embedding.is_none());
        let linkbert = layout(ObjectiveKind::LINKBERT);
        assert!(linkbert.masked);
        let contrastive = layout(ObjectiveKind::CONTRASTIVE);
        assert!(!contrastive.decoder && !contrastive.masked);
        assert_eq!(contrastive.embedding_dir(Path::new("x")), Path::new("x"));
        let grit = layout(ObjectiveKind::GRIT);
        assert!(grit.decoder && grit.embedding.is_some());
        assert_eq!(grit.embedding_dir(Path::new("x")), Path::new("x/embedding"));
    }
}
