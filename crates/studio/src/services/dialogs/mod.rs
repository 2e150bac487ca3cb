//! One way to ask the user for a path, used by every file and folder dialog of the studio: the
//! system dialog (rfd: the desktop portal, else zenity) runs off the UI thread; when it cannot
//! open, the window says so and an in-app picker lets the user continue.

mod picker;

use picker::{InAppPicker, PickerOutcome};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

/// A system dialog that answers "nothing chosen" faster than this never showed: nobody cancels
/// a dialog that quickly. rfd reports a missing portal and a missing zenity only in its log, as
/// the same `None` a cancel gives.
const FAILED_WITHIN: Duration = Duration::from_millis(400);

/// What the user is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// An existing file.
    OpenFile,
    /// An existing folder.
    OpenFolder,
    /// A file to write, proposed under `file_name`.
    SaveFile {
        /// The proposed name.
        file_name: String,
    },
}

/// A dialog to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogRequest {
    /// The window title.
    pub title: String,
    /// File, folder or save.
    pub kind: PathKind,
    /// The folder it starts in.
    pub start_dir: Option<PathBuf>,
    /// Named extension filters (`("Text", ["txt", "md"])`, `"*"` for all); the first applies
    /// in the in-app picker.
    pub filters: Vec<(String, Vec<String>)>,
}

impl DialogRequest {
    /// Asks for an existing file.
    pub fn open_file(title: &str) -> Self {
        Self::new(title, PathKind::OpenFile)
    }

    /// Asks for an existing folder.
    pub fn open_folder(title: &str) -> Self {
        Self::new(title, PathKind::OpenFolder)
    }

    /// Asks where to write a file, proposing `file_name`.
    pub fn save_file(title: &str, file_name: &str) -> Self {
        Self::new(
            title,
            PathKind::SaveFile {
                file_name: file_name.to_string(),
            },
        )
    }

    fn new(title: &str, kind: PathKind) -> Self {
        Self {
            title: title.to_string(),
            kind,
            start_dir: None,
            filters: Vec::new(),
        }
    }

    /// Adds a named filter of extensions (without dots).
    pub fn filter(mut self, name: &str, extensions: &[&str]) -> Self {
        self.filters.push((
            name.to_string(),
            extensions.iter().map(|e| e.to_string()).collect(),
        ));
        self
    }

    /// Starts in `dir`.
    pub fn starting_in(mut self, dir: &Path) -> Self {
        self.start_dir = Some(dir.to_path_buf());
        self
    }

    /// Runs the system dialog; blocks until it closes.
    fn run_system(self) -> Option<PathBuf> {
        let mut dialog = rfd::FileDialog::new().set_title(&self.title);
        if let Some(dir) = &self.start_dir {
            dialog = dialog.set_directory(dir);
        }
        for (name, extensions) in &self.filters {
            dialog = dialog.add_filter(name, extensions);
        }
        match self.kind {
            PathKind::OpenFile => dialog.pick_file(),
            PathKind::OpenFolder => dialog.pick_folder(),
            PathKind::SaveFile { file_name } => dialog.set_file_name(file_name).save_file(),
        }
    }
}

/// Which picker the dialogs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialogBackend {
    /// The system dialog, falling back to the in-app picker when it cannot open.
    #[default]
    System,
    /// The in-app picker only (`HEARTH_FILE_DIALOG=builtin`, and tests).
    InApp,
}

impl DialogBackend {
    /// The backend the environment asks for.
    pub fn from_env() -> Self {
        match std::env::var("HEARTH_FILE_DIALOG").as_deref() {
            Ok("builtin") => DialogBackend::InApp,
            _ => DialogBackend::System,
        }
    }
}

/// A system dialog open in its own thread.
struct Pending<P> {
    purpose: P,
    request: DialogRequest,
    answer: Receiver<Option<PathBuf>>,
    opened: Instant,
}

/// The studio's file dialogs: at most one open at a time; `P` says what the path is for.
pub struct FileDialogs<P> {
    backend: DialogBackend,
    pending: Option<Pending<P>>,
    picker: Option<(P, InAppPicker)>,
}

impl<P> FileDialogs<P> {
    /// No dialog open, using `backend`.
    pub fn new(backend: DialogBackend) -> Self {
        Self {
            backend,
            pending: None,
            picker: None,
        }
    }

    /// Switches between the system dialog and the in-app picker.
    pub fn set_backend(&mut self, backend: DialogBackend) {
        self.backend = backend;
    }

    /// True while a dialog is open (the app then polls it).
    pub fn is_open(&self) -> bool {
        self.pending.is_some() || self.picker.is_some()
    }

    /// Opens a dialog for `purpose`. Returns false (and opens nothing) while another is open.
    pub fn open(&mut self, purpose: P, request: DialogRequest) -> bool {
        if self.is_open() {
            return false;
        }
        if self.backend == DialogBackend::InApp {
            self.picker = Some((purpose, InAppPicker::new(request, None)));
        } else if let Some(missing) = system_dialog_missing() {
            self.picker = Some((purpose, InAppPicker::new(request, Some(missing))));
        } else {
            let (tx, answer) = channel();
            let for_thread = request.clone();
            // The system dialog blocks its thread until it closes; keep it off the UI thread.
            std::thread::spawn(move || {
                // The receiver is gone only when the studio has closed.
                let _ = tx.send(for_thread.run_system());
            });
            self.pending = Some(Pending {
                purpose,
                request,
                answer,
                opened: Instant::now(),
            });
        }
        true
    }

    /// Collects the system dialog's answer: the purpose and path once one is chosen. A dialog
    /// that could not open hands over to the in-app picker, which says so.
    pub fn poll(&mut self) -> Option<(P, PathBuf)> {
        let pending = self.pending.as_ref()?;
        let outcome = match pending.answer.try_recv() {
            Ok(answer) => answer.ok_or(pending.opened.elapsed()),
            Err(TryRecvError::Empty) => return None,
            // The dialog's thread panicked: it certainly did not show.
            Err(TryRecvError::Disconnected) => Err(Duration::ZERO),
        };
        let pending = self.pending.take()?;
        match outcome {
            Ok(path) => Some((pending.purpose, path)),
            Err(after) if after < FAILED_WITHIN => {
                let notice = "The system file dialog did not open (no desktop portal or zenity \
                              answered)."
                    .to_string();
                self.picker = Some((
                    pending.purpose,
                    InAppPicker::new(pending.request, Some(notice)),
                ));
                None
            }
            // Cancelled by the user.
            Err(_) => None,
        }
    }

    /// Draws the in-app picker when it is open; returns the purpose and path once chosen.
    pub fn ui(&mut self, ctx: &egui::Context) -> Option<(P, PathBuf)> {
        let (_, picker) = self.picker.as_mut()?;
        match picker.ui(ctx) {
            PickerOutcome::Open => None,
            PickerOutcome::Cancelled => {
                self.picker = None;
                None
            }
            PickerOutcome::Chosen(path) => self.picker.take().map(|(purpose, _)| (purpose, path)),
        }
    }
}

/// Why no system dialog can open here, if that is known before trying: on Linux and the BSDs
/// rfd needs the desktop portal (over the session bus) or the `zenity` program.
fn system_dialog_missing() -> Option<String> {
    if !cfg!(unix) || cfg!(target_os = "macos") {
        return None;
    }
    if portal_reachable() || on_path("zenity") {
        return None;
    }
    Some(
        "No system file dialog is available on this desktop (no desktop portal and no zenity): \
         choose the path here."
            .to_string(),
    )
}

/// True when a session bus is reachable and declares the desktop portal service.
fn portal_reachable() -> bool {
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|dir| PathBuf::from(dir).join("bus"))
        .is_some_and(|socket| socket.exists());
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() && !runtime_bus {
        return false;
    }
    let mut data_dirs: Vec<PathBuf> = std::env::var("XDG_DATA_DIRS")
        .unwrap_or_else(|_| "/usr/local/share:/usr/share".to_string())
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        data_dirs.push(PathBuf::from(home).join(".local/share"));
    }
    data_dirs.iter().any(|dir| {
        dir.join("dbus-1/services/org.freedesktop.portal.Desktop.service")
            .exists()
    })
}

/// True when `program` is an executable file on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file() && is_executable(&candidate)
        })
    })
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::picker::{Resolved, resolve};
    use super::*;

    #[test]
    fn typed_paths_resolve_by_what_was_asked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let open = PathKind::OpenFile;
        assert_eq!(
            resolve(&open, "a.txt", dir.path()),
            Ok(Resolved::Chosen(file.clone())),
            "a name is taken in the listed folder"
        );
        assert_eq!(
            resolve(&open, &file.display().to_string(), Path::new("/")),
            Ok(Resolved::Chosen(file.clone())),
            "a full path is taken as it is"
        );
        assert_eq!(
            resolve(&open, "sub", dir.path()),
            Ok(Resolved::Enter(dir.path().join("sub"))),
            "a folder opens when a file is asked for"
        );
        assert!(resolve(&open, "missing.txt", dir.path()).is_err());
        let folder = PathKind::OpenFolder;
        assert_eq!(
            resolve(&folder, "", dir.path()),
            Ok(Resolved::Chosen(dir.path().to_path_buf())),
            "an empty field chooses the listed folder"
        );
        assert!(resolve(&folder, "a.txt", dir.path()).is_err());
        let save = PathKind::SaveFile {
            file_name: "out.csv".into(),
        };
        assert_eq!(
            resolve(&save, "out.csv", dir.path()),
            Ok(Resolved::Chosen(dir.path().join("out.csv"))),
            "a new file in an existing folder can be written"
        );
        assert!(resolve(&save, "nowhere/out.csv", dir.path()).is_err());
    }

    #[test]
    fn the_in_app_picker_lists_folders_then_matching_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.txt", "a.csv", "c.md", ".hidden.txt"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("z")).unwrap();
        let request = DialogRequest::open_file("Open")
            .filter("Text", &["txt", "md"])
            .starting_in(dir.path());
        let picker = InAppPicker::new(request, None);
        let names: Vec<&str> = picker.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["z", "b.txt", "c.md"],
            "folders first, filtered files"
        );
    }

    #[test]
    fn a_system_dialog_that_answers_at_once_hands_over_to_the_in_app_picker() {
        let mut dialogs = FileDialogs::<u8>::new(DialogBackend::System);
        let (tx, answer) = channel();
        tx.send(None).unwrap();
        dialogs.pending = Some(Pending {
            purpose: 7,
            request: DialogRequest::open_folder("Open"),
            answer,
            opened: Instant::now(),
        });
        assert_eq!(dialogs.poll(), None);
        let (purpose, picker) = dialogs.picker.as_ref().expect("the fallback is open");
        assert_eq!(*purpose, 7);
        assert!(
            picker
                .notice
                .as_deref()
                .is_some_and(|n| n.contains("did not open")),
            "the window says why it is there"
        );
        assert!(dialogs.is_open());
    }

    #[test]
    fn a_cancelled_system_dialog_opens_nothing_else() {
        let mut dialogs = FileDialogs::<u8>::new(DialogBackend::System);
        let (tx, answer) = channel();
        tx.send(None).unwrap();
        dialogs.pending = Some(Pending {
            purpose: 1,
            request: DialogRequest::open_folder("Open"),
            answer,
            opened: Instant::now() - Duration::from_secs(3),
        });
        assert_eq!(dialogs.poll(), None);
        assert!(!dialogs.is_open(), "a slow None is the user's cancel");
    }
}
