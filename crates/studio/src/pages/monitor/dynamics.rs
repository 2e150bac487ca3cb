//! The Monitor's Dynamics tab: what the optimizer does to each matrix, the gradients, clipping,
//! histograms, the per-token loss and the logit lens of one run, read from its store while it
//! trains.

use crate::run_view::RunView;
use crate::views::dynamics::{
    DynamicsData, block_lines_ui, clip_rate_ui, findings_ui, grad_norm_lines_ui, histograms_ui,
    label_width, logit_lens_ui, ratio_heatmap_ui, token_loss_ui,
};
use hearth_engine::dynamics::HistogramKind;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often a live run's dynamics are read again.
const REFRESH: Duration = Duration::from_secs(2);

/// The tab's state: the run's dynamics as last read, and the user's picks.
pub struct DynamicsTab {
    cache: Option<Cached>,
    /// The token the logit lens reads (`None`: the last).
    lens_token: Option<usize>,
    hist_layer: String,
    hist_kind: HistogramKind,
}

impl Default for DynamicsTab {
    fn default() -> Self {
        Self {
            cache: None,
            lens_token: None,
            hist_layer: String::new(),
            hist_kind: HistogramKind::Grad,
        }
    }
}

struct Cached {
    dir: PathBuf,
    step: Option<usize>,
    read_at: Instant,
    data: Result<DynamicsData, String>,
}

/// The newest step the studio knows of a run.
fn newest_step(run: &RunView) -> Option<usize> {
    run.history
        .as_ref()
        .and_then(|h| h.steps.last().map(|s| s.step))
        .or(run.last_step.map(|(step, _)| step))
}

impl DynamicsTab {
    /// Reads the run's dynamics when another run is shown, or when a live run has stepped
    /// since the last read (at most every [`REFRESH`]).
    fn refresh(&mut self, run: &RunView) {
        let step = newest_step(run);
        let stale = match &self.cache {
            None => true,
            Some(c) if c.dir != run.dir => {
                self.lens_token = None;
                true
            }
            Some(c) => c.step != step && c.read_at.elapsed() >= REFRESH,
        };
        if stale {
            self.cache = Some(Cached {
                dir: run.dir.clone(),
                step,
                read_at: Instant::now(),
                data: DynamicsData::load(run),
            });
        }
    }

    /// Draws the tab for `run`.
    pub fn ui(&mut self, ui: &mut egui::Ui, run: &RunView) {
        self.refresh(run);
        if run.is_live() {
            // Look again when the next read is due, even without other repaints.
            ui.ctx().request_repaint_after(REFRESH);
        }
        let Some(cached) = &self.cache else {
            return;
        };
        let data = match &cached.data {
            Ok(data) => data,
            Err(err) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("The run's dynamics cannot be read: {err}"),
                );
                return;
            }
        };
        if run.spec.train.dynamics_interval == 0 && data.records.is_empty() {
            ui.label(
                "This run records no dynamics (train.dynamics_interval is 0). Set it on Run setup for new runs.",
            );
            return;
        }
        let width = ui.available_width();
        egui::ScrollArea::vertical()
            .id_salt("dynamics_tab")
            .show(ui, |ui| {
                findings_ui(ui, data);
                ui.separator();
                ui.label(egui::RichText::new("Update ratio per matrix and step").strong());
                ui.label(
                    egui::RichText::new(
                        "|change the step made| / |weights|; about 10^-3 is healthy (the band on the scale). Hover a cell for its figures.",
                    )
                    .weak(),
                );
                ratio_heatmap_ui(ui, data, 300.0, label_width(&[data]));
                ui.separator();
                ui.columns(2, |cols| {
                    cols[0].label(egui::RichText::new("Gradient norm per layer").strong());
                    grad_norm_lines_ui(&mut cols[0], data, 200.0, "dyn_grad_norms");
                    cols[1].label(egui::RichText::new("Clip rate").strong());
                    clip_rate_ui(&mut cols[1], data, 180.0, "dyn_clip_rate");
                });
                ui.separator();
                ui.columns(2, |cols| {
                    cols[0].label(
                        egui::RichText::new("Residual stream RMS per block (probe text)").strong(),
                    );
                    block_lines_ui(&mut cols[0], data, false, 180.0);
                    cols[1].label(
                        egui::RichText::new("Attention entropy per block (probe text)").strong(),
                    );
                    block_lines_ui(&mut cols[1], data, true, 180.0);
                });
                ui.separator();
                ui.label(egui::RichText::new("Histograms over time").strong());
                histograms_ui(
                    ui,
                    data,
                    &mut self.hist_layer,
                    &mut self.hist_kind,
                    260.0,
                );
                ui.separator();
                ui.label(egui::RichText::new("Per-token loss on the probe text").strong());
                match &data.insight {
                    Some(insight) => {
                        ui.set_max_width(width);
                        token_loss_ui(ui, insight, &mut self.lens_token);
                        ui.separator();
                        ui.label(egui::RichText::new("Logit lens").strong());
                        logit_lens_ui(ui, insight, &mut self.lens_token);
                    }
                    None => {
                        let generates = run
                            .spec
                            .objective
                            .kind
                            .objective()
                            .is_some_and(|o| o.generates_text());
                        let text = if generates {
                            "The per-token loss and the logit lens appear at each evaluation."
                        } else {
                            "The per-token loss and the logit lens read next-token predictions, which this objective does not make."
                        };
                        ui.label(egui::RichText::new(text).weak());
                    }
                }
            });
    }
}
