//! The app shell: the pages and the state they share, the event loop that drains run workers
//! and dialogs, the top and status bars, and the one place where actions change anything.

mod jobs;
mod operations;

use crate::action::{Action, AppContext};
use crate::action::{Pick, QuitChoice};
use crate::pages::compare::ComparePage;
use crate::pages::dataset::{self, DatasetPage};
use crate::pages::improve::ImprovePage;
use crate::pages::monitor::MonitorPage;
use crate::pages::runs::RunsPanel;
use crate::pages::setup::SetupPage;
use crate::pages::sweep::SweepPage;
use crate::pages::try_it::TryItPage;
use crate::run_view::{Launcher, RunView, drain_events};
use crate::services::dialogs::{DialogBackend, DialogRequest, FileDialogs};
use crate::services::files::Trash;
use crate::services::notifications::{Notice, Notifications};
use crate::services::prefs::{Prefs, Tab};
use crate::services::shortcuts::{self, Command};
use hearth_engine::project::{Project, RunCheck};
use hearth_engine::train::worker::Notify;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// What a file dialog was opened for.
#[derive(Debug, Clone, PartialEq)]
enum DialogPurpose {
    Project,
    Run,
    /// The metrics of the run in this folder.
    MetricsCsv(PathBuf),
    /// The chart in this screen rectangle.
    ChartPng(egui::Rect),
    /// An export of the run in this folder, in this format.
    Export(PathBuf, hearth_engine::export::ExportFormat),
    /// A model to import: a Hugging Face folder or a GGUF file.
    Import,
    Data(Pick),
    /// The file of the draft's objective setting with this key.
    ObjectiveFile(String),
    /// An STS file to score the run in this folder on.
    Sts(PathBuf),
}

/// The studio.
pub struct StudioApp {
    prefs: Prefs,
    project: Project,
    runs: Vec<RunView>,
    /// Run folders that do not load, listed apart with their reason.
    damaged: Vec<RunCheck>,
    /// The run the monitor shows (index into `runs`).
    selected: Option<usize>,
    /// Problems to show in the status bar (newest last).
    messages: Vec<String>,
    runs_panel: RunsPanel,
    dataset: DatasetPage,
    setup: SetupPage,
    monitor: MonitorPage,
    compare: ComparePage,
    improve: ImprovePage,
    try_it: TryItPage,
    sweep: SweepPage,
    trash: Trash,
    dialogs: FileDialogs<DialogPurpose>,
    /// A chart to save as PNG from the next frame: its place on screen and the file.
    chart_to_export: Option<(egui::Rect, PathBuf)>,
    /// The outcome of a chart export, once the screenshot is written.
    png_result: Option<Receiver<Result<(), crate::services::png::PngError>>>,
    /// STS evaluations running in the background: what to say when each ends.
    sts_jobs: jobs::Jobs<(), String>,
    /// Models being imported in the background.
    imports: jobs::Jobs<operations::ImportTag, hearth_engine::export::ImportSummary>,
    /// Runs being exported in the background.
    exports: jobs::Jobs<operations::ExportTag, hearth_engine::export::ExportSummary>,
    /// When the project folder was last looked at for runs other processes write.
    watched: std::time::Instant,
    notify: Notify,
    /// The project's run queue as last read.
    queue_state: hearth_engine::project::queue::QueueState,
    /// How runs start: worker processes (the app), or threads (tests).
    launcher: Launcher,
    /// The window was asked to close while runs train: the question is shown.
    quit_asked: bool,
    /// The user answered; the window closes.
    quitting: bool,
    /// The keyboard shortcuts are listed over the pages.
    shortcuts_open: bool,
    /// Desktop notifications of the runs trained in this session.
    notifications: Notifications,
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
        // An explicit choice (flag, then environment) wins over the last project opened.
        let dir = project_dir
            .or_else(|| std::env::var_os("HEARTH_PROJECT").map(PathBuf::from))
            .or_else(|| prefs.project_dir.clone())
            .unwrap_or_else(hearth_engine::project::default_project_dir);
        let mut app = Self::with_project(cc.egui_ctx.clone(), &dir, prefs);
        app.messages.extend(warnings);
        // Runs train in worker processes, so they outlive the window.
        match hearth_engine::train::worker_exe() {
            Some(exe) => app.set_worker_exe(exe),
            None => app.messages.push(
                "this program is not `hearth`: runs train inside the window and stop with it"
                    .to_string(),
            ),
        }
        app
    }

    /// The app on the project in `dir` (created if missing). Used by `new` and by tests.
    pub fn with_project(ctx: egui::Context, dir: &Path, prefs: Prefs) -> Self {
        let mut messages = Vec::new();
        // A first start seeds the project from the bundled example, when it is at hand.
        let template = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
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
        let notify: Notify = Arc::new(move || ctx.request_repaint_after(Duration::from_millis(60)));
        let mut app = Self {
            prefs: Prefs {
                project_dir: Some(project.dir.clone()),
                ..prefs
            },
            project,
            runs: Vec::new(),
            damaged: Vec::new(),
            selected: None,
            messages,
            runs_panel: RunsPanel,
            dataset: DatasetPage::default(),
            setup: SetupPage::default(),
            monitor: MonitorPage::default(),
            compare: ComparePage::default(),
            improve: ImprovePage::default(),
            try_it: TryItPage::default(),
            sweep: SweepPage::default(),
            trash: Trash::default(),
            dialogs: FileDialogs::new(DialogBackend::from_env()),
            chart_to_export: None,
            png_result: None,
            sts_jobs: jobs::Jobs::new(),
            imports: jobs::Jobs::new(),
            exports: jobs::Jobs::new(),
            watched: std::time::Instant::now(),
            notify,
            launcher: Launcher::Threads,
            queue_state: Default::default(),
            quit_asked: false,
            quitting: false,
            shortcuts_open: false,
            notifications: Notifications::default(),
        };
        app.reload_runs();
        app
    }

    /// Starts runs as worker processes of `exe` (a `hearth` executable) from now on, so they
    /// outlive the window; without it they train on threads of this process.
    pub fn set_worker_exe(&mut self, exe: PathBuf) {
        self.launcher = Launcher::Processes {
            exe,
            project: self.project.dir.clone(),
        };
    }

    /// How this window starts runs.
    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    /// The open project.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// Every run listed, in list order.
    pub fn runs(&self) -> &[RunView] {
        &self.runs
    }

    /// The run the monitor shows (index into [`StudioApp::runs`]).
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    /// Run folders listed as damaged, with their reason.
    pub fn damaged(&self) -> &[RunCheck] {
        &self.damaged
    }

    /// The desktop notifications sent this session, oldest first.
    pub fn notices(&self) -> &[Notice] {
        self.notifications.told()
    }

    /// Problems shown in the status bar, newest last.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    /// The Improve page (its stage).
    pub fn improve(&self) -> &ImprovePage {
        &self.improve
    }

    /// The Improve page, to set up or start a stage (tests).
    pub fn improve_mut(&mut self) -> &mut ImprovePage {
        &mut self.improve
    }

    /// The Try it page (its answers).
    pub fn try_it(&self) -> &TryItPage {
        &self.try_it
    }

    /// The Try it page, to set its prompt and settings (tests).
    pub fn try_it_mut(&mut self) -> &mut TryItPage {
        &mut self.try_it
    }

    /// The Sweep page (its sweep).
    pub fn sweep_mut(&mut self) -> &mut SweepPage {
        &mut self.sweep
    }

    /// True while a run is being exported.
    pub fn is_exporting(&self) -> bool {
        !self.exports.is_empty()
    }

    /// True while a model is being imported.
    pub fn is_importing(&self) -> bool {
        !self.imports.is_empty()
    }

    /// The dataset page (its build state).
    pub fn dataset(&self) -> &DatasetPage {
        &self.dataset
    }

    /// The dataset page, to change.
    pub fn dataset_mut(&mut self) -> &mut DatasetPage {
        &mut self.dataset
    }

    /// The preferences (page shown, plot settings).
    pub fn prefs(&self) -> &Prefs {
        &self.prefs
    }

    /// Uses the system file dialogs or only the in-app picker.
    pub fn set_dialog_backend(&mut self, backend: DialogBackend) {
        self.dialogs.set_backend(backend);
    }

    /// Carries out what a page asked for.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::ShowTab(tab) => self.prefs.tab = tab,
            Action::Monitor(index) => {
                self.selected = Some(index).filter(|&i| i < self.runs.len());
                self.prefs.tab = Tab::Monitor;
            }
            Action::SetCompared { run, compared } => {
                if let Some(run) = self.runs.get_mut(run) {
                    run.checked = compared;
                }
            }
            Action::ReloadRuns => self.reload_runs(),
            Action::SetDraft(spec) => self.project.file.draft = *spec,
            Action::SetPlot(plot) => self.prefs.set_plot(plot),
            Action::StartRun => self.start_run(),
            Action::Control { run, control } => {
                if let Some(live) = self.runs.get(run).and_then(|r| r.live.as_ref()) {
                    live.handle.send(control);
                }
            }
            Action::Annotate {
                run,
                annotations,
                save,
            } => self.annotate(run, annotations, save),
            Action::CloneSettings(run) => self.draft_from(run, RunView::variant_spec),
            Action::FineTune(run) => self.draft_from(run, RunView::fine_tune_spec),
            Action::Resume(run) => {
                if let Some(run) = self.runs.get_mut(run)
                    && let Err(err) = run.resume(&self.launcher, self.notify.clone())
                {
                    self.messages.push(format!("cannot resume: {err}"));
                }
            }
            Action::Queue { run, change } => self.change_queue(run, change),
            Action::SetQueueLimit(limit) => {
                if let Err(err) = self.queue().set_limit(limit) {
                    self.messages.push(err.to_string());
                }
                self.read_queue();
                self.dispatch_queue();
            }
            Action::Quit(choice) => self.answer_quit(choice),
            Action::Delete(run) => self.delete_run(run),
            Action::UndoDelete => self.undo_delete(),
            Action::TrashDamaged(dir) => self.trash_damaged(&dir),
            Action::ExportMetricsCsv(run) => {
                if let Some(run) = self.runs.get(run) {
                    let request = DialogRequest::save_file(
                        "Export the run's metrics as CSV",
                        &format!("{}.csv", run.name()),
                    )
                    .starting_in(&self.project.dir);
                    self.open_dialog(DialogPurpose::MetricsCsv(run.dir.clone()), request);
                }
            }
            Action::ExportChartPng { rect, file_name } => {
                let request = DialogRequest::save_file("Save the chart as PNG", &file_name)
                    .starting_in(&self.project.dir);
                self.open_dialog(DialogPurpose::ChartPng(rect), request);
            }
            Action::OpenProject => {
                let request = DialogRequest::open_folder("Open a Hearth project folder")
                    .starting_in(&self.project.dir);
                self.open_dialog(DialogPurpose::Project, request);
            }
            Action::ExportRun(run, format) => {
                if let Some(run) = self.runs.get(run) {
                    let title = format!("Export {} as a {}", run.name(), format.label());
                    let request = if format.is_file() {
                        DialogRequest::save_file(&title, &format!("{}.gguf", run.name()))
                            .filter("GGUF models", &["gguf"])
                    } else {
                        DialogRequest::open_folder(&title)
                    }
                    .starting_in(&self.project.dir);
                    self.open_dialog(DialogPurpose::Export(run.dir.clone(), format), request);
                }
            }
            Action::ImportModel => {
                let request = DialogRequest::open_folder(
                    "Import a Hugging Face folder (GPT-2, BERT, sentence-transformers, Llama, \
                     Mistral, Qwen2, Qwen3)",
                )
                .starting_in(&self.project.dir);
                self.open_dialog(DialogPurpose::Import, request);
            }
            Action::ImportGguf => {
                let request =
                    DialogRequest::open_file("Import a GGUF file (Llama-family model, llama.cpp)")
                        .filter("GGUF models", &["gguf"])
                        .filter("All files", &["*"])
                        .starting_in(&self.project.dir);
                self.open_dialog(DialogPurpose::Import, request);
            }
            Action::TryIt(index) => {
                if let Some(run) = self.runs.get(index) {
                    self.try_it.show_run(&run.dir);
                    self.selected = Some(index);
                    self.prefs.tab = Tab::TryIt;
                }
            }
            Action::OpenRun => {
                let request =
                    DialogRequest::open_folder("Open a run folder (e.g. from hearth train --out)")
                        .starting_in(&self.project.dir);
                self.open_dialog(DialogPurpose::Run, request);
            }
            Action::PickData(pick) => {
                let request = pick.request(&self.project.dir);
                self.open_dialog(DialogPurpose::Data(pick), request);
            }
            Action::PickObjectiveFile { key, title } => {
                let request = DialogRequest::open_file(&title).starting_in(&self.project.dir);
                self.open_dialog(DialogPurpose::ObjectiveFile(key), request);
            }
            Action::EvaluateSts(run) => {
                if let Some(run) = self.runs.get(run) {
                    let request = DialogRequest::open_file(&format!(
                        "Score {} on an STS file (tab-separated STS benchmark, or JSONL)",
                        run.name()
                    ))
                    .starting_in(&self.project.dir);
                    self.open_dialog(DialogPurpose::Sts(run.dir.clone()), request);
                }
            }
            Action::DismissMessage => {
                self.messages.pop();
            }
            Action::ShowShortcuts(open) => self.shortcuts_open = open,
            Action::SetNotifications(on) => self.prefs.notifications = on,
        }
    }

    fn open_dialog(&mut self, purpose: DialogPurpose, request: DialogRequest) {
        if !self.dialogs.open(purpose, request) {
            self.messages
                .push("a file dialog is already open: finish it first".to_string());
        }
    }

    fn top_bar_ui(&self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        ui.horizontal(|ui| {
            ui.heading("Hearth");
            ui.separator();
            ui.label(egui::RichText::new(&self.project.file.name).strong())
                .on_hover_text(self.project.dir.display().to_string());
            if ui.button("Open project folder…").clicked() {
                actions.push(Action::OpenProject);
            }
            if ui.button("Open run folder…").clicked() {
                actions.push(Action::OpenRun);
            }
            ui.menu_button("Import model…", |ui| {
                if ui
                    .button("Hugging Face folder…")
                    .on_hover_text(
                        "A GPT-2, BERT or Llama-family folder (Llama, Mistral, Qwen2, Qwen3), or \
                         a sentence-transformers encoder (all-MiniLM-L6-v2), becomes a run you \
                         can try, evaluate and fine-tune",
                    )
                    .clicked()
                {
                    actions.push(Action::ImportModel);
                    ui.close();
                }
                if ui
                    .button("GGUF file…")
                    .on_hover_text(
                        "A Llama-family GGUF file (llama.cpp's format, quantized or not, e.g. \
                         SmolLM2) becomes a run you can try and fine-tune",
                    )
                    .clicked()
                {
                    actions.push(Action::ImportGguf);
                    ui.close();
                }
            })
            .response
            .on_hover_text("Bring a pretrained model into the project as a run");
            ui.separator();
            for tab in Tab::ALL {
                if ui
                    .selectable_label(self.prefs.tab == tab, tab.label())
                    .on_hover_text(shortcuts::hint(ui.ctx(), Command::ShowPage(tab)))
                    .clicked()
                {
                    actions.push(Action::ShowTab(tab));
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                crate::services::notifications::settings_menu_ui(ui, &self.prefs, actions);
                shortcuts::help_button_ui(ui, self.shortcuts_open, actions);
            });
        });
    }

    fn status_bar_ui(&self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        ui.horizontal(|ui| {
            let live = self.runs.iter().filter(|r| r.is_live()).count();
            let n = self.runs.len();
            let runs = if n == 1 { "run" } else { "runs" };
            ui.label(format!("{n} {runs}, {live} training"));
            if let Some(from) = self.trash.last_deleted() {
                ui.separator();
                let name = from
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ui.label(format!("Deleted {name}"));
                if ui.button("Undo").clicked() {
                    actions.push(Action::UndoDelete);
                }
            }
            let running = self.imports.progress().chain(self.exports.progress());
            for progress in running.chain(self.sts_jobs.progress()) {
                ui.separator();
                ui.spinner();
                ui.label(progress);
            }
            if let Some(message) = self.messages.last() {
                ui.separator();
                ui.colored_label(ui.visuals().warn_fg_color, message);
                if ui.small_button("dismiss").clicked() {
                    actions.push(Action::DismissMessage);
                }
            }
        });
    }

    /// Lays out the whole window (what eframe calls each frame; benchmarks call it headless),
    /// then applies what the pages asked for.
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        self.prepare_runs();
        let data = self.dataset.status_for(&self.project.file.draft);
        let ctx = AppContext {
            project: &self.project,
            runs: &self.runs,
            prefs: &self.prefs,
            selected: self.selected,
            damaged: &self.damaged,
            data: &data,
            queue: &self.queue_state,
        };
        // Shortcut keys first, so that no widget sees them.
        let mut actions = shortcuts::handle(ui.ctx(), &ctx, self.shortcuts_open);
        egui::Panel::top("top_bar").show(ui, |ui| self.top_bar_ui(ui, &mut actions));
        egui::Panel::bottom("status_bar").show(ui, |ui| self.status_bar_ui(ui, &mut actions));
        let runs_panel = &mut self.runs_panel;
        egui::Panel::left("runs")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| actions.extend(runs_panel.ui(ui, &ctx)));
        let sweep = &mut self.sweep;
        let (dataset, setup, monitor, compare, improve, try_it) = (
            &mut self.dataset,
            &mut self.setup,
            &mut self.monitor,
            &mut self.compare,
            &mut self.improve,
            &mut self.try_it,
        );
        let notify = Arc::clone(&self.notify);
        egui::CentralPanel::default_margins().show(ui, |ui| {
            actions.extend(match ctx.prefs.tab {
                Tab::Dataset => dataset.ui(ui, &ctx),
                Tab::Setup => setup.ui(ui, &ctx),
                Tab::Monitor => monitor.ui(ui, &ctx),
                Tab::Compare => compare.ui(ui, &ctx),
                Tab::Improve => improve.ui(ui, &ctx, Some(notify)),
                Tab::TryIt => try_it.ui(ui, &ctx),
                Tab::Sweep => sweep.ui(ui, &ctx, Some(Arc::clone(&notify))),
            })
        });
        if self.shortcuts_open && shortcuts::help_ui(ui.ctx()) {
            actions.push(Action::ShowShortcuts(false));
        }
        if self.quit_asked {
            actions.extend(self.quit_ui(ui.ctx()));
        }
        if let Some((purpose, path)) = self.dialogs.ui(ui.ctx()) {
            self.dialog_chosen(ui.ctx(), purpose, path);
        }
        for action in actions {
            self.apply(action);
        }
    }
}

impl StudioApp {
    /// Says, when the window closes while runs train, that they keep training and where to
    /// watch them; stopping them is offered, never asked for.
    fn quit_ui(&self, ctx: &egui::Context) -> Option<Action> {
        let (followed, own) = self.training_counts();
        let mut choice = None;
        egui::Modal::new(egui::Id::unique("quit_while_training")).show(ctx, |ui| {
            ui.set_max_width(460.0);
            ui.heading("Runs are training");
            if followed > 0 {
                let runs = if followed == 1 {
                    "run keeps"
                } else {
                    "runs keep"
                };
                ui.label(format!(
                    "{followed} {runs} training in {} own process after this window closes.",
                    if followed == 1 { "its" } else { "their" }
                ));
                ui.label("To watch them, open this project again, or in a terminal:");
                ui.code(format!(
                    "hearth --project {} runs",
                    self.project.dir.display()
                ));
            }
            if own > 0 {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("{own} run(s) train inside this window and stop with it."),
                );
            }
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui.button("Close the window").clicked() {
                    choice = Some(QuitChoice::Quit);
                }
                if ui.button("Stay").clicked() {
                    choice = Some(QuitChoice::Stay);
                }
                if ui
                    .button("Stop them and close")
                    .on_hover_text("each run ends after its current step, with a checkpoint")
                    .clicked()
                {
                    choice = Some(QuitChoice::StopRunsAndQuit);
                }
            });
        });
        choice.map(Action::Quit)
    }

    /// Holds a close while runs train until the user has read what happens to them.
    fn guard_close(&mut self, ctx: &egui::Context) {
        if self.quitting {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if ctx.input(|i| i.viewport().close_requested()) {
            let (followed, own) = self.training_counts();
            if followed + own > 0 {
                ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                self.quit_asked = true;
            }
        }
    }
}

impl eframe::App for StudioApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.guard_close(ctx);
        // Seen training before its events are drained, so that even a run that ends within
        // one drain is watched.
        self.notifications
            .observe(&self.runs, self.prefs.notifications);
        if drain_events(&mut self.runs, Duration::from_millis(10)) {
            ctx.request_repaint();
        }
        self.notifications
            .observe(&self.runs, self.prefs.notifications);
        self.poll_sts();
        if !self.sts_jobs.is_empty() {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
        self.poll_imports();
        self.poll_exports();
        if !self.imports.is_empty() || !self.exports.is_empty() {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
        // Answers stream in (and models load) on any page; idle models are let go.
        if self.try_it.poll(ctx) {
            ctx.request_repaint();
        }
        self.try_it.idle(self.prefs.tab == Tab::TryIt);
        if self.sweep.poll() {
            ctx.request_repaint();
        }
        if self.try_it.is_working() {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
        if let Some((purpose, path)) = self.dialogs.poll() {
            self.dialog_chosen(ctx, purpose, path);
        }
        if let Some((rect, path)) = self.chart_to_export.take() {
            self.png_result = Some(crate::services::png::export_region(ctx, rect, path));
        }
        if let Some(Ok(result)) = self.png_result.as_ref().map(|rx| rx.try_recv()) {
            self.png_result = None;
            if let Err(err) = result {
                self.messages.push(err.to_string());
            }
        }
        self.dataset
            .poll(&dataset::preview_key(&self.project.file.draft));
        if self.dialogs.is_open() || self.dataset.is_loading() || self.png_result.is_some() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if self.watch_project() {
            ctx.request_repaint();
        }
        // A stage's events arrive on any page; the list learns of its new run when it ends.
        let was_improving = self.improve.is_running();
        if self.improve.poll() {
            ctx.request_repaint();
        }
        if was_improving && !self.improve.is_running() {
            self.apply(Action::ReloadRuns);
        }
        if self.improve.is_running() {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
        // Keep looking while some other process trains a run of this project.
        ctx.request_repaint_after(Duration::from_secs(1));
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        match ron::to_string(&self.prefs) {
            Ok(text) => storage.set_string(eframe::APP_KEY, text),
            Err(err) => log::warn!("preferences not saved: {err}"),
        }
        if let Err(err) = self.project.save() {
            log::warn!("project not saved: {err}");
        }
    }
}
