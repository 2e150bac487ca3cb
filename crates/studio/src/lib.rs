//! The eframe studio. Each page (dataset, run setup, monitor, compare, improve, and the run list) is a
//! struct that owns its state and draws from a read-only [`AppContext`], returning
//! [`Action`]s; `app.rs` is the shell that owns the shared state and applies them in one
//! place. Only this crate imports egui.

mod action;
mod app;
pub mod bench;
mod compare;
mod dataset;
mod dialogs;
mod files;
mod improve;
mod monitor;
mod notifications;
mod png;
mod prefs;
mod quantities;
mod run_view;
mod runs;
mod scatter;
mod setup;
mod shortcuts;
mod views;
mod widgets;

pub use action::{Action, AppContext, DataStatus, Pick};
pub use app::StudioApp;
pub use dataset::{DatasetPage, DatasetStats};
pub use dialogs::DialogBackend;
pub use improve::{ImprovePage, SampleFilter, Stage};
pub use notifications::{Notice, Outcome};
pub use prefs::{PlotSettings, Prefs, Tab, XAxis};
pub use run_view::{LiveRun, RunView};

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
