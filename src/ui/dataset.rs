//! Dataset page: pick built-in text or a text file, see its size, vocabulary, split and a
//! preview. Loading runs in a background thread.

use super::app::StudioApp;
use crate::data::{Corpus, DataSource, DataSpec, TokenizerKind};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};

/// What the page knows about the draft's data.
#[derive(Debug, Clone)]
pub struct DatasetStats {
    pub n_chars: usize,
    pub vocab: usize,
    pub train_tokens: usize,
    pub val_tokens: usize,
    pub preview: String,
}

#[derive(Default)]
pub struct DatasetState {
    /// The spec the stats (or error) describe.
    pub loaded_for: Option<DataSpec>,
    pub stats: Option<DatasetStats>,
    pub error: Option<String>,
    loading: Option<(DataSpec, Receiver<Result<DatasetStats, String>>)>,
    picking: Option<Receiver<Option<PathBuf>>>,
    /// A file chosen in the dialog, applied to the draft on the next frame.
    pub picked: Option<PathBuf>,
}

impl DatasetState {
    pub fn is_loading(&self) -> bool {
        self.loading.is_some() || self.picking.is_some()
    }

    /// Stats for `spec` when they are loaded and current.
    pub fn stats_for(&self, spec: &DataSpec) -> Option<&DatasetStats> {
        (self.loaded_for.as_ref() == Some(spec))
            .then_some(self.stats.as_ref())
            .flatten()
    }

    /// Collects finished loads and starts one when `spec` changed.
    pub fn poll(&mut self, spec: &DataSpec) {
        if let Some(rx) = &self.picking {
            if let Ok(choice) = rx.try_recv() {
                self.picking = None;
                self.picked = choice;
            }
        }
        if let Some((for_spec, rx)) = &self.loading {
            if let Ok(result) = rx.try_recv() {
                self.loaded_for = Some(for_spec.clone());
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
                self.loading = None;
            }
        }
        let current = self.loaded_for.as_ref() == Some(spec)
            || self.loading.as_ref().is_some_and(|(s, _)| s == spec);
        if !current {
            let (tx, rx) = channel();
            let for_spec = spec.clone();
            std::thread::spawn(move || {
                let result = Corpus::load(&for_spec)
                    .map(|c| DatasetStats {
                        n_chars: c.n_chars,
                        vocab: c.tokenizer.vocab_size(),
                        train_tokens: c.train.len(),
                        val_tokens: c.val.len(),
                        preview: c.preview,
                    })
                    .map_err(|e| e.to_string());
                let _ = tx.send(result);
            });
            self.loading = Some((spec.clone(), rx));
        }
    }

    fn pick_file(&mut self) {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let choice = rfd::FileDialog::new()
                .set_title("Open a text file")
                .add_filter("Text", &["txt", "md", "text", "csv", "tsv"])
                .add_filter("All files", &["*"])
                .pick_file();
            let _ = tx.send(choice);
        });
        self.picking = Some(rx);
    }
}

pub fn dataset_ui(app: &mut StudioApp, ui: &mut egui::Ui) {
    if let Some(path) = app.dataset.picked.take() {
        app.project.file.draft.data.source = DataSource::TextFile { path };
    }
    ui.heading("Dataset");
    ui.label("What the next run trains on. The last part of the text is held out for validation.");
    ui.add_space(6.0);
    let data = &mut app.project.file.draft.data;
    let is_file = matches!(data.source, DataSource::TextFile { .. });
    let is_instructions = matches!(data.source, DataSource::PromptResponse { .. });
    ui.horizontal(|ui| {
        if ui
            .radio(!is_file && !is_instructions, "Built-in generated text")
            .clicked()
            && (is_file || is_instructions)
        {
            data.source = DataSource::default();
        }
        if ui.radio(is_file, "Text file").clicked() && !is_file {
            data.source = DataSource::TextFile {
                path: PathBuf::new(),
            };
        }
    });
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
                        let mut text = path.display().to_string();
                        if ui
                            .add(
                                egui::TextEdit::singleline(&mut text)
                                    .desired_width(360.0)
                                    .hint_text("/path/to/text.txt"),
                            )
                            .labelled_by(label.id)
                            .changed()
                        {
                            *path = PathBuf::from(text);
                        }
                        if ui.button("Open text file…").clicked() {
                            app.dataset.pick_file();
                        }
                    });
                    ui.end_row();
                }
            }
            let label = ui.label("Tokenizer");
            egui::ComboBox::from_id_salt("tokenizer")
                .selected_text(data.tokenizer.label())
                .show_ui(ui, |ui| {
                    for kind in TokenizerKind::ALL {
                        ui.selectable_value(&mut data.tokenizer, kind, kind.label());
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Validation share");
            ui.add(egui::Slider::new(&mut data.val_fraction, 0.01..=0.5).fixed_decimals(2))
                .labelled_by(label.id);
            ui.end_row();
        });
    ui.separator();
    let spec = app.project.file.draft.data.clone();
    if let Some(stats) = app.dataset.stats_for(&spec) {
        egui::Grid::new("dataset_stats")
            .num_columns(2)
            .show(ui, |ui| {
                ui.label("Size");
                ui.label(format!("{} characters", thousands(stats.n_chars)));
                ui.end_row();
                ui.label("Vocabulary");
                ui.label(format!(
                    "{} tokens ({})",
                    stats.vocab,
                    spec.tokenizer.label()
                ));
                ui.end_row();
                ui.label("Split");
                ui.label(format!(
                    "train {} tokens · validation {} tokens",
                    thousands(stats.train_tokens),
                    thousands(stats.val_tokens)
                ));
                ui.end_row();
            });
        ui.add_space(4.0);
        ui.label(egui::RichText::new("Preview").strong());
        egui::ScrollArea::vertical()
            .max_height(ui.available_height() - 8.0)
            .show(ui, |ui| {
                ui.add(egui::Label::new(egui::RichText::new(&stats.preview).monospace()).wrap());
            });
    } else if app.dataset.loaded_for.as_ref() == Some(&spec) {
        if let Some(err) = &app.dataset.error {
            ui.colored_label(ui.visuals().error_fg_color, err);
        }
    } else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Reading…");
        });
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
