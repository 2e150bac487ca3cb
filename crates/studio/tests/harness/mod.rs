//! The studio opened on a project folder, as the tests drive it.

// Each test file uses only some of these.
#![allow(dead_code)]

use egui_kittest::Harness;
use hearth_studio::{Prefs, StudioApp};
use std::path::Path;

/// The studio on `project` in a window of `width` x `height` points, with default preferences.
pub fn studio_sized(project: &Path, width: f32, height: f32) -> Harness<'static, StudioApp> {
    let project = project.to_path_buf();
    Harness::builder()
        .with_size(egui::vec2(width, height))
        .build_eframe(move |cc| {
            StudioApp::with_project(cc.egui_ctx.clone(), &project, Prefs::default())
        })
}

/// The studio on `project` at the size the screenshots use (1360 x 860).
pub fn studio(project: &Path) -> Harness<'static, StudioApp> {
    studio_sized(project, 1360.0, 860.0)
}
