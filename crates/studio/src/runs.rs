//! The run list: status, step and last loss; click to monitor, tick to compare.

use super::app::{StudioApp, Tab};
use super::widgets::run_color;

pub fn runs_ui(app: &mut StudioApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.heading("Runs");
        if ui
            .small_button("Reload")
            .on_hover_text("Re-read the project's runs")
            .clicked()
        {
            app.reload_runs();
        }
    });
    ui.label(egui::RichText::new("Click to monitor · tick to compare").weak());
    ui.separator();
    if app.runs.is_empty() {
        ui.label("No runs yet. Pick a dataset, then Run setup, then Start run.");
        return;
    }
    let mut clicked = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        for (i, run) in app.runs.iter_mut().enumerate().rev() {
            ui.horizontal(|ui| {
                let checked = run.checked;
                let name = format!("compare {}", run.spec.name);
                ui.checkbox(&mut run.checked, "")
                    .on_hover_text("Include in the comparison")
                    .widget_info(|| {
                        egui::WidgetInfo::selected(egui::Role::CheckBox, true, checked, &name)
                    });
                let (rect, _) =
                    ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                ui.painter().circle_filled(rect.center(), 4.5, run_color(i));
                let step = run
                    .last_step
                    .map(|(s, l)| format!("step {s} · loss {l:.3}"))
                    .unwrap_or_else(|| "no steps yet".to_string());
                let text = egui::RichText::new(format!(
                    "{}\n{} · {}",
                    run.name(),
                    run.status.label(),
                    step
                ));
                let selected = app.selected == Some(i);
                if ui
                    .selectable_label(selected, text)
                    .on_hover_text(run.dir.display().to_string())
                    .clicked()
                {
                    clicked = Some(i);
                }
            });
        }
    });
    if let Some(i) = clicked {
        app.selected = Some(i);
        app.prefs.tab = Tab::Monitor;
    }
}
