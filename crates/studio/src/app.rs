//! Studio state, the event loop that drains run workers, and the window layout.

use super::dataset::DatasetState;
use hearth_engine::model::SpecError;
use hearth_engine::project::Annotations;
use hearth_engine::project::{Project, RunEntry, RunHistory, RunStatus, RunStore};
use hearth_engine::spec::RunSpec;
use hearth_engine::events::{AttentionSnapshot, EmbeddingSnapshot};
use hearth_engine::train::worker::Notify;
use hearth_engine::train::{EvalMetrics, StepMetrics};
use hearth_engine::train::{RunControl, RunEvent, RunHandle, spawn_run};
use hearth_engine::viz::lod::BlockIndex;
use hearth_engine::viz::smoothing::{EmaState, SmoothingKind, tau_for_weight};
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
    /// EMA weight applied to training-loss curves (0 = raw); for the time-weighted EMA it sets
    /// the time constant `tau = -1 / ln(weight)` steps.
    pub smoothing: f64,
    pub smoothing_kind: SmoothingKind,
    /// Smooth `ln(loss)` instead of the loss, so spikes weigh less.
    pub smooth_in_log_space: bool,
    pub log_y: bool,
    pub x_axis: XAxis,
}

/// What the x axis of loss plots measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum XAxis {
    #[default]
    Step,
    Tokens,
    WallTime,
}

impl XAxis {
    pub const ALL: [XAxis; 3] = [XAxis::Step, XAxis::Tokens, XAxis::WallTime];

    pub fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Tokens => "tokens",
            XAxis::WallTime => "seconds",
        }
    }
}

/// The smoothing a plot asks for; part of the cache key of smoothed curves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothSettings {
    pub kind: SmoothingKind,
    pub weight: f64,
    pub log_space: bool,
}

impl Prefs {
    pub fn smooth_settings(&self) -> SmoothSettings {
        SmoothSettings {
            kind: self.smoothing_kind,
            weight: self.smoothing,
            log_space: self.smooth_in_log_space,
        }
    }
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            project_dir: None,
            tab: Tab::Dataset,
            smoothing: 0.8,
            smoothing_kind: SmoothingKind::DebiasedEma,
            smooth_in_log_space: false,
            log_y: false,
            x_axis: XAxis::Step,
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

impl LiveRun {
    /// A run just started: its size and device arrive with the `Started` event.
    fn new(handle: RunHandle, total_steps: usize) -> Self {
        Self {
            handle,
            total_steps,
            n_params: 0,
            device: String::new(),
            attention: None,
            started: Instant::now(),
        }
    }
}

/// A run's curves as columns, appended as events arrive (never rebuilt per frame).
#[derive(Debug, Default, Clone)]
pub struct Curves {
    pub step: Vec<f64>,
    pub tokens: Vec<f64>,
    pub secs: Vec<f64>,
    /// Training loss of every step.
    pub train: Vec<f64>,
    pub val_step: Vec<f64>,
    pub val_tokens: Vec<f64>,
    pub val_secs: Vec<f64>,
    pub val: Vec<f64>,
    /// Training loss estimated at each evaluation.
    pub eval_train: Vec<f64>,
    /// Objective metrics by name, one value per evaluation (aligned with `val_step`).
    pub metrics: std::collections::BTreeMap<String, Vec<f64>>,
    smooth: SmoothCache,
    train_index: BlockIndex,
}

/// The smoothed training curve for one setting, extended incrementally while a run trains.
#[derive(Debug, Default, Clone)]
struct SmoothCache {
    key: Option<(SmoothingKindKey, u64, bool)>,
    state: EmaState,
    values: Vec<f64>,
    index: BlockIndex,
}

type SmoothingKindKey = u8;

impl Curves {
    pub fn push_step(&mut self, m: &StepMetrics) {
        self.step.push(m.step as f64);
        self.tokens.push(m.tokens_seen as f64);
        self.secs.push(m.elapsed_s);
        self.train.push(f64::from(m.train_loss));
    }

    pub fn push_eval(&mut self, e: &EvalMetrics, tokens_per_step: f64) {
        self.val_step.push(e.step as f64);
        self.val_tokens.push(e.step as f64 * tokens_per_step);
        self.val_secs.push(e.elapsed_s);
        self.val.push(f64::from(e.val_loss));
        self.eval_train.push(f64::from(e.train_loss));
        let n = self.val.len();
        for (key, value) in &e.extra {
            let column = self.metrics.entry(key.clone()).or_default();
            // A metric missing at earlier evaluations is NaN there (not drawn).
            column.resize(n - 1, f64::NAN);
            column.push(*value);
        }
    }

    fn from_history(history: &RunHistory, tokens_per_step: f64) -> Self {
        let mut curves = Curves::default();
        for m in &history.steps {
            curves.push_step(m);
        }
        for e in &history.evals {
            curves.push_eval(e, tokens_per_step);
        }
        curves
    }

    pub fn xs(&self, axis: XAxis) -> &[f64] {
        match axis {
            XAxis::Step => &self.step,
            XAxis::Tokens => &self.tokens,
            XAxis::WallTime => &self.secs,
        }
    }

    pub fn val_xs(&self, axis: XAxis) -> &[f64] {
        match axis {
            XAxis::Step => &self.val_step,
            XAxis::Tokens => &self.val_tokens,
            XAxis::WallTime => &self.val_secs,
        }
    }

    /// The last smoothed curve computed by [`Curves::smoothed`].
    pub fn smoothed_values(&self) -> &[f64] {
        &self.smooth.values
    }

    /// The training curve smoothed at full resolution (before any down-sampling); computed
    /// once per setting and extended as steps arrive.
    pub fn smoothed(&mut self, settings: SmoothSettings) -> &[f64] {
        let kind = match settings.kind {
            SmoothingKind::DebiasedEma => 0,
            SmoothingKind::TimeWeightedEma => 1,
        };
        let key = (kind, settings.weight.to_bits(), settings.log_space);
        let cache = &mut self.smooth;
        if cache.key != Some(key) || cache.values.len() > self.train.len() {
            *cache = SmoothCache {
                key: Some(key),
                ..SmoothCache::default()
            };
        }
        let from = cache.values.len();
        if from < self.train.len() {
            let ys: Vec<f64> = if settings.log_space {
                self.train[from..]
                    .iter()
                    .map(|y| y.max(1e-12).ln())
                    .collect()
            } else {
                self.train[from..].to_vec()
            };
            let mut out = Vec::with_capacity(ys.len());
            match settings.kind {
                SmoothingKind::DebiasedEma => {
                    cache.state.extend_debiased(&ys, settings.weight, &mut out)
                }
                SmoothingKind::TimeWeightedEma => cache.state.extend_time_weighted(
                    &self.step[from..],
                    &ys,
                    tau_for_weight(settings.weight),
                    &mut out,
                ),
            }
            if settings.log_space {
                out.iter_mut().for_each(|v| *v = v.exp());
            }
            cache.values.extend(out);
            cache.index.extend(&cache.values);
        }
        &cache.values
    }

    /// The min/max block index of the smoothed curve (as of the last [`Curves::smoothed`]).
    pub fn smoothed_index(&self) -> &BlockIndex {
        &self.smooth.index
    }

    /// The min/max block index of the raw training curve, brought up to date.
    pub fn train_index(&mut self) -> &BlockIndex {
        self.train_index.extend(&self.train);
        &self.train_index
    }

    /// The raw training curve's index as last refreshed by [`Curves::train_index`].
    pub fn train_index_ref(&self) -> &BlockIndex {
        &self.train_index
    }
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
    pub annotations: Annotations,
    /// The latest contrastive batch view and masked probe (runs training in this session).
    pub contrastive_view: Option<hearth_engine::events::ContrastiveBatch>,
    pub masked_view: Option<hearth_engine::events::MaskedProbe>,
    /// Embedding maps of the probe set, in step order.
    pub embedding_maps: Vec<EmbeddingSnapshot>,
    /// Attention snapshot read from the store: `(requested step, snapshot at or before it)`.
    pub stored_attention: Option<(usize, Option<AttentionSnapshot>)>,
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
            annotations: entry.annotations,
            stored_attention: None,
            embedding_maps: Vec::new(),
            contrastive_view: None,
            masked_view: None,
        }
    }

    /// The stored attention snapshot at or before `step` (cached per requested step).
    pub fn attention_near(&mut self, step: usize) -> Option<&AttentionSnapshot> {
        if self.stored_attention.as_ref().map(|(s, _)| *s) != Some(step) {
            let found = RunStore::open(&self.dir).ok().and_then(|store| {
                let steps = store.attention_steps().ok()?;
                let at = steps.iter().rev().find(|&&s| s <= step).or(steps.first())?;
                store.attention_at(*at).ok().flatten()
            });
            self.stored_attention = Some((step, found));
        }
        self.stored_attention.as_ref().and_then(|(_, s)| s.as_ref())
    }

    pub fn tokens_per_step(&self) -> f64 {
        (self.spec.train.batch_size * self.spec.model.context) as f64
    }

    /// Loads the history from the store if it is not loaded yet.
    pub fn ensure_history(&mut self) {
        if self.history.is_some() {
            return;
        }
        // One open of the store for both reads.
        let loaded = RunStore::open(&self.dir).and_then(|store| {
            self.embedding_maps = store.embedding_maps()?;
            store.load_history()
        });
        match loaded {
            Ok(history) => {
                self.curves = Curves::from_history(&history, self.tokens_per_step());
                self.history = Some(history);
            }
            Err(err) => {
                self.error = Some(err.to_string());
                self.history = Some(RunHistory::default());
            }
        }
    }

    /// The name the user gave it, else the spec's.
    pub fn name(&self) -> &str {
        self.annotations
            .display_name
            .as_deref()
            .unwrap_or(&self.spec.name)
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
                self.curves.push_step(&m);
                self.last_step = Some((m.step, m.train_loss));
                history.steps.push(m);
            }
            RunEvent::Eval(e) => {
                let tokens_per_step = (self.spec.train.batch_size * self.spec.model.context) as f64;
                self.curves.push_eval(&e, tokens_per_step);
                history.evals.push(e);
            }
            RunEvent::Attention(snapshot) => {
                if let Some(live) = &mut self.live {
                    live.attention = Some(snapshot);
                }
            }
            RunEvent::EmbeddingMap(map) => self.embedding_maps.push(map),
            RunEvent::ContrastiveBatch(view) => self.contrastive_view = Some(view),
            RunEvent::MaskedProbe(view) => self.masked_view = Some(view),
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
    /// The contrastive batch heatmap's texture.
    pub contrastive_texture: Option<(u64, egui::TextureHandle)>,
    /// Which embedding map the monitor shows (`None`: the newest).
    pub embedding_map_index: Option<usize>,
    /// The heatmap texture and the (run, step, layer, head) key it shows.
    pub attention_texture: Option<(u64, egui::TextureHandle)>,
    /// Textures of the side-by-side attention maps on the compare page.
    pub compare_textures: [Option<(u64, egui::TextureHandle)>; 2],
    /// Deleted runs, newest last: (where it was, where it is in the trash).
    pub trash: Vec<(PathBuf, PathBuf)>,
    /// How the compare page orders runs.
    pub compare_sort: CompareSort,
    /// The step the compare page shows samples and attention at.
    pub compare_step: usize,
    /// Draw seed groups as mean ± std instead of one line per run.
    pub compare_groups: bool,
    /// Seed groups and their aggregates, and what they were computed from.
    pub compare_cache: Option<(super::compare::CompareKey, super::compare::Groups)>,
    /// The outcome of a chart export, once the screenshot is written.
    png_result: Option<Receiver<Result<(), String>>>,
    save_dialog: Option<(SaveKind, Receiver<Option<PathBuf>>)>,
    picked_folder: Option<(FolderPick, Receiver<Option<PathBuf>>)>,
    notify: Notify,
}

/// How the compare page orders its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompareSort {
    #[default]
    ListOrder,
    BestValLoss,
    LastValLoss,
}

/// What a save dialog was opened for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SaveKind {
    /// The metrics of run `index` as CSV.
    MetricsCsv(usize),
    /// The chart in this screen rectangle as PNG.
    ChartPng(egui::Rect),
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
        // An explicit choice (flag, then environment) wins over the last project opened.
        let dir = project_dir
            .or_else(|| std::env::var_os("HEARTH_PROJECT").map(PathBuf::from))
            .or_else(|| prefs.project_dir.clone())
            .unwrap_or_else(hearth_engine::project::default_project_dir);
        let mut app = Self::with_project(cc.egui_ctx.clone(), &dir, prefs);
        app.messages.extend(warnings);
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
            embedding_map_index: None,
            contrastive_texture: None,
            attention_texture: None,
            compare_textures: [None, None],
            trash: Vec::new(),
            compare_sort: CompareSort::ListOrder,
            compare_step: 0,
            compare_groups: true,
            compare_cache: None,
            png_result: None,
            save_dialog: None,
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
                    live: Some(LiveRun::new(handle, total_steps)),
                    checked: false,
                    error: None,
                    annotations: Annotations::default(),
                    stored_attention: None,
                    embedding_maps: Vec::new(),
                    contrastive_view: None,
                    masked_view: None,
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

    /// Saves a run's name, tags and notes into its store.
    pub fn save_annotations(&mut self, index: usize) {
        let Some(run) = self.runs.get(index) else {
            return;
        };
        let result = RunStore::open(&run.dir).and_then(|s| s.set_annotations(&run.annotations));
        if let Err(err) = result {
            self.messages.push(format!("not saved: {err}"));
        }
    }

    /// Moves a run folder to the project's trash; [`StudioApp::undo_delete`] brings it back.
    pub fn delete_run(&mut self, index: usize) {
        let Some(run) = self.runs.get(index) else {
            return;
        };
        if run.is_live() {
            self.messages
                .push("stop the run before deleting it".to_string());
            return;
        }
        let trash = self.project.dir.join(".trash");
        let name = run
            .dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let mut target = trash.join(&name);
        let mut n = 2;
        while target.exists() {
            target = trash.join(format!("{}-{n}", name.to_string_lossy()));
            n += 1;
        }
        let moved =
            std::fs::create_dir_all(&trash).and_then(|()| std::fs::rename(&run.dir, &target));
        match moved {
            Ok(()) => {
                let from = run.dir.clone();
                self.trash.push((from.clone(), target));
                self.runs.remove(index);
                self.selected = None;
                // An external run leaves the project's list too (and returns on undo).
                if let Some(pos) = self
                    .project
                    .file
                    .external_runs
                    .iter()
                    .position(|d| *d == from)
                {
                    self.project.file.external_runs.remove(pos);
                    let _ = self.project.save();
                }
            }
            Err(err) => self
                .messages
                .push(format!("cannot delete {}: {err}", run.dir.display())),
        }
    }

    /// Restores the most recently deleted run.
    pub fn undo_delete(&mut self) {
        let Some((from, trashed)) = self.trash.pop() else {
            return;
        };
        if let Err(err) = std::fs::rename(&trashed, &from) {
            self.messages
                .push(format!("cannot restore {}: {err}", from.display()));
            return;
        }
        if !from.starts_with(self.project.runs_dir()) {
            let _ = self.project.add_external_run(&from);
        }
        self.reload_runs();
        self.selected = self.runs.iter().position(|r| r.dir == from);
    }

    /// Copies a run's settings into the setup page as a new variant.
    pub fn clone_settings(&mut self, index: usize) {
        let Some(run) = self.runs.get(index) else {
            return;
        };
        let mut spec = run.spec.clone();
        spec.name = format!("{}-variant", run.name());
        self.project.file.draft = spec;
        self.prefs.tab = Tab::Setup;
    }

    /// Starts a fine-tuning variant of a finished run on the setup page: same shape, its newest
    /// checkpoint as the starting point, a tenth of the learning rate.
    pub fn fine_tune_from(&mut self, index: usize) {
        let Some(run) = self.runs.get(index) else {
            return;
        };
        let mut spec = run.spec.clone();
        spec.name = format!("{}-fine-tune", run.name());
        spec.init = Some(hearth_engine::spec::InitSpec {
            from_run: run.dir.clone(),
            ..Default::default()
        });
        self.project.file.draft = spec;
        self.prefs.tab = Tab::Setup;
    }

    /// Continues a stopped or failed run from its last checkpoint.
    pub fn resume_run(&mut self, index: usize) {
        let Some(run) = self.runs.get_mut(index) else {
            return;
        };
        match hearth_engine::train::spawn_resume(&run.dir, Some(self.notify.clone())) {
            Ok(handle) => {
                let total_steps = run.spec.train.steps;
                // The store dropped what came after the checkpoint; reload to match.
                run.history = None;
                run.ensure_history();
                run.status = RunStatus::Running;
                run.live = Some(LiveRun::new(handle, total_steps));
            }
            Err(err) => self.messages.push(format!("cannot resume: {err}")),
        }
    }

    /// Writes every step's metrics of a run as CSV.
    pub fn export_metrics_csv(&mut self, index: usize, path: &Path) {
        let Some(run) = self.runs.get_mut(index) else {
            return;
        };
        run.ensure_history();
        let history = run.history.as_ref().expect("loaded above");
        let mut csv = String::from(
            "step,train_loss,lr,grad_norm,tokens_per_s,elapsed_s,tokens_seen,val_loss\n",
        );
        let mut evals = history.evals.iter().peekable();
        for m in &history.steps {
            let val = match evals.peek() {
                Some(e) if e.step == m.step => evals.next().map(|e| e.val_loss.to_string()),
                _ => None,
            };
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                m.step,
                m.train_loss,
                m.lr,
                m.grad_norm,
                m.tokens_per_s,
                m.elapsed_s,
                m.tokens_seen,
                val.unwrap_or_default()
            ));
        }
        if let Err(err) = std::fs::write(path, csv) {
            self.messages.push(format!("{}: {err}", path.display()));
        }
    }

    /// Opens a save dialog (off the UI thread) for `kind`.
    pub fn ask_save(&mut self, kind: SaveKind, default_name: &str) {
        let (tx, rx) = channel();
        let name = default_name.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(rfd::FileDialog::new().set_file_name(name).save_file());
        });
        self.save_dialog = Some((kind, rx));
    }

    fn poll_save_dialog(&mut self, ctx: &egui::Context) {
        let Some((kind, rx)) = &self.save_dialog else {
            return;
        };
        let kind = *kind;
        let Ok(choice) = rx.try_recv() else { return };
        self.save_dialog = None;
        let Some(path) = choice else { return };
        match kind {
            SaveKind::MetricsCsv(index) => self.export_metrics_csv(index, &path),
            SaveKind::ChartPng(rect) => {
                let ppp = ctx.pixels_per_point();
                let (tx, rx) = channel();
                ctx.request_screenshot(move |image| {
                    let region = image.region(&rect, Some(ppp));
                    let _ = tx.send(
                        write_png(&path, &region).map_err(|e| format!("{}: {e}", path.display())),
                    );
                });
                self.png_result = Some(rx);
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
            if let Some((from, _)) = self.trash.last() {
                ui.separator();
                let name = from
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ui.label(format!("Deleted {name}"));
                if ui.button("Undo").clicked() {
                    self.undo_delete();
                }
            }
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
        self.poll_save_dialog(ctx);
        if let Some(Ok(result)) = self.png_result.as_ref().map(|rx| rx.try_recv()) {
            self.png_result = None;
            if let Err(err) = result {
                self.messages.push(err);
            }
        }
        let key = super::dataset::preview_key(self);
        self.dataset.poll(&key);
        if self.picked_folder.is_some() || self.save_dialog.is_some() || self.dataset.is_loading() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
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

impl StudioApp {
    /// Lays out the whole window (what eframe calls each frame; benchmarks call it headless).
    pub fn draw(&mut self, ui: &mut egui::Ui) {
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
}

/// Writes an RGBA image as PNG.
fn write_png(path: &Path, image: &egui::ColorImage) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, image.size[0] as u32, image.size[1] as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    writer
        .write_image_data(&bytes)
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_written_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        let mut image = egui::ColorImage::filled([3, 2], egui::Color32::from_rgb(10, 20, 30));
        image.pixels[4] = egui::Color32::WHITE;
        write_png(&path, &image).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..4], &[10, 20, 30, 255]);
        assert_eq!(&buf[16..20], &[255, 255, 255, 255], "pixel (1, 1)");
    }

    #[test]
    fn smoothed_curves_extend_as_steps_arrive() {
        let mut curves = Curves::default();
        let settings = SmoothSettings {
            kind: SmoothingKind::DebiasedEma,
            weight: 0.6,
            log_space: false,
        };
        let step = |s: usize, loss: f32| StepMetrics {
            step: s,
            train_loss: loss,
            lr: 0.0,
            grad_norm: 0.0,
            tokens_per_s: 0.0,
            elapsed_s: s as f64,
            tokens_seen: s as u64,
        };
        curves.push_step(&step(1, 4.0));
        curves.push_step(&step(2, 3.0));
        curves.smoothed(settings);
        curves.push_step(&step(3, 3.5));
        let incremental = curves.smoothed(settings).to_vec();
        let full = hearth_engine::viz::smoothing::debiased_ema(&[4.0, 3.0, 3.5], 0.6);
        assert_eq!(incremental, full);
        let log_space = curves
            .smoothed(SmoothSettings {
                log_space: true,
                ..settings
            })
            .to_vec();
        let expected: Vec<f64> =
            hearth_engine::viz::smoothing::debiased_ema(&[4f64.ln(), 3f64.ln(), 3.5f64.ln()], 0.6)
                .into_iter()
                .map(f64::exp)
                .collect();
        for (a, b) in log_space.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
