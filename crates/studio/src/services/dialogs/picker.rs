//! The in-app picker: a folder listing and a typed path, for when the system dialog cannot
//! open; and how a typed path resolves.

use super::{DialogRequest, PathKind};
use std::path::{Path, PathBuf};

/// What the in-app picker did this frame.
pub(super) enum PickerOutcome {
    Open,
    Cancelled,
    Chosen(PathBuf),
}

/// What a typed or clicked path leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The answer.
    Chosen(PathBuf),
    /// A folder to show (a file was asked for, a folder given).
    Enter(PathBuf),
}

/// Why a typed path answers nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A folder was asked for.
    #[error("{} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// An existing file was asked for.
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    /// A file to write was asked for, in a folder that does not exist.
    #[error("no folder to write {} into", .0.display())]
    NoFolder(PathBuf),
}

/// Decides what `text` means for a `kind` dialog showing `dir`: a relative path is taken in
/// `dir`, an empty one means `dir` itself.
pub fn resolve(kind: &PathKind, text: &str, dir: &Path) -> Result<Resolved, ResolveError> {
    let typed = text.trim();
    let path = if typed.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(typed)
    };
    match kind {
        PathKind::OpenFolder if path.is_dir() => Ok(Resolved::Chosen(path)),
        PathKind::OpenFolder => Err(ResolveError::NotAFolder(path)),
        _ if path.is_dir() => Ok(Resolved::Enter(path)),
        PathKind::OpenFile if path.is_file() => Ok(Resolved::Chosen(path)),
        PathKind::OpenFile => Err(ResolveError::Missing(path)),
        PathKind::SaveFile { .. } => match path.parent() {
            Some(parent) if parent.is_dir() => Ok(Resolved::Chosen(path)),
            _ => Err(ResolveError::NoFolder(path)),
        },
    }
}

/// One row of the picker's listing.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) is_dir: bool,
}

/// A small egui window that lists a folder's sub-folders and files, with a path field.
pub(super) struct InAppPicker {
    request: DialogRequest,
    /// The folder listed.
    dir: PathBuf,
    pub(super) entries: Vec<Entry>,
    /// The path field: a name in `dir` or any path.
    text: String,
    /// Why the picker is shown instead of the system dialog.
    pub(super) notice: Option<String>,
    error: Option<String>,
}

impl InAppPicker {
    pub(super) fn new(request: DialogRequest, notice: Option<String>) -> Self {
        let dir = request
            .start_dir
            .clone()
            .filter(|d| d.is_dir())
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let text = match &request.kind {
            PathKind::SaveFile { file_name } => file_name.clone(),
            _ => String::new(),
        };
        let mut picker = Self {
            request,
            dir: PathBuf::new(),
            entries: Vec::new(),
            text,
            notice,
            error: None,
        };
        picker.enter(dir);
        picker
    }

    /// Lists `dir`: folders first, then the files the first filter accepts.
    pub(super) fn enter(&mut self, dir: PathBuf) {
        let extensions: Option<&Vec<String>> = self
            .request
            .filters
            .first()
            .map(|(_, exts)| exts)
            .filter(|exts| !exts.iter().any(|e| e == "*" || e.is_empty()));
        let wants_files = self.request.kind != PathKind::OpenFolder;
        self.entries.clear();
        self.error = None;
        match std::fs::read_dir(&dir) {
            Ok(listing) => {
                for entry in listing.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let is_dir = entry.path().is_dir();
                    let shown = is_dir
                        || (wants_files
                            && extensions.is_none_or(|exts| {
                                Path::new(&name)
                                    .extension()
                                    .is_some_and(|e| exts.iter().any(|x| e == x.as_str()))
                            }));
                    if shown {
                        self.entries.push(Entry { name, is_dir });
                    }
                }
                self.entries
                    .sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then(a.name.cmp(&b.name)));
            }
            Err(err) => self.error = Some(format!("{}: {err}", dir.display())),
        }
        self.dir = dir;
        if self.request.kind == PathKind::OpenFile {
            self.text.clear();
        }
    }

    pub(super) fn choose(&mut self) -> PickerOutcome {
        match resolve(&self.request.kind, &self.text, &self.dir) {
            Ok(Resolved::Chosen(path)) => PickerOutcome::Chosen(path),
            Ok(Resolved::Enter(dir)) => {
                self.enter(dir);
                PickerOutcome::Open
            }
            Err(err) => {
                self.error = Some(err.to_string());
                PickerOutcome::Open
            }
        }
    }

    pub(super) fn ui(&mut self, ctx: &egui::Context) -> PickerOutcome {
        let mut outcome = PickerOutcome::Open;
        let mut window_open = true;
        let confirm = match self.request.kind {
            PathKind::OpenFile => "Open",
            PathKind::OpenFolder => "Choose this folder",
            PathKind::SaveFile { .. } => "Save",
        };
        egui::Window::new(self.request.title.clone())
            .id(egui::Id::unique("in_app_file_picker"))
            .open(&mut window_open)
            .collapsible(false)
            .resizable(true)
            .default_size([560.0, 420.0])
            .pivot(egui::Align2::CENTER_CENTER)
            .default_pos(ctx.content_rect().center())
            .show(ctx, |ui| {
                if let Some(notice) = &self.notice {
                    ui.colored_label(ui.visuals().warn_fg_color, notice);
                }
                let mut go_to = None;
                ui.horizontal(|ui| {
                    if ui.button("Up").clicked() {
                        go_to = self.dir.parent().map(Path::to_path_buf);
                    }
                    ui.label(egui::RichText::new(self.dir.display().to_string()).strong());
                });
                ui.separator();
                // A steady size: the window does not jump as folders are opened.
                egui::ScrollArea::vertical()
                    .min_scrolled_height(240.0)
                    .max_height(240.0)
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        if self.entries.is_empty() {
                            ui.label(egui::RichText::new("(nothing to pick here)").weak());
                        }
                        for entry in &self.entries {
                            let shown = if entry.is_dir {
                                format!("{}/", entry.name)
                            } else {
                                entry.name.clone()
                            };
                            let selected = !entry.is_dir && self.text == entry.name;
                            let response = ui.selectable_label(selected, shown);
                            if entry.is_dir && response.clicked() {
                                go_to = Some(self.dir.join(&entry.name));
                            } else if response.double_clicked() {
                                self.text = entry.name.clone();
                                outcome = PickerOutcome::Chosen(self.dir.join(&entry.name));
                            } else if response.clicked() {
                                self.text = entry.name.clone();
                            }
                        }
                    });
                ui.separator();
                let mut enter = false;
                ui.horizontal(|ui| {
                    let label = ui.label(match self.request.kind {
                        PathKind::OpenFolder => "Folder",
                        _ => "File",
                    });
                    let edit = ui
                        .add(
                            egui::TextEdit::singleline(&mut self.text)
                                .desired_width(380.0)
                                .hint_text("a name here, or a full path"),
                        )
                        .labelled_by(label.id);
                    enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                });
                if let Some(err) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, err);
                }
                ui.horizontal(|ui| {
                    if ui.button(confirm).clicked() || enter {
                        outcome = self.choose();
                    }
                    if ui.button("Cancel").clicked() {
                        outcome = PickerOutcome::Cancelled;
                    }
                });
                if let Some(dir) = go_to {
                    self.enter(dir);
                }
            });
        if !window_open {
            outcome = PickerOutcome::Cancelled;
        }
        outcome
    }
}
