//! The views objectives offer at evaluations, drawn by the monitor and compare pages: the
//! embedding map, a contrastive batch, a masked-token probe, and the attention pickers.

use crate::widgets::attention_heatmap;
use hearth_engine::events::{ContrastiveBatch, EmbeddingSnapshot, MaskedProbe};

/// The probe set's embeddings in 2-D, queries and their positives, with a slider over the
/// snapshots; hovering a point shows its text. `index` is the snapshot shown (`None`: the
/// newest, following new ones).
pub fn embedding_map_ui(
    ui: &mut egui::Ui,
    maps: &[EmbeddingSnapshot],
    index: &mut Option<usize>,
    height: f32,
) {
    let Some(last) = maps.len().checked_sub(1) else {
        return;
    };
    let mut shown = index.unwrap_or(last).min(last);
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new("Embedding map").strong());
        let label = ui.label("snapshot");
        if ui
            .add(
                egui::Slider::new(&mut shown, 0..=last)
                    .custom_formatter(|v, _| format!("step {}", maps[v as usize].step)),
            )
            .labelled_by(label.id)
            .changed()
        {
            // Back at the newest: follow new snapshots again.
            *index = (shown != last).then_some(shown);
        }
    });
    embedding_scatter_ui(ui, "embedding_map", &maps[shown], height);
}

/// One embedding map as a scatter of query and positive halves; hover a point for its text.
pub fn embedding_scatter_ui(ui: &mut egui::Ui, id: &str, map: &EmbeddingSnapshot, height: f32) {
    let (queries, positives): (Vec<usize>, Vec<usize>) =
        (0..map.points.len()).partition(|&i| map.groups[i] == 0);
    let to_points = |ids: &[usize]| -> Vec<[f64; 2]> {
        ids.iter()
            .map(|&i| [f64::from(map.points[i][0]), f64::from(map.points[i][1])])
            .collect()
    };
    let texts =
        |ids: &[usize]| -> Vec<String> { ids.iter().map(|&i| map.texts[i].clone()).collect() };
    let (query_texts, positive_texts) = (texts(&queries), texts(&positives));
    egui_plot::Plot::new(id)
        .height(height.max(160.0))
        .data_aspect(1.0)
        .legend(egui_plot::Legend::default())
        .show_axes([false, false])
        .label_formatter(move |hover| match hover {
            egui_plot::HoverPosition::NearDataPoint {
                plot_name, index, ..
            } => {
                let texts = if *plot_name == "query halves" {
                    &query_texts
                } else {
                    &positive_texts
                };
                texts
                    .get(*index)
                    .map(|t| format!("{plot_name} #{index}\n{}", t.replace('\n', " ")))
            }
            egui_plot::HoverPosition::Elsewhere { .. } => None,
        })
        .show(ui, |plot_ui| {
            plot_ui.points(
                egui_plot::Points::new(
                    "query halves",
                    egui_plot::PlotPoints::from(to_points(&queries)),
                )
                .color(egui::Color32::from_rgb(0x4e, 0x9a, 0xf1))
                .radius(3.0),
            );
            plot_ui.points(
                egui_plot::Points::new(
                    "positive halves",
                    egui_plot::PlotPoints::from(to_points(&positives)),
                )
                .color(egui::Color32::from_rgb(0xf2, 0x8e, 0x2b))
                .radius(3.0),
            );
        });
}

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

/// The probe text with its masked positions highlighted; hover one for the top predictions.
pub fn masked_view_ui(ui: &mut egui::Ui, view: &MaskedProbe) {
    ui.label(egui::RichText::new("Masked-token probe").strong());
    let correct = view
        .masked
        .iter()
        .zip(&view.predictions)
        .filter(|(t, p)| p.first().is_some_and(|(tok, _)| *tok == view.tokens[**t]))
        .count();
    ui.label(
        egui::RichText::new(format!(
            "step {}: top prediction right at {correct} of {} masked positions (hover a highlighted token)",
            view.step,
            view.masked.len()
        ))
        .weak(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        for (t, token) in view.tokens.iter().enumerate() {
            match view.masked.iter().position(|&m| m == t) {
                Some(k) => {
                    let preds = &view.predictions[k];
                    let right = preds.first().is_some_and(|(tok, _)| tok == token);
                    let color = if right {
                        egui::Color32::from_rgb(0x2e, 0x7d, 0x32)
                    } else {
                        egui::Color32::from_rgb(0xb7, 0x1c, 0x1c)
                    };
                    let text = egui::RichText::new(token)
                        .monospace()
                        .background_color(color)
                        .color(egui::Color32::WHITE);
                    let tip: Vec<String> = preds
                        .iter()
                        .map(|(tok, p)| format!("'{tok}' {:.1}%", p * 100.0))
                        .collect();
                    ui.label(text)
                        .on_hover_text(format!("masked '{token}'\npredicted: {}", tip.join(", ")));
                }
                None => {
                    ui.label(egui::RichText::new(token).monospace());
                }
            }
        }
    });
}

/// Layer and head pickers.
pub fn layer_head_ui(
    ui: &mut egui::Ui,
    layer: &mut usize,
    head: &mut usize,
    n_layer: usize,
    n_head: usize,
) {
    ui.horizontal(|ui| {
        let layer_label = ui.label("layer");
        egui::ComboBox::from_id_salt(ui.scope_id().with("attn_layer"))
            .selected_text(layer.to_string())
            .show_ui(ui, |ui| {
                for l in 0..n_layer {
                    ui.selectable_value(layer, l, l.to_string());
                }
            })
            .response
            .labelled_by(layer_label.id);
        let head_label = ui.label("head");
        egui::ComboBox::from_id_salt(ui.scope_id().with("attn_head"))
            .selected_text(head.to_string())
            .show_ui(ui, |ui| {
                for h in 0..n_head {
                    ui.selectable_value(head, h, h.to_string());
                }
            })
            .response
            .labelled_by(head_label.id);
    });
}
