//! Dataset page: a quick pick (built-in text or one text file) or the builder (several sources
//! with weights, de-duplication, split, tokenizer, transform). Statistics, the leakage report and
//! the first batch exactly as the model will see it appear on the right; building runs in a
//! background thread with progress, and errors show inline naming the file and line. "Save
//! dataset" builds the token shards into the project (as `hearth dataset` does), with
//! progress and a Cancel.

mod build;
mod builder;
pub(crate) mod results;

pub use build::{ShardProgress, StatusHook};

use crate::action::{Action, AppContext, DataStatus, Pick};
use builder::*;
use hearth_engine::data::dataset::{self, Dataset, DatasetRecipe, Leak, SourceSpec, SourceStats};
use hearth_engine::data::sources::{DocSplit, SourceKind};
use hearth_engine::data::{Corpus, DataSource, DataSpec};
use hearth_engine::objective::ObjectiveSpec;
use hearth_engine::preview::{PreviewRow, first_batch};
use hearth_engine::spec::RunSpec;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

/// Statistics of a built dataset recipe.
#[derive(Debug, Clone)]
pub struct RecipeStats {
    /// Each source's records, duplicates, split and share.
    pub sources: Vec<SourceStats>,
    /// Validation documents also in train (`None`: not checked, a contiguous text split).
    pub leakage: Option<Vec<Leak>>,
    /// Training examples (or tokens), in `unit`.
    pub train: usize,
    /// Validation examples (or tokens), in `unit`.
    pub val: usize,
    /// What `train` and `val` count.
    pub unit: &'static str,
    /// Tokens in one epoch of the mix.
    pub epoch_tokens: usize,
}

/// What the page knows about the draft's data (built in the loading thread).
#[derive(Debug, Clone)]
pub struct DatasetStats {
    /// Characters of text read.
    pub n_chars: usize,
    /// Tokenizer vocabulary size.
    pub vocab: usize,
    /// Tokens in the training split.
    pub train_tokens: usize,
    /// Tokens in the validation split.
    pub val_tokens: usize,
    /// Per-source statistics, for data built from a recipe.
    pub recipe: Option<RecipeStats>,
    /// The statistics are those of the dataset's saved token shards.
    pub from_shards: bool,
    /// The corpus the first-batch preview is drawn from.
    corpus: Arc<Corpus>,
}

/// The first batch and the epoch at the draft's batch size and context (derived from the
/// loaded corpus, so changing them rebuilds nothing).
#[derive(Debug, Clone)]
pub struct BatchPreview {
    /// The first batch's rows, token by token.
    pub rows: Vec<PreviewRow>,
    /// Optimizer steps in one epoch.
    pub steps_per_epoch: usize,
    /// Training examples longer than the context (their start is cut off).
    pub too_long: usize,
}

/// What a build depends on: the data and whether the objective reserves special tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct DataKey {
    /// The data.
    pub data: DataSpec,
    /// The tokenizer reserves the special tokens.
    pub specials: bool,
    /// A fine-tune's base run, whose tokenizer the run reads its data with.
    pub base: Option<std::path::PathBuf>,
}

/// Everything the statistics and preview depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewKey {
    /// The data.
    pub data: DataSpec,
    /// The objective (which tokens the loss is computed on).
    pub objective: ObjectiveSpec,
    /// Batch size.
    pub batch: usize,
    /// Context length in tokens.
    pub context: usize,
    /// The run's seed (which windows the batch draws).
    pub seed: u64,
    /// A fine-tune's base run, whose tokenizer the run reads its data with.
    pub base: Option<std::path::PathBuf>,
}

impl PreviewKey {
    fn data_key(&self) -> DataKey {
        DataKey {
            data: self.data.clone(),
            specials: self.objective.needs_specials(),
            base: self.base.clone(),
        }
    }
}

/// The dataset page: the draft's data built in the background, its statistics and first
/// batch, and the builder's own fields.
#[derive(Default)]
pub struct DatasetPage {
    /// The data the stats (or error) describe.
    pub loaded_for: Option<DataKey>,
    /// Statistics of the data last built.
    pub stats: Option<DatasetStats>,
    /// Why the data last asked for cannot be built.
    pub error: Option<String>,
    loading: Option<(DataKey, Receiver<Result<DatasetStats, LoadError>>)>,
    /// The preview of the loaded corpus at the key's batch, context, seed and objective.
    preview: Option<(PreviewKey, BatchPreview)>,
    /// Stage and fraction of the build in progress.
    progress: Arc<Mutex<(String, f64)>>,
    /// Where the builder's recipe was last saved, and the recipe saved there.
    saved: Option<(PathBuf, DatasetRecipe)>,
    /// The outcome of the last save or open.
    message: Option<String>,
    /// A path typed into the builder's "Path" field.
    typed_path: String,
    /// The token shards being built by "Save dataset".
    shard_build: Option<build::ShardBuild>,
    /// Why the last save failed (the file and line, for a source that does not read).
    save_error: Option<String>,
    /// Called at each status report of a save's build.
    status_hook: Option<StatusHook>,
    /// The draft's sources are too large to preview in memory (the error says so).
    too_large: bool,
}

/// Why the draft's data could not be loaded, in the words the page shows.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Building a dataset recipe failed.
    #[error(transparent)]
    Build(#[from] hearth_engine::data::dataset::DatasetError),
    /// Reading the text failed.
    #[error(transparent)]
    Read(#[from] hearth_engine::data::DataError),
    /// The sources are too large to build in memory for the preview.
    #[error(
        "the sources hold {:.0} MB of text, more than the page previews in memory ({} MB): \
         Save dataset builds its token shards, and the statistics and first batch are then \
         read from them",
        *.0 as f64 / 1e6,
        PREVIEW_MAX_BYTES / 1_000_000
    )]
    TooLarge(u64),
}

/// Source text the page builds in memory at most for its preview; larger recipes show their
/// statistics once saved (from their shards).
pub const PREVIEW_MAX_BYTES: u64 = 64_000_000;

/// Bytes of the files a recipe's sources read (generated sources count nothing).
fn sources_bytes(recipe: &DatasetRecipe) -> u64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    recipe
        .sources
        .iter()
        .map(|s| match &s.source {
            SourceKind::Text { path, .. }
            | SourceKind::Jsonl { path, .. }
            | SourceKind::Table { path, .. }
            | SourceKind::Pairs { path } => size(path),
            SourceKind::Folder { path, glob, .. } => {
                hearth_engine::data::sources::folder_files(path, glob)
                    .map_or(0, |files| files.iter().map(|f| size(f)).sum())
            }
            SourceKind::Generated { .. } => 0,
        })
        .sum()
}

/// Builds the draft's data (in the loading thread).
fn load(key: &DataKey, progress: &Mutex<(String, f64)>) -> Result<DatasetStats, LoadError> {
    let report = |stage: &str, frac: f64| {
        if let Ok(mut p) = progress.lock() {
            *p = (stage.to_string(), frac);
        }
    };
    if let Some(stats) = load_shards(key)? {
        return Ok(stats);
    }
    let (corpus, recipe) = match &key.data.source {
        DataSource::Dataset { recipe, folder } => {
            let bytes = sources_bytes(recipe);
            if bytes > PREVIEW_MAX_BYTES {
                return Err(LoadError::TooLarge(bytes));
            }
            let saved = folder
                .as_deref()
                .and_then(|dir| dataset::saved_tokenizer_for(dir, recipe));
            let ds = Dataset::build(recipe, saved, &report)?;
            let (train, val, unit) = ds.sizes();
            let stats = RecipeStats {
                sources: ds.sources.clone(),
                leakage: ds.leakage.clone(),
                train,
                val,
                unit,
                epoch_tokens: ds.epoch_tokens(),
            };
            (Corpus::from_dataset(ds, key.specials), Some(stats))
        }
        _ => {
            report("reading", 0.0);
            // A fine-tune reads its data with its base run's tokenizer (a pretrained one
            // cannot be fitted), as the run will.
            let base_tokenizer = key
                .base
                .as_deref()
                .and_then(hearth_engine::project::store::read_tokenizer);
            let corpus = match base_tokenizer {
                Some(tokenizer) => Corpus::load_with(&key.data, tokenizer)?,
                None => Corpus::load_for(&key.data, key.specials)?,
            };
            (corpus, None)
        }
    };
    Ok(DatasetStats {
        n_chars: corpus.n_chars,
        vocab: corpus.tokenizer.vocab_size(),
        train_tokens: corpus.train.len(),
        val_tokens: corpus.val.len(),
        recipe,
        from_shards: false,
        corpus: Arc::new(corpus),
    })
}

/// The statistics of a saved dataset whose token shards were built from the draft's recipe,
/// read from its manifest with the shards mapped (as a run maps them); `None` when there are
/// no such shards (a fine-tune reads the data with its base's tokenizer: built in memory).
fn load_shards(key: &DataKey) -> Result<Option<DatasetStats>, LoadError> {
    let DataSource::Dataset {
        recipe,
        folder: Some(dir),
    } = &key.data.source
    else {
        return Ok(None);
    };
    let manifest = match hearth_engine::data::shards::read_manifest(dir) {
        Ok(m) if m.recipe == **recipe && key.base.is_none() => m,
        _ => return Ok(None),
    };
    use hearth_engine::data::shards::{OpenShards, tokenizer_checksum};
    let Some(tokenizer) = dataset::saved_tokenizer(dir)
        .filter(|t| tokenizer_checksum(t) == manifest.tokenizer_checksum)
    else {
        return Ok(None);
    };
    let open = OpenShards::open(dir).map_err(hearth_engine::data::DataError::from)?;
    let corpus = Corpus::from_shards(open, tokenizer, key.specials)?;
    let s = manifest.summary;
    let unit = match s.unit.as_str() {
        "examples" => "examples",
        "pairs" => "pairs",
        _ => "tokens",
    };
    Ok(Some(DatasetStats {
        n_chars: corpus.n_chars,
        vocab: corpus.tokenizer.vocab_size(),
        train_tokens: corpus.train.len(),
        val_tokens: corpus.val.len(),
        recipe: Some(RecipeStats {
            sources: s.sources,
            leakage: s.leakage,
            train: s.train_items,
            val: s.val_items,
            unit,
            epoch_tokens: s.epoch_tokens,
        }),
        from_shards: true,
        corpus: Arc::new(corpus),
    }))
}

/// The first batch of a run with `key`'s settings on `corpus`.
fn batch_preview(corpus: &Corpus, key: &PreviewKey) -> BatchPreview {
    let mut spec = RunSpec {
        data: key.data.clone(),
        objective: key.objective.clone(),
        ..RunSpec::default()
    };
    spec.train.batch_size = key.batch;
    spec.train.seed = key.seed;
    spec.model.context = key.context;
    let rows = if corpus.check_context(key.context).is_ok() || corpus.is_instructions() {
        first_batch(corpus, &spec, 8)
    } else {
        Vec::new()
    };
    BatchPreview {
        rows,
        steps_per_epoch: corpus.steps_per_epoch(key.batch, key.context),
        too_long: corpus
            .examples_train
            .iter()
            .filter(|e| e.ids.len() > key.context + 1)
            .count(),
    }
}

/// True when the quick pick's file is not chosen yet: nothing to build, nothing wrong.
pub fn missing_path(data: &DataSpec) -> bool {
    match &data.source {
        DataSource::TextFile { path }
        | DataSource::PromptResponse { path }
        | DataSource::Chat { path } => path.as_os_str().is_empty(),
        _ => false,
    }
}

impl DatasetPage {
    /// True while data is being built.
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// True while "Save dataset" builds token shards.
    pub fn is_saving(&self) -> bool {
        self.shard_build.is_some()
    }

    /// Where the running save's build stands.
    pub fn save_progress(&self) -> Option<ShardProgress> {
        self.shard_build.as_ref().map(|b| b.progress())
    }

    /// The outcome of the last save or open, as the page shows it.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// Why the last save failed, as the page shows it.
    pub fn save_error(&self) -> Option<&str> {
        self.save_error.as_deref()
    }

    /// Calls `hook` with the stage at each status report of the builds "Save dataset" starts
    /// (on the build's thread).
    #[doc(hidden)]
    pub fn set_status_hook(&mut self, hook: StatusHook) {
        self.status_hook = Some(hook);
    }

    /// Stats and preview for `key` when they are loaded and current.
    pub fn stats_for(&self, key: &PreviewKey) -> Option<(&DatasetStats, &BatchPreview)> {
        let (for_key, preview) = self.preview.as_ref()?;
        (for_key == key).then_some(())?;
        Some((self.stats.as_ref()?, preview))
    }

    /// What the pages depending on the draft's data need to know of it.
    pub fn status_for(&self, spec: &RunSpec) -> DataStatus {
        DataStatus {
            vocab: self.vocab_for(spec),
            error: self.error_for(&spec.data),
        }
    }

    /// The vocabulary of the last load of `spec`'s data and objective (whatever the batch).
    pub fn vocab_for(&self, spec: &RunSpec) -> Option<usize> {
        let key = DataKey {
            data: spec.data.clone(),
            specials: spec.objective.needs_specials(),
            base: spec.init.as_ref().map(|i| i.from_run.clone()),
        };
        (self.loaded_for.as_ref() == Some(&key))
            .then(|| self.stats.as_ref().map(|s| s.vocab))
            .flatten()
    }

    /// The error of the last load of `data`, if it failed.
    pub fn error_for(&self, data: &DataSpec) -> Option<String> {
        (self.loaded_for.as_ref()?.data == *data)
            .then(|| self.error.clone())
            .flatten()
    }

    /// Collects finished loads, starts a load when the data changed, and redraws the preview
    /// when only the batch, context, seed or objective changed.
    pub fn poll(&mut self, key: &PreviewKey) {
        if let Some((for_key, rx)) = &self.loading
            && let Ok(result) = rx.try_recv()
        {
            self.loaded_for = Some(for_key.clone());
            match result {
                Ok(stats) => {
                    self.stats = Some(stats);
                    self.error = None;
                }
                Err(err) => {
                    self.stats = None;
                    self.too_large = matches!(err, LoadError::TooLarge(_));
                    self.error = Some(err.to_string());
                }
            }
            self.preview = None;
            self.loading = None;
        }
        let data_key = key.data_key();
        if self.loaded_for.as_ref() == Some(&data_key) {
            if let Some(stats) = &self.stats
                && self.preview.as_ref().is_none_or(|(k, _)| k != key)
            {
                self.preview = Some((key.clone(), batch_preview(&stats.corpus, key)));
            }
        } else if self.loading.is_none() && !missing_path(&key.data) {
            let (tx, rx) = channel();
            let for_key = data_key.clone();
            let progress = Arc::clone(&self.progress);
            std::thread::spawn(move || {
                let _ = tx.send(load(&for_key, &progress));
            });
            self.loading = Some((data_key, rx));
        }
    }
}

/// What the statistics and preview of the draft `d` depend on.
pub fn preview_key(d: &RunSpec) -> PreviewKey {
    PreviewKey {
        data: d.data.clone(),
        objective: d.objective.clone(),
        batch: d.train.batch_size,
        context: d.model.context,
        seed: d.train.seed,
        base: d.init.as_ref().map(|i| i.from_run.clone()),
    }
}

/// The quick pick's source for the file `path`: chat conversations (a JSONL file whose first
/// record has `messages`; they train on the assistant's turns) or plain text.
pub fn quick_file_source(path: PathBuf) -> DataSource {
    if hearth_engine::data::chat::is_chat_file(&path) {
        DataSource::Chat { path }
    } else {
        DataSource::TextFile { path }
    }
}

/// Puts a picked path into `data`: the quick pick's file, or a new source of the builder.
pub fn apply_pick(data: &mut DataSpec, pick: Pick, path: PathBuf) {
    if pick == Pick::QuickTextFile {
        data.source = quick_file_source(path);
        return;
    }
    let source = match pick {
        Pick::SourceFolder => SourceKind::Folder {
            path,
            glob: "*.txt;*.md".to_string(),
            documents: DocSplit::Whole,
        },
        Pick::PairsFile => SourceKind::Pairs { path },
        _ => SourceKind::for_file(path),
    };
    if let DataSource::Dataset { recipe, .. } = &mut data.source {
        recipe.sources.push(SourceSpec::new(source));
    }
}

impl DatasetPage {
    /// Draws the page on a copy of the draft's data; returns the edited data and the dialogs
    /// to open.
    #[must_use = "the app applies what the page asks for"]
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut spec = ctx.draft().clone();
        ui.heading("Dataset");
        let builder = matches!(spec.data.source, DataSource::Dataset { .. });
        ui.horizontal(|ui| {
            if ui
                .radio(!builder, "Quick: built-in text or one file")
                .clicked()
                && builder
            {
                spec.data.source = DataSource::default();
            }
            if ui
                .radio(builder, "Builder: sources, mixing, transforms")
                .clicked()
                && !builder
            {
                let recipe = self
                    .saved
                    .as_ref()
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(starter_recipe);
                spec.data.source = DataSource::Dataset {
                    recipe: Box::new(recipe),
                    folder: None,
                };
            }
        });
        ui.add_space(4.0);
        let key = preview_key(&spec);
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical()
                .id_salt("dataset_left")
                .show(&mut cols[0], |ui| {
                    if builder {
                        self.builder_ui(ui, &mut spec.data, &ctx.project.dir, &mut actions);
                    } else {
                        quick_ui(ui, &mut spec.data, &mut actions);
                    }
                });
            egui::ScrollArea::vertical()
                .id_salt("dataset_right")
                .show(&mut cols[1], |ui| {
                    ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                        self.results_ui(&key, ui)
                    })
                });
        });
        if spec != *ctx.draft() {
            actions.insert(0, Action::SetDraft(Box::new(spec)));
        }
        actions
    }
}
