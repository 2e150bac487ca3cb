//! The project's run queue: runs wait here, in start order, until the machine has room for
//! them. The queue is a file in the project folder (`queue.json`), read and written under a
//! lock (`queue.lock`) so that the studio, `hearth train --queue` and workers that finish can
//! all start what is next without starting it twice.

use super::live::worker_alive;
use super::store::{RunStatus, RunStore, StoreError, write_atomic};
use crate::backend::{available_cores, default_threads};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The queue file in a project folder.
pub const QUEUE_FILE: &str = "queue.json";
const LOCK_FILE: &str = "queue.lock";

/// What the queue file holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueState {
    /// Runs training at once; `None`: as many as the cores allow at the runs' thread counts.
    pub limit: Option<usize>,
    /// Waiting runs, first to start first.
    pub waiting: Vec<QueuedRun>,
}

/// A run waiting for a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedRun {
    /// Its folder.
    pub dir: PathBuf,
    /// When it was queued (seconds since 1970).
    pub queued_at: f64,
}

/// A run training now, as the queue counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Its folder.
    pub dir: PathBuf,
    /// The intra-op threads it uses.
    pub threads: usize,
}

/// A project's queue.
#[derive(Debug, Clone)]
pub struct RunQueue {
    root: PathBuf,
}

/// The intra-op threads the run in `dir` uses (its spec's, or the default).
pub fn run_threads(dir: &Path) -> usize {
    super::store::read_spec(dir)
        .map(|s| s.train.threads)
        .ok()
        .filter(|&t| t > 0)
        .unwrap_or_else(default_threads)
}

impl RunQueue {
    /// The queue of the project folder `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    fn path(&self) -> PathBuf {
        self.root.join(QUEUE_FILE)
    }

    /// Runs `f` on the queue under the project's queue lock, writing the queue back when `f`
    /// changed it. A queue file that does not read is an error naming it (nothing is
    /// overwritten).
    pub fn update<T>(&self, f: impl FnOnce(&mut QueueState) -> T) -> Result<T, StoreError> {
        let lock_path = self.root.join(LOCK_FILE);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let lock: File = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let before = self.read()?;
        let mut state = before.clone();
        let out = f(&mut state);
        if state != before {
            let json = serde_json::to_string_pretty(&state).expect("serializes");
            write_atomic(&self.path(), json.as_bytes())?;
        }
        drop(lock);
        Ok(out)
    }

    /// The queue as saved (empty when there is no queue file).
    pub fn read(&self) -> Result<QueueState, StoreError> {
        let path = self.path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StoreError::Invalid {
                path,
                message: format!("does not read as a run queue: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(QueueState::default()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Puts the run in `dir` (created, not started) at the end of the queue and marks it queued.
    pub fn push(&self, dir: &Path) -> Result<usize, StoreError> {
        RunStore::open(dir)?.set_status(&RunStatus::Queued)?;
        let queued_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.update(|q| {
            q.waiting.retain(|r| r.dir != dir);
            q.waiting.push(QueuedRun {
                dir: dir.to_path_buf(),
                queued_at,
            });
            q.waiting.len()
        })
    }

    /// Takes the run out of the queue without starting it; it is marked stopped with a note.
    /// Returns false when it was not waiting.
    pub fn cancel(&self, dir: &Path) -> Result<bool, StoreError> {
        let removed = self.update(|q| {
            let before = q.waiting.len();
            q.waiting.retain(|r| r.dir != dir);
            q.waiting.len() != before
        })?;
        if removed {
            let store = RunStore::open(dir)?;
            store.append_message(0, "warning", "cancelled in the queue before it started")?;
            store.set_status(&RunStatus::Stopped)?;
        }
        Ok(removed)
    }

    /// Moves a waiting run `by` places (negative: towards the front).
    pub fn shift(&self, dir: &Path, by: isize) -> Result<(), StoreError> {
        self.update(|q| {
            if let Some(at) = q.waiting.iter().position(|r| r.dir == dir) {
                let to = (at as isize + by).clamp(0, q.waiting.len() as isize - 1) as usize;
                let run = q.waiting.remove(at);
                q.waiting.insert(to, run);
            }
        })
    }

    /// Sets how many runs train at once (`None`: as the cores allow).
    pub fn set_limit(&self, limit: Option<usize>) -> Result<(), StoreError> {
        self.update(|q| q.limit = limit.map(|l| l.max(1)))
    }

    /// Under the lock: takes from the front of the queue the runs that fit beside `running`,
    /// and calls `start` on each (which must not return before the run's worker holds its
    /// lock, so the next look counts it). A run that cannot start is marked failed with the
    /// reason and the next one is tried. Returns the runs started.
    pub fn dispatch(
        &self,
        running: &[Slot],
        mut start: impl FnMut(&Path) -> Result<(), String>,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let mut started = Vec::new();
        let mut failed = Vec::new();
        self.update(|q| {
            let mut slots: Vec<Slot> = running.to_vec();
            while let Some(next) = q.waiting.first().cloned() {
                let threads = run_threads(&next.dir);
                if !fits(q.limit, &slots, threads) {
                    break;
                }
                q.waiting.remove(0);
                match start(&next.dir) {
                    Ok(()) => {
                        slots.push(Slot {
                            dir: next.dir.clone(),
                            threads,
                        });
                        started.push(next.dir);
                    }
                    Err(reason) => failed.push((next.dir, reason)),
                }
            }
        })?;
        for (dir, reason) in failed {
            if let Ok(store) = RunStore::open(&dir) {
                let _ = store.append_message(0, "error", &reason);
                let _ = store.set_status(&RunStatus::Failed { reason });
            }
        }
        Ok(started)
    }

    /// [`RunQueue::dispatch`] beside the runs among `run_dirs` (the project's) whose worker
    /// lives.
    pub fn dispatch_beside(
        &self,
        run_dirs: &[PathBuf],
        start: impl FnMut(&Path) -> Result<(), String>,
    ) -> Result<Vec<PathBuf>, StoreError> {
        if self.read()?.waiting.is_empty() {
            return Ok(Vec::new());
        }
        self.dispatch(&running_slots(run_dirs), start)
    }

    /// Starts the run in `dir` now, whatever the limit, taking it out of the queue.
    pub fn start_now(
        &self,
        dir: &Path,
        start: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), StoreError> {
        self.update(|q| q.waiting.retain(|r| r.dir != dir))?;
        start(dir).map_err(|message| StoreError::Invalid {
            path: dir.to_path_buf(),
            message,
        })
    }
}

/// Whether a run of `threads` threads fits beside `running` under `limit`.
fn fits(limit: Option<usize>, running: &[Slot], threads: usize) -> bool {
    match limit {
        Some(limit) => running.len() < limit,
        None => {
            let used: usize = running.iter().map(|s| s.threads).sum();
            running.is_empty() || used + threads <= available_cores()
        }
    }
}

/// The runs among `dirs` whose worker lives, with their thread counts.
pub fn running_slots(dirs: &[PathBuf]) -> Vec<Slot> {
    dirs.iter()
        .filter(|d| worker_alive(d))
        .map(|d| Slot {
            dir: d.clone(),
            threads: run_threads(d),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RunSpec;

    fn run(root: &Path, name: &str) -> PathBuf {
        let dir = root.join("runs").join(name);
        RunStore::create(&dir, &RunSpec::default()).unwrap();
        dir
    }

    #[test]
    fn runs_start_in_queue_order_within_the_limit() {
        let root = tempfile::tempdir().unwrap();
        let queue = RunQueue::new(root.path());
        let [a, b, c] = ["a", "b", "c"].map(|n| run(root.path(), n));
        for dir in [&a, &b, &c] {
            queue.push(dir).unwrap();
        }
        queue.set_limit(Some(1)).unwrap();
        assert_eq!(
            RunStore::open(&a).unwrap().status().unwrap(),
            RunStatus::Queued
        );
        queue.shift(&c, -1).unwrap();
        let mut order = Vec::new();
        let started = queue
            .dispatch(&[], |d| {
                order.push(d.to_path_buf());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            started,
            std::slice::from_ref(&a),
            "one slot: the first run only"
        );
        // A run trains: nothing more starts.
        let busy = [Slot {
            dir: a.clone(),
            threads: 1,
        }];
        assert!(queue.dispatch(&busy, |_| Ok(())).unwrap().is_empty());
        // The order survives a reread of the file (a restart).
        let again = RunQueue::new(root.path()).read().unwrap();
        assert_eq!(
            again
                .waiting
                .iter()
                .map(|r| r.dir.clone())
                .collect::<Vec<_>>(),
            [c.clone(), b.clone()]
        );
        assert_eq!(again.limit, Some(1));
        assert!(queue.cancel(&b).unwrap());
        assert_eq!(
            RunStore::open(&b).unwrap().status().unwrap(),
            RunStatus::Stopped
        );
        let failed = queue.dispatch(&[], |_| Err("no worker".into())).unwrap();
        assert!(failed.is_empty());
        assert!(matches!(
            RunStore::open(&c).unwrap().status().unwrap(),
            RunStatus::Failed { reason } if reason == "no worker"
        ));
    }

    #[test]
    fn a_damaged_queue_file_is_named_and_kept() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(QUEUE_FILE), "{ not json").unwrap();
        let err = RunQueue::new(root.path()).set_limit(Some(2)).unwrap_err();
        assert!(err.to_string().contains(QUEUE_FILE), "{err}");
        assert_eq!(
            std::fs::read_to_string(root.path().join(QUEUE_FILE)).unwrap(),
            "{ not json"
        );
    }
}
