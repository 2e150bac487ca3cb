//! The Compare page's charts: runs sorted into one chart per quantity, seed groups as mean
//! ± std, and reference lines.

use super::*;
use crate::quantities::{loss_quantities, train_curve};
use crate::run_view::RunView;
use crate::services::prefs::XAxis;
use crate::widgets::{Band, RefLine, Series, SeriesStyle, run_color};
use hearth_engine::eval::baseline::Reference;
use hearth_engine::viz::groups::{mean_std, seed_groups};

/// Adds the next-token count models of a run's data to a chart's lines; the same figure
/// (runs on the same data) is drawn once, different data's figures each.
pub(super) fn add_references(lines: &mut Vec<RefLine>, references: &[Reference]) {
    for line in RefLine::of(references, "val_loss", None) {
        let same = |l: &RefLine| l.name == line.name && (l.value - line.value).abs() < 1e-9;
        if !lines.iter().any(same) {
            lines.push(line);
        }
    }
}

/// Validation and training curves of the groups, one chart per measured quantity.
pub(super) fn sort_into_charts<'a>(
    groups: &[Vec<usize>],
    aggregates: &'a [GroupAggregate],
    runs: &'a [RunView],
    axis: XAxis,
) -> (Vec<Chart<'a>>, Vec<Chart<'a>>) {
    let mut val_charts: Vec<Chart<'a>> = Vec::new();
    let mut train_charts: Vec<Chart<'a>> = Vec::new();
    for group in groups.iter().filter(|g| g.len() == 1) {
        let run = &runs[group[0]];
        // A run that has measured no loss (an imported model) has nothing to draw here.
        if run.curves.train.is_empty() && !run.curves.val.iter().any(|v| v.is_finite()) {
            continue;
        }
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

/// The ticked runs as the charts draw them: alone, or grouped by settings that differ only
/// in their seed (mean and spread), on the chosen x axis.
pub(super) fn compute_groups(
    runs: &[RunView],
    indices: &[usize],
    axis: XAxis,
    grouped: bool,
) -> Groups {
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
pub(super) fn legend_name(runs: &[RunView], i: usize) -> String {
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
