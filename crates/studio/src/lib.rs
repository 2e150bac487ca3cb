//! The eframe studio: `app.rs` holds the state and the event loop, one file per panel, and
//! `widgets.rs` the loss plot and attention heatmap. Only this room imports egui.

mod app;
pub mod bench;
mod compare;
mod dataset;
mod monitor;
mod runs;
mod setup;
mod widgets;

pub use app::{LiveRun, Prefs, RunView, StudioApp, Tab};

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
