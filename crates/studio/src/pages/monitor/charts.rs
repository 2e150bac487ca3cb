//! The Monitor's charts: the loss chart, the objective's metrics, the terms of the step loss
//! and the health metrics, each drawn as the run's objective describes it
//! ([`hearth_engine::objective::Charts`]).

use crate::action::AppContext;
use crate::quantities::{TrainCurve, train_curve, val_like_train};
use crate::run_view::RunView;
use crate::services::prefs::{PlotSettings, XAxis};
use crate::widgets::{
    PlotOptions, RefLine, Series, SeriesStyle, capitalized, loss_plot, run_color,
};
use hearth_engine::objective::{ChartCurve, Charts, CurveSource, MetricsChart};
use hearth_engine::viz::curves::Curves;
use std::borrow::Cow;

/// Colours of the curves of one chart that are not runs.
const PALETTE: [egui::Color32; 4] = [
    egui::Color32::from_rgb(0x4e, 0x9a, 0xf1),
    egui::Color32::from_rgb(0xf2, 0x8e, 0x2b),
    egui::Color32::from_rgb(0x59, 0xc1, 0x5b),
    egui::Color32::from_rgb(0xb0, 0x7a, 0xe0),
];

/// The axis `run`'s charts use when `axis` is asked for: tokens for a run whose epoch size is
/// unknown (it has no epochs to draw).
pub fn run_axis(run: &RunView, axis: XAxis) -> XAxis {
    if axis == XAxis::Epochs && run.curves.epoch_tokens().is_none() {
        XAxis::Tokens
    } else {
        axis
    }
}

/// The training loss (raw and smoothed) and the validation values of the same quantity, under
/// a title that names it. Returns the chart's place on screen (for the PNG export).
pub(super) fn loss_chart_ui(
    ui: &mut egui::Ui,
    run: &RunView,
    index: usize,
    ctx: &AppContext<'_>,
    height: f32,
) -> egui::Rect {
    let mut plot = ctx.plot();
    let axis = run_axis(run, plot.x_axis);
    let epochs_unknown = axis != plot.x_axis;
    plot.x_axis = axis;
    let objective = &run.spec.objective;
    let charts = objective.charts();
    let train = train_curve(objective, &run.curves, axis);
    let val = val_like_train(objective, &run.curves);
    let series = loss_series(&train, val.as_deref(), &run.curves, index, &plot);
    // Reference lines measure the validation loss; only a chart of that loss shows them.
    let references = if plot.references && val.is_some() && charts.loss_references {
        RefLine::of(&run.references, "val_loss", None)
    } else {
        Vec::new()
    };
    let options = PlotOptions {
        log_y: plot.log_y,
        height,
        x_label: axis.label(),
        y_label: &train.quantity.label,
        references: &references,
    };
    // The exported picture holds the title and the axes with the plot.
    ui.scope(|ui| {
        ui.label(egui::RichText::new(capitalized(&train.quantity.label)).strong());
        // Where the training curve measures another loss than the title: say what it is.
        if let Some(note) = objective.train_curve_note(run.spec.train.steps, train.term.is_some()) {
            let color = if note.warning {
                ui.visuals().warn_fg_color
            } else {
                ui.visuals().weak_text_color()
            };
            ui.label(egui::RichText::new(note.text).small().color(color));
        }
        if epochs_unknown {
            ui.label(
                egui::RichText::new(
                    "Epochs unknown for this run (it recorded no dataset size): x is tokens.",
                )
                .small()
                .color(ui.visuals().warn_fg_color),
            );
        }
        let measured = !run.curves.train.is_empty() || run.curves.val.iter().any(|v| v.is_finite());
        if measured {
            loss_plot(ui, "monitor_loss", &series, &[], options);
        } else {
            // A run before its first step, or an imported model: nothing to draw yet.
            use hearth_engine::project::RunStatus;
            let why = match run.status {
                RunStatus::Queued => {
                    "No loss measured yet: the run waits in the project's queue; its loss \
                     appears here from its first step."
                }
                RunStatus::Created | RunStatus::Running | RunStatus::Paused => {
                    "No loss measured yet: the loss appears here from the first step."
                }
                _ => {
                    "No loss measured yet: this run has not trained (an imported model starts \
                     here; fine-tune it to train). Scores recorded for its checkpoint are on \
                     the metrics chart below."
                }
            };
            ui.label(egui::RichText::new(why).weak());
        }
    })
    .response
    .rect
}

/// The loss chart's curves: the training curve raw (and smoothed when smoothing is on) in the
/// run's colour, and the validation points.
fn loss_series<'a>(
    train: &TrainCurve<'a>,
    val: Option<&'a [f64]>,
    curves: &'a Curves,
    index: usize,
    plot: &PlotSettings,
) -> Vec<Series<'a>> {
    let smoothing_on = plot.smoothing > 0.0;
    let color = run_color(index);
    // Validation points sit on the training curve: never in the run's own colour.
    let orange = egui::Color32::from_rgb(0xf2, 0x8e, 0x2b);
    let val_color = if color == orange {
        egui::Color32::from_rgb(0xe1, 0x57, 0x59)
    } else {
        orange
    };
    // A run that recorded its step loss's terms draws the term validation measures.
    let (train_name, smoothed_name): (Cow<'static, str>, Cow<'static, str>) = match &train.term {
        Some(term) => (term.raw_legend.clone(), term.smoothed_legend.clone()),
        None => ("train (raw)".into(), "train (smoothed)".into()),
    };
    let raw_color = if smoothing_on {
        color.gamma_multiply(0.3)
    } else {
        color
    };
    let mut series = vec![Series {
        name: train_name.into_owned(),
        xs: train.xs,
        ys: train.raw,
        color: raw_color,
        style: SeriesStyle::Line { width: 1.0 },
        index: train.raw_index,
    }];
    if smoothing_on {
        series.push(Series {
            name: smoothed_name.into_owned(),
            xs: train.xs,
            ys: train.ys,
            color,
            style: SeriesStyle::Line { width: 2.0 },
            index: train.index,
        });
    }
    if let Some(val) = val {
        series.push(Series {
            name: "validation".into(),
            xs: curves.val_xs(plot.x_axis),
            ys: val,
            color: val_color,
            style: SeriesStyle::Markers,
            index: None,
        });
    }
    series
}

/// The objective's own curves: those its description draws together (GRIT's loss balance),
/// or one accuracy / retrieval metric at a time (chosen above the chart) with its reference
/// lines, since recall and MRR are different quantities.
pub(super) fn metrics_plot_ui(
    ui: &mut egui::Ui,
    run: &RunView,
    axis: XAxis,
    height: f32,
    show_references: bool,
    choice: &mut Option<String>,
) {
    if run.curves.metrics.is_empty() {
        return;
    }
    let axis = run_axis(run, axis);
    let charts = run.spec.objective.charts();
    match &charts.metrics_chart {
        MetricsChart::Together {
            title,
            y_label,
            curves,
        } => together_ui(ui, run, axis, height, title, y_label, curves),
        MetricsChart::OneAtATime => {
            one_metric_ui(ui, run, &charts, axis, height, show_references, choice)
        }
    }
}

/// Curves of one quantity drawn together under `title`, without reference lines.
fn together_ui(
    ui: &mut egui::Ui,
    run: &RunView,
    axis: XAxis,
    height: f32,
    title: &str,
    y_label: &str,
    wanted: &[ChartCurve],
) {
    let curves = &run.curves;
    let values: Vec<(&str, Cow<'_, [f64]>)> = wanted
        .iter()
        .filter_map(|curve| {
            let ys = match curve.source {
                CurveSource::Metric(key) => Cow::Borrowed(curves.metric(key.name())?),
                CurveSource::WeightedTrainLoss { weight } => {
                    Cow::Owned(curves.eval_train.iter().map(|l| l * weight).collect())
                }
            };
            Some((curve.legend, ys))
        })
        .collect();
    let xs = curves.val_xs(axis);
    let series: Vec<Series<'_>> = values
        .iter()
        .enumerate()
        .map(|(k, (legend, ys))| Series {
            name: (*legend).into(),
            xs,
            ys,
            color: PALETTE[k % PALETTE.len()],
            style: SeriesStyle::Line { width: 2.0 },
            index: None,
        })
        .collect();
    ui.label(egui::RichText::new(title).strong());
    let options = PlotOptions {
        log_y: false,
        height: height.max(120.0),
        x_label: axis.label(),
        y_label,
        references: &[],
    };
    loss_plot(ui, "monitor_metrics", &series, &[], options);
}

/// One validation metric at a time, picked above the chart, with the objective's note on it
/// and its reference lines.
fn one_metric_ui(
    ui: &mut egui::Ui,
    run: &RunView,
    charts: &Charts,
    axis: XAxis,
    height: f32,
    show_references: bool,
    choice: &mut Option<String>,
) {
    let curves = &run.curves;
    ui.label(egui::RichText::new("Objective metric (validation)").strong());
    let mut names: Vec<&String> = curves
        .metrics
        .keys()
        .filter(|name| {
            !name.ends_with("ppl") && !name.ends_with("loss") && !charts.is_health_metric(name)
        })
        .collect();
    // Rank correlations first: STS is reported by Spearman.
    names.sort_by_key(|name| !name.contains("spearman"));
    let Some(first) = names.first() else {
        return;
    };
    let shown = match choice.as_ref() {
        Some(c) if names.contains(&c) => c.clone(),
        _ => (*first).clone(),
    };
    if names.len() > 1 {
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new("metric").small());
            for name in &names {
                if ui
                    .selectable_label(**name == shown, name.as_str())
                    .clicked()
                {
                    *choice = Some((*name).clone());
                }
            }
        });
    }
    if let Some(note) = run.spec.objective.metric_note(&shown) {
        ui.label(
            egui::RichText::new(note)
                .small()
                .color(ui.visuals().weak_text_color()),
        );
    }
    let mut series = Vec::new();
    if let Some(ys) = curves.metric(&shown) {
        series.push(Series {
            name: shown.clone(),
            xs: curves.val_xs(axis),
            ys,
            color: PALETTE[0],
            style: SeriesStyle::Line { width: 2.0 },
            index: None,
        });
    }
    let references: Vec<RefLine> = if show_references {
        series
            .iter()
            .flat_map(|s| RefLine::of(&run.references, &s.name, None))
            .collect()
    } else {
        Vec::new()
    };
    let options = PlotOptions {
        log_y: false,
        height: height.max(120.0),
        x_label: axis.label(),
        y_label: series.first().map_or("value", |s| s.name.as_str()),
        references: &references,
    };
    loss_plot(ui, "monitor_metrics", &series, &[], options);
}

/// The terms of the step loss besides the loss chart's own, one chart each, under one title;
/// nothing for runs that recorded none.
pub(super) fn terms_ui(ui: &mut egui::Ui, run: &RunView, index: usize, plot: &PlotSettings) {
    let axis = run_axis(run, plot.x_axis);
    let charts = run.spec.objective.charts();
    let recorded: Vec<_> = charts
        .term_charts
        .iter()
        .filter_map(|chart| Some((chart, run.curves.terms.get(chart.key.name())?)))
        .collect();
    if recorded.is_empty() {
        return;
    }
    ui.label(egui::RichText::new("Training terms (each step)").strong());
    let color = run_color(index);
    for (chart, term) in recorded {
        ui.label(egui::RichText::new(&chart.caption).small());
        let smoothed = (plot.smoothing > 0.0).then(|| term.smoothed_values());
        let mut series = vec![Series {
            name: format!("{} (raw)", chart.label),
            xs: term.xs(axis),
            ys: &term.values,
            color: if smoothed.is_some() {
                color.gamma_multiply(0.3)
            } else {
                color
            },
            style: SeriesStyle::Line { width: 1.0 },
            index: None,
        }];
        if let Some(ys) = &smoothed {
            series.push(Series {
                name: format!("{} (smoothed)", chart.label),
                xs: term.xs(axis),
                ys,
                color,
                style: SeriesStyle::Line { width: 2.0 },
                index: None,
            });
        }
        let options = PlotOptions {
            log_y: plot.log_y,
            height: 130.0,
            x_label: axis.label(),
            y_label: &chart.label,
            references: &[],
        };
        let id = format!("monitor_terms_{}", chart.key.name());
        loss_plot(ui, &id, &series, &[], options);
    }
    ui.separator();
}

/// The objective's health at each evaluation, one quantity per chart; nothing for runs that
/// do not measure it.
pub(super) fn health_ui(ui: &mut egui::Ui, run: &RunView, axis: XAxis) {
    let axis = run_axis(run, axis);
    let curves = &run.curves;
    let charts = run.spec.objective.charts();
    let health = charts.health_charts;
    if !health.iter().any(|c| {
        c.series
            .iter()
            .any(|(m, _)| curves.metric(m.name()).is_some())
    }) {
        return;
    }
    ui.label(egui::RichText::new(charts.health_title).strong());
    let xs = curves.val_xs(axis);
    for (k, chart) in health.iter().enumerate() {
        let series: Vec<Series<'_>> = chart
            .series
            .iter()
            .enumerate()
            .filter_map(|(i, (metric, legend))| {
                Some(Series {
                    name: (*legend).into(),
                    xs,
                    ys: curves.metric(metric.name())?,
                    color: PALETTE[i % 2],
                    style: SeriesStyle::Line { width: 2.0 },
                    index: None,
                })
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        ui.label(egui::RichText::new(chart.title).small());
        let options = PlotOptions {
            log_y: false,
            height: 110.0,
            x_label: axis.label(),
            y_label: chart.y_label,
            references: &[],
        };
        loss_plot(ui, &format!("monitor_health_{k}"), &series, &[], options);
    }
    ui.separator();
}
