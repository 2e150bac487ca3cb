//! The run list: name, status, step and last loss, objective and backend, a mark on runs whose
//! embeddings collapsed; click to monitor, tick to compare.

use crate::action::{Action, AppContext};
use crate::quantities::step_loss_name;
use crate::run_view::RunView;
use crate::widgets::run_color;
use hearth_engine::project::RunCheck;

/// The side panel listing the project's runs.
#[derive(Debug, Default)]
pub struct RunsPanel;

impl RunsPanel {
    /// Draws the list; returns what the user asked for.
    #[must_use = "the app applies what the panel asks for"]
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        ui.horizontal(|ui| {
            ui.heading("Runs");
            if ui
                .small_button("Reload")
                .on_hover_text("Re-read the project's runs")
                .clicked()
            {
                actions.push(Action::ReloadRuns);
            }
        });
        queue_ui(ui, ctx, &mut actions);
        ui.label(egui::RichText::new("Click to monitor · tick to compare").weak());
        ui.separator();
        if ctx.runs.is_empty() && ctx.damaged.is_empty() {
            ui.label("No runs yet. Pick a dataset, then Run setup, then Start run.");
            return actions;
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            for i in list_order(ctx.runs.len()) {
                let run = &ctx.runs[i];
                ui.horizontal(|ui| {
                    row_ui(ui, i, run, ctx.selected == Some(i), &mut actions);
                });
            }
            for check in ctx.damaged {
                damaged_row_ui(ui, check, &mut actions);
            }
        });
        actions
    }
}

/// How many runs train at once, and how many wait.
fn queue_ui(ui: &mut egui::Ui, ctx: &AppContext<'_>, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let label = |limit: Option<usize>| match limit {
            None => "auto".to_string(),
            Some(n) => n.to_string(),
        };
        let current = ctx.queue.limit;
        let response = ui.label("Train at once");
        egui::ComboBox::from_id_salt("queue_limit")
            .selected_text(label(current))
            .width(60.0)
            .show_ui(ui, |ui| {
                for limit in std::iter::once(None).chain((1..=8).map(Some)) {
                    if ui
                        .selectable_label(current == limit, label(limit))
                        .clicked()
                        && current != limit
                    {
                        actions.push(Action::SetQueueLimit(limit));
                    }
                }
            })
            .response
            .labelled_by(response.id)
            .on_hover_text(
                "runs beyond this wait in the project's queue, in start order; \
                 auto: as many as the cores allow at the runs' thread counts",
            );
        let waiting = ctx.queue.waiting.len();
        if waiting > 0 {
            ui.label(egui::RichText::new(format!("{waiting} waiting")).weak());
        }
    });
}

/// A run folder that does not load: its name, which file is damaged and what still reads, and
/// a button that moves it to the trash.
fn damaged_row_ui(ui: &mut egui::Ui, check: &RunCheck, actions: &mut Vec<Action>) {
    ui.group(|ui| {
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new("damaged").color(ui.visuals().error_fg_color));
            ui.label(egui::RichText::new(&check.name).strong())
                .on_hover_text(check.dir.display().to_string());
        });
        ui.add(egui::Label::new(egui::RichText::new(check.summary()).small()).wrap());
        if ui
            .small_button("Move to trash")
            .on_hover_text(
                "Move this run folder to the project's .trash folder (Undo brings it back)",
            )
            .clicked()
        {
            actions.push(Action::TrashDamaged(check.dir.clone()));
        }
    });
}

/// One run's row: the compare tick, its colour, and its name and state.
fn row_ui(
    ui: &mut egui::Ui,
    index: usize,
    run: &RunView,
    selected: bool,
    actions: &mut Vec<Action>,
) {
    let mut checked = run.checked;
    let name = format!("compare {}", run.spec.name);
    let was = run.checked;
    let response = ui
        .checkbox(&mut checked, "")
        .on_hover_text("Include in the comparison");
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::CheckBox, true, was, &name));
    if response.changed() {
        actions.push(Action::SetCompared {
            run: index,
            compared: checked,
        });
    }
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter()
        .circle_filled(rect.center(), 4.5, run_color(index));
    let step = run
        .last_step
        .map(|(s, l)| {
            let name = step_loss_name(&run.spec.objective, s, run.spec.train.steps);
            format!("step {s} · {name} {l:.3}")
        })
        .unwrap_or_else(|| {
            if run.annotations.tags.iter().any(|t| t == "imported") {
                "imported, not trained here".to_string()
            } else {
                "no steps yet".to_string()
            }
        });
    let style = ui.style();
    let mut text = egui::text::LayoutJob::default();
    egui::RichText::new(format!(
        "{}\n{} · {}\n",
        run.name(),
        run.status.label(),
        step
    ))
    .append_to(
        &mut text,
        style,
        egui::FontSelection::Default,
        egui::Align::Center,
    );
    // Two runs of one name (the data file's stem) differ by what and where they train.
    egui::RichText::new(run.recipe_label()).weak().append_to(
        &mut text,
        style,
        egui::FontSelection::Default,
        egui::Align::Center,
    );
    if ui
        .selectable_label(selected, text)
        .on_hover_text(run.dir.display().to_string())
        .clicked()
    {
        actions.push(Action::Monitor(index));
    }
    if let Some(sentence) = collapse_of(run) {
        ui.label(
            egui::RichText::new("collapsed")
                .small()
                .color(ui.visuals().error_fg_color),
        )
        .on_hover_text(sentence);
    }
}

/// The order the run list shows `n` runs in, as indices into the app's runs (oldest first):
/// the newest run first.
pub fn list_order(n: usize) -> impl Iterator<Item = usize> {
    (0..n).rev()
}

/// The collapse sentence of a run whose latest evaluation (from its history, or as the project
/// listed it before the history is loaded) shows
/// collapsed embeddings.
pub fn collapse_of(run: &RunView) -> Option<String> {
    match run.history.as_ref().and_then(|h| h.evals.last()) {
        Some(eval) => crate::quantities::collapse_in(&run.spec, eval.step, &eval.extra),
        // Not shown yet: the latest evaluation as the project listed it.
        None => {
            let (step, metrics) = run.last_eval.as_ref()?;
            crate::quantities::collapse_in(&run.spec, *step, metrics)
        }
    }
}
