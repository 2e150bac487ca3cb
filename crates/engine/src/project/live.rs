//! Whether a worker trains a run now, the controls any process can send it, and the latest
//! views it shows, all through the run folder so that a window onto the run need not own it.
//!
//! Liveness comes from the worker itself: it holds an exclusive lock on `worker.lock` for as
//! long as its process lives, and the operating system drops the lock when the process ends,
//! however it ends (a return, a panic, SIGTERM, SIGKILL, an out-of-memory kill). Readers test
//! the lock; they never judge by file times, which any reader that opens the store refreshes.

use super::store::{RunStatus, RunStore, StoreError};
use crate::events::{AttentionSnapshot, ContrastiveBatch, MaskedProbe, RunControl};
use crate::model::AttentionMaps;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The file a run's worker keeps locked while it lives.
pub const LOCK_FILE: &str = "worker.lock";

/// The lock a run's worker holds for its whole life (released when dropped or when the process
/// ends). The file also names the process, for messages.
#[derive(Debug)]
pub struct WorkerLock {
    _file: File,
}

impl WorkerLock {
    /// Takes the run folder `dir`'s lock. Another live worker holding it is an error that names
    /// its process; a reader testing the lock at the same moment only delays this a little.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = worker_process(dir)
                        .map_or_else(String::new, |p| format!(" ({})", p.describe()));
                    return Err(StoreError::Invalid {
                        path: dir.to_path_buf(),
                        message: format!("another process trains this run{holder}"),
                    });
                }
                Err(TryLockError::Error(source)) => return Err(io(source)),
            }
        }
        let me = WorkerProcess::this();
        file.set_len(0).map_err(io)?;
        file.write_all(serde_json::to_string(&me).expect("serializes").as_bytes())
            .map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// The process that trains (or trained) a run, as its lock file names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerProcess {
    /// Its process id.
    pub pid: u32,
    /// The machine it runs on.
    pub host: String,
}

impl WorkerProcess {
    /// This process.
    pub fn this() -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
        }
    }

    /// `pid 1234 on node7`.
    pub fn describe(&self) -> String {
        format!("pid {} on {}", self.pid, self.host)
    }
}

/// This machine's name (empty when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The process named in the run's lock file (the live worker, or the last one).
pub fn worker_process(dir: &Path) -> Option<WorkerProcess> {
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether a live process holds the run's worker lock. A run folder without a lock file (never
/// trained, or trained before runs held one) has no live worker.
pub fn worker_alive(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        // A file system without locks: nothing can be told, so the stored status stands.
        Err(TryLockError::Error(_)) => true,
    }
}

/// The status a run has now: a run stored as running or paused whose worker is gone was
/// interrupted (its process ended without saying so).
pub fn effective_status(dir: &Path, stored: RunStatus) -> RunStatus {
    if stored.is_active() && !worker_alive(dir) {
        RunStatus::Interrupted
    } else {
        stored
    }
}

/// Sends `control` to the run in `dir`, from any process: its worker reads it after its
/// current step.
pub fn send_control(dir: &Path, control: RunControl) -> Result<(), StoreError> {
    RunStore::open(dir)?.send_control(control)
}

/// A view the worker shows live, kept in the store (the newest of each kind) so that a window
/// attached to the run from another process shows it too.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveView {
    /// Attention weights on the probe text.
    Attention(AttentionSnapshot),
    /// Similarities in one validation batch.
    ContrastiveBatch(ContrastiveBatch),
    /// Predictions on a masked probe.
    MaskedProbe(MaskedProbe),
}

/// The shape of an attention snapshot beside its weights.
#[derive(Serialize, Deserialize)]
struct AttentionHead {
    tokens: Vec<String>,
    n_layer: usize,
    n_head: usize,
    seq: usize,
}

impl LiveView {
    fn kind(&self) -> &'static str {
        match self {
            LiveView::Attention(_) => "attention",
            LiveView::ContrastiveBatch(_) => "contrastive_batch",
            LiveView::MaskedProbe(_) => "masked_probe",
        }
    }

    fn step(&self) -> usize {
        match self {
            LiveView::Attention(s) => s.step,
            LiveView::ContrastiveBatch(b) => b.step,
            LiveView::MaskedProbe(p) => p.step,
        }
    }

    /// The stored form: a JSON head and, for attention, the weights as little-endian f32.
    fn encode(&self) -> (String, Option<Vec<u8>>) {
        match self {
            LiveView::Attention(s) => (
                serde_json::to_string(&AttentionHead {
                    tokens: s.tokens.clone(),
                    n_layer: s.maps.n_layer,
                    n_head: s.maps.n_head,
                    seq: s.maps.seq,
                })
                .expect("serializes"),
                Some(
                    s.maps
                        .weights
                        .iter()
                        .flat_map(|w| w.to_le_bytes())
                        .collect(),
                ),
            ),
            LiveView::ContrastiveBatch(b) => (serde_json::to_string(b).expect("serializes"), None),
            LiveView::MaskedProbe(p) => (serde_json::to_string(p).expect("serializes"), None),
        }
    }

    fn decode(kind: &str, step: usize, head: &str, data: Option<Vec<u8>>) -> Option<Self> {
        match kind {
            "attention" => {
                let head: AttentionHead = serde_json::from_str(head).ok()?;
                let weights = data?
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Some(LiveView::Attention(AttentionSnapshot {
                    step,
                    tokens: head.tokens,
                    maps: AttentionMaps {
                        n_layer: head.n_layer,
                        n_head: head.n_head,
                        seq: head.seq,
                        weights,
                    },
                }))
            }
            "contrastive_batch" => serde_json::from_str(head)
                .ok()
                .map(LiveView::ContrastiveBatch),
            "masked_probe" => serde_json::from_str(head).ok().map(LiveView::MaskedProbe),
            _ => None,
        }
    }
}

/// A stored live view: rowid, kind, step, head and weights.
type ViewRow = (i64, String, i64, String, Option<Vec<u8>>);

/// What the worker says about itself when training begins, for windows attached later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStart {
    /// Trainable parameters of the model.
    pub n_params: usize,
    /// Tokens in the vocabulary.
    pub vocab: usize,
    /// Where it computes, with its thread count.
    pub device: String,
    /// Intra-op threads the run uses.
    pub threads: usize,
    /// Steps the run will take.
    pub total_steps: usize,
}

impl RunStore {
    /// Queues `control` for the run's worker (any process may send it).
    pub fn send_control(&self, control: RunControl) -> Result<(), StoreError> {
        let sent_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.conn()
            .execute(
                "INSERT INTO controls (command, sent_at) VALUES (?1, ?2)",
                params![control.word(), sent_at],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// Controls sent after the one numbered `after`, with their numbers, oldest first (a word
    /// this version does not know is skipped).
    pub fn controls_after(&self, after: i64) -> Result<Vec<(i64, RunControl)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT id, command FROM controls WHERE id > ?1 ORDER BY id")
            .map_err(|e| self.db_err(e))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, word)| RunControl::from_word(&word).map(|c| (id, c)))
            .collect())
    }

    /// The number of the newest control sent (0 when none was).
    pub fn last_control(&self) -> Result<i64, StoreError> {
        self.conn()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM controls", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.db_err(e))
    }

    /// Keeps `view` as the newest of its kind.
    pub fn set_live_view(&self, view: &LiveView) -> Result<(), StoreError> {
        let (head, data) = view.encode();
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO live_views (kind, step, head, data) VALUES (?1, ?2, ?3, ?4)",
                params![view.kind(), view.step() as i64, head, data],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// The newest view of each kind whose change counter is above `after`, with the counter
    /// (the row's rowid, which every replacement raises).
    pub fn live_views_after(&self, after: i64) -> Result<Vec<(i64, LiveView)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT rowid, kind, step, head, data FROM live_views WHERE rowid > ?1 ORDER BY rowid",
            )
            .map_err(|e| self.db_err(e))?;
        let rows: Vec<ViewRow> = stmt
            .query_map([after], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, kind, step, head, data)| {
                LiveView::decode(&kind, step as usize, &head, data).map(|v| (id, v))
            })
            .collect())
    }

    /// Records that the worker of process `pid` is set up (its lock held, a resume's history
    /// cut): what a starter waits for before following the run.
    pub fn set_worker_ready(&self, pid: u32) -> Result<(), StoreError> {
        self.set_meta("worker_ready", &pid.to_string())
    }

    /// The process of the last worker that was set up on this run.
    pub fn worker_ready(&self) -> Result<Option<u32>, StoreError> {
        Ok(self.meta("worker_ready")?.and_then(|s| s.parse().ok()))
    }

    /// Records what the worker said when training began.
    pub fn set_worker_start(&self, start: &WorkerStart) -> Result<(), StoreError> {
        self.set_meta(
            "worker_start",
            &serde_json::to_string(start).expect("serializes"),
        )
    }

    /// What the worker said when training began, if it has begun.
    pub fn worker_start(&self) -> Result<Option<WorkerStart>, StoreError> {
        Ok(self
            .meta("worker_start")?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// The newest step recorded (`None` before the first).
    pub fn newest_step(&self) -> Result<Option<usize>, StoreError> {
        self.conn()
            .query_row("SELECT MAX(step) FROM steps", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()
            .map(|s| s.flatten().map(|s| s as usize))
            .map_err(|e| self.db_err(e))
    }
}

/// The run folders of `dirs` whose worker lives.
pub fn live_runs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter().filter(|d| worker_alive(d)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_tells_a_live_worker_from_a_gone_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!worker_alive(dir.path()), "no lock file: no worker");
        let lock = WorkerLock::acquire(dir.path()).unwrap();
        assert!(worker_alive(dir.path()));
        assert_eq!(worker_process(dir.path()), Some(WorkerProcess::this()));
        // Reading does not take the lock away, however often it happens.
        for _ in 0..10 {
            assert!(worker_alive(dir.path()));
        }
        let second = WorkerLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            second.contains("another process trains this run")
                && second.contains(&format!("pid {}", std::process::id())),
            "{second}"
        );
        drop(lock);
        assert!(!worker_alive(dir.path()));
        assert_eq!(
            effective_status(dir.path(), RunStatus::Running),
            RunStatus::Interrupted
        );
        assert_eq!(
            effective_status(dir.path(), RunStatus::Finished),
            RunStatus::Finished
        );
    }
}
