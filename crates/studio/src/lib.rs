//! The eframe studio. Each page (dataset, run setup, monitor, compare, improve, try it, and
//! the run list) is a struct that owns its state and draws from a read-only [`AppContext`], returning
//! [`Action`]s; `app.rs` is the shell that owns the shared state and applies them in one
//! place. Only this crate imports egui.
//!
//! - `pages/`: one module per page.
//! - `widgets/`: drawing pieces the pages share (the loss plot, the attention heatmap, the
//!   embedding scatter, the plot controls).
//! - `views/`: the views objectives offer at evaluations (embedding map, similarity batch,
//!   masked-token probe).
//! - `services/`: files, dialogs, notifications, preferences, shortcuts, PNG export and the UI
//!   benchmark.
//! - `quantities.rs`: what a run's curves measure, as its objective describes them; the
//!   studio names no objective itself.
//! - `run_view.rs`: a run as the pages see it, live or stored.

mod action;
mod app;
mod pages;
mod quantities;
mod run_view;
mod services;
mod views;
mod widgets;

pub use action::{Action, AppContext, DataStatus, Pick};
pub use app::StudioApp;
pub use pages::dataset::{BatchPreview, DatasetPage, DatasetStats, PreviewKey, preview_key};
pub use pages::improve::{ImprovePage, SampleFilter, Stage};
pub use pages::try_it::{EXAMPLE_PROMPT, Settings as TrySettings, TryItPage, Turn, TurnState};
pub use run_view::{LiveRun, RunView};
pub use services::bench;
pub use services::dialogs::DialogBackend;
pub use services::notifications::{Notice, Outcome};
pub use services::prefs::{PlotSettings, Prefs, Tab, XAxis};

use std::path::PathBuf;

/// Opens the studio window on `project` (or the last/default project).
pub fn run_studio(project: Option<PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Hearth")
            .with_app_id("hearth")
            .with_inner_size([1360.0, 860.0])
            .with_min_inner_size([900.0, 560.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Hearth",
        options,
        Box::new(move |cc| Ok(Box::new(StudioApp::new(cc, project)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the studio window: {e}"))
}
