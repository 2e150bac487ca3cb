//! A run's full recipe, saved as `spec.json` next to its history.

use crate::data::DataSpec;
use crate::model::{ModelSpec, SpecError};
use crate::objective::ObjectiveSpec;
use crate::train::{BackendKind, OptimSpec};
use serde::{Deserialize, Serialize};

/// Bumped when a saved field changes meaning; older files are migrated on load.
pub const SCHEMA_VERSION: u32 = 1;

/// Loop settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSpec {
    pub batch_size: usize,
    /// Optimizer steps; the cosine schedule decays over all of them.
    pub steps: usize,
    /// Estimate train/val loss every this many steps (and at the end).
    pub eval_interval: usize,
    /// Batches per loss estimate.
    pub eval_batches: usize,
    pub seed: u64,
    pub backend: BackendKind,
    /// Intra-op threads; 0 means all cores but one.
    pub threads: usize,
    /// Write weights every this many steps (and at the end); 0 writes only the final ones.
    pub checkpoint_interval: usize,
    /// Capture attention on the probe text every this many steps; 0 disables.
    pub attention_interval: usize,
    /// Tokens generated for each sample (at each evaluation).
    pub sample_tokens: usize,
    /// Text whose attention maps are shown; empty uses the start of the validation split.
    pub probe_text: String,
}

impl Default for TrainSpec {
    /// nanoGPT's CPU settings for Tiny Shakespeare.
    fn default() -> Self {
        Self {
            batch_size: 12,
            steps: 2000,
            eval_interval: 250,
            eval_batches: 20,
            seed: 1337,
            backend: BackendKind::preferred(),
            threads: 0,
            checkpoint_interval: 500,
            attention_interval: 25,
            sample_tokens: 200,
            probe_text: String::new(),
        }
    }
}

/// Fine-tuning: start from another run's weights instead of a fresh model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InitSpec {
    /// The run whose newest checkpoint gives the starting weights (and the tokenizer).
    pub from_run: std::path::PathBuf,
    /// Multiplies the learning rate and its minimum (fine-tuning usually wants less).
    pub lr_multiplier: f64,
    /// Keep token and position embeddings as they are.
    pub freeze_embeddings: bool,
    /// Keep this many of the lowest transformer blocks as they are.
    pub freeze_layers: usize,
}

impl Default for InitSpec {
    fn default() -> Self {
        Self {
            from_run: std::path::PathBuf::new(),
            lr_multiplier: 0.1,
            freeze_embeddings: false,
            freeze_layers: 0,
        }
    }
}

/// Everything needed to reproduce a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSpec {
    pub schema_version: u32,
    pub name: String,
    pub data: DataSpec,
    pub objective: ObjectiveSpec,
    pub model: ModelSpec,
    pub optim: OptimSpec,
    pub train: TrainSpec,
    /// Set for fine-tuning runs.
    pub init: Option<InitSpec>,
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            name: "gpt".to_string(),
            data: DataSpec::default(),
            objective: ObjectiveSpec::default(),
            model: ModelSpec::default(),
            optim: OptimSpec::default(),
            train: TrainSpec::default(),
            init: None,
        }
    }
}

impl RunSpec {
    /// Every setting that cannot train, each naming its field.
    pub fn validate(&self) -> Vec<SpecError> {
        let mut errors = self.model.validate();
        errors.extend(self.optim.validate());
        errors.extend(self.objective.validate(self.model.dropout));
        let t = &self.train;
        if t.batch_size == 0 {
            errors.push(SpecError::new(
                "train.batch_size",
                "batch size must be at least 1",
            ));
        }
        if t.steps == 0 {
            errors.push(SpecError::new("train.steps", "needs at least one step"));
        }
        if t.eval_interval == 0 {
            errors.push(SpecError::new("train.eval_interval", "must be at least 1"));
        }
        if t.eval_batches == 0 {
            errors.push(SpecError::new("train.eval_batches", "must be at least 1"));
        }
        if !t.backend.is_available() {
            errors.push(SpecError::new(
                "train.backend",
                format!("{} is not available here", t.backend.label()),
            ));
        }
        if !(0.0..=0.5).contains(&self.data.val_fraction) || self.data.val_fraction == 0.0 {
            errors.push(SpecError::new("data.val_fraction", "must be in (0, 0.5]"));
        }
        if let Some(init) = &self.init {
            if !init.from_run.join("spec.json").exists() {
                errors.push(SpecError::new(
                    "init.from_run",
                    format!("{} is not a run folder", init.from_run.display()),
                ));
            }
            if !(init.lr_multiplier > 0.0) {
                errors.push(SpecError::new("init.lr_multiplier", "must be positive"));
            }
            if init.freeze_layers > self.model.n_layer {
                errors.push(SpecError::new(
                    "init.freeze_layers",
                    "more than the model has",
                ));
            }
        }
        if self.name.trim().is_empty() {
            errors.push(SpecError::new("name", "a run needs a name"));
        }
        errors
    }

    /// Reads a spec file (JSON); unknown versions are refused with the file named.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let spec: RunSpec = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if spec.schema_version > SCHEMA_VERSION {
            return Err(format!(
                "schema_version {} is newer than this Hearth understands ({SCHEMA_VERSION})",
                spec.schema_version
            ));
        }
        Ok(RunSpec {
            schema_version: SCHEMA_VERSION,
            ..spec
        })
    }
}
