//! One validation batch of an embedding objective: its similarities and margins.

use crate::widgets::attention_heatmap;
use hearth_engine::events::ContrastiveBatch;

/// One validation batch: similarity heatmap (diagonal = positives) and each query's margin.
pub fn contrastive_view_ui(
    ui: &mut egui::Ui,
    view: &ContrastiveBatch,
    texture: &mut Option<(u64, egui::TextureHandle)>,
) {
    let wins = view.margins.iter().filter(|&&m| m > 0.0).count();
    let mean = view.margins.iter().sum::<f32>() / view.margins.len().max(1) as f32;
    ui.label(egui::RichText::new("Contrastive batch").strong());
    ui.label(
        egui::RichText::new(format!(
            "step {}: the positive beats the hardest negative for {wins} of {} queries (mean margin {mean:+.3})",
            view.step, view.n
        ))
        .weak(),
    );
    ui.horizontal_top(|ui| {
        let maps = hearth_engine::model::AttentionMaps {
            n_layer: 1,
            n_head: 1,
            seq: view.n,
            // Cosine similarity in [-1, 1] shown on the heat scale's [0, 1].
            weights: view.sims.iter().map(|s| (s + 1.0) / 2.0).collect(),
        };
        let labels: Vec<String> = (0..view.n).map(|i| i.to_string()).collect();
        ui.vertical(|ui| {
            ui.set_width(170.0);
            attention_heatmap(ui, &maps, &labels, 0, 0, texture, view.step as u64, 160.0);
            ui.label(
                egui::RichText::new("rows: queries · columns: candidates")
                    .weak()
                    .small(),
            );
        });
        let points: Vec<[f64; 2]> = view
            .margins
            .iter()
            .enumerate()
            .map(|(i, &m)| [i as f64, f64::from(m)])
            .collect();
        egui_plot::Plot::new("margins")
            .height(180.0)
            .x_axis_label("query")
            .y_axis_label("margin")
            .show(ui, |plot_ui| {
                plot_ui
                    .hline(egui_plot::HLine::new("zero", 0.0).color(egui::Color32::from_gray(110)));
                plot_ui.points(
                    egui_plot::Points::new("margin", egui_plot::PlotPoints::from(points))
                        .radius(3.0)
                        .color(egui::Color32::from_rgb(0x59, 0xc1, 0x5b)),
                );
            });
    });
}
