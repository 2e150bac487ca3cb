//! Studio state, the event loop that drains run workers, and the window layout.

use super::dataset::DatasetState;
use crate::model::SpecError;
use crate::project::{Project, RunEntry, RunHistory, RunSpec, RunStatus, RunStore};
use crate::train::events::AttentionSnapshot;
use crate::train::worker::Notify;
use crate::train::{RunControl, RunEvent, RunHandle, spawn_run};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The central panel's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    #[default]
    Dataset,
    Setup,
    Monitor,
    Compare,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Dataset, Tab::Setup, Tab::Monitor, Tab::Compare];

    fn label(self) -> &'static str {
        match self {
            Tab::Dataset => "Dataset",
            Tab::Setup => "Run setup",
            Tab::Monitor => "Monitor",
            Tab::Compare => "Compare",
        }
    }
}

/// UI preferences kept by eframe between sessions (layout only; runs live in the project).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    pub project_dir: Option<PathBuf>,
    pub tab: Tab,
    /// Debiased EMA weight applied to training-loss curves (0 = raw).
    pub smoothing: f64,
    pub log_y: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            project_dir: None,
            tab: Tab::Dataset,
            smoothing: 0.8,
            log_y: false,
        }
    }
}

/// The worker side of a run started in this session.
pub struct LiveRun {
    pub handle: RunHandle,
    pub total_steps: usize,
    pub n_params: usize,
    pub device: String,
    pub attention: Option<AttentionSnapshot>,
    pub started: Instant,
}

/// Curves derived from a run's history, appended as events arrive (never rebuilt per frame).
#[derive(Debug, Default, Clone)]
pub struct Curves {
    /// `(step, training loss)` of every step.
    pub train: Vec<[f64; 2]>,
    /// `(step, validation loss)` of every evaluation.
    pub val: Vec<[f64; 2]>,
}

/// A run as the studio shows it.
pub struct RunView {
    pub dir: PathBuf,
    pub spec: RunSpec,
    pub status: RunStatus,
    pub last_step: Option<(usize, f32)>,
    /// Loaded when first shown; appended to while the run trains.
    pub history: Option<RunHistory>,
    pub curves: Curves,
    pub live: Option<LiveRun>,
    /// Ticked for the comparison page.
    pub checked: bool,
    pub error: Option<String>,
}

impl RunView {
    fn from_entry(entry: RunEntry) -> Self {
        // A run left "running" by a studio or CLI that died shows as interrupted.
        let status = if entry.status.is_active() {
            RunStatus::Failed {
                reason: "interrupted: the process training it ended".to_string(),
            }
        } else {
            entry.status
        };
        Self {
            dir: entry.dir,
            spec: entry.spec,
            status,
            last_step: entry.last_step,
            history: None,
            curves: Curves::default(),
            live: None,
            checked: false,
            error: None,
        }
    }

    /// Loads the history from the store if it is not loaded yet.
    pub fn ensure_history(&mut self) {
        if self.history.is_some() {
            return;
        }
        match RunStore::open(&self.dir).and_then(|s| s.load_history()) {
            Ok(history) => {
                self.curves = Curves {
                    train: history
                        .steps
                        .iter()
                        .map(|m| [m.step as f64, f64::from(m.train_loss)])
                        .collect(),
                    val: history
                        .evals
                        .iter()
                        .map(|e| [e.step as f64, f64::from(e.val_loss)])
                        .collect(),
                };
                self.history = Some(history);
            }
            Err(err) => {
                self.error = Some(err.to_string());
                self.history = Some(RunHistory::default());
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Applies one worker event. Returns true when the run ended.
    fn apply(&mut self, event: RunEvent) -> bool {
        let history = self.history.get_or_insert_with(RunHistory::default);
        match event {
            RunEvent::Started {
                n_params,
                device,
                total_steps,
                ..
            } => {
                if let Some(live) = &mut self.live {
                    live.n_params = n_params;
                    live.device = device;
                    live.total_steps = total_steps;
                }
                self.status = RunStatus::Running;
            }
            RunEvent::Step(m) => {
                self.curves
                    .train
                    .push([m.step as f64, f64::from(m.train_loss)]);
                self.last_step = Some((m.step, m.train_loss));
                history.steps.push(m);
            }
            RunEvent::Eval(e) => {
                self.curves.val.push([e.step as f64, f64::from(e.val_loss)]);
                history.evals.push(e);
            }
            RunEvent::Attention(snapshot) => {
                if let Some(live) = &mut self.live {
                    live.attention = Some(snapshot);
                }
            }
            RunEvent::Sample { step, text } => history.samples.push((step, text)),
            RunEvent::Checkpoint { step, path } => history.checkpoints.push((step, path)),
            RunEvent::Warning { step, message } => {
                history
                    .messages
                    .push((step, "warning".to_string(), message));
            }
            RunEvent::Paused { .. } => self.status = RunStatus::Paused,
            RunEvent::Resumed { .. } => self.status = RunStatus::Running,
            RunEvent::Finished(summary) => {
                self.status = if summary.stopped_early {
                    RunStatus::Stopped
                } else {
                    RunStatus::Finished
                };
                return true;
            }
            RunEvent::Failed { step, reason } => {
                history
                    .messages
                    .push((step, "error".to_string(), reason.clone()));
                self.status = RunStatus::Failed { reason };
                return true;
            }
        }
        false
    }
}

/// The studio.
pub struct StudioApp {
    pub prefs: Prefs,
    pub project: Project,
    pub runs: Vec<RunView>,
    /// The run the monitor shows (index into `runs`).
    pub selected: Option<usize>,
    pub dataset: DatasetState,
    /// Problems to show in the status bar (newest last).
    pub messages: Vec<String>,
    /// Settings errors from the last start attempt, by field.
    pub setup_errors: Vec<SpecError>,
    pub attention_layer: usize,
    pub attention_head: usize,
    pub compare_differences_only: bool,
    /// The heatmap texture and the (run, step, layer, head) key it shows.
    pub attention_texture: Option<(u64, egui::TextureHandle)>,
    picked_folder: Option<(FolderPick, Receiver<Option<PathBuf>>)>,
    notify: Notify,
}

/// What a folder dialog was opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FolderPick {
    Project,
    Run,
}

impl StudioApp {
    /// The app as eframe creates it: preferences from storage, then the project.
    pub fn new(cc: &eframe::CreationContext<'_>, project_dir: Option<PathBuf>) -> Self {
        let mut warnings = Vec::new();
        let prefs: Prefs = cc
            .storage
            .and_then(|s| s.get_string(eframe::APP_KEY))
            .and_then(|text| match ron::from_str(&text) {
                Ok(prefs) => Some(prefs),
                Err(err) => {
                    warnings.push(format!(
                        "saved preferences could not be read ({err}); using defaults"
                    ));
                    None
                }
            })
            .unwrap_or_default();
        let dir = project_dir
            .or_else(|| prefs.project_dir.clone())
            .unwrap_or_else(crate::cli::default_project_dir);
        let mut app = Self::with_project(cc.egui_ctx.clone(), &dir, prefs);
        app.messages.extend(warnings);
        app
    }

    /// The app on the project in `dir` (created if missing). Used by `new` and by tests.
    pub fn with_project(ctx: egui::Context, dir: &Path, prefs: Prefs) -> Self {
        let mut messages = Vec::new();
        // A first start seeds the project from the bundled example, when it is at hand.
        let template = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("projects/welcome")
            .join(Project::FILE);
        let project = match Project::open_or_create_from(dir, &template) {
            Ok(project) => project,
            Err(err) => {
                let fallback = std::env::temp_dir().join("hearth-unsaved-project");
                messages.push(format!("{err}; working in {} instead", fallback.display()));
                Project::open_or_create(&fallback).expect("the temporary folder is writable")
            }
        };
        let repaint_ctx = ctx.clone();
        let notify: Notify =
            Arc::new(move || repaint_ctx.request_repaint_after(Duration::from_millis(60)));
        let mut app = Self {
            prefs: Prefs {
                project_dir: Some(project.dir.clone()),
                ..prefs
            },
            dataset: DatasetState::default(),
            project,
            runs: Vec::new(),
            selected: None,
            messages,
            setup_errors: Vec::new(),
            attention_layer: 0,
            attention_head: 0,
            compare_differences_only: false,
            attention_texture: None,
            picked_folder: None,
            notify,
        };
        app.reload_runs();
        app
    }

    /// Re-reads the project's run list (keeping live runs).
    pub fn reload_runs(&mut self) {
        let live: Vec<RunView> = self.runs.drain(..).filter(|r| r.is_live()).collect();
        for entry in self.project.list_runs() {
            match entry {
                Ok(entry) if !live.iter().any(|r| r.dir == entry.dir) => {
                    self.runs.push(RunView::from_entry(entry));
                }
                Ok(_) => {}
                Err(err) => self.messages.push(err.to_string()),
            }
        }
        self.runs.extend(live);
        self.selected = self.selected.filter(|&i| i < self.runs.len());
    }

    pub fn open_project(&mut self, dir: &Path) {
        match Project::open_or_create(dir) {
            Ok(project) => {
                self.project = project;
                self.prefs.project_dir = Some(dir.to_path_buf());
                self.selected = None;
                self.reload_runs();
            }
            Err(err) => self.messages.push(err.to_string()),
        }
    }

    pub fn draft(&self) -> &RunSpec {
        &self.project.file.draft
    }

    /// Starts a run from the draft settings; invalid settings stay on the setup page with
    /// their messages at the fields.
    pub fn start_run(&mut self) -> Option<usize> {
        let spec = self.project.file.draft.clone();
        self.setup_errors = spec.validate();
        if !self.setup_errors.is_empty() {
            return None;
        }
        if let Err(err) = self.project.save() {
            self.messages.push(format!("settings not saved: {err}"));
        }
        let dir = self.project.new_run_dir(&spec.name);
        match spawn_run(spec.clone(), &dir, Some(self.notify.clone())) {
            Ok(handle) => {
                let total_steps = spec.train.steps;
                self.runs.push(RunView {
                    dir,
                    spec,
                    status: RunStatus::Created,
                    last_step: None,
                    history: Some(RunHistory::default()),
                    curves: Curves::default(),
                    live: Some(LiveRun {
                        handle,
                        total_steps,
                        n_params: 0,
                        device: String::new(),
                        attention: None,
                        started: Instant::now(),
                    }),
                    checked: false,
                    error: None,
                });
                let index = self.runs.len() - 1;
                self.selected = Some(index);
                self.prefs.tab = Tab::Monitor;
                Some(index)
            }
            Err(err) => {
                self.messages.push(format!("run not started: {err}"));
                None
            }
        }
    }

    pub fn control(&mut self, index: usize, control: RunControl) {
        if let Some(live) = self.runs.get(index).and_then(|r| r.live.as_ref()) {
            live.handle.send(control);
        }
    }

    /// Drains worker events for at most `budget`; returns true if events are left.
    pub fn drain_events(&mut self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        let mut left = false;
        for run in &mut self.runs {
            let mut ended = false;
            while let Some(live) = &run.live {
                if Instant::now() >= deadline {
                    left = true;
                    break;
                }
                match live.handle.try_recv() {
                    Some(event) => {
                        if run.apply(event) {
                            ended = true;
                            break;
                        }
                    }
                    None => {
                        // A thread that ended without a final event (it cannot, but be safe).
                        if live.handle.is_finished() {
                            ended = true;
                        }
                        break;
                    }
                }
            }
            if ended {
                // Joins the finished thread.
                run.live = None;
            }
        }
        left
    }

    fn poll_folder_dialog(&mut self) {
        let Some((purpose, rx)) = &self.picked_folder else {
            return;
        };
        let purpose = *purpose;
        match rx.try_recv() {
            Ok(choice) => {
                self.picked_folder = None;
                if let Some(dir) = choice {
                    match purpose {
                        FolderPick::Project => self.open_project(&dir),
                        FolderPick::Run => match self.project.add_external_run(&dir) {
                            Ok(_) => {
                                self.reload_runs();
                                self.selected = self.runs.iter().position(|r| r.dir == dir);
                                self.prefs.tab = Tab::Monitor;
                            }
                            Err(err) => self.messages.push(err.to_string()),
                        },
                    }
                }
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => self.picked_folder = None,
        }
    }

    fn pick_folder(&mut self, purpose: FolderPick, title: &str) {
        let (tx, rx) = channel();
        let title = title.to_string();
        let start = self.project.dir.clone();
        // The native dialog blocks its thread; keep it off the UI thread.
        std::thread::spawn(move || {
            let choice = rfd::FileDialog::new()
                .set_title(title)
                .set_directory(start)
                .pick_folder();
            let _ = tx.send(choice);
        });
        self.picked_folder = Some((purpose, rx));
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("Hearth");
            ui.separator();
            ui.label(egui::RichText::new(&self.project.file.name).strong())
                .on_hover_text(self.project.dir.display().to_string());
            if ui.button("Open project folder…").clicked() {
                self.pick_folder(FolderPick::Project, "Open a Hearth project folder");
            }
            if ui.button("Open run folder…").clicked() {
                self.pick_folder(
                    FolderPick::Run,
                    "Open a run folder (e.g. from hearth train --out)",
                );
            }
            ui.separator();
            for tab in Tab::ALL {
                if ui
                    .selectable_label(self.prefs.tab == tab, tab.label())
                    .clicked()
                {
                    self.prefs.tab = tab;
                }
            }
        });
    }

    fn status_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let live = self.runs.iter().filter(|r| r.is_live()).count();
            ui.label(format!("{} runs, {live} training", self.runs.len()));
            if let Some(message) = self.messages.last() {
                ui.separator();
                ui.colored_label(ui.visuals().warn_fg_color, message);
                if ui.small_button("dismiss").clicked() {
                    self.messages.pop();
                }
            }
        });
    }
}

impl eframe::App for StudioApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if self.drain_events(Duration::from_millis(10)) {
            ctx.request_repaint();
        }
        self.poll_folder_dialog();
        self.dataset.poll(&self.project.file.draft.data);
        if self.picked_folder.is_some() || self.dataset.is_loading() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::Panel::top("top_bar").show(ui, |ui| self.top_bar_ui(ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| self.status_bar_ui(ui));
        egui::Panel::left("runs")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| super::runs::runs_ui(self, ui));
        egui::CentralPanel::default_margins().show(ui, |ui| match self.prefs.tab {
            Tab::Dataset => super::dataset::dataset_ui(self, ui),
            Tab::Setup => super::setup::setup_ui(self, ui),
            Tab::Monitor => super::monitor::monitor_ui(self, ui),
            Tab::Compare => super::compare::compare_ui(self, ui),
        });
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = ron::to_string(&self.prefs) {
            storage.set_string(eframe::APP_KEY, text);
        }
        if let Err(err) = self.project.save() {
            log::warn!("project not saved: {err}");
        }
    }
}
