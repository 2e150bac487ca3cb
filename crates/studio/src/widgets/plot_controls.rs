//! The smoothing, axis and scale controls shared by the Monitor and Compare.

use crate::services::prefs::{PlotSettings, XAxis};
use crate::services::shortcuts::{self, Command};
use hearth_engine::viz::smoothing::SmoothingKind;

/// Smoothing, axis and scale controls shared by the monitor and compare pages. Returns the
/// settings when the user changed them.
pub fn plot_controls_ui(ui: &mut egui::Ui, settings: PlotSettings) -> Option<PlotSettings> {
    let mut s = settings;
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing");
        let smoothing_hint = format!(
            "{}\n{}",
            shortcuts::hint(ui.ctx(), Command::MoreSmoothing),
            shortcuts::hint(ui.ctx(), Command::LessSmoothing)
        );
        ui.add(egui::Slider::new(&mut s.smoothing, 0.0..=0.99).fixed_decimals(2))
            .labelled_by(label.id)
            .on_hover_text(smoothing_hint);
        let kind_label = |kind: SmoothingKind| match kind {
            SmoothingKind::DebiasedEma => "debiased EMA",
            SmoothingKind::TimeWeightedEma => "time-weighted EMA",
        };
        egui::ComboBox::from_id_salt(ui.scope_id().with("smoothing_kind"))
            .selected_text(kind_label(s.smoothing_kind))
            .show_ui(ui, |ui| {
                for kind in [SmoothingKind::DebiasedEma, SmoothingKind::TimeWeightedEma] {
                    ui.selectable_value(&mut s.smoothing_kind, kind, kind_label(kind));
                }
            })
            .response
            .labelled_by(label.id);
        ui.checkbox(&mut s.smooth_in_log_space, "smooth in log space");
        ui.separator();
        ui.checkbox(&mut s.log_y, "log y")
            .on_hover_text(shortcuts::hint(ui.ctx(), Command::ToggleLogY));
        ui.checkbox(&mut s.references, "reference lines")
            .on_hover_text(
                "Simple models' figures on the run's own data: count models for losses and \
             accuracies, word TF-IDF and chance for retrieval; each is labelled on its line",
            );
        let x_label = ui
            .label("x axis")
            .on_hover_text(shortcuts::hint(ui.ctx(), Command::CycleXAxis));
        egui::ComboBox::from_id_salt(ui.scope_id().with("x_axis"))
            .selected_text(s.x_axis.label())
            .show_ui(ui, |ui| {
                for axis in XAxis::ALL {
                    ui.selectable_value(&mut s.x_axis, axis, axis.label());
                }
            })
            .response
            .labelled_by(x_label.id)
            .on_hover_text(shortcuts::hint(ui.ctx(), Command::CycleXAxis));
    });
    (s != settings).then_some(s)
}
