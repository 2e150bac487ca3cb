//! The views objectives offer at evaluations, drawn by the monitor and compare pages: the
//! embedding map, a contrastive batch, a masked-token probe, and the attention pickers.

use crate::scatter::{PointCloud, PointSet};
use crate::widgets::attention_heatmap;
use hearth_engine::events::{ContrastiveBatch, EmbeddingSnapshot, MaskedProbe};
use std::sync::Arc;

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

/// An embedding map's points split into query and positive halves, indexed for hovering;
/// built once per snapshot and kept in egui's memory.
pub struct EmbeddingCloud {
    fingerprint: u64,
    queries: PointSet,
    positives: PointSet,
    /// The map's point index of each query half, then of each positive half.
    query_ids: Vec<usize>,
    positive_ids: Vec<usize>,
}

impl EmbeddingCloud {
    /// Splits and indexes `map`.
    pub fn new(map: &EmbeddingSnapshot) -> Self {
        let (query_ids, positive_ids): (Vec<usize>, Vec<usize>) =
            (0..map.points.len()).partition(|&i| map.groups.get(i).copied().unwrap_or(0) == 0);
        let set = |ids: &[usize]| {
            PointSet::new(
                ids.iter()
                    .map(|&i| {
                        egui_plot::PlotPoint::new(
                            f64::from(map.points[i][0]),
                            f64::from(map.points[i][1]),
                        )
                    })
                    .collect(),
            )
        };
        Self {
            fingerprint: embedding_fingerprint(map),
            queries: set(&query_ids),
            positives: set(&positive_ids),
            query_ids,
            positive_ids,
        }
    }

    /// Whether this was built from `map` (same step, points and groups).
    pub fn is_of(&self, map: &EmbeddingSnapshot) -> bool {
        self.fingerprint == embedding_fingerprint(map)
    }
}

/// A hash of a snapshot's step, points and groups: a new snapshot, or another run's, differs.
fn embedding_fingerprint(map: &EmbeddingSnapshot) -> u64 {
    let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(5);
    let mut h = mix(0xcbf2_9ce4_8422_2325, map.step as u64);
    h = mix(h, map.points.len() as u64);
    for p in &map.points {
        h = mix(
            h,
            u64::from(p[0].to_bits()) << 32 | u64::from(p[1].to_bits()),
        );
    }
    for chunk in map.groups.chunks(8) {
        h = chunk.iter().fold(h, |h, &g| mix(h, u64::from(g)));
    }
    h
}

/// One embedding map as a scatter of query and positive halves; hover a point for its text.
pub fn embedding_scatter_ui(ui: &mut egui::Ui, id: &str, map: &EmbeddingSnapshot, height: f32) {
    let cache_id = egui::Id::unique("embedding_cloud").with(id);
    let cached: Option<Arc<EmbeddingCloud>> = ui.data(|d| d.get_temp(cache_id));
    let cloud = match cached {
        Some(cloud) if cloud.is_of(map) => cloud,
        _ => {
            let cloud = Arc::new(EmbeddingCloud::new(map));
            ui.data_mut(|d| d.insert_temp(cache_id, cloud.clone()));
            cloud
        }
    };
    let radius = if map.points.len() > 20_000 { 1.0 } else { 3.0 };
    let texts = &map.texts;
    let hover_cloud = cloud.clone();
    egui_plot::Plot::new(id)
        .height(height.max(160.0))
        .data_aspect(1.0)
        .legend(egui_plot::Legend::default())
        .show_axes([false, false])
        .label_formatter(move |hover| match hover {
            egui_plot::HoverPosition::NearDataPoint {
                plot_name, index, ..
            } => {
                let ids = if *plot_name == "query halves" {
                    &hover_cloud.query_ids
                } else {
                    &hover_cloud.positive_ids
                };
                ids.get(*index)
                    .and_then(|&i| texts.get(i))
                    .map(|t| format!("{plot_name} #{index}\n{}", t.replace('\n', " ")))
            }
            egui_plot::HoverPosition::Elsewhere { .. } => None,
        })
        .show(ui, |plot_ui| {
            plot_ui.add(PointCloud::new(
                "query halves",
                &cloud.queries,
                egui::Color32::from_rgb(0x4e, 0x9a, 0xf1),
                radius,
            ));
            plot_ui.add(PointCloud::new(
                "positive halves",
                &cloud.positives,
                egui::Color32::from_rgb(0xf2, 0x8e, 0x2b),
                radius,
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(step: usize, shift: f32) -> EmbeddingSnapshot {
        EmbeddingSnapshot {
            step,
            points: (0..1000)
                .map(|i| [i as f32 + shift, (i % 7) as f32])
                .collect(),
            groups: (0..1000).map(|i| (i % 2) as u8).collect(),
            texts: (0..1000).map(|i| format!("text {i}")).collect(),
        }
    }

    #[test]
    fn the_cached_cloud_is_rebuilt_when_the_snapshot_changes() {
        let cloud = EmbeddingCloud::new(&map(10, 0.0));
        assert!(cloud.is_of(&map(10, 0.0)));
        assert!(!cloud.is_of(&map(20, 0.0)), "a newer snapshot");
        assert!(
            !cloud.is_of(&map(10, 0.5)),
            "another run's snapshot at the same step"
        );
        let mut regrouped = map(10, 0.0);
        regrouped.groups[3] = 0;
        assert!(!cloud.is_of(&regrouped));
    }

    #[test]
    fn the_halves_keep_their_points_and_texts() {
        let snapshot = map(10, 0.0);
        let cloud = EmbeddingCloud::new(&snapshot);
        assert_eq!(cloud.queries.points().len(), 500);
        assert_eq!(cloud.positives.points().len(), 500);
        // The positive nearest to (5, 5) is point 5 of the map: the third positive.
        let (index, _) = cloud
            .positives
            .nearest([5.0, 5.0], [1.0, 1.0], 1.0)
            .unwrap();
        assert_eq!(snapshot.texts[cloud.positive_ids[index]], "text 5");
    }
}
