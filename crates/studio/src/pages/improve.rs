//! Improve page: makes a finished run better from its own attempts on a task a program checks
//! (STaR, DPO or self-correction), with live charts of held-out accuracy per round, DPO's
//! reward accuracy and margin, and the sampled answers with the checker's verdicts.

use crate::action::{Action, AppContext};
use crate::widgets::{PlotOptions, Series, SeriesStyle, loss_plot};
use hearth_engine::improve::stage::ImproveHandle;
use hearth_engine::improve::{
    CheckedSample, ImproveEvent, ImproveSpec, ImproveSummary, Method, Phase, RoundResult, TaskKind,
    spawn_improve,
};
use hearth_engine::project::RunStatus;
use std::path::PathBuf;
use std::sync::Arc;

/// Which sampled answers the table lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SampleFilter {
    /// Every answer.
    #[default]
    All,
    /// Answers the checker passed.
    Passed,
    /// Answers the checker failed.
    Failed,
}

impl SampleFilter {
    const ALL: [SampleFilter; 3] = [
        SampleFilter::All,
        SampleFilter::Passed,
        SampleFilter::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            SampleFilter::All => "all",
            SampleFilter::Passed => "passed",
            SampleFilter::Failed => "failed",
        }
    }

    fn keeps(self, sample: &CheckedSample) -> bool {
        match self {
            SampleFilter::All => true,
            SampleFilter::Passed => sample.pass,
            SampleFilter::Failed => !sample.pass,
        }
    }
}

/// One stage started from this page: what it reported so far.
pub struct Stage {
    /// The run it improves.
    pub base: PathBuf,
    /// The new run folder.
    pub out: PathBuf,
    handle: Option<ImproveHandle>,
    /// Round, phase and units of the latest progress report.
    pub progress: Option<(usize, Phase, usize, usize)>,
    /// Every finished round (round 0: the base evaluated).
    pub rounds: Vec<RoundResult>,
    /// `(step, loss, reward accuracy, reward margin)` of every optimizer step.
    pub steps: Vec<(usize, f64, Option<f64>, Option<f64>)>,
    /// The latest round's checked samples and that round.
    pub samples: (usize, Vec<CheckedSample>),
    /// Recoverable problems the stage reported.
    pub warnings: Vec<String>,
    /// How it ended, once it has.
    pub outcome: Option<Result<ImproveSummary, String>>,
}

impl Stage {
    /// True while its thread works.
    pub fn is_running(&self) -> bool {
        self.outcome.is_none() && self.handle.is_some()
    }

    /// Takes in every event waiting; true when something changed.
    fn drain(&mut self) -> bool {
        let Some(handle) = &self.handle else {
            return false;
        };
        let mut changed = false;
        while let Ok(event) = handle.events.try_recv() {
            changed = true;
            match event {
                ImproveEvent::Started { out, .. } => self.out = out,
                ImproveEvent::Progress {
                    round,
                    phase,
                    done,
                    total,
                } => self.progress = Some((round, phase, done, total)),
                ImproveEvent::Samples { round, samples } => self.samples = (round, samples),
                ImproveEvent::Step {
                    step,
                    loss,
                    reward_accuracy,
                    reward_margin,
                    ..
                } => self
                    .steps
                    .push((step, loss, reward_accuracy, reward_margin)),
                ImproveEvent::Round(result) => self.rounds.push(result),
                ImproveEvent::Warning(message) => self.warnings.push(message),
                ImproveEvent::Finished(summary) => self.outcome = Some(Ok(summary)),
                ImproveEvent::Failed { reason } => self.outcome = Some(Err(reason)),
            }
        }
        // A thread that ended without a last word (it cannot, but say so if it does).
        if self.outcome.is_none() && handle.is_finished() && handle.events.try_recv().is_err() {
            self.outcome = Some(Err("the stage ended without a result".to_string()));
            changed = true;
        }
        changed
    }
}

/// The Improve page: the stage's settings, and the stage it started.
pub struct ImprovePage {
    /// The settings of the next stage.
    pub spec: ImproveSpec,
    /// The stage started last (running or ended).
    pub stage: Option<Stage>,
    /// Which answers the table lists.
    pub filter: SampleFilter,
    /// Why the last start did not happen.
    pub error: Option<String>,
}

impl Default for ImprovePage {
    fn default() -> Self {
        Self {
            spec: ImproveSpec {
                threads: 0,
                ..ImproveSpec::default()
            },
            stage: None,
            filter: SampleFilter::All,
            error: None,
        }
    }
}

/// Why a stage cannot start, in the words the page shows.
#[derive(Debug, thiserror::Error)]
pub enum StageStartError {
    /// The base run is still training or failed.
    #[error("{run} is {status}: a stage starts from a finished run")]
    Unfinished {
        /// The base run's name.
        run: String,
        /// Its status, in words.
        status: String,
    },
    /// The base run's objective does not generate text.
    #[error("{run} does not generate text ({objective} objective)")]
    NoText {
        /// The base run's name.
        run: String,
        /// Its objective.
        objective: String,
    },
    /// The stage's settings are refused, each problem in words.
    #[error("{}", .0.join("; "))]
    Settings(Vec<String>),
    /// The stage's thread could not start.
    #[error("cannot start the stage's thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Whether a run can be improved: finished or stopped, and generating text.
fn improvable(ctx: &AppContext<'_>, index: usize) -> Result<(), StageStartError> {
    let run = &ctx.runs[index];
    if !matches!(run.status, RunStatus::Finished | RunStatus::Stopped) {
        return Err(StageStartError::Unfinished {
            run: run.name().to_string(),
            status: run.status.label().to_string(),
        });
    }
    if !run
        .spec
        .objective
        .kind
        .objective()
        .is_some_and(|o| o.generates_text())
    {
        return Err(StageStartError::NoText {
            run: run.name().to_string(),
            objective: run.spec.objective.kind.to_string(),
        });
    }
    Ok(())
}

impl ImprovePage {
    /// Takes in the running stage's events; true when the page should be drawn again.
    pub fn poll(&mut self) -> bool {
        self.stage.as_mut().is_some_and(Stage::drain)
    }

    /// True while a stage runs.
    pub fn is_running(&self) -> bool {
        self.stage.as_ref().is_some_and(Stage::is_running)
    }

    /// Starts a stage on the run at `index`, writing a new run into the project.
    pub fn start(
        &mut self,
        ctx: &AppContext<'_>,
        index: usize,
        notify: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> Result<(), StageStartError> {
        improvable(ctx, index)?;
        let errors = self.spec.validate();
        if !errors.is_empty() {
            return Err(StageStartError::Settings(errors));
        }
        let base = ctx.runs[index].dir.clone();
        let name = ctx.project.unique_run_name(&format!(
            "{}-{}",
            ctx.runs[index].name(),
            self.spec.method.name()
        ));
        let out = ctx.project.new_run_dir(&name);
        let handle = spawn_improve(base.clone(), out.clone(), self.spec.clone(), notify)?;
        self.stage = Some(Stage {
            base,
            out,
            handle: Some(handle),
            progress: None,
            rounds: Vec::new(),
            steps: Vec::new(),
            samples: (0, Vec::new()),
            warnings: Vec::new(),
            outcome: None,
        });
        Ok(())
    }

    /// Draws the page; a start or a finished stage asks the app for what follows.
    #[must_use = "the app applies what the page asks for"]
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &AppContext<'_>,
        notify: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let was_running = self.is_running();
        if self.poll() && was_running && !self.is_running() {
            // The new run is in the project: list it.
            actions.push(Action::ReloadRuns);
        }
        ui.heading("Improve a run");
        ui.label(
            egui::RichText::new(
                "Sample answers to a task a program checks, keep what the checker says, and \
                 train a new run on it: STaR (Zelikman et al. 2022) fine-tunes on verified \
                 answers, DPO (Rafailov et al. 2023) prefers verified over failed answers \
                 against the frozen base, self-correction (Kumar et al. 2024) learns a second \
                 attempt after a check.",
            )
            .weak(),
        );
        let base = ctx.selected;
        match base {
            Some(i) => {
                ui.label(format!("Base run: {}", ctx.runs[i].name()));
            }
            None => {
                ui.label("Select a finished next-token run in the run list.");
            }
        }
        ui.add_space(6.0);
        let running = self.is_running();
        ui.add_enabled_ui(!running, |ui| settings_ui(ui, &mut self.spec));
        let problems = self.spec.validate();
        for p in &problems {
            ui.colored_label(ui.visuals().error_fg_color, p);
        }
        ui.horizontal(|ui| {
            let ready = base.map(|i| improvable(ctx, i));
            let can = problems.is_empty() && matches!(ready, Some(Ok(()))) && !running;
            let start = ui.add_enabled(
                can,
                egui::Button::new(egui::RichText::new("Start").strong()),
            );
            if start.clicked()
                && let Some(i) = base
            {
                self.error = self.start(ctx, i, notify).err().map(|e| e.to_string());
            }
            if let Some(Err(why)) = ready {
                ui.colored_label(ui.visuals().warn_fg_color, why.to_string());
            }
            if running
                && ui.button("Stop").clicked()
                && let Some(handle) = self.stage.as_ref().and_then(|s| s.handle.as_ref())
            {
                handle
                    .cancel
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        if let Some(stage) = &self.stage {
            ui.separator();
            stage_ui(ui, stage, &mut self.filter, self.spec.method);
        }
        actions
    }
}

/// Task, method and the numbers of a stage.
fn settings_ui(ui: &mut egui::Ui, spec: &mut ImproveSpec) {
    egui::Grid::new("improve_settings")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            ui.label("Task");
            egui::ComboBox::from_id_salt("improve_task")
                .selected_text(spec.task.name())
                .show_ui(ui, |ui| {
                    for t in TaskKind::ALL {
                        ui.selectable_value(&mut spec.task, t, t.name());
                    }
                });
            ui.end_row();
            ui.label("Method");
            egui::ComboBox::from_id_salt("improve_method")
                .selected_text(spec.method.name())
                .show_ui(ui, |ui| {
                    for m in Method::ALL {
                        ui.selectable_value(&mut spec.method, m, m.name());
                    }
                });
            ui.end_row();
            ui.label("Rounds");
            ui.add(egui::DragValue::new(&mut spec.rounds).range(1..=50));
            ui.end_row();
            ui.label("Samples per prompt");
            ui.add(egui::DragValue::new(&mut spec.samples).range(1..=64));
            ui.end_row();
            ui.label("Prompts per round");
            ui.add(egui::DragValue::new(&mut spec.prompts_per_round).range(1..=100_000));
            ui.end_row();
            ui.label("Temperature");
            ui.add(
                egui::DragValue::new(&mut spec.temperature)
                    .speed(0.05)
                    .range(0.05..=5.0),
            );
            ui.end_row();
            if spec.method == Method::Dpo {
                ui.label("Beta");
                ui.add(
                    egui::DragValue::new(&mut spec.beta)
                        .speed(0.01)
                        .range(0.001..=10.0),
                );
                ui.end_row();
            }
            ui.label("Steps per round");
            ui.add(egui::DragValue::new(&mut spec.steps_per_round).range(1..=100_000));
            ui.end_row();
        });
}

/// Progress, charts and the sampled answers of a stage.
fn stage_ui(ui: &mut egui::Ui, stage: &Stage, filter: &mut SampleFilter, method: Method) {
    ui.label(format!("New run: {}", stage.out.display()));
    stage_status_ui(ui, stage);
    stage_charts_ui(ui, stage, method);
    stage_samples_ui(ui, stage, filter);
}

/// The stage's progress, or how it ended, and its warnings.
fn stage_status_ui(ui: &mut egui::Ui, stage: &Stage) {
    match &stage.outcome {
        None => {
            if let Some((round, phase, done, total)) = stage.progress {
                ui.add(
                    egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                        .text(format!("round {round}: {} {done}/{total}", phase.label())),
                );
            } else {
                ui.add(egui::ProgressBar::new(0.0).text("loading the base run"));
            }
        }
        Some(Ok(summary)) => {
            let mut line = format!(
                "Finished: held-out accuracy {:.3} before, {:.3} after {} round(s) ({:.0} s)",
                summary.accuracy_before, summary.accuracy_after, summary.rounds, summary.elapsed_s
            );
            if let (Some(ic), Some(ci)) = (summary.delta_i_to_c, summary.delta_c_to_i) {
                line.push_str(&format!("; Δ(i→c) {ic:.3}, Δ(c→i) {ci:.3}"));
            }
            ui.colored_label(egui::Color32::from_rgb(0x59, 0xc1, 0x5b), line);
        }
        Some(Err(reason)) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("The stage failed: {reason} (the base run is unchanged)"),
            );
        }
    }
    for w in &stage.warnings {
        ui.colored_label(ui.visuals().warn_fg_color, w);
    }
}

/// Held-out accuracy per round and, for DPO, its reward accuracy and margin per step.
fn stage_charts_ui(ui: &mut egui::Ui, stage: &Stage, method: Method) {
    let rounds_x: Vec<f64> = stage.rounds.iter().map(|r| r.round as f64).collect();
    let accuracy: Vec<f64> = stage.rounds.iter().map(|r| r.accuracy.accuracy).collect();
    let pass_rate: Vec<f64> = stage.rounds.iter().map(|r| r.sample_pass_rate).collect();
    let steps_x: Vec<f64> = stage.steps.iter().map(|s| s.0 as f64).collect();
    let reward_acc: Vec<f64> = stage
        .steps
        .iter()
        .map(|s| s.2.unwrap_or(f64::NAN))
        .collect();
    let margin: Vec<f64> = stage
        .steps
        .iter()
        .map(|s| s.3.unwrap_or(f64::NAN))
        .collect();
    let blue = egui::Color32::from_rgb(0x4e, 0x9a, 0xf1);
    let orange = egui::Color32::from_rgb(0xf2, 0x8e, 0x2b);
    ui.columns(if method == Method::Dpo { 3 } else { 1 }, |cols| {
        let ui = &mut cols[0];
        ui.label(
            egui::RichText::new("Held-out accuracy per round (greedy; round 0 is the base)")
                .strong(),
        );
        let series = vec![
            Series {
                name: "held-out accuracy".into(),
                xs: &rounds_x,
                ys: &accuracy,
                color: blue,
                style: SeriesStyle::Line { width: 2.0 },
                index: None,
            },
            Series {
                name: "share of samples passed".into(),
                xs: &rounds_x,
                ys: &pass_rate,
                color: orange,
                style: SeriesStyle::Line { width: 1.5 },
                index: None,
            },
        ];
        let options = PlotOptions {
            log_y: false,
            height: 160.0,
            x_label: "round",
            y_label: "share of answers right",
            references: &[],
        };
        if stage.rounds.len() >= 2 {
            loss_plot(ui, "improve_accuracy", &series, &[], options);
        } else {
            // One point makes no line: say it in words until the first round ends.
            ui.label(match stage.rounds.first() {
                Some(base) => format!(
                    "Base (round 0): {:.3} of the held-out prompts answered right; the chart \
                     starts when round 1 ends.",
                    base.accuracy.accuracy
                ),
                None => "Measuring the base on the held-out prompts…".to_string(),
            });
        }
        if method == Method::Dpo {
            for (col, id, title, ys, y_label) in [
                (
                    1,
                    "improve_reward_acc",
                    "DPO reward accuracy",
                    &reward_acc,
                    "share of pairs",
                ),
                (2, "improve_margin", "DPO reward margin", &margin, "nats"),
            ] {
                let ui = &mut cols[col];
                ui.label(egui::RichText::new(title).strong());
                let series = vec![Series {
                    name: title.into(),
                    xs: &steps_x,
                    ys,
                    color: blue,
                    style: SeriesStyle::Line { width: 1.5 },
                    index: None,
                }];
                let options = PlotOptions {
                    log_y: false,
                    height: 160.0,
                    x_label: "step",
                    y_label,
                    references: &[],
                };
                loss_plot(ui, id, &series, &[], options);
            }
        }
    });
}

/// The answers sampled in the newest round, filtered by whether they passed.
fn stage_samples_ui(ui: &mut egui::Ui, stage: &Stage, filter: &mut SampleFilter) {
    let (round, samples) = &stage.samples;
    if samples.is_empty() {
        return;
    }
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new(format!("Sampled answers, round {round}")).strong());
        let passed = samples.iter().filter(|s| s.pass).count();
        ui.label(format!("{passed} of {} passed", samples.len()));
        let label = ui.label("show");
        egui::ComboBox::from_id_salt("improve_filter")
            .selected_text(filter.label())
            .show_ui(ui, |ui| {
                for f in SampleFilter::ALL {
                    ui.selectable_value(filter, f, f.label());
                }
            })
            .response
            .labelled_by(label.id);
    });
    let shown: Vec<&CheckedSample> = samples.iter().filter(|s| filter.keeps(s)).collect();
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    egui::ScrollArea::vertical()
        .id_salt("improve_samples")
        .auto_shrink([false, false])
        .show_rows(ui, row_height, shown.len(), |ui, range| {
            egui::Grid::new("improve_samples_grid")
                .striped(true)
                .num_columns(4)
                .show(ui, |ui| {
                    for s in &shown[range] {
                        let (mark, color) = if s.pass {
                            ("pass", egui::Color32::from_rgb(0x59, 0xc1, 0x5b))
                        } else {
                            ("fail", ui.visuals().error_fg_color)
                        };
                        ui.colored_label(color, mark);
                        ui.label(egui::RichText::new(one_line(&s.prompt, 60)).monospace());
                        ui.label(egui::RichText::new(one_line(&s.answer, 40)).monospace());
                        ui.label(egui::RichText::new(&s.reason).weak());
                        ui.end_row();
                    }
                });
        });
}

/// `text` on one line, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.replace('\n', " ⏎ ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    }
}
