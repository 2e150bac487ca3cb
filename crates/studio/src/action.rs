//! What pages ask of the app, and what they may read. A page draws from an [`AppContext`]
//! (shared state, read-only) and its own state, and returns [`Action`]s; the app carries them
//! out in one place, [`crate::StudioApp::apply`].

use crate::run_view::RunView;
use crate::services::dialogs::DialogRequest;
use crate::services::prefs::{PlotSettings, Prefs, Tab};
use hearth_engine::events::RunControl;
use hearth_engine::project::{Annotations, Project, RunCheck};
use hearth_engine::spec::RunSpec;
use std::path::Path;

/// A change a page asks for. Runs are named by their index in [`AppContext::runs`].
#[must_use = "an action does nothing until the app applies it"]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Show another page.
    ShowTab(Tab),
    /// Show a run on the monitor page.
    Monitor(usize),
    /// Tick or untick a run for the compare page.
    SetCompared {
        /// The run.
        run: usize,
        /// Ticked.
        compared: bool,
    },
    /// Re-read the project's runs.
    ReloadRuns,
    /// Replace the next run's settings (the draft).
    SetDraft(Box<RunSpec>),
    /// Change how loss plots are drawn.
    SetPlot(PlotSettings),
    /// Start a run from the draft.
    StartRun,
    /// Pause, resume or stop a live run.
    Control {
        /// The run.
        run: usize,
        /// What to tell its worker.
        control: RunControl,
    },
    /// Replace a run's name, tags and notes; `save` writes them to its store.
    Annotate {
        /// The run.
        run: usize,
        /// The new annotations.
        annotations: Annotations,
        /// Write them now (editing finished).
        save: bool,
    },
    /// Copy a run's settings into the draft as a new variant.
    CloneSettings(usize),
    /// Make the draft a fine-tune of a run's newest checkpoint.
    FineTune(usize),
    /// Continue a stopped, failed or interrupted run from its last checkpoint.
    Resume(usize),
    /// Queue actions on a waiting run.
    Queue {
        /// The run.
        run: usize,
        /// What to do with it.
        change: QueueChange,
    },
    /// Set how many runs train at once (`None`: as the cores allow).
    SetQueueLimit(Option<usize>),
    /// Answer the question asked when the window closes while runs train.
    Quit(QuitChoice),
    /// Move a run to the project's trash.
    Delete(usize),
    /// Bring back the run deleted last.
    UndoDelete,
    /// Move a damaged run folder (listed apart, see [`AppContext::damaged`]) to the trash.
    TrashDamaged(std::path::PathBuf),
    /// Ask where to save a run's metrics as CSV, then write them.
    ExportMetricsCsv(usize),
    /// Ask where to save the chart in `rect` (screen points) as PNG, then write it.
    ExportChartPng {
        /// The chart's place on screen.
        rect: egui::Rect,
        /// The proposed file name.
        file_name: String,
    },
    /// Ask for a folder (a file for GGUF) and write the run's newest checkpoint there in this
    /// format, in the background.
    ExportRun(usize, hearth_engine::export::ExportFormat),
    /// Ask for a Hugging Face folder (GPT-2, BERT, sentence-transformers, Llama family) and
    /// import it as a run of the project, in the background.
    ImportModel,
    /// Ask for a GGUF file (a Llama-family model, as llama.cpp keeps them) and import it as a
    /// run of the project, in the background.
    ImportGguf,
    /// Show a text-generating run on the Try it page.
    TryIt(usize),
    /// Ask for a project folder and open it.
    OpenProject,
    /// Ask for a run folder (e.g. from `hearth train --out`) and add it to the project.
    OpenRun,
    /// Ask for a data file or folder for the dataset page.
    PickData(Pick),
    /// Ask for a file for the draft's objective setting `key` (a pairs or STS file).
    PickObjectiveFile {
        /// The setting's key.
        key: String,
        /// The dialog's title.
        title: String,
    },
    /// Ask for an STS file and score the run's newest checkpoint on it, recording Spearman
    /// and Pearson in its history (embedding runs).
    EvaluateSts(usize),
    /// Forget the newest message of the status bar.
    DismissMessage,
    /// Open or close the list of keyboard shortcuts.
    ShowShortcuts(bool),
    /// Turn desktop notifications of finished and failed runs on or off.
    SetNotifications(bool),
}

/// What the draft's data looks like to the pages that depend on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataStatus {
    /// The vocabulary size, once the data is read.
    pub vocab: Option<usize>,
    /// Why the data cannot be built, if it cannot.
    pub error: Option<String>,
}

/// Shared state as every page sees it: read-only; changes go through [`Action`]s.
#[derive(Clone, Copy)]
pub struct AppContext<'a> {
    /// The open project (its file holds the draft).
    pub project: &'a Project,
    /// Every run listed, in list order.
    pub runs: &'a [RunView],
    /// Preferences, plot settings among them.
    pub prefs: &'a Prefs,
    /// The run the monitor shows.
    pub selected: Option<usize>,
    /// Run folders that do not load, with which file is damaged and what still reads.
    pub damaged: &'a [RunCheck],
    /// The draft's data as the dataset page last read it.
    pub data: &'a DataStatus,
    /// The project's run queue as last read.
    pub queue: &'a hearth_engine::project::queue::QueueState,
}

impl AppContext<'_> {
    /// The next run's settings.
    pub fn draft(&self) -> &RunSpec {
        &self.project.file.draft
    }

    /// How loss plots are drawn.
    pub fn plot(&self) -> PlotSettings {
        self.prefs.plot()
    }
}

/// What the page asks the user to pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The quick pick's one text file.
    QuickTextFile,
    /// A file source for the builder.
    SourceFile,
    /// A folder of documents for the builder.
    SourceFolder,
    /// A pairs file for the builder.
    PairsFile,
}

impl Pick {
    /// The dialog that asks for it, starting in `dir`.
    pub fn request(self, dir: &Path) -> DialogRequest {
        let request = match self {
            Pick::SourceFolder => DialogRequest::open_folder("Add a folder of documents"),
            Pick::PairsFile => DialogRequest::open_file("Add a pairs file")
                .filter("Pairs", &["tsv", "jsonl", "json"])
                .filter("All files", &["*"]),
            Pick::QuickTextFile | Pick::SourceFile => DialogRequest::open_file("Open a data file")
                .filter(
                    "Text and tables",
                    &["txt", "md", "text", "jsonl", "json", "csv", "tsv"],
                )
                .filter("All files", &["*"]),
        };
        request.starting_in(dir)
    }
}

/// What to do with a run waiting in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueChange {
    /// Start it now, whatever the limit.
    StartNow,
    /// Take it out of the queue (it is marked stopped).
    Cancel,
    /// Move it one place towards the front (-1) or back (+1).
    Shift(isize),
}

/// The answer to "runs keep training" when the window closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitChoice {
    /// Close the window; the runs keep training in their processes.
    Quit,
    /// Stop the runs this window shows, then close.
    StopRunsAndQuit,
    /// Keep the window open.
    Stay,
}
