//! The Dataset page's recipe builder: the quick pick, sources, transforms, assembly and
//! saving.

use super::*;
use crate::action::{Action, Pick};
use hearth_engine::data::dataset::{self, DatasetRecipe, SourceSpec, SplitMode, TransformSpec};
use hearth_engine::data::sources::{DocSplit, Generator, SourceKind};
use hearth_engine::data::transforms::{DistractorMode, LabelMode};
use hearth_engine::data::{DataSource, DataSpec, TokenizerKind};
use std::path::{Path, PathBuf};

/// A recipe to start the builder from: the built-in stories.
pub(super) fn starter_recipe() -> DatasetRecipe {
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

pub(super) fn quick_ui(ui: &mut egui::Ui, data: &mut DataSpec, actions: &mut Vec<Action>) {
    ui.label("What the next run trains on. The last part of the text is held out for validation.");
    let is_file = matches!(
        data.source,
        DataSource::TextFile { .. } | DataSource::Chat { .. }
    );
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
    let mut typed = false;
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
                DataSource::TextFile { path }
                | DataSource::PromptResponse { path }
                | DataSource::Chat { path } => {
                    let label = ui.label("File");
                    ui.horizontal(|ui| {
                        typed = path_edit(ui, path, label.id, "/path/to/text.txt or chat.jsonl");
                        open_dialog = ui
                            .button("Open file…")
                            .on_hover_text(
                                "A text file, or a JSONL file of chat conversations \
                                 ({\"messages\": [{\"role\", \"content\"}, ..]} per line)",
                            )
                            .clicked();
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
    if matches!(data.source, DataSource::Chat { .. }) {
        ui.add(
            egui::Label::new(
                "Read as chat conversations: each rendered with the base model's chat \
                 template, the loss on the assistant's turns only.",
            )
            .wrap(),
        );
    }
    // A typed path is read as chat or text like a picked one.
    if typed && let DataSource::TextFile { path } | DataSource::Chat { path } = &data.source {
        data.source = super::quick_file_source(path.clone());
    }
    if open_dialog {
        actions.push(Action::PickData(Pick::QuickTextFile));
    }
}

/// A path field; true when it was edited.
pub(super) fn path_edit(
    ui: &mut egui::Ui,
    path: &mut PathBuf,
    label: egui::Id,
    hint: &str,
) -> bool {
    let mut text = path.display().to_string();
    let changed = ui
        .add(
            egui::TextEdit::singleline(&mut text)
                .desired_width(260.0)
                .hint_text(hint),
        )
        .labelled_by(label)
        .changed();
    if changed {
        *path = PathBuf::from(text);
    }
    changed
}

pub(super) fn tokenizer_ui(ui: &mut egui::Ui, kind: &mut TokenizerKind, label: egui::Id) {
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
pub(super) fn list_edit(ui: &mut egui::Ui, list: &mut Vec<String>, label: egui::Id, hint: &str) {
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

pub(super) fn text_field(ui: &mut egui::Ui, name: &str, value: &mut String) {
    let label = ui.label(name);
    ui.add(egui::TextEdit::singleline(value).desired_width(200.0))
        .labelled_by(label.id);
    ui.end_row();
}

pub(super) fn source_ui(ui: &mut egui::Ui, i: usize, s: &mut SourceSpec) -> bool {
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

pub(super) fn doc_split_ui(ui: &mut egui::Ui, documents: &mut DocSplit, i: usize) {
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

pub(super) fn transform_ui(ui: &mut egui::Ui, transform: &mut TransformSpec) {
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
    pub(super) fn builder_ui(
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
    pub(super) fn sources_ui(
        &mut self,
        ui: &mut egui::Ui,
        recipe: &mut DatasetRecipe,
    ) -> Option<Pick> {
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

    /// "Save dataset": builds the recipe's token shards into the project's `datasets/`
    /// folder in the background (the recipe and tokenizer beside them), with its progress and
    /// a Cancel; the outcome shows below, an error naming the file and line.
    pub(super) fn save_ui(
        &mut self,
        ui: &mut egui::Ui,
        recipe: &DatasetRecipe,
        folder: &mut Option<PathBuf>,
        project_dir: &Path,
    ) {
        self.collect_build(recipe, folder);
        match &self.shard_build {
            Some(build) => build_progress_ui(ui, build),
            None => {
                let dir = dataset::dataset_dir(project_dir, &recipe.name);
                let clicked = ui
                    .horizontal(|ui| {
                        ui.button("Save dataset")
                            .on_hover_text(format!(
                                "Builds the token shards into {} (the recipe and tokenizer \
                                 beside them), as hearth dataset does",
                                dir.display()
                            ))
                            .clicked()
                    })
                    .inner;
                if clicked {
                    self.message = None;
                    self.save_error = None;
                    self.shard_build = Some(super::build::ShardBuild::start(
                        recipe.clone(),
                        dir,
                        ui.ctx().clone(),
                        self.status_hook.clone(),
                    ));
                }
            }
        }
        if let Some(err) = &self.save_error {
            ui.add(
                egui::Label::new(
                    egui::RichText::new(format!("Not saved: {err}"))
                        .color(ui.visuals().error_fg_color),
                )
                .wrap(),
            );
        }
        if let Some(m) = &self.message {
            ui.add(egui::Label::new(egui::RichText::new(m).weak()).wrap());
        }
    }

    /// Takes the outcome of a finished build: the saved folder becomes the draft's (while the
    /// draft still has the recipe built).
    fn collect_build(&mut self, recipe: &DatasetRecipe, folder: &mut Option<PathBuf>) {
        let Some(build) = &self.shard_build else {
            return;
        };
        let Some(end) = build.finished() else {
            return;
        };
        let secs = build.started.elapsed().as_secs_f64();
        let existed = build.existed;
        let dir = build.dir.clone();
        let built_recipe = build.recipe.clone();
        self.shard_build = None;
        match end {
            super::build::BuildEnd::Built(built) => {
                let m = &built.manifest;
                let files = m.train.shards.len() + m.val.shards.len();
                self.message = Some(format!(
                    "Saved to {} in {secs:.1} s: {} training and {} validation tokens in {} \
                     shard file{} (version {}, {:?} tokens)",
                    dir.display(),
                    super::results::thousands(m.train.tokens),
                    super::results::thousands(m.val.tokens),
                    files,
                    if files == 1 { "" } else { "s" },
                    m.version,
                    m.width
                ));
                if built_recipe == *recipe {
                    *folder = Some(dir.clone());
                }
                self.saved = Some((dir, built_recipe));
            }
            super::build::BuildEnd::Cancelled => {
                self.message = Some(if existed {
                    format!("Cancelled: {} is as it was before the build", dir.display())
                } else {
                    format!("Cancelled: nothing saved ({} not created)", dir.display())
                });
            }
            super::build::BuildEnd::Failed(err) => self.save_error = Some(err),
        }
    }
}

/// A running build: its stage, bytes done of the total, rate and time left, and Cancel.
fn build_progress_ui(ui: &mut egui::Ui, build: &super::build::ShardBuild) {
    let now = std::time::Instant::now();
    let p = build.progress();
    ui.label(
        egui::RichText::new(format!(
            "Building {} into {} ({})",
            build.recipe.name,
            build.dir.display(),
            super::build::seconds(now.duration_since(build.started).as_secs_f64())
        ))
        .strong(),
    );
    ui.horizontal(|ui| {
        let width = (ui.available_width() - 110.0).max(120.0);
        match p.fraction() {
            Some(f) => {
                ui.add(
                    egui::ProgressBar::new(f)
                        .show_percentage()
                        .desired_width(width),
                );
            }
            // A stage of unknown size (training the tokenizer, writing the shards): a
            // spinner where the bar would be.
            None => {
                ui.add_sized([width, 18.0], egui::Spinner::new());
            }
        }
        if build.is_cancelling() {
            ui.add_enabled(false, egui::Button::new("Cancelling…"));
        } else if ui
            .button("Cancel")
            .on_hover_text("Stops the build; the dataset folder stays as it was")
            .clicked()
        {
            build.cancel();
        }
    });
    ui.add(egui::Label::new(p.describe(now)).wrap());
    // The rate and time left move with the clock, not only with reports.
    ui.ctx()
        .request_repaint_after(std::time::Duration::from_millis(250));
}

/// The project's saved datasets (listed when the menu opens); returns the one picked.
pub(super) fn saved_datasets_ui(
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
pub(super) fn assembly_ui(ui: &mut egui::Ui, recipe: &mut DatasetRecipe) {
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
