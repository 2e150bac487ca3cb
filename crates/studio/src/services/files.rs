//! What the studio does to files of runs: deleting into the project's trash (and undoing it),
//! and writing a run's metrics as CSV.

use hearth_engine::project::RunHistory;
use std::path::{Path, PathBuf};

/// Deleted runs, newest last, so deletes can be undone.
#[derive(Debug, Default)]
pub struct Trash {
    /// `(where the run was, where it is in the trash)`.
    entries: Vec<(PathBuf, PathBuf)>,
}

impl Trash {
    /// Where the most recently deleted run was.
    pub fn last_deleted(&self) -> Option<&Path> {
        self.entries.last().map(|(from, _)| from.as_path())
    }

    /// Moves `run_dir` into `project_dir/.trash` (under a fresh name if one is taken).
    pub fn delete(&mut self, project_dir: &Path, run_dir: &Path) -> std::io::Result<()> {
        let trash = project_dir.join(".trash");
        let name = run_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let mut target = trash.join(&name);
        let mut n = 2;
        while target.exists() {
            target = trash.join(format!("{}-{n}", name.to_string_lossy()));
            n += 1;
        }
        std::fs::create_dir_all(&trash)?;
        std::fs::rename(run_dir, &target)?;
        self.entries.push((run_dir.to_path_buf(), target));
        Ok(())
    }

    /// Moves the most recently deleted run back; returns its folder, or `None` when nothing
    /// was deleted. A failed move is forgotten (the folder stays in the trash).
    pub fn undo(&mut self) -> Option<Result<PathBuf, RestoreError>> {
        let (from, trashed) = self.entries.pop()?;
        Some(match std::fs::rename(&trashed, &from) {
            Ok(()) => Ok(from),
            Err(source) => Err(RestoreError { path: from, source }),
        })
    }
}

/// A deleted run that could not be moved back out of the trash.
#[derive(Debug, thiserror::Error)]
#[error("cannot restore {}: {source}", path.display())]
pub struct RestoreError {
    /// The folder the run was deleted from.
    pub path: PathBuf,
    /// Why the move failed.
    pub source: std::io::Error,
}

/// Every step's metrics as CSV, with the validation loss on the steps that were evaluated.
pub fn metrics_csv(history: &RunHistory) -> String {
    let mut csv =
        String::from("step,train_loss,lr,grad_norm,tokens_per_s,elapsed_s,tokens_seen,val_loss\n");
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
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_engine::events::{EvalMetrics, StepMetrics};

    #[test]
    fn deleted_runs_come_back_in_reverse_order() {
        let project = tempfile::tempdir().unwrap();
        let runs = project.path().join("runs");
        let (a, b) = (runs.join("a"), runs.join("b"));
        for dir in [&a, &b] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("spec.json"), "{}").unwrap();
        }
        let mut trash = Trash::default();
        trash.delete(project.path(), &a).unwrap();
        trash.delete(project.path(), &b).unwrap();
        assert!(!a.exists() && !b.exists(), "both left the runs folder");
        assert_eq!(trash.last_deleted(), Some(b.as_path()));
        assert_eq!(trash.undo().map(Result::ok), Some(Some(b.clone())));
        assert!(
            b.join("spec.json").exists(),
            "the newest delete is undone first"
        );
        assert_eq!(trash.undo().map(Result::ok), Some(Some(a.clone())));
        assert!(trash.undo().is_none(), "nothing left to undo");
    }

    #[test]
    fn csv_rows_carry_the_validation_loss_where_evaluated() {
        let step = |s: usize| StepMetrics {
            step: s,
            train_loss: 2.0,
            lr: 0.001,
            grad_norm: 1.0,
            tokens_per_s: 10.0,
            elapsed_s: 0.5,
            tokens_seen: 64,
        };
        let history = RunHistory {
            steps: vec![step(1), step(2)],
            evals: vec![EvalMetrics {
                step: 2,
                train_loss: 2.0,
                val_loss: 1.5,
                elapsed_s: 1.0,
                extra: Vec::new(),
            }],
            ..RunHistory::default()
        };
        let csv = metrics_csv(&history);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "a header and one row per step");
        assert!(
            lines[1].ends_with(','),
            "no evaluation at step 1: {}",
            lines[1]
        );
        assert!(
            lines[2].ends_with(",1.5"),
            "step 2 was evaluated: {}",
            lines[2]
        );
    }
}
