//! The Dataset page's results: statistics, the leakage report and the first batch as the
//! model will see it.

use super::*;

impl DatasetPage {
    /// Statistics, leakage and the first batch of the draft's data, or where its build stands.
    pub(super) fn results_ui(&self, key: &PreviewKey, ui: &mut egui::Ui) {
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
    pub(super) fn build_status_ui(&self, key: &PreviewKey, ui: &mut egui::Ui) {
        if missing_path(&key.data) {
            ui.label(
                egui::RichText::new(
                    "Choose a text file or a chat JSONL file (Open file…, or type its path): its statistics \
                     and the first batch appear here.",
                )
                .weak(),
            );
        } else if self.loaded_for.as_ref() == Some(&key.data_key())
            && let Some(err) = &self.error
        {
            if self.too_large {
                // Not an error: a corpus of real size is previewed from its shards.
                let text = if self.is_saving() {
                    "Statistics and the first batch are read from the token shards once the \
                     build ends."
                        .to_string()
                } else {
                    format!("No preview yet: {err}.")
                };
                ui.add(
                    egui::Label::new(egui::RichText::new(text).color(ui.visuals().warn_fg_color))
                        .wrap(),
                );
                return;
            }
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
pub(super) fn stats_grid_ui(
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
pub(super) fn recipe_stats_ui(ui: &mut egui::Ui, r: &RecipeStats) {
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
pub(super) fn first_batch_ui(
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
