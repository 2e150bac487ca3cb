//! The Compare page's tables: the ticked runs' settings side by side with differences
//! highlighted and best/last metrics, and two runs' samples and attention at the same step.

use super::*;
use crate::quantities::loss_quantities;
use crate::run_view::RunView;
use crate::views::{embedding_scatter_ui, layer_head_ui};
use crate::widgets::{attention_heatmap, run_color};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

impl ComparePage {
    pub(super) fn settings_table_ui(
        &mut self,
        ui: &mut egui::Ui,
        runs: &[RunView],
        indices: &[usize],
    ) {
        let flat: Vec<BTreeMap<String, String>> = indices
            .iter()
            .map(|&i| {
                let mut out = BTreeMap::new();
                flatten(
                    &serde_json::to_value(&runs[i].spec).unwrap_or_default(),
                    "",
                    &mut out,
                );
                out
            })
            .collect();
        let mut keys: Vec<&String> = flat.iter().flat_map(|m| m.keys()).collect();
        keys.sort();
        keys.dedup();
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new("Settings").strong());
            ui.checkbox(&mut self.differences_only, "differences only");
            let label = ui.label("order");
            egui::ComboBox::from_id_salt("compare_sort")
                .selected_text(match self.sort {
                    CompareSort::ListOrder => "as listed",
                    CompareSort::BestValLoss => "best val loss",
                    CompareSort::LastValLoss => "last val loss",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.sort, CompareSort::ListOrder, "as listed");
                    ui.selectable_value(&mut self.sort, CompareSort::BestValLoss, "best val loss");
                    ui.selectable_value(&mut self.sort, CompareSort::LastValLoss, "last val loss");
                })
                .response
                .labelled_by(label.id);
        });
        let highlight = ui.visuals().selection.bg_fill.gamma_multiply(0.5);
        let val_measures: Vec<String> = indices
            .iter()
            .map(|&i| loss_quantities(&runs[i].spec.objective).val.label)
            .collect();
        let differences_only = self.differences_only;
        egui::ScrollArea::both()
            .id_salt("settings_table")
            .show(ui, |ui| {
                egui::Grid::new("compare_table")
                    .striped(true)
                    .spacing([16.0, 4.0])
                    .show(ui, |ui| {
                        ui.label(egui::RichText::new("setting").strong());
                        for &i in indices {
                            ui.label(
                                egui::RichText::new(legend_name(runs, i))
                                    .strong()
                                    .color(run_color(i)),
                            );
                        }
                        ui.end_row();
                        if val_measures.windows(2).any(|w| w[0] != w[1]) {
                            ui.label(egui::RichText::new("val loss measures").strong());
                            for m in &val_measures {
                                ui.label(egui::RichText::new(m).background_color(highlight));
                            }
                            ui.end_row();
                        }
                        ui.label(egui::RichText::new("best val loss").strong());
                        for &i in indices {
                            ui.label(fmt(best_val(&runs[i])));
                        }
                        ui.end_row();
                        ui.label(egui::RichText::new("last val loss").strong());
                        for &i in indices {
                            ui.label(fmt(last_val(&runs[i])));
                        }
                        ui.end_row();
                        // What each run must beat on its own data.
                        for (metric, label) in reference_rows(runs, indices) {
                            ui.label(egui::RichText::new(format!("{label} ({metric})")).weak());
                            for &i in indices {
                                let value = runs[i]
                                    .references
                                    .iter()
                                    .find(|r| r.metric == metric && r.label == label)
                                    .map(|r| r.value);
                                ui.label(egui::RichText::new(fmt(value)).weak());
                            }
                            ui.end_row();
                        }
                        for key in keys {
                            if key == "schema_version" {
                                continue;
                            }
                            let values: Vec<&str> = flat
                                .iter()
                                .map(|m| m.get(key).map(String::as_str).unwrap_or("-"))
                                .collect();
                            let differs = values.windows(2).any(|w| w[0] != w[1]);
                            if differences_only && !differs {
                                continue;
                            }
                            if differs {
                                ui.label(egui::RichText::new(key.as_str()).strong());
                            } else {
                                ui.label(key.as_str());
                            }
                            for v in values {
                                let text = egui::RichText::new(v);
                                if differs {
                                    ui.label(text.strong().background_color(highlight));
                                } else {
                                    ui.label(text);
                                }
                            }
                            ui.end_row();
                        }
                    });
            });
    }

    /// The first two runs' samples and attention maps at one step. The layer and head pickers
    /// sit above both columns: they choose the map of both.
    pub(super) fn side_by_side_ui(
        &mut self,
        ui: &mut egui::Ui,
        runs: &[RunView],
        indices: &[usize],
    ) {
        let Some((pair, step)) = self.side_by_side(runs, indices) else {
            return;
        };
        let max_step = last_common_step(runs, pair);
        self.step = step;
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new("Side by side at step").strong());
            let label = ui.label("");
            ui.add(egui::Slider::new(&mut self.step, 0..=max_step.max(1)))
                .labelled_by(label.id);
        });
        // The attention snapshots were read (at the step shown) by the app before drawing.
        let snaps = pair.map(|i| runs[i].stored_attention_snapshot());
        let dims = snaps
            .iter()
            .flatten()
            .map(|s| (s.maps.n_layer, s.maps.n_head))
            .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1)));
        if let Some((n_layer, n_head)) = dims {
            self.attention_layer = self.attention_layer.min(n_layer.saturating_sub(1));
            self.attention_head = self.attention_head.min(n_head.saturating_sub(1));
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new("Attention").strong());
                layer_head_ui(
                    ui,
                    &mut self.attention_layer,
                    &mut self.attention_head,
                    n_layer,
                    n_head,
                );
            });
        }
        let (layer, head) = (self.attention_layer, self.attention_head);
        let textures = &mut self.textures;
        ui.columns(2, |cols| {
            for (k, (&i, texture)) in pair.iter().zip(textures.iter_mut()).enumerate() {
                let ui = &mut cols[k];
                let run = &runs[i];
                ui.label(
                    egui::RichText::new(legend_name(runs, i))
                        .strong()
                        .color(run_color(i)),
                );
                sample_at_ui(ui, run, step, k);
                match snaps[k] {
                    Some(snap) => {
                        ui.label(
                            egui::RichText::new(format!("attention at step {}", snap.step)).weak(),
                        );
                        let mut hasher = std::collections::hash_map::DefaultHasher::new();
                        (&run.dir, snap.step, layer, head).hash(&mut hasher);
                        attention_heatmap(
                            ui,
                            &snap.maps,
                            &snap.tokens,
                            layer.min(snap.maps.n_layer.saturating_sub(1)),
                            head.min(snap.maps.n_head.saturating_sub(1)),
                            texture,
                            hasher.finish(),
                            260.0,
                        );
                    }
                    None => {
                        ui.label(egui::RichText::new("no attention snapshot stored").weak());
                    }
                }
                let map = run
                    .embedding_maps
                    .iter()
                    .rev()
                    .find(|m| m.step <= step)
                    .or(run.embedding_maps.first());
                if let Some(map) = map {
                    ui.label(
                        egui::RichText::new(format!("embedding map at step {}", map.step)).weak(),
                    );
                    embedding_scatter_ui(
                        ui,
                        &format!("compare_embedding_{k}"),
                        map,
                        200.0,
                        run.spec.objective.charts().map_groups,
                    );
                }
            }
        });
    }
}

/// The sample a run wrote at or before `step`, wrapped to its column.
pub(super) fn sample_at_ui(ui: &mut egui::Ui, run: &RunView, step: usize, column: usize) {
    let sample = run.history.as_ref().and_then(|h| {
        h.samples
            .iter()
            .rev()
            .find(|(s, _)| *s <= step)
            .or(h.samples.first())
    });
    match sample {
        Some((s, text)) => {
            ui.label(egui::RichText::new(format!("sample at step {s}")).weak());
            egui::ScrollArea::vertical()
                .id_salt(("side_sample", column))
                .max_height(90.0)
                .max_width(ui.available_width())
                .show(ui, |ui| {
                    ui.add(egui::Label::new(egui::RichText::new(text).monospace().small()).wrap());
                });
        }
        None => {
            ui.label(egui::RichText::new("no sample").weak());
        }
    }
}

/// `(metric, label)` of every reference of the runs, in first-seen order.
pub(super) fn reference_rows(runs: &[RunView], indices: &[usize]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for &i in indices {
        for r in &runs[i].references {
            let row = (r.metric.clone(), r.label.clone());
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
    }
    rows
}

/// A spec flattened to `dotted.key -> value` rows.
pub fn flatten(value: &serde_json::Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}
