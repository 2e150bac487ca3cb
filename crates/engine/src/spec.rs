//! A run's full recipe, saved as `spec.json` next to its history.

use crate::backend::BackendKind;
use crate::data::DataSpec;
use crate::model::{ModelSpec, SpecError};
use crate::objective::{ObjectiveSpec, Recipe};
use serde::{Deserialize, Serialize};

/// Bumped when a saved field changes meaning; older files are migrated on load.
pub const SCHEMA_VERSION: u32 = 1;

/// Loop settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSpec {
    /// Sequences per micro-batch: an optimizer step sees `batch_size * grad_accum` of them.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (gradient accumulation): their gradients are summed
    /// with the loss scaled by `1 / grad_accum`, so the update equals one batch of
    /// `batch_size * grad_accum` sequences at the memory of one micro-batch.
    pub grad_accum: usize,
    /// Data-parallel replicas: empty for the backend's one device, `cpu:N`, or
    /// `cuda:0,cuda:1,...`. Each replica computes `batch_size / replicas` rows of every
    /// micro-batch; their gradients are summed before one update.
    pub devices: String,
    /// Processes training the run together (MPI ranks); set when the run starts.
    pub world_size: usize,
    /// Optimizer steps; the cosine schedule decays over all of them.
    pub steps: usize,
    /// Estimate train/val loss every this many steps (and at the end).
    pub eval_interval: usize,
    /// Batches per loss estimate.
    pub eval_batches: usize,
    /// Seed of the model's initial weights and of the batches.
    pub seed: u64,
    /// Where the run computes.
    pub backend: BackendKind,
    /// Intra-op threads; 0 means all cores but one.
    pub threads: usize,
    /// Write weights every this many steps (and at the end); 0 writes only the final ones.
    pub checkpoint_interval: usize,
    /// Capture attention on the probe text every this many steps; 0 disables.
    pub attention_interval: usize,
    /// Record each weight matrix's gradient, update and weight norms every this many steps
    /// (and at the last); 0 disables. Histograms and the probe insight come at evaluations.
    pub dynamics_interval: usize,
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
            grad_accum: 1,
            devices: String::new(),
            world_size: 1,
            steps: 2000,
            eval_interval: 250,
            eval_batches: 20,
            seed: 1337,
            backend: BackendKind::preferred(),
            threads: 0,
            checkpoint_interval: 500,
            attention_interval: 25,
            dynamics_interval: 10,
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

/// A spec file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    /// Not JSON, or not the shape of a spec.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Written by a newer Hearth.
    #[error("schema_version {version} is newer than this Hearth understands ({SCHEMA_VERSION})")]
    TooNew {
        /// The file's schema version.
        version: u32,
    },
}

/// Everything needed to reproduce a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSpec {
    /// [`SCHEMA_VERSION`] when the spec was saved.
    pub schema_version: u32,
    /// The run's name (its folder name starts with it).
    pub name: String,
    /// What it trains on.
    pub data: DataSpec,
    /// What it learns.
    pub objective: ObjectiveSpec,
    /// The model's shape.
    pub model: ModelSpec,
    /// Optimizer and schedule.
    pub optim: OptimSpec,
    /// Loop settings.
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
    /// Writes the recipe of the spec's objective (see [`Recipe`]) into its optimizer schedule
    /// and objective options.
    pub fn apply_recipe(&mut self) {
        let recipe = Recipe::of(&self.objective.kind);
        // A fine-tune keeps its base's shape, and only GPT has architectures to choose.
        let own_shape = self.init.is_none() && self.model.family == crate::model::Family::Gpt;
        if own_shape {
            self.model.arch = recipe.arch;
            // The modern transformer has no biases.
            if recipe.arch == crate::model::Arch::Modern {
                self.model.bias = false;
            }
        }
        if let Some(init) = &mut self.init {
            init.lr_multiplier = if recipe.pretrained_lr { 1.0 } else { 0.1 };
        }
        let o = &mut self.optim;
        o.lr = recipe.lr;
        o.min_lr = recipe.min_lr;
        o.warmup_steps = recipe.warmup_steps;
        if let Some(batch) = recipe.batch {
            self.train.batch_size = batch;
        }
        if let Some(steps) = recipe.steps {
            self.train.steps = steps;
        }
        if let Some(interval) = recipe.eval_interval {
            self.train.eval_interval = interval;
        }
        let defaults = ObjectiveSpec::default();
        let obj = &mut self.objective;
        obj.mask_rate = recipe.mask_rate.unwrap_or(defaults.mask_rate);
        obj.temperature = recipe.temperature.unwrap_or(defaults.temperature);
        // A fine-tune pools as its base was trained to.
        if self.init.is_none() {
            obj.pooling = recipe.pooling.unwrap_or(defaults.pooling);
        }
        obj.uniformity_weight = recipe
            .uniformity_weight
            .unwrap_or(defaults.uniformity_weight);
        obj.overlap_curriculum = recipe
            .overlap_curriculum
            .unwrap_or(defaults.overlap_curriculum);
        // A fine-tuning run starts from weights that know the text already.
        // ... and, from a next-token base, without a `[mask]` token.
        (obj.masked_warmup, obj.masked_weight) = if self.init.is_some() {
            (0.0, 0.0)
        } else {
            (
                recipe.masked_warmup.unwrap_or(defaults.masked_warmup),
                recipe.masked_weight.unwrap_or(defaults.masked_weight),
            )
        };
        obj.gen_weight = recipe.gen_weight.unwrap_or(defaults.gen_weight);
        obj.lexical = recipe.lexical.unwrap_or(defaults.lexical);
    }

    /// Whether the spec holds its objective's recipe values (the studio says so).
    pub fn follows_recipe(&self) -> bool {
        let mut applied = self.clone();
        applied.apply_recipe();
        applied == *self
    }

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
        if !t.devices.trim().is_empty() {
            match t.backend.replica_devices(&t.devices) {
                Ok(devices)
                    if !t
                        .batch_size
                        .is_multiple_of(devices.len() * t.world_size.max(1)) =>
                {
                    errors.push(SpecError::new(
                        "train.batch_size",
                        format!(
                            "{} rows do not split evenly over {} replicas",
                            t.batch_size,
                            devices.len() * t.world_size.max(1)
                        ),
                    ));
                }
                Ok(_) => {}
                Err(err) => errors.push(SpecError::new("train.devices", err.to_string())),
            }
        }
        if t.devices.trim().is_empty()
            && t.world_size > 1
            && !t.batch_size.is_multiple_of(t.world_size)
        {
            errors.push(SpecError::new(
                "train.batch_size",
                format!(
                    "{} rows do not split evenly over {} processes",
                    t.batch_size, t.world_size
                ),
            ));
        }
        if t.grad_accum == 0 || t.grad_accum > 4096 {
            errors.push(SpecError::new(
                "train.grad_accum",
                "gradient accumulation takes 1 to 4096 micro-batches per step",
            ));
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
            if init.lr_multiplier.is_nan() || init.lr_multiplier <= 0.0 {
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

    /// Reads a spec file (JSON; a leading byte order mark is dropped); errors give the line and
    /// column, and specs of unknown (newer) versions are refused.
    pub fn from_json(text: &str) -> Result<Self, SpecFileError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let spec: RunSpec = serde_json::from_str(text)?;
        if spec.schema_version > SCHEMA_VERSION {
            return Err(SpecFileError::TooNew {
                version: spec.schema_version,
            });
        }
        Ok(RunSpec {
            schema_version: SCHEMA_VERSION,
            ..spec
        })
    }
}

/// Optimizer and schedule settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimSpec {
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: usize,
    /// Decoupled weight decay, applied to weight matrices and embeddings only.
    pub weight_decay: f64,
    /// AdamW's decay rate of the gradient mean.
    pub beta1: f64,
    /// AdamW's decay rate of the squared-gradient mean.
    pub beta2: f64,
    /// AdamW's denominator term, for numerical stability.
    pub eps: f64,
    /// Clip the global gradient norm to this value; 0 disables clipping.
    pub grad_clip: f64,
    /// The update rule of the weight matrices inside the transformer blocks.
    pub optimizer: OptimizerKind,
    /// Muon: peak learning rate of the block matrices (the schedule scales it like `lr`).
    pub muon_lr: f64,
    /// Muon: momentum of the block matrices' gradients (Nesterov).
    pub muon_momentum: f64,
}

/// How the weight matrices inside the transformer blocks are updated; everything else (the
/// embeddings, the output head, biases and norm gains) always uses AdamW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW for every parameter (nanoGPT).
    #[default]
    Adamw,
    /// Muon for the block matrices: momentum orthogonalised by five Newton-Schulz iterations
    /// (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks", as
    /// used in the modded-nanogpt speedruns); AdamW for the rest.
    Muon,
}

impl Default for OptimSpec {
    /// nanoGPT's `train_shakespeare_char` settings.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 100,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            grad_clip: 1.0,
            optimizer: OptimizerKind::Adamw,
            muon_lr: 0.02,
            muon_momentum: 0.95,
        }
    }
}

impl OptimSpec {
    /// Every optimizer setting that cannot train, each naming its field.
    pub fn validate(&self) -> Vec<crate::model::SpecError> {
        use crate::model::SpecError;
        let mut errors = Vec::new();
        if !(self.lr.is_finite() && self.lr > 0.0) {
            errors.push(SpecError::new("optim.lr", "learning rate must be positive"));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            errors.push(SpecError::new(
                "optim.min_lr",
                "minimum learning rate must be between 0 and the learning rate",
            ));
        }
        for (field, beta) in [("optim.beta1", self.beta1), ("optim.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                errors.push(SpecError::new(field, "must be in [0, 1)"));
            }
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            errors.push(SpecError::new("optim.weight_decay", "must be at least 0"));
        }
        if self.optimizer == OptimizerKind::Muon {
            if !(self.muon_lr.is_finite() && self.muon_lr > 0.0) {
                errors.push(SpecError::new("optim.muon_lr", "must be positive"));
            }
            if !(0.0..1.0).contains(&self.muon_momentum) {
                errors.push(SpecError::new("optim.muon_momentum", "must be in [0, 1)"));
            }
        }
        if self.grad_clip.is_nan() || self.grad_clip < 0.0 {
            errors.push(SpecError::new(
                "optim.grad_clip",
                "must be at least 0 (0 disables)",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod recipe_tests {
    use super::*;
    use crate::model::Arch;
    use crate::objective::{ObjectiveKind, Recipe};

    fn with_kind(kind: ObjectiveKind) -> RunSpec {
        let mut spec = RunSpec::default();
        spec.objective.kind = kind;
        spec
    }

    #[test]
    fn a_recipe_applies_its_values_and_a_changed_value_leaves_it() {
        let mut spec = with_kind(ObjectiveKind::MASKED);
        assert!(
            !spec.follows_recipe(),
            "defaults are nanoGPT's, not the masked recipe"
        );
        spec.apply_recipe();
        assert!(spec.follows_recipe());
        assert_eq!(spec.model.arch, Arch::Modern);
        assert_eq!(spec.objective.mask_rate, 0.3);
        spec.optim.lr = 3e-3;
        assert!(
            !spec.follows_recipe(),
            "a value the user set is not the recipe's"
        );
        spec.apply_recipe();
        assert_eq!(spec.optim.lr, Recipe::of(&ObjectiveKind::MASKED).lr);
        // Switching objective takes the other recipe's architecture too.
        spec.objective.kind = ObjectiveKind::NEXT_TOKEN;
        spec.apply_recipe();
        assert_eq!(spec.model.arch, Arch::Classic);
        assert!(spec.follows_recipe());
    }

    #[test]
    fn every_built_in_recipe_trains_and_describes_itself() {
        for kind in ObjectiveKind::BUILT_IN {
            let mut spec = with_kind(kind.clone());
            spec.apply_recipe();
            // CoSENT trains on a scored pairs file, which no recipe can name.
            if kind == ObjectiveKind::COSENT {
                spec.objective.pairs_file = Some("sts.tsv".into());
            }
            let errors = spec.objective.validate(spec.model.dropout);
            assert!(errors.is_empty(), "{kind}: {errors:?}");
            assert!(spec.model.validate().is_empty(), "{kind}");
            let recipe = Recipe::of(&kind);
            assert!(recipe.describe().contains("lr "), "{kind}");
            assert!(!recipe.why.is_empty());
        }
    }

    #[test]
    fn a_fine_tuning_run_skips_the_masked_warm_up_and_the_masked_term() {
        let mut spec = with_kind(ObjectiveKind::CONTRASTIVE);
        spec.apply_recipe();
        assert!(spec.objective.masked_warmup > 0.0);
        assert!(spec.objective.masked_weight > 0.0);
        assert!(spec.objective.needs_specials());
        spec.init = Some(InitSpec::default());
        spec.apply_recipe();
        assert_eq!(spec.objective.masked_warmup, 0.0);
        assert_eq!(spec.objective.masked_weight, 0.0);
    }
}
