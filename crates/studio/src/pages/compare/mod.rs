//! Compare page: ticked runs' curves overlaid where they measure the same quantity (seed
//! groups as mean ± std), their settings side by side with differences highlighted and
//! best/last metrics, and two runs' samples and attention maps at the same step.

mod charts;
mod dynamics;
mod table;

use crate::action::{Action, AppContext};
use crate::quantities::Quantity;
use crate::run_view::RunView;
use crate::services::prefs::XAxis;
use crate::widgets::{Band, PlotOptions, RefLine, Series, loss_plot, plot_controls_ui};
use charts::*;
use hearth_engine::viz::smoothing::SmoothingKind;
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
    /// The objective metric the metrics chart shows (`None`: the first shared one).
    metric: Option<String>,
    attention_layer: usize,
    attention_head: usize,
    /// The runs' training dynamics, read when their section is open.
    dynamics: dynamics::DynamicsCompare,
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
            metric: None,
            attention_layer: 0,
            attention_head: 0,
            dynamics: dynamics::DynamicsCompare::default(),
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
    run.curves.val.iter().rev().copied().find(|v| v.is_finite())
}

/// The objective metrics at least two of the runs `indices` report (the same name measures
/// the same quantity), in name order.
fn shared_metrics(runs: &[RunView], indices: &[usize]) -> Vec<String> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for &i in indices {
        for (name, values) in &runs[i].curves.metrics {
            if values.iter().any(|v| v.is_finite()) {
                *counts.entry(name.as_str()).or_default() += 1;
            }
        }
    }
    let mut names: Vec<String> = counts
        .into_iter()
        .filter(|&(_, n)| n >= 2)
        .map(|(name, _)| name.to_string())
        .collect();
    // Rank correlations first: STS is reported by Spearman.
    names.sort_by_key(|name| !name.contains("spearman"));
    names
}

/// The runs of `indices` drawn on `axis`, and those left out: on the epochs axis, the runs
/// whose epoch size is unknown.
pub fn on_axis(runs: &[RunView], indices: &[usize], axis: XAxis) -> (Vec<usize>, Vec<usize>) {
    indices
        .iter()
        .copied()
        .partition(|&i| axis != XAxis::Epochs || runs[i].curves.epoch_tokens().is_some())
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
        let mut indices: Vec<usize> = crate::pages::runs::list_order(runs.len())
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
        // Only runs with a known epoch size share an epochs axis.
        let (plotted, unknown) = on_axis(ctx.runs, &indices, ctx.plot().x_axis);
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|&i| legend_name(ctx.runs, i)).collect();
            ui.label(
                egui::RichText::new(format!(
                    "Not on the epochs axis (epoch size unknown: no dataset size recorded): {}",
                    names.join(", ")
                ))
                .color(ui.visuals().warn_fg_color),
            );
        }
        self.update_groups(ctx, &plotted);
        self.charts_ui(ui, ctx);
        self.metrics_ui(ui, ctx, &plotted);
        egui::CollapsingHeader::new("Training dynamics: update ratios side by side")
            .id_salt("compare_dynamics")
            .show(ui, |ui| {
                let name = |i: usize| legend_name(ctx.runs, i);
                self.dynamics.ui(ui, ctx.runs, &indices, &name);
            });
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

    /// One objective metric that several of the runs report (an imported encoder's recorded
    /// STS Spearman beside its fine-tune's), each run's evaluations as points.
    fn metrics_ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>, indices: &[usize]) {
        let names = shared_metrics(ctx.runs, indices);
        let Some(first) = names.first() else {
            return;
        };
        let shown = match &self.metric {
            Some(m) if names.contains(m) => m.clone(),
            _ => first.clone(),
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(egui::RichText::new("Objective metric").strong());
            for name in &names {
                if ui.selectable_label(*name == shown, name.as_str()).clicked() {
                    self.metric = Some(name.clone());
                }
            }
        });
        let axis = ctx.plot().x_axis;
        let series: Vec<Series<'_>> = indices
            .iter()
            .filter_map(|&i| {
                let run = &ctx.runs[i];
                let ys = run.curves.metric(&shown)?;
                Some(Series {
                    name: legend_name(ctx.runs, i),
                    xs: run.curves.val_xs(axis),
                    ys,
                    color: crate::widgets::run_color(i),
                    // Not markers: those mark the lowest value as best, and a higher
                    // correlation or accuracy is better.
                    style: crate::widgets::SeriesStyle::Line { width: 2.0 },
                    index: None,
                })
            })
            .collect();
        let options = PlotOptions {
            references: &[],
            log_y: false,
            height: 170.0,
            x_label: axis.label(),
            y_label: &shown,
        };
        loss_plot(ui, "compare_metric", &series, &[], options);
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
}

#[cfg(test)]
mod tests {
    use super::table::flatten;
    use super::*;
    use std::collections::BTreeMap;

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
        let listed: Vec<usize> = crate::pages::runs::list_order(runs.len()).collect();
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
