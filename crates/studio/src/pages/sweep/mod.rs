//! The Sweep page: pick the settings of the current Run setup to vary, start a sweep, and
//! watch it: parallel coordinates, the metric against each parameter, every trial's curve,
//! parameter importance, and the trials ranked; the best go to Compare in one click.

pub mod charts;

use crate::action::{Action, AppContext};
use crate::services::prefs::Tab;
use charts::Brush;
use hearth_engine::spec::RunSpec;
use hearth_engine::sweep::apply::{KNOBS, Knob, ValueKind};
use hearth_engine::sweep::runner::default_runner;
use hearth_engine::sweep::space::short_real;
use hearth_engine::sweep::{
    Direction, Param, ParamValue, SchedulerKind, SchedulerSpec, SearchKind, Sweep, SweepEvent,
    SweepRecord, SweepSpec, TrialState, importance::importance, metrics_of,
};
use hearth_engine::train::worker::Notify;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};

/// A sweep training in the background.
struct Job {
    stop: Arc<AtomicBool>,
    updates: Receiver<Update>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the sweep thread tells the page.
enum Update {
    /// The record changed; `line` says how, when worth a line.
    Record(Box<SweepRecord>, Option<String>),
    /// The sweep ended (or could not go on).
    Ended(Result<String, String>),
}

/// The page's state.
pub struct SweepPage {
    /// Per knob: varied, and its SPEC text.
    choices: Vec<(bool, String)>,
    /// The draft the default SPECs were made from.
    defaults_for: Option<RunSpec>,
    name: String,
    trials: usize,
    seed: u64,
    search: SearchKind,
    scheduler: SchedulerKind,
    metric: String,
    /// The sweep shown (live or saved).
    record: Option<SweepRecord>,
    /// Its folder.
    folder: Option<std::path::PathBuf>,
    job: Option<Job>,
    /// Progress lines, newest last.
    log: Vec<String>,
    /// Why the last start failed.
    error: Option<String>,
    brushes: Vec<Brush>,
    top_percent: f32,
    /// The parameter of the metric-against-parameter chart.
    x_param: usize,
    importance: Option<Vec<f64>>,
    /// How many of the best trials go to Compare.
    send_best: usize,
    /// When the shown saved sweep's file was last looked at, and its modification time then.
    watched: Option<(std::time::Instant, Option<std::time::SystemTime>)>,
    /// The project's saved sweeps, as last listed (with the watch, at most once a second).
    saved: Vec<String>,
}

impl Default for SweepPage {
    fn default() -> Self {
        Self {
            choices: vec![(false, String::new()); KNOBS.len()],
            defaults_for: None,
            name: String::new(),
            trials: 8,
            seed: 7,
            search: SearchKind::Random,
            scheduler: SchedulerKind::Asha,
            metric: "val_loss".into(),
            record: None,
            folder: None,
            job: None,
            log: Vec::new(),
            error: None,
            brushes: Vec::new(),
            top_percent: 100.0,
            x_param: 0,
            importance: None,
            send_best: 3,
            watched: None,
            saved: Vec::new(),
        }
    }
}

/// A SPEC around the draft's value: a decade either side for rates, half to double for
/// sizes, both choices for names.
pub fn default_spec(knob: &Knob, draft: &RunSpec) -> String {
    let value = knob.read(draft);
    match (knob.kind, &value) {
        (ValueKind::Real, ParamValue::Real(v)) if knob.name.ends_with("lr") && *v > 0.0 => {
            format!("log:{}:{}", short_real(v / 10.0), short_real(v * 10.0))
        }
        (ValueKind::Real, ParamValue::Real(v)) if *v > 0.0 => {
            format!("real:{}:{}", short_real(v / 2.0), short_real(v * 2.0))
        }
        (ValueKind::Real, _) => "real:0:0.2".into(),
        (ValueKind::Int, ParamValue::Int(v)) => match knob.name {
            "seed" => format!("{v},{},{}", v + 1, v + 2),
            "layers" | "heads" | "warmup" | "lora_rank" => format!("int:1:{}", (2 * v).max(2)),
            _ => format!("{},{v},{}", (v / 2).max(1), v * 2),
        },
        (ValueKind::Text, _) => match knob.name {
            "arch" => "classic,modern".into(),
            "optimizer" => "adamw,muon".into(),
            _ => value.to_string(),
        },
        _ => value.to_string(),
    }
}

impl SweepPage {
    /// True while a sweep trains.
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// The sweep shown.
    pub fn record(&self) -> Option<&SweepRecord> {
        self.record.as_ref()
    }

    /// Takes in what the sweep thread sent; true when something changed.
    pub fn poll(&mut self) -> bool {
        let Some(job) = &mut self.job else {
            return false;
        };
        let mut changed = false;
        let mut ended = None;
        let mut new_record = false;
        while let Ok(update) = job.updates.try_recv() {
            changed = true;
            match update {
                Update::Record(record, line) => {
                    self.record = Some(*record);
                    new_record = true;
                    self.log.extend(line);
                }
                Update::Ended(result) => ended = Some(result),
            }
        }
        // Fitted once for what arrived, not once per update.
        if new_record && let Some(record) = &self.record {
            self.importance = importance(record);
        }
        if let Some(result) = ended {
            match result {
                Ok(line) | Err(line) => self.log.push(line),
            }
            if let Some(mut job) = self.job.take()
                && let Some(thread) = job.thread.take()
                && thread.join().is_err()
            {
                self.log.push("the sweep thread panicked".into());
            }
        }
        if self.log.len() > 200 {
            self.log.drain(..self.log.len() - 200);
        }
        changed
    }

    /// Asks the running sweep to stop: its training trials go back to its queue.
    pub fn stop(&mut self) {
        if let Some(job) = &self.job {
            job.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Starts a new sweep of the draft with the page's choices (tests and the Start button).
    pub fn start(&mut self, project: &Path, draft: &RunSpec, notify: Option<Notify>) {
        self.error = None;
        let params: Result<Vec<Param>, String> = KNOBS
            .iter()
            .zip(&self.choices)
            .filter(|(_, (on, _))| *on)
            .map(|(k, (_, text))| {
                Param::parse(&format!("{}={text}", k.name)).map_err(|e| e.to_string())
            })
            .collect();
        let params = match params {
            Ok(p) => p,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let name = if self.name.trim().is_empty() {
            let taken = SweepRecord::list(project);
            (1..)
                .map(|n| format!("sweep-{n}"))
                .find(|n| !taken.contains(n))
                .expect("a free name")
        } else {
            self.name.trim().to_string()
        };
        let spec = SweepSpec {
            name,
            params,
            search: self.search,
            scheduler: SchedulerSpec {
                kind: self.scheduler,
                ..SchedulerSpec::default()
            },
            direction: Direction::for_metric(&self.metric),
            metric: self.metric.clone(),
            seed: self.seed,
            trials: self.trials,
            max_minutes: 0.0,
        };
        match Sweep::create(project, spec, draft.clone()) {
            Ok(sweep) => self.launch(sweep, notify),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Continues the saved sweep shown (interrupted or queued trials).
    fn resume(&mut self, project: &Path, notify: Option<Notify>) {
        let Some(record) = &self.record else { return };
        match Sweep::open(project, &record.spec.name) {
            Ok(sweep) => self.launch(sweep, notify),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn launch(&mut self, mut sweep: Sweep, notify: Option<Notify>) {
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        self.record = Some(sweep.record.clone());
        self.folder = Some(sweep.folder.clone());
        self.brushes.clear();
        self.log.push(format!(
            "sweep {} started: {} trials, {} search, scheduler {}",
            sweep.record.spec.name,
            sweep.record.spec.trials,
            sweep.record.spec.search.name(),
            sweep.record.spec.scheduler.kind.name()
        ));
        let poke = notify.clone();
        let thread = std::thread::Builder::new()
            .name("hearth-sweep".into())
            .spawn(move || {
                // Trials go through the project's run queue as worker processes (they train
                // on when the window closes); in this process only where no `hearth` runs it.
                let mut runner = default_runner(&sweep.project, notify);
                let metric = sweep.record.spec.metric.clone();
                let result = sweep.run(runner.as_mut(), &flag, &mut |event, record| {
                    let line = describe(event, record, &metric);
                    let _ = tx.send(Update::Record(Box::new(record.clone()), line));
                    if let Some(n) = &poke {
                        n();
                    }
                });
                let end = match result {
                    Ok(s) if flag.load(Ordering::Relaxed) => Ok(format!(
                        "sweep stopped: {} trials, {} pruned; Resume continues it",
                        s.trials, s.pruned
                    )),
                    Ok(s) => Ok(match s.best {
                        Some((i, v)) => format!(
                            "best run={} {metric}={v:.4} trials={} pruned={} compute_share={:.3}",
                            sweep.record.trials[i].name, s.trials, s.pruned, s.compute_share
                        ),
                        None => format!("no trial reported {metric}"),
                    }),
                    Err(e) => Err(format!("the sweep stopped: {e}")),
                };
                let _ = tx.send(Update::Record(Box::new(sweep.record.clone()), None));
                let _ = tx.send(Update::Ended(end));
                if let Some(n) = &poke {
                    n();
                }
            });
        match thread {
            Ok(thread) => {
                self.job = Some(Job {
                    stop,
                    updates: rx,
                    thread: Some(thread),
                })
            }
            Err(e) => self.error = Some(format!("cannot start the sweep thread: {e}")),
        }
    }

    /// Varies `knob` with `spec` (tests and scripted set-ups).
    pub fn vary(&mut self, knob: &str, spec: &str) {
        if let Some(i) = KNOBS.iter().position(|k| k.name == knob) {
            self.choices[i] = (true, spec.to_string());
        }
    }

    /// Sets the trial budget, search, scheduler, metric and seed (tests and scripted set-ups).
    pub fn configure(
        &mut self,
        trials: usize,
        search: SearchKind,
        scheduler: SchedulerKind,
        metric: &str,
        seed: u64,
    ) {
        (self.trials, self.search, self.scheduler, self.seed) = (trials, search, scheduler, seed);
        self.metric = metric.to_string();
    }

    /// Shows the newest saved sweep when none is shown, and reads the shown one again when its
    /// file changed (a sweep another process runs, such as `hearth sweep`, is watched live).
    fn watch_saved(&mut self, project: &Path) {
        if self.job.is_some() {
            return;
        }
        if self
            .watched
            .is_some_and(|(at, _)| at.elapsed() < std::time::Duration::from_secs(1))
        {
            return;
        }
        let modified = |folder: &Path| {
            std::fs::metadata(folder.join(SweepRecord::FILE))
                .and_then(|m| m.modified())
                .ok()
        };
        self.saved = SweepRecord::list(project);
        if self.folder.is_none() {
            self.folder = self
                .saved
                .iter()
                .map(|name| SweepRecord::folder(project, name))
                .max_by_key(|f| modified(f));
        }
        let Some(folder) = self.folder.clone() else {
            self.watched = Some((std::time::Instant::now(), None));
            return;
        };
        let now = modified(&folder);
        if self.record.is_none() || self.watched.is_none_or(|(_, seen)| seen != now) {
            match SweepRecord::load(&folder) {
                Ok(r) => {
                    self.importance = importance(&r);
                    self.record = Some(r);
                }
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        self.watched = Some((std::time::Instant::now(), now));
    }

    /// Draws the page.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &AppContext<'_>,
        notify: Option<Notify>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        self.watch_saved(&ctx.project.dir);
        let draft = &ctx.project.file.draft;
        if self.defaults_for.as_ref() != Some(draft) {
            for (k, (on, text)) in KNOBS.iter().zip(&mut self.choices) {
                if !*on {
                    *text = default_spec(k, draft);
                }
            }
            self.defaults_for = Some(draft.clone());
        }
        egui::Panel::left("sweep_setup")
            .resizable(true)
            .default_size(310.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.setup_ui(ui, ctx, notify))
            });
        egui::ScrollArea::vertical()
            .id_salt("sweep_results")
            .show(ui, |ui| self.results_ui(ui, ctx, &mut actions));
        actions
    }

    fn setup_ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>, notify: Option<Notify>) {
        let draft = &ctx.project.file.draft;
        ui.heading("Sweep");
        ui.label(format!(
            "Trials start from the Run setup ({}, {} steps, evaluation every {}); tick what to vary.",
            draft.objective.kind, draft.train.steps, draft.train.eval_interval
        ));
        let running = self.job.is_some();
        ui.add_enabled_ui(!running, |ui| {
            egui::Grid::new("sweep_knobs")
                .num_columns(2)
                .show(ui, |ui| {
                    for (k, (on, text)) in KNOBS.iter().zip(&mut self.choices) {
                        ui.checkbox(on, k.name).on_hover_text(format!(
                            "{} (now {})",
                            k.field,
                            k.read(draft)
                        ));
                        let edit = ui.add_enabled(
                            *on,
                            egui::TextEdit::singleline(text).desired_width(150.0),
                        );
                        if *on && let Err(e) = Param::parse(&format!("{}={text}", k.name)) {
                            edit.on_hover_text(e.to_string());
                            ui.colored_label(ui.visuals().error_fg_color, "⚠");
                        }
                        ui.end_row();
                    }
                });
            ui.separator();
            egui::Grid::new("sweep_settings")
                .num_columns(2)
                .show(ui, |ui| {
                    ui.label("Name");
                    ui.add(egui::TextEdit::singleline(&mut self.name).hint_text("sweep-N"));
                    ui.end_row();
                    ui.label("Trials");
                    ui.add(egui::DragValue::new(&mut self.trials).range(1..=1000));
                    ui.end_row();
                    ui.label("Search");
                    egui::ComboBox::from_id_salt("sweep_search")
                        .selected_text(self.search.name())
                        .show_ui(ui, |ui| {
                            for s in [SearchKind::Grid, SearchKind::Random, SearchKind::Tpe] {
                                ui.selectable_value(&mut self.search, s, s.name());
                            }
                        });
                    ui.end_row();
                    ui.label("Early stopping");
                    egui::ComboBox::from_id_salt("sweep_scheduler")
                        .selected_text(self.scheduler.name())
                        .show_ui(ui, |ui| {
                            for s in [
                                SchedulerKind::None,
                                SchedulerKind::Asha,
                                SchedulerKind::Median,
                            ] {
                                ui.selectable_value(&mut self.scheduler, s, s.name());
                            }
                        });
                    ui.end_row();
                    ui.label("Metric");
                    egui::ComboBox::from_id_salt("sweep_metric")
                        .selected_text(&self.metric)
                        .show_ui(ui, |ui| {
                            for m in metrics_of(draft) {
                                ui.selectable_value(&mut self.metric, m.clone(), m);
                            }
                        });
                    ui.end_row();
                    ui.label("Seed");
                    ui.add(egui::DragValue::new(&mut self.seed));
                    ui.end_row();
                });
        });
        ui.horizontal(|ui| {
            if running {
                if ui
                    .button("Stop sweep")
                    .on_hover_text("Training trials stop with a checkpoint; Resume continues them")
                    .clicked()
                {
                    self.stop();
                }
                ui.spinner();
            } else if ui.button("Start sweep").clicked() {
                self.start(&ctx.project.dir, draft, notify.clone());
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.separator();
        let saved = self.saved.clone();
        if !saved.is_empty() && !running {
            ui.label("Saved sweeps");
            for name in saved {
                ui.horizontal(|ui| {
                    if ui
                        .selectable_label(
                            self.record.as_ref().is_some_and(|r| r.spec.name == name),
                            &name,
                        )
                        .clicked()
                    {
                        let folder = SweepRecord::folder(&ctx.project.dir, &name);
                        match SweepRecord::load(&folder) {
                            Ok(r) => {
                                self.importance = importance(&r);
                                self.record = Some(r);
                                self.folder = Some(folder);
                                self.watched = None;
                                self.brushes.clear();
                            }
                            Err(e) => self.error = Some(e.to_string()),
                        }
                    }
                });
            }
            let unfinished = self.record.as_ref().is_some_and(|r| {
                r.trials.len() < r.spec.trials || r.trials.iter().any(|t| !t.state.is_done())
            });
            if unfinished
                && ui
                    .button("Resume")
                    .on_hover_text("Continue its interrupted and remaining trials")
                    .clicked()
            {
                self.resume(&ctx.project.dir, notify);
            }
        }
        if !self.log.is_empty() {
            ui.separator();
            for line in self.log.iter().rev().take(12) {
                ui.small(line);
            }
        }
    }

    fn results_ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>, actions: &mut Vec<Action>) {
        let Some(record) = &self.record else {
            ui.weak("Start a sweep, or pick a saved one, to see its trials here.");
            return;
        };
        let summary = record.summary();
        let running = record
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Running)
            .count();
        ui.horizontal(|ui| {
            ui.heading(&record.spec.name);
            ui.label(format!(
                "{}/{} trials · {running} training · {} pruned · compute share {:.2}",
                record.trials.len(),
                record.spec.trials,
                summary.pruned,
                summary.compute_share
            ));
            if let Some((i, v)) = summary.best {
                ui.label(
                    egui::RichText::new(format!(
                        "best {} {}={v:.4}",
                        record.trials[i].name, record.spec.metric
                    ))
                    .strong(),
                );
            }
        });
        ui.horizontal(|ui| {
            ui.label("Show the best");
            ui.add(egui::Slider::new(&mut self.top_percent, 5.0..=100.0).suffix(" %"));
            if self.brushes.iter().any(|b| b.is_some()) && ui.button("Clear brushes").clicked() {
                self.brushes.clear();
            }
        });
        let visible = charts::shown(record, &self.brushes, self.top_percent);
        charts::parallel_ui(ui, record, &mut self.brushes, &visible, 230.0);
        ui.add_space(6.0);
        let width = ((ui.available_width() - 16.0) / 2.0).max(200.0);
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                egui::ComboBox::from_id_salt("sweep_x_param")
                    .selected_text(
                        record
                            .spec
                            .params
                            .get(self.x_param)
                            .map_or("", |p| p.name.as_str()),
                    )
                    .show_ui(ui, |ui| {
                        for (i, p) in record.spec.params.iter().enumerate() {
                            ui.selectable_value(&mut self.x_param, i, &p.name);
                        }
                    });
                charts::metric_vs_param_ui(
                    ui,
                    record,
                    self.x_param,
                    &visible,
                    egui::vec2(width, 200.0),
                );
            });
            ui.vertical(|ui| {
                ui.add_space(22.0);
                charts::curves_ui(ui, record, &visible, egui::vec2(width, 200.0));
            });
        });
        ui.add_space(6.0);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(330.0);
                charts::importance_ui(ui, record, self.importance.as_deref());
            });
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.add(egui::DragValue::new(&mut self.send_best).range(1..=20));
                    if ui
                        .button("Send the best to Compare")
                        .on_hover_text("Tick the best trials (and only them) on the Compare page")
                        .clicked()
                    {
                        actions.extend(compare_actions(record, ctx, self.send_best));
                    }
                });
                trials_table_ui(ui, record, &visible, ctx, actions);
            });
        });
    }
}

/// Ticks the best `k` trials for Compare (unticking every other run) and shows Compare.
pub fn compare_actions(record: &SweepRecord, ctx: &AppContext<'_>, k: usize) -> Vec<Action> {
    let project = &ctx.project.dir;
    let best: Vec<std::path::PathBuf> = record
        .ranking()
        .into_iter()
        .filter(|&i| record.trials[i].last_value().is_some())
        .take(k)
        .map(|i| SweepRecord::run_dir(project, &record.trials[i]))
        .collect();
    let mut actions: Vec<Action> = ctx
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.checked != best.contains(&r.dir))
        .map(|(run, r)| Action::SetCompared {
            run,
            compared: !r.checked,
        })
        .collect();
    actions.push(Action::ShowTab(Tab::Compare));
    actions
}

fn trials_table_ui(
    ui: &mut egui::Ui,
    record: &SweepRecord,
    visible: &[bool],
    ctx: &AppContext<'_>,
    actions: &mut Vec<Action>,
) {
    let ranking = record.ranking();
    egui::Grid::new("sweep_trials")
        .striped(true)
        .num_columns(4 + record.spec.params.len())
        .show(ui, |ui| {
            ui.strong("#");
            ui.strong("run");
            for p in &record.spec.params {
                ui.strong(&p.name);
            }
            ui.strong(&record.spec.metric);
            ui.strong("state");
            ui.end_row();
            for &i in &ranking {
                let t = &record.trials[i];
                let text = |s: String| {
                    if visible.get(i).copied().unwrap_or(true) {
                        egui::RichText::new(s)
                    } else {
                        egui::RichText::new(s).weak()
                    }
                };
                ui.label(text(format!("{}", i + 1)));
                let dir = SweepRecord::run_dir(&ctx.project.dir, t);
                match ctx.runs.iter().position(|r| r.dir == dir) {
                    Some(run) => {
                        if ui
                            .link(text(t.name.clone()))
                            .on_hover_text("Show on Monitor")
                            .clicked()
                        {
                            actions.push(Action::Monitor(run));
                        }
                    }
                    None => {
                        ui.label(text(t.name.clone()));
                    }
                }
                for v in &t.values {
                    ui.label(text(v.to_string()));
                }
                ui.label(text(
                    t.last_value().map_or("-".into(), |v| format!("{v:.4}")),
                ));
                let state = ui.label(text(t.state.label()));
                if let TrialState::Failed { reason } = &t.state {
                    state.on_hover_text(reason);
                }
                ui.end_row();
            }
        });
}

/// A progress line for the page's log, for the events worth one.
fn describe(event: &SweepEvent, record: &SweepRecord, metric: &str) -> Option<String> {
    match event {
        SweepEvent::TrialStarted { index } => {
            let t = &record.trials[*index];
            let values: Vec<String> = record
                .spec
                .params
                .iter()
                .zip(&t.values)
                .map(|(p, v)| format!("{}={v}", p.name))
                .collect();
            Some(format!("trial {} started: {}", index + 1, values.join(" ")))
        }
        SweepEvent::Decision(d) if d.stop => Some(format!(
            "trial {} pruned at step {}: {metric} {:.4} behind the cutoff {:.4}",
            d.trial + 1,
            d.step,
            d.value,
            d.cutoff
        )),
        SweepEvent::TrialEnded { index } => {
            let t = &record.trials[*index];
            Some(format!("trial {} {}", index + 1, t.state.label()))
        }
        SweepEvent::Warning(w) => Some(format!("warning: {w}")),
        _ => None,
    }
}
