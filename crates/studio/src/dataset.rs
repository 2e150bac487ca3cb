//! Dataset page: a quick pick (built-in text or one text file) or the builder (several sources
//! with weights, de-duplication, split, tokenizer, transform). Statistics, the leakage report and
//! the first batch exactly as the model will see it appear on the right; building runs in a
//! background thread with progress, and errors show inline naming the file and line.

use crate::action::{Action, AppContext, DataStatus, Pick};
use hearth_engine::data::dataset::{
    self, Dataset, DatasetRecipe, Leak, SourceSpec, SourceStats, SplitMode, TransformSpec,
};
use hearth_engine::data::sources::{DocSplit, Generator, SourceKind};
use hearth_engine::data::transforms::{DistractorMode, LabelMode};
use hearth_engine::data::{Corpus, DataSource, DataSpec, TokenizerKind};
use hearth_engine::objective::ObjectiveSpec;
use hearth_engine::preview::{PreviewRow, first_batch};
use hearth_engine::spec::RunSpec;
use std::path::{Path, PathBuf};
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
    /// The recipe built and its tokenizer, saved as they are by "Save dataset".
    pub built: Option<Arc<(DatasetRecipe, hearth_engine::data::Tokenizer)>>,
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
}

impl PreviewKey {
    fn data_key(&self) -> DataKey {
        DataKey {
            data: self.data.clone(),
            specials: self.objective.needs_specials(),
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
    loading: Option<(DataKey, Receiver<Result<DatasetStats, String>>)>,
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
}

/// Builds the draft's data (in the loading thread).
fn load(key: &DataKey, progress: &Mutex<(String, f64)>) -> Result<DatasetStats, String> {
    let report = |stage: &str, frac: f64| {
        if let Ok(mut p) = progress.lock() {
            *p = (stage.to_string(), frac);
        }
    };
    let (corpus, recipe, built) = match &key.data.source {
        DataSource::Dataset { recipe, folder } => {
            let saved = folder
                .as_deref()
                .and_then(|dir| dataset::saved_tokenizer_for(dir, recipe));
            let ds = Dataset::build(recipe, saved, &report).map_err(|e| e.to_string())?;
            let (train, val, unit) = ds.sizes();
            let stats = RecipeStats {
                sources: ds.sources.clone(),
                leakage: ds.leakage.clone(),
                train,
                val,
                unit,
                epoch_tokens: ds.epoch_tokens(),
            };
            let built = Arc::new((ds.recipe.clone(), ds.tokenizer.clone()));
            (
                Corpus::from_dataset(ds, key.specials),
                Some(stats),
                Some(built),
            )
        }
        _ => {
            report("reading", 0.0);
            let corpus = Corpus::load_for(&key.data, key.specials).map_err(|e| e.to_string())?;
            (corpus, None, None)
        }
    };
    Ok(DatasetStats {
        n_chars: corpus.n_chars,
        vocab: corpus.tokenizer.vocab_size(),
        train_tokens: corpus.train.len(),
        val_tokens: corpus.val.len(),
        recipe,
        built,
        corpus: Arc::new(corpus),
    })
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
        DataSource::TextFile { path } | DataSource::PromptResponse { path } => {
            path.as_os_str().is_empty()
        }
        _ => false,
    }
}

impl DatasetPage {
    /// True while data is being built.
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
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
                    self.error = Some(err);
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
    }
}

/// Puts a picked path into `data`: the quick pick's file, or a new source of the builder.
pub fn apply_pick(data: &mut DataSpec, pick: Pick, path: PathBuf) {
    if pick == Pick::QuickTextFile {
        data.source = DataSource::TextFile { path };
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

/// A recipe to start the builder from: the built-in stories.
fn starter_recipe() -> DatasetRecipe {
    DatasetRecipe {
        name: "mix".to_string(),
        sources: vec![SourceSpec::new(SourceKind::Generated {
            generator: Generator::Stories,
            seed: 1,
            size: 200_000,
        })],
        ..DatasetRecipe::default()
    }
}

fn quick_ui(ui: &mut egui::Ui, data: &mut DataSpec, actions: &mut Vec<Action>) {
    ui.label("What the next run trains on. The last part of the text is held out for validation.");
    let is_file = matches!(data.source, DataSource::TextFile { .. });
    ui.horizontal(|ui| {
        if ui.radio(!is_file, "Built-in generated text").clicked() && is_file {
            data.source = DataSource::default();
        }
        if ui.radio(is_file, "Text file").clicked() && !is_file {
            data.source = DataSource::TextFile {
                path: PathBuf::new(),
            };
        }
    });
    let mut open_dialog = false;
    egui::Grid::new("dataset_grid")
        .num_columns(2)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            match &mut data.source {
                DataSource::Generated { seed, n_chars } => {
                    let label = ui.label("Seed");
                    ui.add(egui::DragValue::new(seed)).labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Characters");
                    ui.add(
                        egui::DragValue::new(n_chars)
                            .range(1_000..=50_000_000)
                            .speed(1_000),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                }
                DataSource::TextFile { path } | DataSource::PromptResponse { path } => {
                    let label = ui.label("File");
                    ui.horizontal(|ui| {
                        path_edit(ui, path, label.id, "/path/to/text.txt");
                        open_dialog = ui.button("Open text file…").clicked();
                    });
                    ui.end_row();
                }
                DataSource::Dataset { .. } => {}
            }
            let label = ui.label("Tokenizer");
            tokenizer_ui(ui, &mut data.tokenizer, label.id);
            ui.end_row();
            let label = ui.label("Validation share");
            ui.add(egui::Slider::new(&mut data.val_fraction, 0.01..=0.5).fixed_decimals(2))
                .labelled_by(label.id);
            ui.end_row();
        });
    if open_dialog {
        actions.push(Action::PickData(Pick::QuickTextFile));
    }
}

fn path_edit(ui: &mut egui::Ui, path: &mut PathBuf, label: egui::Id, hint: &str) {
    let mut text = path.display().to_string();
    if ui
        .add(
            egui::TextEdit::singleline(&mut text)
                .desired_width(260.0)
                .hint_text(hint),
        )
        .labelled_by(label)
        .changed()
    {
        *path = PathBuf::from(text);
    }
}

fn tokenizer_ui(ui: &mut egui::Ui, kind: &mut TokenizerKind, label: egui::Id) {
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt(("tokenizer", label))
            .selected_text(kind.label())
            .show_ui(ui, |ui| {
                for k in TokenizerKind::ALL {
                    if ui
                        .selectable_label(kind.label() == k.label(), k.label())
                        .clicked()
                        && kind.label() != k.label()
                    {
                        *kind = k;
                    }
                }
            })
            .response
            .labelled_by(label);
        if let TokenizerKind::Bpe { vocab_size } = kind {
            let l = ui.label("vocabulary");
            ui.add(
                egui::DragValue::new(vocab_size)
                    .range(257..=65_536)
                    .speed(8),
            )
            .labelled_by(l.id);
        }
    });
}

/// A comma-separated list of names.
fn list_edit(ui: &mut egui::Ui, list: &mut Vec<String>, label: egui::Id, hint: &str) {
    let mut text = list.join(", ");
    if ui
        .add(
            egui::TextEdit::singleline(&mut text)
                .desired_width(200.0)
                .hint_text(hint),
        )
        .labelled_by(label)
        .changed()
    {
        *list = text
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
}

fn text_field(ui: &mut egui::Ui, name: &str, value: &mut String) {
    let label = ui.label(name);
    ui.add(egui::TextEdit::singleline(value).desired_width(200.0))
        .labelled_by(label.id);
    ui.end_row();
}

fn source_ui(ui: &mut egui::Ui, i: usize, s: &mut SourceSpec) -> bool {
    let mut remove = false;
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new(format!("{}. {}", i + 1, s.source.describe())).strong());
            if ui.small_button("Remove").clicked() {
                remove = true;
            }
        });
        egui::Grid::new(("source", i))
            .num_columns(2)
            .spacing([10.0, 4.0])
            .show(ui, |ui| {
                let label = ui.label("Weight");
                ui.add(
                    egui::DragValue::new(&mut s.weight)
                        .range(0.01..=100.0)
                        .speed(0.05)
                        .fixed_decimals(2),
                )
                .labelled_by(label.id);
                ui.end_row();
                match &mut s.source {
                    SourceKind::Text { path, documents } => {
                        let label = ui.label("File");
                        path_edit(ui, path, label.id, "/path/to/file.txt");
                        ui.end_row();
                        doc_split_ui(ui, documents, i);
                    }
                    SourceKind::Folder {
                        path,
                        glob,
                        documents,
                    } => {
                        let label = ui.label("Folder");
                        path_edit(ui, path, label.id, "/path/to/folder");
                        ui.end_row();
                        text_field(ui, "File names", glob);
                        doc_split_ui(ui, documents, i);
                    }
                    SourceKind::Jsonl { path, fields } => {
                        let label = ui.label("File");
                        path_edit(ui, path, label.id, "/path/to/data.jsonl");
                        ui.end_row();
                        let label = ui.label("Fields");
                        list_edit(ui, fields, label.id, "all fields");
                        ui.end_row();
                    }
                    SourceKind::Table { path, columns } => {
                        let label = ui.label("File");
                        path_edit(ui, path, label.id, "/path/to/table.csv");
                        ui.end_row();
                        let label = ui.label("Columns");
                        list_edit(ui, columns, label.id, "all columns");
                        ui.end_row();
                    }
                    SourceKind::Pairs { path } => {
                        let label = ui.label("File");
                        path_edit(ui, path, label.id, "/path/to/pairs.tsv");
                        ui.end_row();
                    }
                    SourceKind::Generated {
                        generator,
                        seed,
                        size,
                    } => {
                        let label = ui.label(generator.size_unit().0);
                        ui.add(egui::DragValue::new(size).range(1..=50_000_000))
                            .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("Seed");
                        ui.add(egui::DragValue::new(seed)).labelled_by(label.id);
                        ui.end_row();
                    }
                }
            });
    });
    remove
}

fn doc_split_ui(ui: &mut egui::Ui, documents: &mut DocSplit, i: usize) {
    let label = ui.label("Documents");
    egui::ComboBox::from_id_salt(("documents", i))
        .selected_text(documents.label())
        .show_ui(ui, |ui| {
            for d in DocSplit::ALL {
                ui.selectable_value(documents, d, d.label());
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
}

fn transform_ui(ui: &mut egui::Ui, transform: &mut TransformSpec) {
    let label = ui.label("Transform");
    egui::ComboBox::from_id_salt("transform")
        .selected_text(transform.label())
        .width(220.0)
        .show_ui(ui, |ui| {
            for t in TransformSpec::all_defaults() {
                let same = t.label() == transform.label();
                if ui.selectable_label(same, t.label()).clicked() && !same {
                    *transform = t;
                }
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    match transform {
        TransformSpec::None => {}
        TransformSpec::Sft { options } => {
            text_field(ui, "Prompt field", &mut options.prompt_field);
            text_field(ui, "Response field", &mut options.response_field);
            let label = ui.label("Template");
            ui.add(
                egui::TextEdit::multiline(&mut options.template)
                    .desired_rows(3)
                    .desired_width(240.0)
                    .code_editor(),
            )
            .labelled_by(label.id);
            ui.end_row();
        }
        TransformSpec::Raft { options } => {
            text_field(ui, "Question field", &mut options.question_field);
            text_field(ui, "Answer field", &mut options.answer_field);
            text_field(ui, "Document field", &mut options.document_field);
            let label = ui.label("P(right document)");
            ui.add(egui::Slider::new(&mut options.p_oracle, 0.0..=1.0).fixed_decimals(2))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Distractors");
            ui.add(egui::DragValue::new(&mut options.distractors).range(0..=8))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Distractor choice");
            ui.horizontal(|ui| {
                ui.radio_value(&mut options.mode, DistractorMode::Random, "random");
                ui.radio_value(&mut options.mode, DistractorMode::Bm25, "hardest (BM25)");
            })
            .response
            .labelled_by(label.id);
            ui.end_row();
        }
        TransformSpec::Symbols { recipe } => {
            text_field(ui, "Input field", &mut recipe.options.input_field);
            text_field(ui, "Label field", &mut recipe.options.label_field);
            text_field(ui, "Task field", &mut recipe.options.task_field);
            text_field(ui, "Held-out task", &mut recipe.held_out_task);
            let label = ui.label("Examples per prompt");
            ui.add(egui::DragValue::new(&mut recipe.options.k_shot).range(1..=16))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Labels");
            ui.horizontal(|ui| {
                ui.radio_value(&mut recipe.options.mode, LabelMode::Symbols, "symbols");
                ui.radio_value(&mut recipe.options.mode, LabelMode::Natural, "natural");
                ui.radio_value(&mut recipe.options.mode, LabelMode::Flipped, "flipped");
            })
            .response
            .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Training prompts");
            ui.add(egui::DragValue::new(&mut recipe.train_prompts).range(1..=1_000_000))
                .labelled_by(label.id);
            ui.end_row();
        }
        TransformSpec::LinkBert { recipe } => {
            text_field(ui, "Title field", &mut recipe.options.title_field);
            text_field(ui, "Text field", &mut recipe.options.text_field);
            let label = ui.label("Segment characters");
            ui.add(egui::DragValue::new(&mut recipe.options.segment_chars).range(16..=4_000))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Pairs");
            ui.add(egui::DragValue::new(&mut recipe.pairs).range(3..=1_000_000))
                .labelled_by(label.id);
            ui.end_row();
        }
    }
}

impl DatasetPage {
    /// The builder: saved datasets, sources, how they are assembled, and saving the recipe.
    fn builder_ui(
        &mut self,
        ui: &mut egui::Ui,
        data: &mut DataSpec,
        project_dir: &Path,
        actions: &mut Vec<Action>,
    ) {
        let DataSource::Dataset { recipe, folder } = &mut data.source else {
            return;
        };
        let opened = saved_datasets_ui(ui, folder.as_deref(), project_dir);
        let opened = opened.and_then(|dir| match DatasetRecipe::load(&dir) {
            Ok(saved) => {
                **recipe = saved;
                Some(dir)
            }
            Err(e) => {
                self.message = Some(format!("Cannot open: {e}"));
                None
            }
        });
        ui.add_space(4.0);
        if let Some(pick) = self.sources_ui(ui, recipe) {
            actions.push(Action::PickData(pick));
        }
        ui.add_space(6.0);
        assembly_ui(ui, recipe);
        for err in recipe.validate() {
            ui.colored_label(ui.visuals().error_fg_color, err.to_string());
        }
        ui.add_space(6.0);
        if let Some(dir) = opened {
            // An opened dataset reuses its saved tokenizer.
            *folder = Some(dir);
        }
        self.save_ui(ui, recipe, folder, project_dir);
    }

    /// The recipe's sources, each with its settings, and the ways to add one. Returns the
    /// dialog a button asks for.
    fn sources_ui(&mut self, ui: &mut egui::Ui, recipe: &mut DatasetRecipe) -> Option<Pick> {
        let mut pick = None;
        ui.label(egui::RichText::new("Sources").strong());
        let mut removed = None;
        for (i, s) in recipe.sources.iter_mut().enumerate() {
            if source_ui(ui, i, s) {
                removed = Some(i);
            }
        }
        if let Some(i) = removed {
            recipe.sources.remove(i);
        }
        ui.horizontal(|ui| {
            let label = ui.label("Path");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.typed_path)
                        .desired_width(240.0)
                        .hint_text("a file or folder to add"),
                )
                .labelled_by(label.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Add path").clicked() || enter) && !self.typed_path.trim().is_empty() {
                let path = PathBuf::from(self.typed_path.trim());
                self.typed_path.clear();
                recipe.sources.push(SourceSpec::new(if path.is_dir() {
                    SourceKind::Folder {
                        path,
                        glob: "*.txt;*.md".to_string(),
                        documents: DocSplit::Whole,
                    }
                } else {
                    SourceKind::for_file(path)
                }));
            }
        });
        ui.horizontal_wrapped(|ui| {
            if ui.button("Add file…").clicked() {
                pick = Some(Pick::SourceFile);
            }
            if ui.button("Add folder…").clicked() {
                pick = Some(Pick::SourceFolder);
            }
            if ui.button("Add pairs file…").clicked() {
                pick = Some(Pick::PairsFile);
            }
            ui.menu_button("Add generated data", |ui| {
                for g in Generator::ALL {
                    if ui.button(g.label()).clicked() {
                        recipe.sources.push(SourceSpec::new(SourceKind::Generated {
                            generator: g,
                            seed: 1,
                            size: g.size_unit().1,
                        }));
                        ui.close();
                    }
                }
            });
        });
        pick
    }

    /// "Save dataset": writes the recipe built in the background and its tokenizer.
    fn save_ui(
        &mut self,
        ui: &mut egui::Ui,
        recipe: &DatasetRecipe,
        folder: &mut Option<PathBuf>,
        project_dir: &Path,
    ) {
        let save_clicked = ui
            .horizontal(|ui| {
                ui.button("Save dataset")
                    .on_hover_text(
                        "Writes the recipe and its tokenizer under the project's datasets/ folder",
                    )
                    .clicked()
            })
            .inner;
        if let Some(m) = &self.message {
            ui.label(egui::RichText::new(m).weak());
        }
        if save_clicked {
            let recipe = recipe.clone();
            let dir = dataset::dataset_dir(project_dir, &recipe.name);
            // The dataset built in the background for exactly this recipe is what gets saved.
            let built = self
                .stats
                .as_ref()
                .and_then(|s| s.built.clone())
                .filter(|built| built.0 == recipe);
            self.message = Some(match built {
                None => "The dataset is still building (or has an error): save when it is ready."
                    .to_string(),
                Some(built) => match dataset::save(&dir, &built.0, &built.1) {
                    Ok(()) => {
                        *folder = Some(dir.clone());
                        self.saved = Some((dir.clone(), recipe));
                        format!("Saved to {}", dir.display())
                    }
                    Err(e) => format!("Not saved: {}: {e}", dir.display()),
                },
            });
        }
    }
}

/// The project's saved datasets (listed when the menu opens); returns the one picked.
fn saved_datasets_ui(
    ui: &mut egui::Ui,
    folder: Option<&Path>,
    project_dir: &Path,
) -> Option<PathBuf> {
    // Saved datasets of the project (read when the list opens).
    let mut opened: Option<PathBuf> = None;
    ui.horizontal(|ui| {
        let label = ui.label("Saved datasets");
        egui::ComboBox::from_id_salt("saved_datasets")
            .selected_text(match folder.as_ref() {
                Some(f) => f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                None => "open a saved dataset".to_string(),
            })
            .show_ui(ui, |ui| {
                let mut dirs: Vec<PathBuf> = std::fs::read_dir(project_dir.join("datasets"))
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.path())
                            .filter(|p| p.join(dataset::DATASET_FILE).exists())
                            .collect()
                    })
                    .unwrap_or_default();
                dirs.sort();
                if dirs.is_empty() {
                    ui.label("None yet: Save dataset puts one here.");
                }
                for dir in dirs {
                    let name = dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if ui.selectable_label(false, name).clicked() {
                        opened = Some(dir);
                    }
                }
            })
            .response
            .labelled_by(label.id);
    });
    opened
}

/// Name, de-duplication, split, tokenizer, epoch size and transform of a recipe.
fn assembly_ui(ui: &mut egui::Ui, recipe: &mut DatasetRecipe) {
    ui.label(egui::RichText::new("Assembly").strong());
    egui::Grid::new("assembly")
        .num_columns(2)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            text_field(ui, "Name", &mut recipe.name);
            let label = ui.label("Remove duplicates");
            ui.checkbox(&mut recipe.dedup, "exact copies (the first stays)")
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Split");
            ui.horizontal(|ui| {
                ui.radio_value(&mut recipe.split.mode, SplitMode::Contiguous, "contiguous");
                ui.radio_value(
                    &mut recipe.split.mode,
                    SplitMode::RandomDocuments,
                    "random by document",
                );
            })
            .response
            .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Validation share");
            ui.add(egui::Slider::new(&mut recipe.split.val_fraction, 0.01..=0.5).fixed_decimals(2))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Seed");
            ui.add(egui::DragValue::new(&mut recipe.split.seed))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Tokenizer");
            tokenizer_ui(ui, &mut recipe.tokenizer, label.id);
            ui.end_row();
            let label = ui.label("Epoch size");
            ui.horizontal(|ui| {
                let mut custom = recipe.epoch_size.is_some();
                if ui.checkbox(&mut custom, "fixed").changed() {
                    recipe.epoch_size = custom.then_some(100_000);
                }
                match &mut recipe.epoch_size {
                    Some(n) => {
                        ui.add(egui::DragValue::new(n).range(1..=usize::MAX).speed(100));
                    }
                    None => {
                        ui.label(egui::RichText::new("every source once").weak());
                    }
                }
            })
            .response
            .labelled_by(label.id);
            ui.end_row();
            transform_ui(ui, &mut recipe.transform);
        });
}

impl DatasetPage {
    /// Statistics, leakage and the first batch of the draft's data, or where its build stands.
    fn results_ui(&self, key: &PreviewKey, ui: &mut egui::Ui) {
        let Some((stats, preview)) = self.stats_for(key) else {
            self.build_status_ui(key, ui);
            return;
        };
        stats_grid_ui(ui, stats, preview, key);
        if let Some(r) = &stats.recipe {
            recipe_stats_ui(ui, r);
        }
        first_batch_ui(ui, stats, preview, key);
    }

    /// Why there is nothing to show yet: no file chosen, an error, or the build's progress.
    fn build_status_ui(&self, key: &PreviewKey, ui: &mut egui::Ui) {
        if missing_path(&key.data) {
            ui.label(
                egui::RichText::new(
                    "Choose a text file (Open text file…, or type its path): its statistics \
                     and the first batch appear here.",
                )
                .weak(),
            );
        } else if self.loaded_for.as_ref() == Some(&key.data_key())
            && let Some(err) = &self.error
        {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Cannot build the dataset: {err}"),
            );
        } else {
            let (stage, frac) = self.progress.lock().map(|p| p.clone()).unwrap_or_default();
            ui.add(
                egui::ProgressBar::new(frac as f32)
                    .text(format!("{stage} {:.0}%", frac * 100.0))
                    .animate(true),
            );
        }
    }
}

/// Size, vocabulary, split and epoch of the built data.
fn stats_grid_ui(
    ui: &mut egui::Ui,
    stats: &DatasetStats,
    preview: &BatchPreview,
    key: &PreviewKey,
) {
    egui::Grid::new("dataset_stats")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Size");
            ui.label(format!("{} characters", thousands(stats.n_chars)));
            ui.end_row();
            ui.label("Vocabulary");
            ui.label(format!("{} tokens", stats.vocab));
            ui.end_row();
            ui.label("Split");
            match &stats.recipe {
                Some(r) if r.unit != "tokens" => ui.label(format!(
                    "train {} {} · validation {} {}",
                    thousands(r.train),
                    r.unit,
                    thousands(r.val),
                    r.unit
                )),
                _ => ui.label(format!(
                    "train {} tokens · validation {} tokens",
                    thousands(stats.train_tokens),
                    thousands(stats.val_tokens)
                )),
            };
            ui.end_row();
            ui.label("Epoch");
            ui.label(format!(
                "{} steps at batch {} and context {}",
                thousands(preview.steps_per_epoch),
                key.batch,
                key.context
            ));
            ui.end_row();
        });
}

/// Each source's share of a built recipe, and the leakage report.
fn recipe_stats_ui(ui: &mut egui::Ui, r: &RecipeStats) {
    ui.add_space(4.0);
    ui.label(egui::RichText::new("Sources").strong());
    let total = r.epoch_tokens.max(1) as f64;
    egui::Grid::new("source_stats")
        .num_columns(6)
        .striped(true)
        .show(ui, |ui| {
            for h in [
                "source",
                "records",
                "duplicates",
                "train / val",
                "tokens",
                "epoch share",
            ] {
                ui.label(egui::RichText::new(h).weak());
            }
            ui.end_row();
            for s in &r.sources {
                ui.label(&s.label);
                ui.label(thousands(s.records));
                ui.label(thousands(s.duplicates));
                if r.leakage.is_some() {
                    ui.label(format!("{} / {}", s.train_records, s.val_records));
                } else {
                    ui.label("by tokens");
                }
                ui.label(thousands(s.train_tokens));
                ui.label(format!(
                    "{} ({:.0}%)",
                    thousands(s.epoch_tokens),
                    100.0 * s.epoch_tokens as f64 / total
                ));
                ui.end_row();
            }
        });
    match &r.leakage {
        None => {
            ui.label(egui::RichText::new("Leakage: not checked (contiguous split of text)").weak())
        }
        Some(l) if l.is_empty() => ui.label("Leakage: no validation document is also in train"),
        Some(l) => {
            let text = format!(
                "Leakage: {} validation documents also in train (first: {} = {})",
                l.len(),
                l[0].val_origin,
                l[0].train_origin
            );
            ui.colored_label(ui.visuals().warn_fg_color, text)
        }
    };
}

/// The first batch exactly as the model reads it, with the positions the loss is computed on.
fn first_batch_ui(
    ui: &mut egui::Ui,
    stats: &DatasetStats,
    preview: &BatchPreview,
    key: &PreviewKey,
) {
    ui.add_space(6.0);
    ui.label(egui::RichText::new("First batch, as the model sees it").strong());
    ui.label(
        egui::RichText::new(
            "Highlighted tokens are the ones the loss is computed on; grey ones are context only.",
        )
        .weak(),
    );
    if preview.rows.is_empty() {
        ui.label("Too little data for one batch at this context length.");
    }
    if preview.too_long > 0 {
        let share = 100.0 * preview.too_long as f64
            / stats.recipe.as_ref().map_or(1, |r| r.train.max(1)) as f64;
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "{} training examples ({share:.0}%) are longer than the context ({} tokens): \
                 their start is cut off. Raise the context on the Run setup page.",
                thousands(preview.too_long),
                key.context
            ),
        );
    }
    for (i, row) in preview.rows.iter().enumerate() {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            let mut job = egui::text::LayoutJob::default();
            let font = egui::FontId::monospace(12.0);
            let strong = ui.visuals().strong_text_color();
            let weak = ui.visuals().weak_text_color();
            let highlight = ui.visuals().selection.bg_fill.gamma_multiply(0.6);
            for t in &row.tokens {
                let format = if t.target {
                    egui::TextFormat {
                        font_id: font.clone(),
                        color: strong,
                        background: highlight,
                        ..Default::default()
                    }
                } else {
                    egui::TextFormat {
                        font_id: font.clone(),
                        color: weak,
                        ..Default::default()
                    }
                };
                job.append(&t.text, 0.0, format);
            }
            job.wrap.max_width = ui.available_width();
            ui.label(egui::RichText::new(format!("row {}", i + 1)).small().weak());
            ui.label(job);
            if let Some(label) = &row.label {
                ui.label(format!("relation: {label}"));
            }
        });
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
