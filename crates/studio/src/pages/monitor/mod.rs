//! Monitor page: one run's live loss curves, progress, controls, attention and samples, and
//! what a user does with a run (rename, tag, notes, clone, resume, export, delete).

mod charts;
mod dynamics;
mod header;

use crate::action::{Action, AppContext};
use crate::run_view::RunView;
use crate::views::{contrastive_view_ui, embedding_map_ui, layer_head_ui, masked_view_ui};
use crate::widgets::{attention_heatmap, plot_controls_ui};
use charts::{health_ui, loss_chart_ui, metrics_plot_ui, terms_ui};
use header::{details_ui, header_ui};
use std::hash::{Hash, Hasher};

/// The monitor page: what it shows of the selected run besides the run itself.
#[derive(Default)]
pub struct MonitorPage {
    attention_layer: usize,
    attention_head: usize,
    /// The heatmap texture and the (run, step, layer, head) key it shows.
    attention_texture: Option<(u64, egui::TextureHandle)>,
    /// The contrastive batch heatmap's texture.
    contrastive_texture: Option<(u64, egui::TextureHandle)>,
    /// Which embedding map is shown (`None`: the newest).
    embedding_map_index: Option<usize>,
    /// The objective metric the metrics chart shows (`None`: the run's first).
    metric_choice: Option<String>,
    /// Which tab shows.
    tab: MonitorTab,
    /// The Dynamics tab's state.
    dynamics: dynamics::DynamicsTab,
}

/// The Monitor's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MonitorTab {
    /// Loss, metrics, sample, attention and the objective's views.
    #[default]
    Training,
    /// Update ratios, gradients, clipping, histograms, per-token loss and the logit lens.
    Dynamics,
}

impl MonitorPage {
    /// Draws the selected run; returns what the user asked for.
    #[must_use = "the app applies what the page asks for"]
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some((index, run)) = ctx
            .selected
            .and_then(|i| ctx.runs.get(i).map(|run| (i, run)))
        else {
            ui.heading("Monitor");
            ui.label("Start a run on the Run setup page, or pick one in the list on the left.");
            return actions;
        };
        header_ui(ui, index, run, &mut actions);
        details_ui(ui, index, run, &mut actions);
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tab, MonitorTab::Training, "Training");
            ui.selectable_value(&mut self.tab, MonitorTab::Dynamics, "Dynamics")
                .on_hover_text("What the optimizer does to each weight matrix, gradients, clipping, histograms, per-token loss and the logit lens");
        });
        if self.tab == MonitorTab::Dynamics {
            ui.separator();
            self.dynamics.ui(ui, run);
            return actions;
        }
        let plot = ctx.plot();
        if let Some(changed) = plot_controls_ui(ui, plot) {
            actions.push(Action::SetPlot(changed));
        }
        ui.separator();
        let available = ui.available_size();
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(available.x * 0.55);
                // The chart's title takes a line of the height the chart had alone.
                let height = (available.y * 0.62 - 24.0).max(200.0);
                let rect = loss_chart_ui(ui, run, index, ctx, height);
                if ui.small_button("Export chart PNG…").clicked() {
                    actions.push(Action::ExportChartPng {
                        rect,
                        file_name: format!("{}-loss.png", run.name()),
                    });
                }
                metrics_plot_ui(
                    ui,
                    run,
                    plot.x_axis,
                    available.y * 0.25,
                    plot.references,
                    &mut self.metric_choice,
                );
                sample_ui(ui, run);
            });
            ui.separator();
            ui.vertical(|ui| {
                egui::ScrollArea::vertical()
                    .id_salt("monitor_right")
                    .show(ui, |ui| {
                        terms_ui(ui, run, index, &plot);
                        health_ui(ui, run, plot.x_axis);
                        self.views_ui(ui, run, available.y);
                    });
            });
        });
        actions
    }

    /// The objective's views and the attention map on the probe text.
    fn views_ui(&mut self, ui: &mut egui::Ui, run: &RunView, height: f32) {
        if !run.embedding_maps.is_empty() {
            embedding_map_ui(
                ui,
                &run.embedding_maps,
                &mut self.embedding_map_index,
                height * 0.4,
                run.spec.objective.charts().map_groups,
            );
            ui.separator();
        }
        if let Some(view) = &run.contrastive_view {
            contrastive_view_ui(ui, view, &mut self.contrastive_texture);
            ui.separator();
        }
        if let Some(view) = &run.masked_view {
            masked_view_ui(ui, view);
            ui.separator();
        }
        ui.label(egui::RichText::new("Attention on the probe text").strong());
        // Finished runs show the last stored snapshot (read by the app before drawing); live
        // runs the worker's.
        let snapshot = run
            .live
            .as_ref()
            .and_then(|l| l.attention.as_ref())
            .or_else(|| run.stored_attention_snapshot());
        let Some(snap) = snapshot else {
            ui.label(egui::RichText::new("Attention maps appear while the run trains.").weak());
            return;
        };
        let maps = &snap.maps;
        self.attention_layer = self.attention_layer.min(maps.n_layer.saturating_sub(1));
        self.attention_head = self.attention_head.min(maps.n_head.saturating_sub(1));
        layer_head_ui(
            ui,
            &mut self.attention_layer,
            &mut self.attention_head,
            maps.n_layer,
            maps.n_head,
        );
        ui.label(egui::RichText::new(format!("step {}", snap.step)).weak());
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            &run.dir,
            snap.step,
            self.attention_layer,
            self.attention_head,
        )
            .hash(&mut hasher);
        attention_heatmap(
            ui,
            maps,
            &snap.tokens,
            self.attention_layer,
            self.attention_head,
            &mut self.attention_texture,
            hasher.finish(),
            f32::INFINITY,
        );
        ui.label(egui::RichText::new("rows: query position · columns: key position").weak());
    }
}

/// The latest generated sample, or why there is none.
fn sample_ui(ui: &mut egui::Ui, run: &RunView) {
    let sample = run.history.as_ref().and_then(|h| h.samples.last());
    ui.label(egui::RichText::new("Latest sample").strong());
    egui::ScrollArea::vertical()
        .id_salt("sample")
        .max_height(ui.available_height())
        .show(ui, |ui| match sample {
            Some((step, text)) => {
                ui.label(egui::RichText::new(format!("step {step}")).weak());
                ui.add(egui::Label::new(egui::RichText::new(text).monospace()).wrap());
            }
            None => {
                let kind = &run.spec.objective.kind;
                let text = if kind.objective().is_some_and(|o| o.generates_text()) {
                    "A sample appears at each evaluation."
                } else {
                    "This objective trains a bidirectional model, which does not generate text."
                };
                ui.label(egui::RichText::new(text).weak());
            }
        });
}
