//! What the app's actions do to runs, the draft and the project folder, and what it reads
//! before a page draws.

use super::{DialogPurpose, StudioApp};
use crate::action::{QueueChange, QuitChoice};
use crate::pages::dataset;
use crate::run_view::RunView;
use crate::services::files::metrics_csv;
use crate::services::prefs::Tab;
use hearth_engine::events::RunControl;
use hearth_engine::export::{ExportFormat, Layout};
use hearth_engine::project::queue::RunQueue;
use hearth_engine::project::{Annotations, Project, RunStatus, RunStore};
use hearth_engine::spec::RunSpec;
use std::path::{Path, PathBuf};

/// What the app keeps of a model being imported in the background.
pub(crate) struct ImportTag {
    /// The folder or file imported.
    source: PathBuf,
    /// The new run's name.
    name: String,
    /// The new run's folder.
    run_dir: PathBuf,
}

/// What the app keeps of a run being exported in the background: its name and the format.
pub(crate) struct ExportTag {
    name: String,
    format: ExportFormat,
}

impl StudioApp {
    /// Re-reads the project's run list (keeping live runs).
    pub(super) fn reload_runs(&mut self) {
        let live: Vec<RunView> = self.runs.drain(..).filter(|r| r.is_live()).collect();
        self.damaged.clear();
        for entry in self.project.list_runs() {
            match entry {
                Ok(entry) if !live.iter().any(|r| r.dir == entry.dir) => {
                    self.runs.push(RunView::from_entry(entry));
                }
                Ok(_) => {}
                // Listed apart with its reason; the rest of the project opens as usual.
                Err(check) => self.damaged.push(check),
            }
        }
        self.runs.extend(live);
        self.selected = self.selected.filter(|&i| i < self.runs.len());
    }

    /// Uses the path chosen in a dialog.
    pub(super) fn dialog_chosen(
        &mut self,
        ctx: &egui::Context,
        purpose: DialogPurpose,
        path: PathBuf,
    ) {
        match purpose {
            DialogPurpose::Project => self.open_project(&path),
            DialogPurpose::Run => match self.project.add_external_run(&path) {
                Ok(_) => {
                    self.reload_runs();
                    self.selected = self.runs.iter().position(|r| r.dir == path);
                    self.prefs.tab = Tab::Monitor;
                }
                Err(err) => self.messages.push(err.to_string()),
            },
            DialogPurpose::MetricsCsv(dir) => {
                if let Some(run) = self.runs.iter_mut().find(|r| r.dir == dir) {
                    run.ensure_history();
                    let csv = run.history.as_ref().map(metrics_csv).unwrap_or_default();
                    if let Err(err) = std::fs::write(&path, csv) {
                        self.messages.push(format!("{}: {err}", path.display()));
                    }
                }
            }
            DialogPurpose::Export(run_dir, format) => self.export_run(&run_dir, &path, format),
            DialogPurpose::Import => self.import_model(&path),
            DialogPurpose::ChartPng(rect) => {
                // Taken on the next frame: this one may still show the in-app picker over
                // the chart.
                self.chart_to_export = Some((rect, path));
                ctx.request_repaint();
            }
            DialogPurpose::Data(pick) => {
                dataset::apply_pick(&mut self.project.file.draft.data, pick, path);
            }
            DialogPurpose::ObjectiveFile(key) => {
                let objective = &mut self.project.file.draft.objective;
                if let Some(setting) = objective.settings().into_iter().find(|s| s.key == key) {
                    setting.write(
                        objective,
                        hearth_engine::objective::SettingValue::Text(path.display().to_string()),
                    );
                }
            }
            DialogPurpose::Sts(run_dir) => self.evaluate_sts(run_dir, path),
        }
    }

    /// Writes the run's newest checkpoint as `format` in the background: into the folder
    /// `chosen` (or, when that folder already has files, a new `<run>-<format>` folder inside
    /// it), or to the file `chosen` for GGUF. The status bar shows it until it ends, then says
    /// where it went or why not (see [`StudioApp::poll_exports`]).
    pub(super) fn export_run(&mut self, run_dir: &Path, chosen: &Path, format: ExportFormat) {
        let name = self
            .runs
            .iter()
            .find(|r| r.dir == run_dir)
            .map(|r| r.name().to_string())
            .unwrap_or_else(|| "run".to_string());
        let occupied = std::fs::read_dir(chosen).is_ok_and(|mut e| e.next().is_some());
        let out = if occupied && !format.is_file() {
            let slug: String = name
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let suffix = match format {
                ExportFormat::Peft => "peft",
                _ => "hf",
            };
            let mut out = chosen.join(format!("{slug}-{suffix}"));
            let mut n = 2;
            while out.exists() {
                out = chosen.join(format!("{slug}-{suffix}-{n}"));
                n += 1;
            }
            out
        } else {
            chosen.to_path_buf()
        };
        let what = format!("exporting {name} as a {}", format.label());
        let run_dir = run_dir.to_path_buf();
        let tag = ExportTag { name, format };
        let started = self.exports.start(tag, what, "hearth-export", move || {
            // The weights are only read and written: the pure-Rust backend needs no set-up.
            let device = hearth_engine::backend::BackendKind::Flex
                .device()
                .map_err(|e| e.to_string())?;
            hearth_engine::export::export_as(&run_dir, &out, format, &device)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = started {
            self.messages.push(e);
        }
    }

    /// Says where finished exports went, or why they failed.
    pub(super) fn poll_exports(&mut self) {
        for (tag, result) in self.exports.finished() {
            self.messages.push(match result {
                Ok(summary) => format!(
                    "exported {} (step {}) as a {} to {}",
                    tag.name,
                    summary.step,
                    tag.format.label(),
                    summary.dir.display()
                ),
                Err(err) => format!("cannot export {}: {err}", tag.name),
            });
        }
    }

    /// Scores the newest checkpoint of the run in `run_dir` on the STS file `path` in the
    /// background, recording Spearman and Pearson in its history; the result is said in the
    /// status bar when it comes (see [`StudioApp::poll_sts`]).
    pub(super) fn evaluate_sts(&mut self, run_dir: PathBuf, path: PathBuf) {
        let name = self
            .runs
            .iter()
            .find(|r| r.dir == run_dir)
            .map(|r| r.name().to_string())
            .unwrap_or_else(|| "run".to_string());
        let what = format!("scoring {name} on {}", path.display());
        let started = self.sts_jobs.start((), what, "hearth-sts", move || {
            hearth_engine::export::record_sts(&run_dir, &path)
                .map(|(step, score)| {
                    format!(
                        "{name} at step {step} on {}: Spearman {:.4}, Pearson {:.4} ({} pairs; recorded on its metrics chart)",
                        path.display(),
                        score.spearman,
                        score.pearson,
                        score.pairs
                    )
                })
                .map_err(|e| format!("cannot score {name} on {}: {e}", path.display()))
        });
        if let Err(e) = started {
            self.messages.push(e);
        }
    }

    /// Says how finished STS evaluations went and shows their recorded scores.
    pub(super) fn poll_sts(&mut self) {
        let done = self.sts_jobs.finished();
        if done.is_empty() {
            return;
        }
        for ((), result) in done {
            self.messages.push(match result {
                Ok(text) | Err(text) => text,
            });
        }
        self.reload_runs();
    }

    /// Imports a model as a new run of the project in the background: a Hugging Face folder
    /// (GPT-2, BERT, a sentence-transformers encoder, a Llama-family model) or a GGUF file. The
    /// status bar shows it until it ends (see [`StudioApp::poll_imports`]).
    pub(super) fn import_model(&mut self, source: &Path) {
        let gguf = source.is_file();
        let base = source
            .file_stem()
            .filter(|_| gguf)
            .or_else(|| source.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported".to_string());
        // Two imports of one model at once still get names and folders of their own.
        let mut name = self.project.unique_run_name(&base);
        let mut n = 2;
        while self.imports.tags().any(|j| j.name == name) {
            name = self.project.unique_run_name(&format!("{base}-{n}"));
            n += 1;
        }
        let run_dir = self.project.new_run_dir(&name);
        let (from, to, run_name) = (source.to_path_buf(), run_dir.clone(), name.clone());
        let what = format!(
            "importing {} as run {name}",
            source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let tag = ImportTag {
            source: source.to_path_buf(),
            name,
            run_dir,
        };
        let started = self.imports.start(tag, what, "hearth-import", move || {
            let device = hearth_engine::backend::BackendKind::Flex
                .device()
                .map_err(|e| e.to_string())?;
            if gguf {
                hearth_engine::export::import_gguf(&from, &to, &run_name, &device)
            } else {
                hearth_engine::export::import_hf(&from, &to, &run_name, &device)
            }
            .map_err(|e| e.to_string())
        });
        if let Err(e) = started {
            self.messages.push(e);
        }
    }

    /// Lists the runs of finished imports and shows the newest one; says why an import failed.
    pub(super) fn poll_imports(&mut self) {
        for (tag, result) in self.imports.finished() {
            let ImportTag {
                source,
                name,
                run_dir,
            } = tag;
            match result {
                Ok(summary) => {
                    self.reload_runs();
                    self.selected = self.runs.iter().position(|r| r.dir == summary.run_dir);
                    self.prefs.tab = Tab::Monitor;
                    let tip = if Layout::of(&summary.spec).decoder {
                        "; ask it on the Try it page"
                    } else {
                        ""
                    };
                    self.messages.push(format!(
                        "imported {} as run {name} ({} parameters){tip}",
                        source.display(),
                        dataset::results::thousands(summary.n_params)
                    ));
                }
                Err(err) => {
                    // A half-written folder would list as damaged: it goes.
                    if run_dir.exists() {
                        let _ = std::fs::remove_dir_all(&run_dir);
                    }
                    self.messages
                        .push(format!("cannot import {}: {err}", source.display()));
                }
            }
        }
    }

    pub(super) fn open_project(&mut self, dir: &Path) {
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

    /// Starts a run from the draft; invalid settings stay on the setup page with their
    /// messages at the fields.
    pub(super) fn start_run(&mut self) {
        let mut spec = self.project.file.draft.clone();
        let errors = spec.validate();
        if !errors.is_empty() {
            self.messages.push(format!(
                "run not started: {} setting(s) need fixing",
                errors.len()
            ));
            return;
        }
        if let Err(err) = self.project.save() {
            self.messages.push(format!("settings not saved: {err}"));
        }
        // A second run from the same draft gets a name of its own (`shk`, `shk-2`, ...).
        spec.name = self.project.unique_run_name(&spec.name);
        let dir = self.project.new_run_dir(&spec.name);
        // Every start goes through the project's queue: it starts at once when there is room.
        if let Err(err) = hearth_engine::train::prepare_run(spec.clone(), &dir) {
            self.messages.push(format!("run not started: {err}"));
            return;
        }
        self.runs.push(RunView::queued(spec, dir.clone()));
        self.selected = Some(self.runs.len() - 1);
        self.prefs.tab = Tab::Monitor;
        if let Err(err) = self.queue().push(&dir) {
            self.messages.push(format!("run not started: {err}"));
            return;
        }
        self.dispatch_queue();
    }

    /// The project's run queue.
    pub(super) fn queue(&self) -> RunQueue {
        RunQueue::new(&self.project.dir)
    }

    /// Reads the project's queue for the pages (a queue file that does not read is said).
    pub(super) fn read_queue(&mut self) {
        match self.queue().read() {
            Ok(state) => self.queue_state = state,
            Err(err) => {
                let message = format!("the run queue: {err}");
                if self.messages.last() != Some(&message) {
                    self.messages.push(message);
                }
            }
        }
    }

    /// Starts the queued runs that fit now and follows them. The queue file is read once when
    /// nothing waits (each second, on the project watch).
    pub(super) fn dispatch_queue(&mut self) {
        self.read_queue();
        if self.queue_state.waiting.is_empty() {
            return;
        }
        let mut started = Vec::new();
        let (launcher, notify) = (self.launcher.clone(), self.notify.clone());
        let result = self
            .queue()
            .dispatch_beside(&self.project.run_dirs(), |dir| {
                let handle = launcher
                    .start(dir, false, notify.clone())
                    .map_err(|e| e.to_string())?;
                started.push(handle);
                Ok(())
            });
        if let Err(err) = result {
            let message = format!("the run queue: {err}");
            if self.messages.last() != Some(&message) {
                self.messages.push(message);
            }
        }
        if started.is_empty() {
            return;
        }
        self.read_queue();
        if started
            .iter()
            .any(|h| !self.runs.iter().any(|r| r.dir == h.dir))
        {
            self.reload_runs();
        }
        for handle in started {
            if let Some(run) = self.runs.iter_mut().find(|r| r.dir == handle.dir) {
                run.adopt(handle);
            }
        }
    }

    /// Starts, cancels or moves a waiting run.
    pub(super) fn change_queue(&mut self, index: usize, change: QueueChange) {
        let Some(dir) = self.runs.get(index).map(|r| r.dir.clone()) else {
            return;
        };
        let queue = self.queue();
        let result = match change {
            QueueChange::Shift(by) => queue.shift(&dir, by),
            QueueChange::Cancel => queue.cancel(&dir).map(|_| ()),
            QueueChange::StartNow => {
                let mut handle = None;
                let (launcher, notify) = (self.launcher.clone(), self.notify.clone());
                let started = queue.start_now(&dir, |d| {
                    handle = Some(
                        launcher
                            .start(d, false, notify)
                            .map_err(|e| e.to_string())?,
                    );
                    Ok(())
                });
                if let (Some(handle), Some(run)) = (handle, self.runs.get_mut(index)) {
                    run.adopt(handle);
                }
                started
            }
        };
        if let Err(err) = result {
            self.messages.push(err.to_string());
        }
        self.read_queue();
        if change == QueueChange::Cancel
            && let Some(run) = self.runs.get_mut(index)
            && let Ok(status) = RunStore::open(&run.dir).and_then(|s| s.status())
        {
            run.status = status;
        }
    }

    /// Runs this window follows whose workers are other processes (they keep training when it
    /// closes), and those on its own threads (they stop with it).
    pub(super) fn training_counts(&self) -> (usize, usize) {
        let live = self.runs.iter().filter_map(|r| r.live.as_ref());
        let (followed, own): (Vec<_>, Vec<_>) = live.partition(|l| l.handle.is_followed());
        (followed.len(), own.len())
    }

    /// Acts on the answer to the question shown when the window closes while runs train.
    pub(super) fn answer_quit(&mut self, choice: QuitChoice) {
        self.quit_asked = false;
        match choice {
            QuitChoice::Stay => {}
            QuitChoice::Quit => self.quitting = true,
            QuitChoice::StopRunsAndQuit => {
                for live in self.runs.iter().filter_map(|r| r.live.as_ref()) {
                    live.handle.send(RunControl::Stop);
                }
                self.quitting = true;
            }
        }
    }

    /// Replaces a run's name, tags and notes; `save` writes them into its store.
    pub(super) fn annotate(&mut self, index: usize, annotations: Annotations, save: bool) {
        let Some(run) = self.runs.get_mut(index) else {
            return;
        };
        run.annotations = annotations;
        if save {
            let result = RunStore::open(&run.dir).and_then(|s| s.set_annotations(&run.annotations));
            if let Err(err) = result {
                self.messages.push(format!("not saved: {err}"));
            }
        }
    }

    /// Puts settings derived from a run into the draft and shows the setup page.
    pub(super) fn draft_from(&mut self, index: usize, derive: fn(&RunView) -> RunSpec) {
        if let Some(run) = self.runs.get(index) {
            self.project.file.draft = derive(run);
            self.prefs.tab = Tab::Setup;
        }
    }

    /// Moves a run folder to the project's trash; Undo brings it back.
    pub(super) fn delete_run(&mut self, index: usize) {
        let Some(run) = self.runs.get(index) else {
            return;
        };
        if run.is_live() {
            self.messages
                .push("stop the run before deleting it".to_string());
            return;
        }
        let from = run.dir.clone();
        if let Err(err) = self.trash.delete(&self.project.dir, &from) {
            self.messages
                .push(format!("cannot delete {}: {err}", from.display()));
            return;
        }
        self.runs.remove(index);
        self.selected = None;
        self.forget_external(&from);
    }

    /// An external run leaves the project's list when it moves to the trash (and returns on
    /// undo).
    fn forget_external(&mut self, dir: &Path) {
        let external = &mut self.project.file.external_runs;
        if let Some(pos) = external.iter().position(|d| d == dir) {
            external.remove(pos);
            if let Err(err) = self.project.save() {
                self.messages.push(format!("project not saved: {err}"));
            }
        }
    }

    /// Moves a damaged run folder to the project's trash (Undo brings it back, still damaged).
    pub(super) fn trash_damaged(&mut self, dir: &Path) {
        if let Err(err) = self.trash.delete(&self.project.dir, dir) {
            self.messages
                .push(format!("cannot move {} to the trash: {err}", dir.display()));
            return;
        }
        self.damaged.retain(|d| d.dir != dir);
        self.forget_external(dir);
    }

    /// Runs that other processes write into the project (`hearth train`, an MPI job) show up
    /// and move live: at most once a second, new run folders join the list, and a run another
    /// process is training re-reads its status, last step and, once shown, its history.
    /// Returns whether anything changed.
    pub(super) fn watch_project(&mut self) -> bool {
        if self.watched.elapsed() < std::time::Duration::from_secs(1) {
            return false;
        }
        self.watched = std::time::Instant::now();
        let mut changed = false;
        let on_disk = self.project.run_dirs();
        let known = |dir: &PathBuf| {
            self.runs.iter().any(|r| r.dir == *dir) || self.damaged.iter().any(|d| d.dir == *dir)
        };
        if on_disk.iter().any(|d| !known(d)) {
            // The list is read again; the selection and the compare ticks stay with their runs.
            let selected = self
                .selected
                .and_then(|i| self.runs.get(i))
                .map(|r| r.dir.clone());
            let ticked: Vec<PathBuf> = self
                .runs
                .iter()
                .filter(|r| r.checked)
                .map(|r| r.dir.clone())
                .collect();
            self.reload_runs();
            for run in &mut self.runs {
                run.checked = ticked.contains(&run.dir);
            }
            self.selected = selected.and_then(|d| self.runs.iter().position(|r| r.dir == d));
            changed = true;
        }
        // Runs that wait may have been started by another process (a worker that ended).
        self.dispatch_queue();
        let notify = self.notify.clone();
        for run in self.runs.iter_mut().filter(|r| {
            r.live.is_none()
                && matches!(
                    r.status,
                    RunStatus::Queued | RunStatus::Created | RunStatus::Running | RunStatus::Paused
                )
        }) {
            let Ok(store) = RunStore::open(&run.dir) else {
                continue;
            };
            if let Ok(status) = store.status() {
                let status = hearth_engine::project::live::effective_status(&run.dir, status);
                if status != run.status {
                    run.status = status;
                    changed = true;
                }
            }
            // Trained by any process: follow it live.
            if run.status.is_active() {
                match run.attach(notify.clone()) {
                    Ok(()) => changed = true,
                    Err(err) => run.error = Some(err.to_string()),
                }
                continue;
            }
            if let Ok(last) = store.last_step()
                && last != run.last_step
            {
                run.last_step = last;
                // Read again by the page that shows it.
                if run.history.is_some() {
                    run.history = None;
                }
                changed = true;
            }
        }
        changed
    }

    /// Restores the most recently deleted run.
    pub(super) fn undo_delete(&mut self) {
        let from = match self.trash.undo() {
            None => return,
            Some(Err(err)) => {
                self.messages.push(err.to_string());
                return;
            }
            Some(Ok(from)) => from,
        };
        if !from.starts_with(self.project.runs_dir())
            && let Err(err) = self.project.add_external_run(&from)
        {
            self.messages.push(err.to_string());
        }
        self.reload_runs();
        self.selected = self.runs.iter().position(|r| r.dir == from);
    }

    /// Reads what the page about to be drawn shows (histories, smoothed curves, stored
    /// attention), so pages only read.
    pub(super) fn prepare_runs(&mut self) {
        let settings = self.prefs.smooth_settings();
        match self.prefs.tab {
            Tab::Monitor => {
                if let Some(run) = self.selected.and_then(|i| self.runs.get_mut(i)) {
                    run.ensure_history();
                    if settings.weight > 0.0 {
                        run.curves.smoothed(settings);
                        run.curves.smooth_terms(settings);
                    }
                    run.curves.train_index();
                    // Finished runs show the last stored snapshot; live runs wait for the
                    // worker's (reading the store on every step would be I/O for nothing).
                    if run.live.is_none() {
                        run.attention_near(run.last_step.map_or(0, |(s, _)| s));
                    }
                }
            }
            Tab::Compare => {
                for run in self.runs.iter_mut().filter(|r| r.checked) {
                    run.ensure_history();
                    run.curves.smoothed(settings);
                    run.curves.smooth_terms(settings);
                }
                let shown = self.compare.shown_runs(&self.runs);
                if let Some((pair, step)) = self.compare.side_by_side(&self.runs, &shown) {
                    for i in pair {
                        self.runs[i].attention_near(step);
                    }
                }
            }
            Tab::Dataset | Tab::Setup | Tab::Improve | Tab::TryIt | Tab::Sweep => {}
        }
    }
}
