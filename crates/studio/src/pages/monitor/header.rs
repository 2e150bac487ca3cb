//! The Monitor's header: the run's name, status and progress with its controls, the latest
//! evaluation, failures and warnings; and the run's details and actions.

use crate::action::Action;
use crate::quantities::{collapse_in, step_loss_name};
use crate::run_view::RunView;
use crate::services::shortcuts::{self, Command};
use hearth_engine::events::RunControl;
use hearth_engine::project::RunStatus;

fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn status_color(status: &RunStatus, ui: &egui::Ui) -> egui::Color32 {
    match status {
        RunStatus::Running => egui::Color32::from_rgb(0x59, 0xc1, 0x5b),
        RunStatus::Paused => ui.visuals().warn_fg_color,
        RunStatus::Failed { .. } | RunStatus::Interrupted => ui.visuals().error_fg_color,
        RunStatus::Queued => ui.visuals().weak_text_color(),
        _ => ui.visuals().text_color(),
    }
}

/// Name, status and size; progress with pause, resume and stop; the latest metrics, failure
/// and warnings.
pub(super) fn header_ui(ui: &mut egui::Ui, index: usize, run: &RunView, actions: &mut Vec<Action>) {
    let last = run.history.as_ref().and_then(|h| h.steps.last()).copied();
    let total = run
        .live
        .as_ref()
        .map(|l| l.total_steps)
        .unwrap_or(run.spec.train.steps);
    ui.horizontal(|ui| {
        ui.heading(run.name());
        ui.label(
            egui::RichText::new(run.status.label())
                .strong()
                .color(status_color(&run.status, ui)),
        );
        for tag in &run.annotations.tags {
            ui.label(egui::RichText::new(format!("#{tag}")).weak());
        }
        if let Some(live) = &run.live
            && live.n_params > 0
        {
            ui.label(format!(
                "{:.2}M parameters · {}",
                live.n_params as f64 / 1e6,
                live.device
            ));
        }
        let t = &run.spec.train;
        if !t.devices.trim().is_empty() || t.grad_accum > 1 || t.world_size > 1 {
            let mut scale = Vec::new();
            if t.world_size > 1 {
                let per_rank = last
                    .map(|m| {
                        format!(
                            " · {:.0} tokens/s per rank",
                            m.tokens_per_s / t.world_size as f64
                        )
                    })
                    .unwrap_or_default();
                scale.push(format!("{} MPI ranks{per_rank}", t.world_size));
            }
            if !t.devices.trim().is_empty() {
                scale.push(format!("replicas {}", t.devices.trim()));
            }
            if t.grad_accum > 1 {
                scale.push(format!(
                    "{} micro-batches of {} per step",
                    t.grad_accum, t.batch_size
                ));
            }
            ui.label(egui::RichText::new(scale.join(" · ")).weak());
        }
    });
    let step = last.map(|m| m.step).unwrap_or(0);
    let fraction = step as f32 / total.max(1) as f32;
    let imported = last.is_none() && run.annotations.tags.iter().any(|t| t == "imported");
    let mut text = if imported {
        "imported: not trained here (Fine-tune from here starts a run from it)".to_string()
    } else {
        format!("step {step} / {total}")
    };
    if let Some(m) = last {
        text.push_str(&format!(
            " · {:.0} tokens/s · {} {:.4}",
            m.tokens_per_s,
            step_loss_name(&run.spec.objective, step, total),
            m.train_loss
        ));
        if run.is_live() && step > 0 && step < total {
            let eta = m.elapsed_s / step as f64 * (total - step) as f64;
            text.push_str(&format!(" · ETA {}", format_secs(eta)));
        } else {
            text.push_str(&format!(" · {}", format_secs(m.elapsed_s)));
        }
    }
    ui.horizontal(|ui| {
        ui.add(
            egui::ProgressBar::new(fraction)
                .text(text)
                .desired_width(ui.available_width() - 160.0),
        );
        if run.is_live() {
            let mut control = None;
            let pause_hint = shortcuts::hint(ui.ctx(), Command::PauseResume);
            if run.status == RunStatus::Paused {
                if ui.button("Resume").on_hover_text(pause_hint).clicked() {
                    control = Some(RunControl::Resume);
                }
            } else if ui.button("Pause").on_hover_text(pause_hint).clicked() {
                control = Some(RunControl::Pause);
            }
            if ui
                .button("Stop")
                .on_hover_text(shortcuts::hint(ui.ctx(), Command::StopRun))
                .clicked()
            {
                control = Some(RunControl::Stop);
            }
            if let Some(control) = control {
                actions.push(Action::Control {
                    run: index,
                    control,
                });
            }
        }
    });
    if !imported {
        ui.label(egui::RichText::new(epochs_line(run, total, last.as_ref())).weak());
    }
    if let Some(eval) = run.history.as_ref().and_then(|h| h.evals.last()) {
        let mut parts: Vec<String> = Vec::new();
        if let Some(name) = run.spec.objective.charts().val_loss_metric {
            // The validation loss is one part of what the run trains; say so beside its
            // other parts.
            parts.push(format!("{name} {:.4}", eval.val_loss));
        }
        if !eval.extra.is_empty() {
            parts.extend(eval.extra.iter().map(|(k, v)| format!("{k} {v:.4}")));
            ui.label(format!("step {}: {}", eval.step, parts.join(" · ")));
        }
    }
    if let Some(eval) = run.history.as_ref().and_then(|h| h.evals.last())
        && let Some(sentence) = collapse_in(&run.spec, eval.step, &eval.extra)
    {
        let text = format!("Step {}: {sentence}", eval.step);
        ui.add(
            egui::Label::new(
                egui::RichText::new(text)
                    .strong()
                    .color(ui.visuals().error_fg_color),
            )
            .wrap(),
        );
    }
    if run.status == RunStatus::Interrupted {
        ui.colored_label(
            ui.visuals().error_fg_color,
            hearth_engine::project::follow::INTERRUPTED,
        );
    }
    if run.status == RunStatus::Queued && !run.is_live() {
        ui.horizontal_wrapped(|ui| {
            ui.label(
                "Waiting in the project's queue for a free slot (Train at once, in the run list).",
            );
            queue_controls_ui(ui, index, actions);
        });
    }
    if let RunStatus::Failed { reason } = &run.status {
        ui.colored_label(ui.visuals().error_fg_color, format!("Failed: {reason}"));
    }
    if let Some(err) = &run.error {
        ui.colored_label(ui.visuals().error_fg_color, err);
    }
    if let Some(history) = &run.history {
        for (step, level, message) in history.messages.iter().rev().take(2) {
            if level == "warning" {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("step {step}: {message}"),
                );
            }
        }
    }
}

/// How many epochs the run's steps cover, and where it stands:
/// `300 steps = 2.4 epochs of 1.2M tokens · now at epoch 1.20`.
pub fn epochs_line(
    run: &RunView,
    total: usize,
    last: Option<&hearth_engine::events::StepMetrics>,
) -> String {
    let t = &run.spec.train;
    let tokens_per_step = match last {
        Some(m) if m.step > 0 => m.tokens_seen as f64 / m.step as f64,
        _ => (t.batch_size * t.grad_accum.max(1) * run.spec.model.context) as f64,
    };
    let epoch = run.curves.epoch_tokens().map(|e| e as usize);
    let mut line = hearth_engine::data::corpus::describe_epochs(total, tokens_per_step, epoch);
    if let (Some(e), Some(m)) = (run.curves.epoch_tokens(), last) {
        line.push_str(&format!(" · now at epoch {:.2}", m.tokens_seen as f64 / e));
    }
    line
}

/// Rename, tags, notes and the run's actions.
pub(super) fn details_ui(
    ui: &mut egui::Ui,
    index: usize,
    run: &RunView,
    actions: &mut Vec<Action>,
) {
    let live = run.is_live();
    let resumable = !live
        && matches!(
            run.status,
            RunStatus::Stopped | RunStatus::Failed { .. } | RunStatus::Interrupted
        );
    egui::CollapsingHeader::new("Run details")
        .id_salt("run_details")
        .show(ui, |ui| {
            let mut annotations = run.annotations.clone();
            let mut save = false;
            egui::Grid::new("run_details_grid")
                .num_columns(2)
                .show(ui, |ui| {
                    let label = ui.label("Name");
                    let mut name = run.name().to_string();
                    let r = ui.text_edit_singleline(&mut name).labelled_by(label.id);
                    if r.changed() {
                        annotations.display_name = Some(name);
                    }
                    save |= r.lost_focus();
                    ui.end_row();
                    let label = ui.label("Tags");
                    let mut tags = annotations.tags.join(", ");
                    let r = ui
                        .add(egui::TextEdit::singleline(&mut tags).hint_text("comma, separated"))
                        .labelled_by(label.id);
                    if r.changed() {
                        annotations.tags = tags
                            .split(',')
                            .map(|t| t.trim().to_string())
                            .filter(|t| !t.is_empty())
                            .collect();
                    }
                    save |= r.lost_focus();
                    ui.end_row();
                    let label = ui.label("Notes");
                    let r = ui
                        .add(egui::TextEdit::multiline(&mut annotations.notes).desired_rows(2))
                        .labelled_by(label.id);
                    save |= r.lost_focus();
                    ui.end_row();
                    ui.label("Folder");
                    ui.label(egui::RichText::new(run.dir.display().to_string()).weak());
                    ui.end_row();
                });
            if save || annotations != run.annotations {
                actions.push(Action::Annotate {
                    run: index,
                    annotations,
                    save,
                });
            }
            ui.horizontal(|ui| {
                if ui
                    .button("Clone settings")
                    .on_hover_text("Start a variant on the setup page")
                    .clicked()
                {
                    actions.push(Action::CloneSettings(index));
                }
                if !live
                    && ui
                        .button("Fine-tune from here")
                        .on_hover_text("A new run starting from this run's newest checkpoint")
                        .clicked()
                {
                    actions.push(Action::FineTune(index));
                }
                if hearth_engine::export::Layout::of(&run.spec).decoder
                    && ui
                        .button("Try it")
                        .on_hover_text("Ask the newest checkpoint a prompt on the Try it page")
                        .clicked()
                {
                    actions.push(Action::TryIt(index));
                }
                if resumable && ui.button("Resume from checkpoint").clicked() {
                    actions.push(Action::Resume(index));
                }
                if ui.button("Export metrics CSV…").clicked() {
                    actions.push(Action::ExportMetricsCsv(index));
                }
                if run.spec.objective.uses_embeddings()
                    && ui
                        .add_enabled(!live, egui::Button::new("Score on STS file…"))
                        .on_hover_text(
                            "Embed both sentences of every scored pair and record Spearman and \
                             Pearson of the cosine against the gold score on the metrics chart",
                        )
                        .clicked()
                {
                    actions.push(Action::EvaluateSts(index));
                }
                let formats = hearth_engine::export::ExportFormat::offered(&run.spec);
                ui.add_enabled_ui(!live, |ui| {
                    ui.menu_button("Export", |ui| {
                        for format in formats {
                            let hover = match format {
                                hearth_engine::export::ExportFormat::Hf => {
                                    "The newest checkpoint as a folder transformers loads \
                                     (LoRA adapters merged into the weights)"
                                }
                                hearth_engine::export::ExportFormat::Peft => {
                                    "The LoRA adapters alone, as a folder \
                                     peft.PeftModel.from_pretrained loads on the base model"
                                }
                                hearth_engine::export::ExportFormat::Gguf { .. } => {
                                    "One GGUF file for llama.cpp and its tools \
                                     (adapters merged, matrices in F16)"
                                }
                            };
                            if ui
                                .button(format!("{}…", format.label()))
                                .on_hover_text(hover)
                                .clicked()
                            {
                                actions.push(Action::ExportRun(index, format));
                                ui.close();
                            }
                        }
                    })
                    .response
                    .on_disabled_hover_text("Export when the run is no longer training");
                });
                if ui
                    .add_enabled(!live, egui::Button::new("Delete"))
                    .on_hover_text("Moves the run to the project's trash; Undo brings it back")
                    .clicked()
                {
                    actions.push(Action::Delete(index));
                }
            });
        });
}

/// Start now, move and cancel, for a run waiting in the project's queue.
fn queue_controls_ui(ui: &mut egui::Ui, index: usize, actions: &mut Vec<Action>) {
    use crate::action::QueueChange;
    let mut change = None;
    if ui
        .button("Start now")
        .on_hover_text("start it at once, beside the runs training, whatever the limit")
        .clicked()
    {
        change = Some(QueueChange::StartNow);
    }
    if ui
        .button("Earlier")
        .on_hover_text("one place earlier in the queue")
        .clicked()
    {
        change = Some(QueueChange::Shift(-1));
    }
    if ui
        .button("Later")
        .on_hover_text("one place later in the queue")
        .clicked()
    {
        change = Some(QueueChange::Shift(1));
    }
    if ui
        .button("Cancel")
        .on_hover_text("take it out of the queue")
        .clicked()
    {
        change = Some(QueueChange::Cancel);
    }
    if let Some(change) = change {
        actions.push(Action::Queue { run: index, change });
    }
}
