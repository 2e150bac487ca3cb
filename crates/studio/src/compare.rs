//! Compare page: ticked runs' curves overlaid (seed groups as mean ± std), their settings side
//! by side with differences highlighted and best/last metrics, and two runs' samples and
//! attention maps at the same step.

use super::app::{CompareSort, StudioApp};
use super::monitor::{layer_head_ui, plot_controls_ui};
use super::widgets::{
    Band, PlotOptions, Series, SeriesStyle, attention_heatmap, loss_plot, run_color,
};
use hearth_engine::viz::groups::{mean_std, seed_groups};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

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

fn best_val(app: &StudioApp, i: usize) -> Option<f64> {
    app.runs[i]
        .curves
        .val
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .reduce(f64::min)
}

fn last_val(app: &StudioApp, i: usize) -> Option<f64> {
    app.runs[i].curves.val.last().copied()
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

pub fn compare_ui(app: &mut StudioApp, ui: &mut egui::Ui) {
    ui.heading("Compare runs");
    let mut indices: Vec<usize> = (0..app.runs.len())
        .filter(|&i| app.runs[i].checked)
        .collect();
    if indices.len() < 2 {
        ui.label("Tick two or more runs in the list on the left to compare them.");
        return;
    }
    let settings = app.prefs.smooth_settings();
    for &i in &indices {
        app.runs[i].ensure_history();
        app.runs[i].curves.smoothed(settings);
    }
    match app.compare_sort {
        CompareSort::ListOrder => {}
        CompareSort::BestValLoss => indices
            .sort_by(|&a, &b| fmt_key(best_val(app, a)).total_cmp(&fmt_key(best_val(app, b)))),
        CompareSort::LastValLoss => indices
            .sort_by(|&a, &b| fmt_key(last_val(app, a)).total_cmp(&fmt_key(last_val(app, b)))),
    }
    plot_controls_ui(app, ui);
    ui.checkbox(
        &mut app.compare_groups,
        "group runs that differ only by seed (mean ± std)",
    );

    let axis = app.prefs.x_axis;
    // Groups and their mean ± std are computed at full resolution once per change (new points,
    // other runs ticked, other smoothing or axis), not per frame.
    let key = CompareKey {
        runs: indices
            .iter()
            .map(|&i| {
                (
                    app.runs[i].dir.clone(),
                    app.runs[i].curves.train.len(),
                    app.runs[i].curves.val.len(),
                )
            })
            .collect(),
        smoothing: (settings.kind, settings.weight.to_bits(), settings.log_space),
        axis,
        grouped: app.compare_groups,
    };
    if app.compare_cache.as_ref().map(|(k, _)| k) != Some(&key) {
        let computed = compute_groups(app, &indices, axis);
        app.compare_cache = Some((key, computed));
    }
    let Some((_, (groups, aggregates))) = &app.compare_cache else {
        return;
    };
    let mut train_series = Vec::new();
    let mut val_series = Vec::new();
    let mut train_bands = Vec::new();
    let mut val_bands = Vec::new();
    for group in groups.iter().filter(|g| g.len() == 1) {
        let run = &app.runs[group[0]];
        val_series.push(Series {
            name: legend_name(app, group[0]),
            xs: run.curves.val_xs(axis),
            ys: &run.curves.val,
            color: run_color(group[0]),
            style: SeriesStyle::Markers,
            index: None,
        });
        train_series.push(Series {
            name: legend_name(app, group[0]),
            xs: run.curves.xs(axis),
            ys: run.curves.smoothed_values(),
            color: run_color(group[0]),
            style: SeriesStyle::Line { width: 1.5 },
            index: Some(run.curves.smoothed_index()),
        });
    }
    for agg in aggregates {
        let (lo, hi) = (&agg.train.lo, &agg.train.hi);
        train_bands.push(Band {
            name: agg.name.clone(),
            xs: &agg.train.xs,
            lo,
            hi,
            color: agg.color,
        });
        train_series.push(Series {
            name: agg.name.clone(),
            xs: &agg.train.xs,
            ys: &agg.train.mean,
            color: agg.color,
            style: SeriesStyle::Line { width: 2.0 },
            index: None,
        });
        let (lo, hi) = (&agg.val.lo, &agg.val.hi);
        val_bands.push(Band {
            name: agg.name.clone(),
            xs: &agg.val.xs,
            lo,
            hi,
            color: agg.color,
        });
        val_series.push(Series {
            name: agg.name.clone(),
            xs: &agg.val.xs,
            ys: &agg.val.mean,
            color: agg.color,
            style: SeriesStyle::Markers,
            index: None,
        });
    }
    let height = (ui.available_height() * 0.36).max(180.0);
    let log_y = app.prefs.log_y;
    ui.columns(2, |cols| {
        let options = PlotOptions {
            log_y,
            height,
            x_label: axis.label(),
            y_label: "loss",
        };
        cols[0].label(egui::RichText::new("Validation loss").strong());
        loss_plot(
            &mut cols[0],
            "compare_val",
            &val_series,
            &val_bands,
            options,
        );
        cols[1].label(egui::RichText::new("Training loss (smoothed)").strong());
        loss_plot(
            &mut cols[1],
            "compare_train",
            &train_series,
            &train_bands,
            options,
        );
    });
    ui.separator();
    ui.columns(2, |cols| {
        settings_table_ui(app, &indices, &mut cols[0]);
        egui::ScrollArea::vertical()
            .id_salt("side_by_side")
            .show(&mut cols[1], |ui| side_by_side_ui(app, &indices, ui));
    });
}

/// What the cached groups were computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareKey {
    runs: Vec<(std::path::PathBuf, usize, usize)>,
    smoothing: (hearth_engine::viz::smoothing::SmoothingKind, u64, bool),
    axis: super::app::XAxis,
    grouped: bool,
}

/// A mean curve with its ± std band.
pub struct Aggregated {
    pub xs: Vec<f64>,
    pub mean: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

impl Aggregated {
    fn new((xs, mean, std): (Vec<f64>, Vec<f64>, Vec<f64>)) -> Self {
        let lo = mean.iter().zip(&std).map(|(m, s)| m - s).collect();
        let hi = mean.iter().zip(&std).map(|(m, s)| m + s).collect();
        Self { xs, mean, lo, hi }
    }
}

/// A seed group drawn as one mean line with a band.
pub struct GroupAggregate {
    pub name: String,
    pub color: egui::Color32,
    pub train: Aggregated,
    pub val: Aggregated,
}

/// Run groups (indices into `app.runs`) and the aggregates of groups with several runs.
pub type Groups = (Vec<Vec<usize>>, Vec<GroupAggregate>);

fn compute_groups(app: &StudioApp, indices: &[usize], axis: super::app::XAxis) -> Groups {
    let specs: Vec<serde_json::Value> = indices
        .iter()
        .map(|&i| serde_json::to_value(&app.runs[i].spec).unwrap_or_default())
        .collect();
    let groups: Vec<Vec<usize>> = if app.compare_groups {
        seed_groups(&specs)
            .into_iter()
            .map(|g| g.into_iter().map(|k| indices[k]).collect())
            .collect()
    } else {
        indices.iter().map(|&i| vec![i]).collect()
    };
    let aggregates = groups
        .iter()
        .filter(|g| g.len() > 1)
        .map(|g| {
            let curves = |i: usize| &app.runs[i].curves;
            let train: Vec<(&[f64], &[f64])> = g
                .iter()
                .map(|&i| (curves(i).xs(axis), curves(i).smoothed_values()))
                .collect();
            let val: Vec<(&[f64], &[f64])> = g
                .iter()
                .map(|&i| (curves(i).val_xs(axis), curves(i).val.as_slice()))
                .collect();
            GroupAggregate {
                name: format!("{} (mean of {} seeds)", app.runs[g[0]].name(), g.len()),
                color: run_color(g[0]),
                train: Aggregated::new(mean_std(&train)),
                val: Aggregated::new(mean_std(&val)),
            }
        })
        .collect();
    (groups, aggregates)
}

/// A run's name for legends, with its list position when another ticked run has the same name
/// (legend entries of equal names would merge).
fn legend_name(app: &StudioApp, i: usize) -> String {
    let name = app.runs[i].name();
    let clashes = app
        .runs
        .iter()
        .enumerate()
        .any(|(j, r)| j != i && r.checked && r.name() == name);
    if clashes {
        format!("{name} #{}", i + 1)
    } else {
        name.to_string()
    }
}

fn fmt_key(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::INFINITY)
}

fn settings_table_ui(app: &mut StudioApp, indices: &[usize], ui: &mut egui::Ui) {
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
        let label = ui.label("order");
        egui::ComboBox::from_id_salt("compare_sort")
            .selected_text(match app.compare_sort {
                CompareSort::ListOrder => "as listed",
                CompareSort::BestValLoss => "best val loss",
                CompareSort::LastValLoss => "last val loss",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut app.compare_sort, CompareSort::ListOrder, "as listed");
                ui.selectable_value(
                    &mut app.compare_sort,
                    CompareSort::BestValLoss,
                    "best val loss",
                );
                ui.selectable_value(
                    &mut app.compare_sort,
                    CompareSort::LastValLoss,
                    "last val loss",
                );
            })
            .response
            .labelled_by(label.id);
    });
    let highlight = ui.visuals().selection.bg_fill.gamma_multiply(0.5);
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
                            egui::RichText::new(legend_name(app, i))
                                .strong()
                                .color(run_color(i)),
                        );
                    }
                    ui.end_row();
                    ui.label(egui::RichText::new("best val loss").strong());
                    for &i in indices {
                        ui.label(fmt(best_val(app, i)));
                    }
                    ui.end_row();
                    ui.label(egui::RichText::new("last val loss").strong());
                    for &i in indices {
                        ui.label(fmt(last_val(app, i)));
                    }
                    ui.end_row();
                    for key in keys {
                        if key == "schema_version" {
                            continue;
                        }
                        let values: Vec<&str> = flat
                            .iter()
                            .map(|m| m.get(key).map(String::as_str).unwrap_or("-"))
                            .collect();
                        let differs = values.windows(2).any(|w| w[0] != w[1]);
                        if app.compare_differences_only && !differs {
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

/// The first two runs' samples and attention maps at one step.
fn side_by_side_ui(app: &mut StudioApp, indices: &[usize], ui: &mut egui::Ui) {
    let pair = [indices[0], indices[1]];
    let max_step = pair
        .iter()
        .map(|&i| app.runs[i].last_step.map_or(0, |(s, _)| s))
        .min()
        .unwrap_or(0);
    if app.compare_step == 0 || app.compare_step > max_step {
        app.compare_step = max_step;
    }
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new("Side by side at step").strong());
        let label = ui.label("");
        ui.add(egui::Slider::new(
            &mut app.compare_step,
            0..=max_step.max(1),
        ))
        .labelled_by(label.id);
    });
    let step = app.compare_step;
    let (mut layer, mut head) = (app.attention_layer, app.attention_head);
    ui.columns(2, |cols| {
        for (k, &i) in pair.iter().enumerate() {
            let ui = &mut cols[k];
            let run = &mut app.runs[i];
            ui.label(
                egui::RichText::new(run.name().to_string())
                    .strong()
                    .color(run_color(i)),
            );
            let sample = run.history.as_ref().and_then(|h| {
                h.samples
                    .iter()
                    .rev()
                    .find(|(s, _)| *s <= step)
                    .or(h.samples.first())
                    .cloned()
            });
            match sample {
                Some((s, text)) => {
                    ui.label(egui::RichText::new(format!("sample at step {s}")).weak());
                    egui::ScrollArea::vertical()
                        .id_salt(("side_sample", k))
                        .max_height(90.0)
                        .show(ui, |ui| {
                            ui.add(
                                egui::Label::new(egui::RichText::new(text).monospace().small())
                                    .wrap(),
                            );
                        });
                }
                None => {
                    ui.label(egui::RichText::new("no sample").weak());
                }
            }
            let dir = run.dir.clone();
            if let Some(snap) = run.attention_near(step).cloned() {
                if k == 0 {
                    layer = layer.min(snap.maps.n_layer.saturating_sub(1));
                    head = head.min(snap.maps.n_head.saturating_sub(1));
                    layer_head_ui(
                        ui,
                        &mut layer,
                        &mut head,
                        snap.maps.n_layer,
                        snap.maps.n_head,
                    );
                } else {
                    ui.label(egui::RichText::new(format!("layer {layer} · head {head}")).weak());
                }
                ui.label(egui::RichText::new(format!("attention at step {}", snap.step)).weak());
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                (&dir, snap.step, layer, head).hash(&mut hasher);
                attention_heatmap(
                    ui,
                    &snap.maps,
                    &snap.tokens,
                    layer.min(snap.maps.n_layer.saturating_sub(1)),
                    head.min(snap.maps.n_head.saturating_sub(1)),
                    &mut app.compare_textures[k],
                    hasher.finish(),
                    260.0,
                );
            } else {
                ui.label(egui::RichText::new("no attention snapshot stored").weak());
            }
            let run = &app.runs[i];
            let map = run
                .embedding_maps
                .iter()
                .rev()
                .find(|m| m.step <= step)
                .or(run.embedding_maps.first());
            if let Some(map) = map {
                ui.label(egui::RichText::new(format!("embedding map at step {}", map.step)).weak());
                super::monitor::embedding_scatter_ui(
                    ui,
                    &format!("compare_embedding_{k}"),
                    map,
                    200.0,
                );
            }
        }
    });
    app.attention_layer = layer;
    app.attention_head = head;
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
