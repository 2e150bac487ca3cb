//! `hearth train`: headless training with a progress bar.

use anyhow::{Context, Result, bail};
use clap::Args;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use hearth_engine::backend::{BackendKind, available_cores};
use hearth_engine::data::dataset::{DatasetRecipe, SourceSpec};
use hearth_engine::data::sources::SourceKind;
use hearth_engine::data::{DataSource, TokenizerKind};
use hearth_engine::objective::{ObjectiveKind, Pooling, Positives};
use hearth_engine::project::{Project, default_project_dir};
use hearth_engine::spec::{InitSpec, RunSpec};
use hearth_engine::train::{RunEvent, RunHandle, spawn_run};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// A spec file (JSON, as saved in a run folder); flags given as well override it.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Text file to train on (default: built-in generated text).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A dataset saved by `hearth dataset` or the studio (its folder or `dataset.json`).
    #[arg(long, conflicts_with_all = ["data", "prompt_response"])]
    pub dataset: Option<PathBuf>,
    /// Instruction data to fine-tune on: JSONL `{"prompt", "response"}` or TSV
    /// `prompt<TAB>response`; the loss covers the responses only.
    #[arg(long, conflicts_with = "data")]
    pub prompt_response: Option<PathBuf>,
    /// `char`, `byte`, `bpe` or `bpe:N` (a BPE vocabulary of N tokens trained on the data).
    #[arg(long)]
    pub tokenizer: Option<String>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    #[arg(long)]
    pub width: Option<usize>,
    #[arg(long)]
    pub context: Option<usize>,
    /// The transformer: nanoGPT's classic GPT-2, or modern (rotary positions, RMSNorm, SwiGLU,
    /// QK-norm, no biases).
    #[arg(long, value_enum)]
    pub arch: Option<hearth_engine::model::Arch>,
    /// Add the run to the project's queue instead of training it here: it trains in its own
    /// worker process once a slot is free (`hearth queue` lists the queue).
    #[arg(long, conflicts_with_all = ["distributed", "out"])]
    pub queue: bool,
    /// Sequences per micro-batch (per optimizer step without `--grad-accum`).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Micro-batches per optimizer step: gradients summed, loss scaled by 1/K, so the update
    /// equals a batch K times larger.
    #[arg(long)]
    pub grad_accum: Option<usize>,
    /// Data-parallel replicas: `cpu:N`, or `cuda:0,cuda:1,...` with `--backend libtorch-cuda`;
    /// `--batch` rows are split evenly over them.
    #[arg(long)]
    pub devices: Option<String>,
    /// Train as one rank of `mpirun -n N` (or `srun`): data-parallel over processes and
    /// machines; `--batch` is the global batch. Needs a build with the `mpi` feature.
    #[arg(long)]
    pub distributed: bool,
    #[arg(long)]
    pub steps: Option<usize>,
    /// Peak learning rate (reached after the warmup).
    #[arg(long, value_parser = finite)]
    pub lr: Option<f64>,
    /// Learning rate at the end of the cosine decay.
    #[arg(long, value_parser = finite)]
    pub min_lr: Option<f64>,
    /// Steps of linear learning-rate warmup.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Dropout probability.
    #[arg(long, value_parser = finite)]
    pub dropout: Option<f64>,
    #[arg(long, value_parser = finite)]
    pub weight_decay: Option<f64>,
    /// Update rule of the block matrices: `adamw`, or `muon` (orthogonalised momentum; the
    /// embeddings, head, biases and gains keep AdamW).
    #[arg(long, value_enum)]
    pub optimizer: Option<hearth_engine::train::OptimizerKind>,
    /// Muon: peak learning rate of the block matrices.
    #[arg(long, value_parser = finite)]
    pub muon_lr: Option<f64>,
    #[arg(long, value_parser = finite)]
    pub grad_clip: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub eval_interval: Option<usize>,
    #[arg(long)]
    pub eval_batches: Option<usize>,
    /// Record the training dynamics (each matrix's gradient, update and weight norms) every N
    /// steps; 0 records none.
    #[arg(long)]
    pub dynamics_interval: Option<usize>,
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Intra-op threads (default, or 0: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run name.
    #[arg(long)]
    pub name: Option<String>,
    /// What to learn.
    #[arg(long, value_parser = objective_parser())]
    pub objective: Option<ObjectiveKind>,
    /// Masked: share of positions predicted per sequence.
    #[arg(long, value_parser = finite)]
    pub mask_rate: Option<f64>,
    /// Contrastive / GRIT: where positives come from.
    #[arg(long, value_enum)]
    pub positives: Option<Positives>,
    /// Contrastive / GRIT: the labelled pairs file (TSV or JSONL) for `--positives pairs`.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Embedding objectives: an STS file (STS benchmark tab-separated, or JSONL {"a", "b",
    /// "score"}) scored at every evaluation as `val_sts_spearman` / `val_sts_pearson`.
    #[arg(long)]
    pub sts: Option<PathBuf>,
    /// Contrastive / GRIT: InfoNCE temperature.
    #[arg(long, value_parser = finite)]
    pub temperature: Option<f64>,
    /// Contrastive / GRIT: pooling of token states.
    #[arg(long, value_enum)]
    pub pooling: Option<Pooling>,
    /// GRIT: weight of the generation loss (lambda).
    #[arg(long, value_parser = finite)]
    pub gen_weight: Option<f64>,
    /// Contrastive / GRIT: weight of the uniformity loss added to InfoNCE.
    #[arg(long, value_parser = finite)]
    pub uniformity_weight: Option<f64>,
    /// Contrastive / GRIT with halves: share of the run during which positives overlap their
    /// queries (shrinking to none); 0 trains on plain halves.
    #[arg(long, value_parser = finite)]
    pub overlap_curriculum: Option<f64>,
    /// Contrastive: share of the run spent on masked-token prediction before InfoNCE.
    #[arg(long, value_parser = finite)]
    pub masked_warmup: Option<f64>,
    /// Contrastive: weight of a masked-token loss kept beside InfoNCE after the warm-up.
    #[arg(long, value_parser = finite)]
    pub masked_weight: Option<f64>,
    /// Contrastive / GRIT: share of the similarity carried by the lexical channel (hashed
    /// character 5-gram counts beside the pooled states); 0 for none.
    #[arg(long, value_parser = finite)]
    pub lexical: Option<f64>,
    /// Fine-tune: start from this run's newest checkpoint (same model shape; its tokenizer).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Fine-tune: multiply the learning rate and its minimum by this (default 0.1, or 1 for
    /// LoRA and where the objective's recipe rates are meant for pretrained weights, as
    /// CoSENT's).
    #[arg(long, value_parser = finite)]
    pub lr_multiplier: Option<f64>,
    /// Fine-tune: keep the token and position embeddings fixed.
    #[arg(long)]
    pub freeze_embeddings: bool,
    /// Fine-tune: keep this many of the lowest blocks fixed.
    #[arg(long, default_value_t = 0)]
    pub freeze_layers: usize,
    /// Fine-tune with LoRA adapters of this rank (Llama family): only the adapters train;
    /// checkpoints hold them alone.
    #[arg(long)]
    pub lora_rank: Option<usize>,
    /// LoRA: the adapters add alpha / rank times their product (default 2 x rank).
    #[arg(long, value_parser = finite)]
    pub lora_alpha: Option<f64>,
    /// LoRA: the projections that get adapters, comma-separated among q, k, v, o, gate, up,
    /// down.
    #[arg(long, value_delimiter = ',', default_value = "q,k,v,o")]
    pub lora_targets: Vec<String>,
    /// LoRA: dropout on the adapters' input.
    #[arg(long, default_value_t = 0.0, value_parser = finite)]
    pub lora_dropout: f64,
    /// Run folder to create (default: a new folder in the project's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `--objective`: the names of the objectives the engine knows, so a new objective is accepted
/// (and listed in `--help`) as soon as it is registered.
fn objective_parser() -> impl TypedValueParser<Value = ObjectiveKind> {
    PossibleValuesParser::new(
        ObjectiveKind::all()
            .iter()
            .map(|k| PossibleValue::new(k.name().to_string())),
    )
    .map(ObjectiveKind::new)
}

impl TrainArgs {
    /// The spec these flags describe.
    pub fn to_spec(&self) -> Result<RunSpec> {
        let mut spec = match &self.spec {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read spec file {}", path.display()))?;
                RunSpec::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => {
                // The objective's recipe where flags do not say otherwise.
                let mut spec = RunSpec::default();
                if let Some(kind) = &self.objective {
                    spec.objective.kind = kind.clone();
                    let recipe = hearth_engine::objective::Recipe::of(kind);
                    spec.apply_recipe();
                    // A run that starts from trained weights skips the masked warm-up.
                    let warm = if self.init_from.is_some() && recipe.masked_warmup.is_some() {
                        "; starting from --init-from, without the masked warm-up and its loss"
                    } else {
                        ""
                    };
                    eprintln!(
                        "{kind} recipe (flags override): {}{warm}",
                        recipe.describe()
                    );
                }
                spec
            }
        };
        if let Some(path) = &self.data {
            spec.data.source = data_source_for(path);
            if self.name.is_none() && self.spec.is_none() {
                spec.name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "run".into());
            }
        }
        if let Some(path) = &self.prompt_response {
            spec.data.source = DataSource::PromptResponse { path: path.clone() };
        }
        if let Some(path) = &self.dataset {
            spec.data.source = crate::cli::dataset::dataset_source(path)?;
            if self.name.is_none() && self.spec.is_none() {
                spec.name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "run".into());
            }
        }
        if let Some(t) = &self.tokenizer {
            spec.data.tokenizer = TokenizerKind::parse(t)?;
        }
        // A table or JSON Lines file given to `--data` is read as its records, in the
        // tokenizer asked for.
        if let DataSource::Dataset {
            recipe,
            folder: None,
        } = &mut spec.data.source
        {
            recipe.tokenizer = spec.data.tokenizer;
        }
        let m = &mut spec.model;
        set(&mut m.n_layer, self.layers);
        set(&mut m.n_head, self.heads);
        set(&mut m.d_model, self.width);
        set(&mut m.context, self.context);
        set(&mut m.dropout, self.dropout);
        set(&mut m.arch, self.arch);
        let o = &mut spec.optim;
        set(&mut o.lr, self.lr);
        set(&mut o.min_lr, self.min_lr);
        set(&mut o.warmup_steps, self.warmup);
        set(&mut o.weight_decay, self.weight_decay);
        set(&mut o.optimizer, self.optimizer);
        set(&mut o.muon_lr, self.muon_lr);
        set(&mut o.grad_clip, self.grad_clip);
        let t = &mut spec.train;
        set(&mut t.batch_size, self.batch);
        set(&mut t.grad_accum, self.grad_accum);
        set(&mut t.devices, self.devices.clone());
        set(&mut t.steps, self.steps);
        set(&mut t.seed, self.seed);
        set(&mut t.eval_interval, self.eval_interval);
        set(&mut t.eval_batches, self.eval_batches);
        set(&mut t.dynamics_interval, self.dynamics_interval);
        set(&mut t.threads, self.threads);
        // A spec's 0 leaves the studio a core; a headless run has the machine to itself.
        if t.threads == 0 {
            t.threads = available_cores();
        }
        set(&mut t.backend, self.backend);
        if let Some(name) = &self.name {
            spec.name = name.clone();
        }
        let o = &mut spec.objective;
        set(&mut o.kind, self.objective.clone());
        set(&mut o.mask_rate, self.mask_rate);
        set(&mut o.temperature, self.temperature);
        set(&mut o.gen_weight, self.gen_weight);
        set(&mut o.uniformity_weight, self.uniformity_weight);
        set(&mut o.overlap_curriculum, self.overlap_curriculum);
        set(&mut o.masked_warmup, self.masked_warmup);
        set(&mut o.masked_weight, self.masked_weight);
        set(&mut o.lexical, self.lexical);
        set(&mut o.positives, self.positives);
        set(&mut o.pooling, self.pooling);
        if let Some(path) = &self.sts {
            o.sts_file = Some(path.clone());
        }
        if let Some(path) = &self.pairs {
            o.pairs_file = Some(path.clone());
            // A pairs file is where the positives come from unless --positives says otherwise.
            if self.positives.is_none() {
                o.positives = hearth_engine::objective::Positives::Pairs;
            }
        }
        if let Some(from) = &self.init_from {
            // The base run's shape unless flags say otherwise.
            // A rotary (Llama) base reads any context up to its own: --context only cuts
            // the training windows.
            let rotary = |base: &RunSpec| base.model.family == hearth_engine::model::Family::Llama;
            if let Ok(base) = hearth_engine::project::store::read_spec(from)
                && self.layers.is_none()
                && self.heads.is_none()
                && self.width.is_none()
                && (self.context.is_none() || rotary(&base))
            {
                spec.model = hearth_engine::model::ModelSpec {
                    dropout: spec.model.dropout,
                    context: match self.context {
                        Some(context) => context.min(base.model.context),
                        None => base.model.context,
                    },
                    ..base.model
                };
                // The tokenizer is the base's (the run reads it from the base); say so in
                // the spec, so Compare does not show a tokenizer the run never used.
                spec.data.tokenizer = base.data.tokenizer;
                // An encoder keeps the pooling it was trained (or imported) with.
                if self.pooling.is_none() && base.objective.uses_embeddings() {
                    spec.objective.pooling = base.objective.pooling;
                }
            }
            // A base run has learned the text already: no masked warm-up unless asked for
            // (a next-token base has no `[mask]` token).
            if self.masked_warmup.is_none() {
                spec.objective.masked_warmup = 0.0;
            }
            if self.masked_weight.is_none() {
                spec.objective.masked_weight = 0.0;
            }
            let recipe = hearth_engine::objective::Recipe::of(&spec.objective.kind);
            // Adapters start at zero and train alone: they take the learning rate as given.
            let default_multiplier = if recipe.pretrained_lr || self.lora_rank.is_some() {
                1.0
            } else {
                0.1
            };
            if let Some(rank) = self.lora_rank {
                let lora = hearth_engine::project::store::lora_on_run(rank, from)
                    .map_err(|e| anyhow::anyhow!("--init-from: {e}"))?;
                spec.model.lora = Some(hearth_engine::model::LoraSpec {
                    alpha: self.lora_alpha.unwrap_or(lora.alpha),
                    targets: self.lora_targets.clone(),
                    dropout: self.lora_dropout,
                    ..lora
                });
            }
            spec.init = Some(InitSpec {
                from_run: from.clone(),
                lr_multiplier: self.lr_multiplier.unwrap_or(default_multiplier),
                freeze_embeddings: self.freeze_embeddings,
                freeze_layers: self.freeze_layers,
            });
        }
        if self.lora_rank.is_some() && self.init_from.is_none() {
            anyhow::bail!("--lora-rank: LoRA adapts a trained model; name it with --init-from RUN");
        }
        Ok(spec)
    }
}

/// What `--data FILE` reads: plain text, or, for a `.jsonl`, `.json`, `.csv` or `.tsv` file, its
/// records (every field or column as text) through a one-source dataset.
fn data_source_for(path: &std::path::Path) -> DataSource {
    let kind = SourceKind::for_file(path.to_path_buf());
    if matches!(kind, SourceKind::Jsonl { .. }) && hearth_engine::data::chat::is_chat_file(path) {
        eprintln!(
            "reading {} as chat conversations: rendered with the model's chat template, the loss on the assistant's turns",
            path.display()
        );
        return DataSource::Chat {
            path: path.to_path_buf(),
        };
    }
    if matches!(kind, SourceKind::Text { .. }) {
        return DataSource::TextFile {
            path: path.to_path_buf(),
        };
    }
    let format = if matches!(kind, SourceKind::Jsonl { .. }) {
        "JSON Lines"
    } else {
        "table"
    };
    eprintln!(
        "reading {} as {format} records, every field as text (`hearth dataset --source ...` picks fields and transforms)",
        path.display()
    );
    let recipe = DatasetRecipe {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into()),
        sources: vec![SourceSpec {
            source: kind,
            weight: 1.0,
        }],
        ..DatasetRecipe::default()
    };
    DataSource::Dataset {
        recipe: Box::new(recipe),
        folder: None,
    }
}

/// A number flag that does not read as a finite number.
#[derive(Debug, thiserror::Error)]
pub enum NumberFlagError {
    /// Not a number at all.
    #[error(transparent)]
    NotANumber(#[from] std::num::ParseFloatError),
    /// NaN or an infinity.
    #[error("must be a finite number")]
    NotFinite,
}

/// A number flag: NaN and infinities are refused here, so clap names the flag in the error.
pub fn finite(text: &str) -> Result<f64, NumberFlagError> {
    let value: f64 = text.trim().parse()?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(NumberFlagError::NotFinite)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// Reads a spec's data (and its pairs and STS files) so that a bad file fails before any run
/// folder is created. Used by `train` and `sweep`.
pub(crate) fn check_inputs(spec: &RunSpec) -> Result<()> {
    // A fine-tune reads it with its base's tokenizer (a pretrained one cannot be fitted).
    let base_tokenizer = spec
        .init
        .as_ref()
        .and_then(|init| hearth_engine::project::store::read_tokenizer(&init.from_run));
    let corpus = match base_tokenizer {
        Some(tokenizer) => hearth_engine::data::Corpus::load_with(&spec.data, tokenizer)?,
        None => hearth_engine::data::Corpus::load_for(&spec.data, spec.objective.needs_specials())?,
    };
    corpus.check_context(spec.model.context)?;
    drop(corpus);
    if let (Some(path), true) = (&spec.objective.pairs_file, spec.objective.uses_embeddings()) {
        hearth_engine::data::pairs::read_pairs(path)?;
    }
    if let (Some(path), true) = (&spec.objective.sts_file, spec.objective.uses_embeddings()) {
        hearth_engine::data::pairs::read_scored_pairs(path)?;
    }
    Ok(())
}

/// `hearth train`: trains with a progress bar; the last line is the `final ...` summary.
pub fn run(args: &TrainArgs, project: Option<PathBuf>) -> Result<()> {
    let spec = args.to_spec()?;
    let errors = spec.validate();
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        bail!("invalid settings:\n{}", lines.join("\n"));
    }
    check_inputs(&spec)?;
    let mut spec = spec;
    let queue_root = args
        .out
        .is_none()
        .then(|| project.clone().unwrap_or_else(default_project_dir));
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let project = Project::open_or_create(&project.unwrap_or_else(default_project_dir))?;
            // A default name (the data file's) that a run already has gets a suffix.
            if args.name.is_none() {
                spec.name = project.unique_run_name(&spec.name);
            }
            project.new_run_dir(&spec.name)
        }
    };
    let steps = spec.train.steps as u64;
    if args.queue {
        let Some(root) = queue_root else {
            bail!("--queue: the queue belongs to a project; leave out --out");
        };
        hearth_engine::train::prepare_run(spec, &dir)?;
        return super::worker::enqueue(&root, &dir);
    }
    if args.distributed {
        return distributed::run(spec, &dir, steps);
    }
    let handle = spawn_run(spec, &dir, None)?;
    eprintln!("run folder: {}", dir.display());
    follow(&handle, steps)
}

/// `--distributed`: one rank of an MPI launch.
#[cfg(feature = "mpi")]
mod distributed {
    use anyhow::{Result, bail};
    use hearth_engine::spec::RunSpec;
    use hearth_engine::train::collective::{Collective, MpiWorld};
    use std::path::Path;
    use std::sync::Arc;

    /// Trains `spec` as this process's rank. Rank 0 writes the run folder `dir` and prints the
    /// progress and the final line; the other ranks keep their (identical) history in a
    /// temporary folder that is removed at the end.
    pub fn run(spec: RunSpec, dir: &Path, steps: u64) -> Result<()> {
        let Some(world) = MpiWorld::init() else {
            bail!("MPI could not be initialised with serialized threading");
        };
        let world = Arc::new(world);
        let (rank, size) = (world.rank(), world.size());
        if rank == 0 {
            let handle = hearth_engine::train::spawn_run_with(spec, dir, None, world.clone())?;
            eprintln!("run folder: {} ({size} ranks)", dir.display());
            return super::follow(&handle, steps);
        }
        let scratch =
            std::env::temp_dir().join(format!("hearth-rank{rank}-{}", std::process::id()));
        let handle =
            hearth_engine::train::spawn_run_with(spec, &scratch.join("run"), None, world.clone())?;
        let result = super::wait(&handle);
        drop(handle);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }
}

#[cfg(not(feature = "mpi"))]
mod distributed {
    use anyhow::{Result, bail};
    use hearth_engine::spec::RunSpec;
    use std::path::Path;

    pub fn run(_spec: RunSpec, _dir: &Path, _steps: u64) -> Result<()> {
        bail!(
            "--distributed: this hearth was built without MPI; build it with `--features mpi` (OpenMPI's libopenmpi-dev and libclang-dev) and launch it with mpirun or srun"
        )
    }
}

/// Waits for a run to end without showing progress (the ranks other than 0 of a distributed
/// run); a failure is an error.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
fn wait(handle: &RunHandle) -> Result<()> {
    loop {
        match handle.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(RunEvent::Failed { step, reason })) => {
                bail!("run failed at step {step}: {reason}")
            }
            Ok(Some(RunEvent::Finished(_))) => return Ok(()),
            Ok(_) => {}
            Err(_) => bail!("the training thread ended without a result"),
        }
    }
}

/// Shows a run's progress until it ends; the last line is the `final ...` summary. Used by
/// `train` and `resume`.
pub fn follow(handle: &RunHandle, steps: u64) -> Result<()> {
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .expect("valid template"),
    );
    let mut val = String::from("-");
    let mut last_extra: Vec<(String, f64)> = Vec::new();
    loop {
        let event = match handle.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(_) => bail!("the training thread ended without a result"),
        };
        match event {
            RunEvent::Started {
                n_params, device, ..
            } => {
                bar.println(format!("{n_params} parameters on {device}"));
            }
            RunEvent::Step(m) => {
                bar.set_position(m.step as u64);
                bar.set_message(format!(
                    "loss {:.4} val {val} {:.0} tok/s lr {:.2e}",
                    m.train_loss, m.tokens_per_s, m.lr
                ));
            }
            // The step's loss terms are kept in the run's history for the studio's charts.
            RunEvent::StepTerms { .. } => {}
            RunEvent::Eval(e) => {
                val = format!("{:.4}", e.val_loss);
                last_extra = e.extra.clone();
                let mut line = format!(
                    "step {:>6}: train loss {:.4}, val loss {:.4}",
                    e.step, e.train_loss, e.val_loss
                );
                for (k, v) in &e.extra {
                    line.push_str(&format!(", {k} {v:.4}"));
                }
                // A hidden bar (output not a terminal) swallows println: write the line anyway.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            RunEvent::References(references) => {
                for line in reference_lines(&references) {
                    if bar.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        bar.println(line);
                    }
                }
            }
            RunEvent::Warning { step, message } => {
                let line = format!("warning at step {step}: {message}");
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            RunEvent::Failed { step, reason } => {
                bar.abandon();
                bail!("run failed at step {step}: {reason}");
            }
            RunEvent::Finished(s) => {
                bar.finish();
                let mut line = format!(
                    "final step={} train_loss={:.4} val_loss={:.4} tokens_per_s={:.1} elapsed_s={:.1}",
                    s.step, s.train_loss, s.val_loss, s.tokens_per_s, s.elapsed_s
                );
                for (k, v) in &last_extra {
                    line.push_str(&format!(" {k}={v:.4}"));
                }
                println!("{line}");
                if s.allreduce_s > 0.0 {
                    eprintln!(
                        "all-reduce: {:.3} s in {} steps ({:.2} ms per step)",
                        s.allreduce_s,
                        s.step,
                        s.allreduce_s * 1e3 / s.step.max(1) as f64
                    );
                }
                return Ok(());
            }
            RunEvent::Attention(_)
            | RunEvent::EmbeddingMap(_)
            | RunEvent::ContrastiveBatch(_)
            | RunEvent::MaskedProbe(_)
            | RunEvent::Sample { .. }
            | RunEvent::Checkpoint { .. }
            | RunEvent::Paused { .. }
            | RunEvent::Resumed { .. } => {}
        }
    }
}

/// What the run's metrics must beat, one line per metric: the count models of the next-token
/// loss as `hearth dataset` prints them, the others as `reference METRIC: label value · ...`.
pub fn reference_lines(references: &[hearth_engine::eval::baseline::Reference]) -> Vec<String> {
    let mut metrics: Vec<&str> = Vec::new();
    for r in references {
        if !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    metrics
        .into_iter()
        .map(|metric| {
            let of: Vec<_> = references.iter().filter(|r| r.metric == metric).collect();
            if metric == "val_loss" {
                let parts: Vec<String> = of
                    .iter()
                    .map(|r| {
                        let label = r.label.trim_end_matches(" count model");
                        format!("{label} {:.3}", r.value)
                    })
                    .collect();
                format!(
                    "count models on the validation split (nats/token, add-k): {}",
                    parts.join(" · ")
                )
            } else {
                let parts: Vec<String> = of
                    .iter()
                    .map(|r| format!("{} {:.4}", r.label, r.value))
                    .collect();
                format!("reference {metric}: {}", parts.join(" · "))
            }
        })
        .collect()
}
