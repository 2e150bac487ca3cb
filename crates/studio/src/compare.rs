//! Compare page: ticked runs' curves overlaid where they measure the same quantity (seed
//! groups as mean ± std), their settings side by side with differences highlighted and
//! best/last metrics, and two runs' samples and attention maps at the same step.

use crate::action::{Action, AppContext};
use crate::prefs::XAxis;
use crate::quantities::{Quantity, loss_quantities, train_curve};
use crate::run_view::RunView;
use crate::views::{embedding_scatter_ui, layer_head_ui};
use crate::widgets::{
    Band, PlotOptions, RefLine, Series, SeriesStyle, attention_heatmap, loss_plot,
    plot_controls_ui, run_color,
};
use hearth_engine::eval::baseline::Reference;
use hearth_engine::viz::groups::{mean_std, seed_groups};
use hearth_engine::viz::smoothing::SmoothingKind;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

/// How the compare page orders its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompareSort {
    /// As the run list has them (newest first).
    #[default]
    ListOrder,
    /// Lowest best validation loss first.
    BestValLoss,
    /// Lowest last validation loss first.
    LastValLoss,
}

/// The compare page's own state.
pub struct ComparePage {
    /// Show only settings that differ between the runs.
    differences_only: bool,
    sort: CompareSort,
    /// The step the side-by-side view shows samples and attention at (0: the latest).
    step: usize,
    /// Draw seed groups as mean ± std instead of one line per run.
    grouped: bool,
    /// Seed groups and their aggregates, and what they were computed from.
    cache: Option<(CompareKey, Groups)>,
    /// Textures of the side-by-side attention maps.
    textures: [Option<(u64, egui::TextureHandle)>; 2],
    attention_layer: usize,
    attention_head: usize,
}

impl Default for ComparePage {
    fn default() -> Self {
        Self {
            differences_only: false,
            sort: CompareSort::ListOrder,
            step: 0,
            grouped: true,
            cache: None,
            textures: [None, None],
            attention_layer: 0,
            attention_head: 0,
        }
    }
}

/// What the cached groups were computed from.
#[derive(Debug, Clone, PartialEq)]
struct CompareKey {
    runs: Vec<(PathBuf, usize, usize)>,
    smoothing: (SmoothingKind, u64, bool),
    axis: XAxis,
    grouped: bool,
}

/// A mean curve with its ± std band.
struct Aggregated {
    xs: Vec<f64>,
    mean: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
}

impl Aggregated {
    fn new((xs, mean, std): (Vec<f64>, Vec<f64>, Vec<f64>)) -> Self {
        let lo = mean.iter().zip(&std).map(|(m, s)| m - s).collect();
        let hi = mean.iter().zip(&std).map(|(m, s)| m + s).collect();
        Self { xs, mean, lo, hi }
    }
}

/// A seed group drawn as one mean line with a band.
struct GroupAggregate {
    /// Its first run (the group's runs share everything but the seed).
    first: usize,
    name: String,
    color: egui::Color32,
    train: Aggregated,
    val: Aggregated,
}

/// Run groups (indices into the runs) and the aggregates of groups with several runs.
type Groups = (Vec<Vec<usize>>, Vec<GroupAggregate>);

/// The curves of one quantity, drawn on one chart.
struct Chart<'a> {
    quantity: Quantity,
    series: Vec<Series<'a>>,
    bands: Vec<Band<'a>>,
    /// Count-model lines of the runs' data (validation charts of next-token losses).
    references: Vec<RefLine>,
}

/// Adds a series (and band) to the chart of `quantity`, opening that chart if needed.
fn chart_for<'c, 'a>(charts: &'c mut Vec<Chart<'a>>, quantity: &Quantity) -> &'c mut Chart<'a> {
    let at = match charts.iter().position(|c| c.quantity.key == quantity.key) {
        Some(at) => at,
        None => {
            charts.push(Chart {
                quantity: quantity.clone(),
                series: Vec::new(),
                bands: Vec::new(),
                references: Vec::new(),
            });
            charts.len() - 1
        }
    };
    &mut charts[at]
}

/// The last step both runs of `pair` reached.
fn last_common_step(runs: &[RunView], pair: [usize; 2]) -> usize {
    pair.iter()
        .map(|&i| runs[i].last_step.map_or(0, |(s, _)| s))
        .min()
        .unwrap_or(0)
}

fn best_val(run: &RunView) -> Option<f64> {
    run.curves
        .val
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .reduce(f64::min)
}

fn last_val(run: &RunView) -> Option<f64> {
    run.curves.val.last().copied()
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

fn sort_key(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::INFINITY)
}

impl ComparePage {
    /// The ticked runs in the page's order.
    pub fn shown_runs(&self, runs: &[RunView]) -> Vec<usize> {
        let mut indices: Vec<usize> = crate::runs::list_order(runs.len())
            .filter(|&i| runs[i].checked)
            .collect();
        let by = |f: fn(&RunView) -> Option<f64>| {
            move |a: &usize, b: &usize| sort_key(f(&runs[*a])).total_cmp(&sort_key(f(&runs[*b])))
        };
        match self.sort {
            CompareSort::ListOrder => {}
            CompareSort::BestValLoss => indices.sort_by(by(best_val)),
            CompareSort::LastValLoss => indices.sort_by(by(last_val)),
        }
        indices
    }

    /// The two runs shown side by side, and the step they are shown at.
    pub fn side_by_side(&self, runs: &[RunView], shown: &[usize]) -> Option<([usize; 2], usize)> {
        let pair = [*shown.first()?, *shown.get(1)?];
        let max_step = last_common_step(runs, pair);
        let step = if self.step == 0 || self.step > max_step {
            max_step
        } else {
            self.step
        };
        Some((pair, step))
    }

    /// Draws the comparison of the ticked runs; returns what the user asked for.
    #[must_use = "the app applies what the page asks for"]
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        ui.heading("Compare runs");
        let indices = self.shown_runs(ctx.runs);
        if indices.len() < 2 {
            ui.label("Tick two or more runs in the list on the left to compare them.");
            return actions;
        }
        if let Some(changed) = plot_controls_ui(ui, ctx.plot()) {
            actions.push(Action::SetPlot(changed));
        }
        ui.checkbox(
            &mut self.grouped,
            "group runs that differ only by seed (mean ± std)",
        );
        self.update_groups(ctx, &indices);
        self.charts_ui(ui, ctx);
        ui.separator();
        ui.columns(2, |cols| {
            self.settings_table_ui(&mut cols[0], ctx.runs, &indices);
            egui::ScrollArea::vertical()
                .id_salt("side_by_side")
                .show(&mut cols[1], |ui| {
                    self.side_by_side_ui(ui, ctx.runs, &indices)
                });
        });
        actions
    }

    /// Recomputes seed groups and their mean ± std at full resolution when what they depend on
    /// changed (new points, other runs ticked, other smoothing or axis), not every frame.
    fn update_groups(&mut self, ctx: &AppContext<'_>, indices: &[usize]) {
        let settings = ctx.prefs.smooth_settings();
        let axis = ctx.plot().x_axis;
        let key = CompareKey {
            runs: indices
                .iter()
                .map(|&i| {
                    let run = &ctx.runs[i];
                    (
                        run.dir.clone(),
                        run.curves.train.len(),
                        run.curves.val.len(),
                    )
                })
                .collect(),
            smoothing: (settings.kind, settings.weight.to_bits(), settings.log_space),
            axis,
            grouped: self.grouped,
        };
        if self.cache.as_ref().map(|(k, _)| k) != Some(&key) {
            let groups = compute_groups(ctx.runs, indices, axis, self.grouped);
            self.cache = Some((key, groups));
        }
    }

    /// One chart per measured quantity: validation losses on the left, smoothed training
    /// losses on the right. Runs whose losses measure different things never share a chart.
    fn charts_ui(&self, ui: &mut egui::Ui, ctx: &AppContext<'_>) {
        let Some((_, (groups, aggregates))) = &self.cache else {
            return;
        };
        let runs = ctx.runs;
        let plot = ctx.plot();
        let axis = plot.x_axis;
        let (val_charts, train_charts) = sort_into_charts(groups, aggregates, runs, axis);
        let height = (ui.available_height() * 0.36).max(180.0);
        ui.columns(2, |cols| {
            for (col, charts, title, id) in [
                (0, &val_charts, "Validation", "compare_val"),
                (1, &train_charts, "Training", "compare_train"),
            ] {
                let ui = &mut cols[col];
                // Stacked charts share the height one chart would have.
                let each = (height / charts.len().max(1) as f32).max(140.0);
                for (k, chart) in charts.iter().enumerate() {
                    let smoothed = if col == 1 { " (smoothed)" } else { "" };
                    ui.label(
                        egui::RichText::new(format!("{title} {}{smoothed}", chart.quantity.label))
                            .strong(),
                    );
                    let references: &[RefLine] = if plot.references && col == 0 {
                        &chart.references
                    } else {
                        &[]
                    };
                    let options = PlotOptions {
                        references,
                        log_y: plot.log_y,
                        height: each,
                        x_label: axis.label(),
                        // A short chart has no room for a long axis title; its own title
                        // names the quantity.
                        y_label: if each < 200.0 {
                            "loss"
                        } else {
                            &chart.quantity.label
                        },
                    };
                    let id = if k == 0 {
                        id.to_string()
                    } else {
                        format!("{id}_{k}")
                    };
                    loss_plot(ui, &id, &chart.series, &chart.bands, options);
                }
            }
        });
    }

    fn settings_table_ui(&mut self, ui: &mut egui::Ui, runs: &[RunView], indices: &[usize]) {
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
    fn side_by_side_ui(&mut self, ui: &mut egui::Ui, runs: &[RunView], indices: &[usize]) {
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
                    embedding_scatter_ui(ui, &format!("compare_embedding_{k}"), map, 200.0);
                }
            }
        });
    }
}

/// The sample a run wrote at or before `step`, wrapped to its column.
fn sample_at_ui(ui: &mut egui::Ui, run: &RunView, step: usize, column: usize) {
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

/// Validation and training curves of the groups, one chart per measured quantity.
/// Adds the next-token count models of a run's data to a chart's lines; the same figure
/// (runs on the same data) is drawn once, different data's figures each.
fn add_references(lines: &mut Vec<RefLine>, references: &[Reference]) {
    for line in RefLine::of(references, "val_loss", None) {
        let same = |l: &RefLine| l.name == line.name && (l.value - line.value).abs() < 1e-9;
        if !lines.iter().any(same) {
            lines.push(line);
        }
    }
}

fn sort_into_charts<'a>(
    groups: &[Vec<usize>],
    aggregates: &'a [GroupAggregate],
    runs: &'a [RunView],
    axis: XAxis,
) -> (Vec<Chart<'a>>, Vec<Chart<'a>>) {
    let mut val_charts: Vec<Chart<'a>> = Vec::new();
    let mut train_charts: Vec<Chart<'a>> = Vec::new();
    for group in groups.iter().filter(|g| g.len() == 1) {
        let run = &runs[group[0]];
        let quantities = loss_quantities(&run.spec.objective);
        let name = legend_name(runs, group[0]);
        let chart = chart_for(&mut val_charts, &quantities.val);
        add_references(&mut chart.references, &run.references);
        chart.series.push(Series {
            name: name.clone(),
            xs: run.curves.val_xs(axis),
            ys: &run.curves.val,
            color: run_color(group[0]),
            style: SeriesStyle::Markers,
            index: None,
        });
        let train = train_curve(&run.spec.objective, &run.curves, axis);
        chart_for(&mut train_charts, &train.quantity)
            .series
            .push(Series {
                name,
                xs: train.xs,
                ys: train.ys,
                color: run_color(group[0]),
                style: SeriesStyle::Line { width: 1.5 },
                index: train.index,
            });
    }
    for agg in aggregates {
        let first = &runs[agg.first];
        let quantities = loss_quantities(&first.spec.objective);
        let train_quantity = train_curve(&first.spec.objective, &first.curves, axis).quantity;
        for (charts, quantity, curve, style) in [
            (
                &mut train_charts,
                &train_quantity,
                &agg.train,
                SeriesStyle::Line { width: 2.0 },
            ),
            (
                &mut val_charts,
                &quantities.val,
                &agg.val,
                SeriesStyle::Markers,
            ),
        ] {
            let chart = chart_for(charts, quantity);
            chart.bands.push(Band {
                name: agg.name.clone(),
                xs: &curve.xs,
                lo: &curve.lo,
                hi: &curve.hi,
                color: agg.color,
            });
            chart.series.push(Series {
                name: agg.name.clone(),
                xs: &curve.xs,
                ys: &curve.mean,
                color: agg.color,
                style,
                index: None,
            });
        }
    }
    (val_charts, train_charts)
}

fn compute_groups(runs: &[RunView], indices: &[usize], axis: XAxis, grouped: bool) -> Groups {
    let specs: Vec<serde_json::Value> = indices
        .iter()
        .map(|&i| serde_json::to_value(&runs[i].spec).unwrap_or_default())
        .collect();
    let groups: Vec<Vec<usize>> = if grouped {
        // Runs of one group must also draw the same quantity (a run recorded with step terms
        // and one recorded without are not averaged).
        let key = |i: usize| train_curve(&runs[i].spec.objective, &runs[i].curves, axis).quantity;
        let mut split: Vec<Vec<usize>> = Vec::new();
        for group in seed_groups(&specs) {
            let mut parts: Vec<Vec<usize>> = Vec::new();
            for i in group.into_iter().map(|k| indices[k]) {
                match parts.iter_mut().find(|p| key(p[0]) == key(i)) {
                    Some(part) => part.push(i),
                    None => parts.push(vec![i]),
                }
            }
            split.extend(parts);
        }
        split
    } else {
        indices.iter().map(|&i| vec![i]).collect()
    };
    let aggregates = groups
        .iter()
        .filter(|g| g.len() > 1)
        .map(|g| {
            let curves = |i: usize| &runs[i].curves;
            let train: Vec<(&[f64], &[f64])> = g
                .iter()
                .map(|&i| {
                    let t = train_curve(&runs[i].spec.objective, curves(i), axis);
                    (t.xs, t.ys)
                })
                .collect();
            let val: Vec<(&[f64], &[f64])> = g
                .iter()
                .map(|&i| (curves(i).val_xs(axis), curves(i).val.as_slice()))
                .collect();
            GroupAggregate {
                first: g[0],
                name: format!("{} (mean of {} seeds)", runs[g[0]].name(), g.len()),
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
/// `(metric, label)` of every reference of the runs, in first-seen order.
fn reference_rows(runs: &[RunView], indices: &[usize]) -> Vec<(String, String)> {
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

fn legend_name(runs: &[RunView], i: usize) -> String {
    let name = runs[i].name();
    let clashes = runs
        .iter()
        .enumerate()
        .any(|(j, r)| j != i && r.checked && r.name() == name);
    if clashes {
        format!("{name} #{}", i + 1)
    } else {
        name.to_string()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A run listed as `name`, ticked for comparison or not.
    fn listed(name: &str, checked: bool) -> RunView {
        let spec = hearth_engine::spec::RunSpec {
            name: name.to_string(),
            ..Default::default()
        };
        RunView {
            checked,
            ..RunView::from_entry(hearth_engine::project::folder::RunEntry {
                dir: std::path::PathBuf::from(name),
                spec,
                status: hearth_engine::project::RunStatus::Finished,
                last_step: None,
                last_eval: None,
                annotations: Default::default(),
            })
        }
    }

    #[test]
    fn as_listed_compares_the_ticked_runs_in_the_run_lists_order() {
        // The app keeps runs oldest first; the list shows the newest first.
        let runs = [
            listed("oldest", true),
            listed("middle", false),
            listed("newer", true),
            listed("newest", true),
        ];
        let page = ComparePage {
            sort: CompareSort::ListOrder,
            ..ComparePage::default()
        };
        let names: Vec<&str> = page
            .shown_runs(&runs)
            .into_iter()
            .map(|i| runs[i].spec.name.as_str())
            .collect();
        assert_eq!(names, ["newest", "newer", "oldest"]);
        let listed: Vec<usize> = crate::runs::list_order(runs.len()).collect();
        assert_eq!(listed, [3, 2, 1, 0], "the run list's order");
    }

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
