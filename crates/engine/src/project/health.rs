//! Which files of a run folder still read and which are damaged, so a damaged run is listed
//! with its reason (and can be moved away) while the rest of the project opens normally.

use super::store::{RunStore, StoreError, read_spec};
use std::path::{Path, PathBuf};

/// One file of a run folder and whether it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCheck {
    /// The file, relative to the run folder (`spec.json`, `run.sqlite`,
    /// `checkpoints/step-000200.bpk`).
    pub file: String,
    /// Why it does not read; `None` when it reads.
    pub problem: Option<String>,
}

/// The state of each file of a run folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCheck {
    /// The run folder.
    pub dir: PathBuf,
    /// The run's name if its spec reads, else the folder's name.
    pub name: String,
    /// Every file looked at, in the order spec, history, newest checkpoint.
    pub files: Vec<FileCheck>,
}

impl RunCheck {
    /// Whether every file reads.
    pub fn is_healthy(&self) -> bool {
        self.files.iter().all(|f| f.problem.is_none())
    }

    /// The files that do not read.
    pub fn damaged(&self) -> impl Iterator<Item = &FileCheck> {
        self.files.iter().filter(|f| f.problem.is_some())
    }

    /// The files that read.
    pub fn intact(&self) -> impl Iterator<Item = &FileCheck> {
        self.files.iter().filter(|f| f.problem.is_none())
    }

    /// One sentence for lists and errors: which file is damaged and why, and what still reads.
    pub fn summary(&self) -> String {
        let damaged: Vec<String> = self
            .damaged()
            .map(|f| {
                format!(
                    "{} is damaged ({})",
                    f.file,
                    f.problem.as_deref().unwrap_or("")
                )
            })
            .collect();
        if damaged.is_empty() {
            return "every file reads".to_string();
        }
        // A checkpoint that reads is named once (its optimizer moments go with it).
        let intact: Vec<&str> = self
            .intact()
            .map(|f| f.file.as_str())
            .filter(|f| !f.contains(".adam-"))
            .collect();
        let rest = match intact.len() {
            0 => "nothing else reads".to_string(),
            1 => format!("{} still reads", intact[0]),
            _ => format!("{} still read", intact.join(", ")),
        };
        format!("{}; {rest}", damaged.join("; "))
    }
}

/// Looks at each file of the run folder `dir`: `spec.json` parses as a spec, `run.sqlite` opens
/// and passes SQLite's quick check, and the newest checkpoint (with its optimizer moments, if
/// saved) reads as a weights file. A run with no checkpoint yet is not damaged.
pub fn check_run(dir: &Path) -> RunCheck {
    let mut files = Vec::new();
    let spec = read_spec(dir);
    let name = match &spec {
        Ok(spec) => spec.name.clone(),
        Err(_) => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    files.push(FileCheck {
        file: RunStore::SPEC_FILE.to_string(),
        problem: spec.err().map(|e| reason(&e)),
    });
    let db = RunStore::check_db(dir);
    let recorded = match &db {
        Ok(store) => store.newest_checkpoint().ok().flatten(),
        Err(_) => None,
    };
    files.push(FileCheck {
        file: RunStore::DB_FILE.to_string(),
        problem: db.err().map(|e| reason(&e)),
    });
    // The newest checkpoint the history records, or (when the history does not read) the
    // newest one on disk.
    let checkpoint = recorded
        .map(|(_, path)| in_folder(dir, &path))
        .or_else(|| newest_on_disk(dir));
    if let Some(path) = checkpoint {
        for file in checkpoint_files(&path) {
            if file != path && !file.exists() {
                continue; // no optimizer moments saved: weights only
            }
            files.push(FileCheck {
                file: relative(dir, &file),
                problem: check_checkpoint(&file).err().map(|e| e.to_string()),
            });
        }
    }
    RunCheck {
        dir: dir.to_path_buf(),
        name,
        files,
    }
}

/// Why a saved weights file does not read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// No file at the path.
    #[error("missing")]
    Missing,
    /// The file is there but its header, tensor table or data does not read.
    #[error(transparent)]
    Unreadable(#[from] burn::store::RecordError),
}

/// Whether a saved weights file reads (its header, tensor table and data).
pub fn check_checkpoint(path: &Path) -> Result<(), CheckpointError> {
    if !path.exists() {
        return Err(CheckpointError::Missing);
    }
    match burn::store::ModuleRecord::load(path) {
        Ok(_) => Ok(()),
        // A LoRA fine-tune's checkpoints hold its adapters alone.
        Err(_) if crate::model::adapter_file_reads(path) => Ok(()),
        Err(e) => Err(CheckpointError::from(e)),
    }
}

/// A checkpoint's weights file and the optimizer moments saved beside it.
pub fn checkpoint_files(weights: &Path) -> [PathBuf; 3] {
    let stem = weights.with_extension("");
    [
        weights.to_path_buf(),
        stem.with_extension("adam-m.bpk"),
        stem.with_extension("adam-v.bpk"),
    ]
}

/// A recorded checkpoint path, or the file of that name in the run's `checkpoints/` when the
/// run folder was moved since it was recorded.
pub fn in_folder(dir: &Path, recorded: &Path) -> PathBuf {
    if recorded.exists() {
        return recorded.to_path_buf();
    }
    match recorded.file_name() {
        Some(name) => dir.join("checkpoints").join(name),
        None => recorded.to_path_buf(),
    }
}

/// The weights checkpoints in the run folder's `checkpoints/` (`step-NNNNNN.bpk`, not the
/// moments beside them), with their steps, oldest first.
pub fn weights_on_disk(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir.join("checkpoints")) else {
        return Vec::new();
    };
    let mut weights: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let step = name.strip_prefix("step-")?.strip_suffix(".bpk")?;
            Some((step.parse().ok()?, p))
        })
        .collect();
    weights.sort();
    weights
}

fn newest_on_disk(dir: &Path) -> Option<PathBuf> {
    weights_on_disk(dir).pop().map(|(_, path)| path)
}

fn relative(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// The reason of a store error without the path (the check names the file).
fn reason(err: &StoreError) -> String {
    match err {
        StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "missing".to_string()
        }
        StoreError::Io { source, .. } => source.to_string(),
        StoreError::Db { source, .. } => source.to_string(),
        StoreError::Spec { source, .. } => source.to_string(),
        StoreError::Invalid { message, .. } => message.clone(),
    }
}
