//! The Compare page's training dynamics: the ticked runs' median update ratio on one chart, and
//! their layer-by-time update-ratio heatmaps side by side on one colour scale.

use crate::run_view::RunView;
use crate::views::dynamics::{DynamicsData, label_width, median_ratio_points, ratio_heatmap_ui};
use crate::widgets::run_color;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often live runs' dynamics are read again.
const REFRESH: Duration = Duration::from_secs(3);
/// Heatmaps side by side at most (the first ticked runs).
const MAX_SIDE_BY_SIDE: usize = 4;

/// The runs' dynamics as last read.
#[derive(Default)]
pub(super) struct DynamicsCompare {
    read: Vec<(PathBuf, Instant, Result<DynamicsData, String>)>,
}

impl DynamicsCompare {
    /// Reads `run`'s dynamics where not read yet (or stale, for a live run); its place in
    /// `read`.
    fn refresh(&mut self, run: &RunView) -> usize {
        let at = self.read.iter().position(|(dir, ..)| *dir == run.dir);
        let stale = at.is_none_or(|i| run.is_live() && self.read[i].1.elapsed() >= REFRESH);
        let fresh = || (run.dir.clone(), Instant::now(), DynamicsData::load(run));
        match (at, stale) {
            (Some(i), false) => i,
            (Some(i), true) => {
                self.read[i] = fresh();
                i
            }
            (None, _) => {
                self.read.push(fresh());
                self.read.len() - 1
            }
        }
    }

    /// Draws the section for the runs `indices` of `runs`, named by `name`.
    pub(super) fn ui(
        &mut self,
        ui: &mut egui::Ui,
        runs: &[RunView],
        indices: &[usize],
        name: &dyn Fn(usize) -> String,
    ) {
        if indices.iter().any(|&i| runs[i].is_live()) {
            ui.ctx().request_repaint_after(REFRESH);
        }
        let at: Vec<usize> = indices.iter().map(|&i| self.refresh(&runs[i])).collect();
        let datas: Vec<(usize, &Result<DynamicsData, String>)> = indices
            .iter()
            .zip(at)
            .map(|(&i, at)| (i, &self.read[at].2))
            .collect();
        egui_plot::Plot::new("compare_update_ratio")
            .height(200.0)
            .x_axis_label("step")
            .y_axis_label("log10 median update ratio")
            .legend(egui_plot::Legend::default())
            .show(ui, |plot_ui| {
                plot_ui.hline(
                    egui_plot::HLine::new("healthy 10^-3", -3.0)
                        .color(egui::Color32::from_gray(130))
                        .style(egui_plot::LineStyle::dashed_loose()),
                );
                for (i, data) in &datas {
                    if let Ok(data) = data {
                        plot_ui.line(
                            egui_plot::Line::new(
                                name(*i),
                                egui_plot::PlotPoints::from(median_ratio_points(data).to_vec()),
                            )
                            .color(run_color(*i)),
                        );
                    }
                }
            });
        let shown: Vec<&(usize, &Result<DynamicsData, String>)> =
            datas.iter().take(MAX_SIDE_BY_SIDE).collect();
        let loaded: Vec<&DynamicsData> =
            shown.iter().filter_map(|(_, d)| d.as_ref().ok()).collect();
        let labels = label_width(&loaded);
        ui.columns(shown.len().max(1), |cols| {
            for (col, (i, data)) in cols.iter_mut().zip(&shown) {
                col.label(egui::RichText::new(name(*i)).strong().color(run_color(*i)));
                match data {
                    Ok(data) => {
                        // Each column's labels only where the matrices differ from the first's.
                        ratio_heatmap_ui(
                            col,
                            data,
                            260.0,
                            labels.min(col.available_width() * 0.45),
                        );
                        for finding in data.findings().iter().take(4) {
                            col.label(egui::RichText::new(finding.text.as_str()).small());
                        }
                    }
                    Err(err) => {
                        col.colored_label(col.visuals().error_fg_color, err);
                    }
                }
            }
        });
        if datas.len() > MAX_SIDE_BY_SIDE {
            ui.label(
                egui::RichText::new(format!(
                    "Heatmaps of the first {MAX_SIDE_BY_SIDE} runs; the chart above has all {}.",
                    datas.len()
                ))
                .weak(),
            );
        }
    }
}
