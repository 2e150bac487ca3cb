//! A project folder: `hearth-project.json` plus `runs/<id>/` run folders.

use super::health::{RunCheck, check_checkpoint, check_run, checkpoint_files, in_folder};
use super::store::{RunStatus, RunStore, StoreError, read_spec, write_atomic};
use crate::spec::RunSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The human-readable project file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectFile {
    /// The spec schema version when the file was saved.
    pub schema_version: u32,
    /// The project's name (by default its folder's).
    pub name: String,
    /// Run folders outside `runs/` that the user opened (for example `hearth train --out DIR`).
    pub external_runs: Vec<PathBuf>,
    /// The spec the run setup panel starts from.
    pub draft: RunSpec,
}

impl Default for ProjectFile {
    fn default() -> Self {
        Self {
            schema_version: crate::spec::SCHEMA_VERSION,
            name: "project".to_string(),
            external_runs: Vec::new(),
            draft: RunSpec::default(),
        }
    }
}

/// A run as listed in the studio: cheap to load (no metric history).
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// The run folder.
    pub dir: PathBuf,
    /// The run's spec.
    pub spec: RunSpec,
    /// Where the run stands.
    pub status: RunStatus,
    /// Last recorded step and its training loss.
    pub last_step: Option<(usize, f32)>,
    /// Embedding objectives: the latest evaluation's step and metrics (the run list judges
    /// collapse from them before the history is loaded); `None` for the others.
    pub last_eval: Option<super::store::LastEval>,
    /// The user's name, tags and notes.
    pub annotations: super::store::Annotations,
}

impl RunEntry {
    /// The name the user gave the run, or its spec's.
    pub fn name(&self) -> &str {
        self.annotations
            .display_name
            .as_deref()
            .unwrap_or(&self.spec.name)
    }

    /// Reads the run folder `dir`: its spec, status, last step and annotations.
    pub fn load(dir: &Path) -> Result<Self, StoreError> {
        let spec = read_spec(dir)?;
        let store = RunStore::open(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            status: store.status()?,
            last_step: store.last_step()?,
            last_eval: if spec.objective.uses_embeddings() {
                store.last_eval_metrics()?
            } else {
                None
            },
            annotations: store.annotations()?,
            spec,
        })
    }
}

impl RunEntry {
    /// Like [`RunEntry::load`], and the newest checkpoint must read too; a run that does not
    /// load comes back as the check of each of its files.
    pub fn load_checked(dir: &Path) -> Result<Self, RunCheck> {
        let loaded = RunEntry::load(dir).map_err(|e| e.to_string());
        let newest = RunStore::open(dir)
            .ok()
            .and_then(|s| s.newest_checkpoint().ok().flatten());
        let checkpoint_reads = newest.is_none_or(|(_, path)| {
            checkpoint_files(&in_folder(dir, &path))
                .iter()
                .enumerate()
                .all(|(i, f)| (i > 0 && !f.exists()) || check_checkpoint(f).is_ok())
        });
        match loaded {
            Ok(entry) if checkpoint_reads => Ok(entry),
            Ok(_) => Err(check_run(dir)),
            Err(err) => {
                let mut check = check_run(dir);
                if check.is_healthy() {
                    // Every file opens, yet a value in the history does not read.
                    check.files[1].problem = Some(err);
                }
                Err(check)
            }
        }
    }
}

/// An open project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// Its project file, as last read or saved.
    pub file: ProjectFile,
}

impl Project {
    /// The project file in a project folder.
    pub const FILE: &'static str = "hearth-project.json";

    /// Opens the project in `dir`, creating an empty one if the folder has none. A project file
    /// that cannot be read is an error: it is never overwritten.
    pub fn open_or_create(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(Self::FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
            let file: ProjectFile =
                serde_json::from_str(&text).map_err(|e| StoreError::Invalid {
                    path: path.clone(),
                    message: format!("line {}, column {}: {e}", e.line(), e.column()),
                })?;
            return Ok(Self {
                dir: dir.to_path_buf(),
                file,
            });
        }
        std::fs::create_dir_all(dir.join("runs")).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let project = Self {
            dir: dir.to_path_buf(),
            file: ProjectFile {
                name: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "project".to_string()),
                ..ProjectFile::default()
            },
        };
        project.save()?;
        Ok(project)
    }

    /// Like [`Project::open_or_create`], but a folder with no project yet starts as a copy of
    /// the example project file `template` (if it exists) rather than an empty project.
    pub fn open_or_create_from(dir: &Path, template: &Path) -> Result<Self, StoreError> {
        if !dir.join(Self::FILE).exists() && template.exists() {
            std::fs::create_dir_all(dir.join("runs")).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            let text = std::fs::read(template).map_err(|source| StoreError::Io {
                path: template.to_path_buf(),
                source,
            })?;
            write_atomic(&dir.join(Self::FILE), &text)?;
        }
        Self::open_or_create(dir)
    }

    /// Writes the project file (atomically).
    pub fn save(&self) -> Result<(), StoreError> {
        let json = serde_json::to_string_pretty(&self.file).expect("serializes");
        write_atomic(&self.dir.join(Self::FILE), json.as_bytes())
    }

    /// The folder new runs are created in.
    pub fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }

    /// Every run folder of the project: those in `runs/` (the folders with a spec), oldest
    /// first, then the external ones it lists.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.runs_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join(RunStore::SPEC_FILE).exists())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs.extend(self.file.external_runs.iter().cloned());
        dirs
    }

    /// Every run folder of the project, oldest first, each loaded or reported as damaged with
    /// what is wrong and what still reads.
    pub fn list_runs(&self) -> Vec<Result<RunEntry, RunCheck>> {
        self.run_dirs()
            .iter()
            .map(|d| RunEntry::load_checked(d))
            .collect()
    }

    /// `base`, or `base-2`, `base-3`, ... : the first name no run of the project has, so runs
    /// started with a default name (the data file's) tell apart in lists.
    pub fn unique_run_name(&self, base: &str) -> String {
        let taken: std::collections::HashSet<String> = self
            .run_dirs()
            .iter()
            .filter_map(|d| read_spec(d).ok().map(|s| s.name))
            .collect();
        if !taken.contains(base) {
            return base.to_string();
        }
        (2..)
            .map(|n| format!("{base}-{n}"))
            .find(|name| !taken.contains(name))
            .expect("some suffix is free")
    }

    /// A new, unused run folder path named after the run.
    pub fn new_run_dir(&self, name: &str) -> PathBuf {
        let slug: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let base = format!("{}-{}", timestamp(), slug.trim_matches('-'));
        let mut dir = self.runs_dir().join(&base);
        let mut n = 2;
        while dir.exists() {
            dir = self.runs_dir().join(format!("{base}-{n}"));
            n += 1;
        }
        dir
    }

    /// Adds a run folder from elsewhere to the project's list.
    pub fn add_external_run(&mut self, dir: &Path) -> Result<RunEntry, StoreError> {
        let entry = RunEntry::load(dir)?;
        if !self.file.external_runs.iter().any(|d| d == dir) && !dir.starts_with(self.runs_dir()) {
            self.file.external_runs.push(dir.to_path_buf());
            self.save()?;
        }
        Ok(entry)
    }
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The project the studio and `train` use when none is given: `$HEARTH_PROJECT`, or
/// `~/.local/share/hearth/default`.
pub fn default_project_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEARTH_PROJECT") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("hearth").join("default")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_a_run_already_has_gets_the_next_free_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::open_or_create(dir.path()).unwrap();
        assert_eq!(project.unique_run_name("shk"), "shk");
        for name in ["shk", "shk-2", "other"] {
            let spec = RunSpec {
                name: name.to_string(),
                ..RunSpec::default()
            };
            RunStore::create(&project.new_run_dir(name), &spec).unwrap();
        }
        assert_eq!(project.unique_run_name("shk"), "shk-3");
        assert_eq!(project.unique_run_name("other"), "other-2");
        assert_eq!(project.unique_run_name("new"), "new");
    }

    #[test]
    fn run_dirs_are_unique_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::open_or_create(dir.path()).unwrap();
        let a = project.new_run_dir("My Run!");
        assert!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with("-my-run")
        );
        std::fs::create_dir_all(&a).unwrap();
        assert_ne!(a, project.new_run_dir("My Run!"));
    }

    #[test]
    fn the_example_project_parses_and_seeds_a_new_project() {
        let template = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("projects/welcome")
            .join(Project::FILE);
        let dir = tempfile::tempdir().unwrap();
        let project = Project::open_or_create_from(&dir.path().join("p"), &template).unwrap();
        assert_eq!(project.file.name, "welcome");
        assert_eq!(project.file.draft.name, "first-gpt");
        assert_eq!(project.file.draft.train.steps, 800);
        assert!(
            project.file.draft.validate().is_empty(),
            "{:?}",
            project.file.draft.validate()
        );
    }

    #[test]
    fn a_broken_project_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(Project::FILE), "{ \"name\": ").unwrap();
        let err = Project::open_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("hearth-project.json") && err.contains("line 1"),
            "{err}"
        );
        let kept = std::fs::read_to_string(dir.path().join(Project::FILE)).unwrap();
        assert_eq!(kept, "{ \"name\": ");
    }
}
