//! Compare page: ticked runs' curves overlaid, and their settings side by side with differing
//! values highlighted.

use super::app::StudioApp;
use super::widgets::{Series, SeriesStyle, loss_plot, run_color};
use crate::viz::smoothing::debiased_ema;
use std::collections::BTreeMap;

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

pub fn compare_ui(app: &mut StudioApp, ui: &mut egui::Ui) {
    ui.heading("Compare runs");
    let indices: Vec<usize> = (0..app.runs.len())
        .filter(|&i| app.runs[i].checked)
        .collect();
    if indices.len() < 2 {
        ui.label("Tick two or more runs in the list on the left to compare them.");
        return;
    }
    for &i in &indices {
        app.runs[i].ensure_history();
    }
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing");
        ui.add(egui::Slider::new(&mut app.prefs.smoothing, 0.0..=0.99).fixed_decimals(2))
            .labelled_by(label.id);
        ui.checkbox(&mut app.prefs.log_y, "log y");
    });
    let smoothing = app.prefs.smoothing;
    let smoothed: Vec<Vec<[f64; 2]>> = indices
        .iter()
        .map(|&i| {
            let train = &app.runs[i].curves.train;
            let ys: Vec<f64> = train.iter().map(|p| p[1]).collect();
            train
                .iter()
                .zip(debiased_ema(&ys, smoothing))
                .map(|(p, y)| [p[0], y])
                .collect()
        })
        .collect();
    let mut val_series = Vec::new();
    let mut train_series = Vec::new();
    for (k, &i) in indices.iter().enumerate() {
        let run = &app.runs[i];
        val_series.push(Series {
            name: run.name().to_string(),
            points: &run.curves.val,
            color: run_color(i),
            style: SeriesStyle::Markers,
        });
        train_series.push(Series {
            name: run.name().to_string(),
            points: &smoothed[k],
            color: run_color(i),
            style: SeriesStyle::Line { width: 1.5 },
        });
    }
    let height = (ui.available_height() * 0.42).max(180.0);
    ui.columns(2, |cols| {
        cols[0].label(egui::RichText::new("Validation loss").strong());
        loss_plot(
            &mut cols[0],
            "compare_val",
            &val_series,
            app.prefs.log_y,
            height,
        );
        cols[1].label(egui::RichText::new("Training loss (smoothed)").strong());
        loss_plot(
            &mut cols[1],
            "compare_train",
            &train_series,
            app.prefs.log_y,
            height,
        );
    });
    ui.separator();

    let flat: Vec<BTreeMap<String, String>> = indices
        .iter()
        .map(|&i| {
            let mut out = BTreeMap::new();
            flatten(
                &serde_json::to_value(&app.runs[i].spec).unwrap_or_default(),
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
        ui.checkbox(&mut app.compare_differences_only, "differences only");
    });
    let highlight = ui.visuals().selection.bg_fill.gamma_multiply(0.5);
    egui::ScrollArea::both().show(ui, |ui| {
        egui::Grid::new("compare_table")
            .striped(true)
            .spacing([16.0, 4.0])
            .show(ui, |ui| {
                ui.label(egui::RichText::new("setting").strong());
                for &i in &indices {
                    ui.label(
                        egui::RichText::new(app.runs[i].name())
                            .strong()
                            .color(run_color(i)),
                    );
                }
                ui.end_row();
                let metric_rows = [
                    ("best val loss", best_val(app, &indices)),
                    ("last val loss", last_val(app, &indices)),
                ];
                for (label, values) in metric_rows {
                    ui.label(label);
                    for v in values {
                        ui.label(v);
                    }
                    ui.end_row();
                }
                for key in keys {
                    if key == "schema_version" {
                        continue;
                    }
                    let values: Vec<&str> = flat
                        .iter()
                        .map(|m| m.get(key).map(String::as_str).unwrap_or("—"))
                        .collect();
                    let differs = values.windows(2).any(|w| w[0] != w[1]);
                    if app.compare_differences_only && !differs {
                        continue;
                    }
                    ui.label(key.as_str());
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

fn best_val(app: &StudioApp, indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .map(|&i| {
            app.runs[i]
                .curves
                .val
                .iter()
                .map(|p| p[1])
                .fold(None, |best: Option<f64>, v| {
                    Some(best.map_or(v, |b| b.min(v)))
                })
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "—".into())
        })
        .collect()
}

fn last_val(app: &StudioApp, indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .map(|&i| {
            app.runs[i]
                .curves
                .val
                .last()
                .map(|p| format!("{:.4}", p[1]))
                .unwrap_or_else(|| "—".into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_names_nested_fields() {
        let value = serde_json::json!({"model": {"n_layer": 4, "name": "x"}, "seed": 1});
        let mut out = BTreeMap::new();
        flatten(&value, "", &mut out);
        assert_eq!(out.get("model.n_layer").map(String::as_str), Some("4"));
        assert_eq!(out.get("model.name").map(String::as_str), Some("x"));
        assert_eq!(out.get("seed").map(String::as_str), Some("1"));
    }
}
