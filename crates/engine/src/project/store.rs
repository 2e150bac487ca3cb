//! The run store: one folder per run holding `spec.json` and `run.sqlite` (every step's
//! metrics, evaluations, samples, checkpoints and messages), plus `checkpoints/`.
//!
//! SQLite in WAL mode commits each appended row, so a killed process loses at most the row
//! being written, and a reader (the studio) can open the history while the worker appends.

use crate::events::{AttentionSnapshot, EmbeddingSnapshot, Reference};
use crate::events::{EvalMetrics, RunSummary, StepMetrics};
use crate::model::AttentionMaps;
use crate::spec::{RunSpec, SpecFileError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a run folder cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or folder cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The run's SQLite database failed.
    #[error("{path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// The run's `spec.json` does not read as a spec.
    #[error("{path}: {source}")]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// Why it does not read.
        source: SpecFileError,
    },
    /// The folder is not what the operation needs.
    #[error("{path}: {message}")]
    Invalid {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunStatus {
    /// The folder exists; training has not started.
    Created,
    /// A worker is training it.
    Running,
    /// Its worker holds after a step.
    Paused,
    /// It reached its last step.
    Finished,
    /// Stopped by the user before its last step.
    Stopped,
    /// Its worker's process ended without saying how the run stands (killed, crashed, the
    /// machine went down): resumable from its newest checkpoint. Never stored; read from a
    /// stored running or paused status whose worker is gone.
    Interrupted,
    /// Waiting in the project's queue for a free slot.
    Queued,
    /// It could not continue.
    Failed {
        /// Why.
        reason: String,
    },
}

impl RunStatus {
    /// The status as one lowercase word, for lists.
    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Created => "created",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Queued => "queued",
            RunStatus::Failed { .. } => "failed",
        }
    }

    /// Whether a worker holds the run (running or paused).
    pub fn is_active(&self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Paused)
    }
}

/// Everything a run has recorded, as loaded from its store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunHistory {
    /// Every step's metrics.
    pub steps: Vec<StepMetrics>,
    /// Every evaluation.
    pub evals: Vec<EvalMetrics>,
    /// `(step, text)`.
    pub samples: Vec<(usize, String)>,
    /// `(step, path)`.
    pub checkpoints: Vec<(usize, PathBuf)>,
    /// `(step, level, message)`.
    pub messages: Vec<(usize, String, String)>,
    /// The terms of steps whose loss sums several (`step, name, value`), in step order.
    pub step_terms: Vec<(usize, String, f64)>,
}

/// An open run folder.
pub struct RunStore {
    dir: PathBuf,
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    step INTEGER PRIMARY KEY, train_loss REAL NOT NULL, lr REAL NOT NULL, grad_norm REAL NOT NULL,
    tokens_per_s REAL NOT NULL, elapsed_s REAL NOT NULL, tokens_seen INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS evals (
    step INTEGER PRIMARY KEY, train_loss REAL NOT NULL, val_loss REAL NOT NULL,
    elapsed_s REAL NOT NULL);
CREATE TABLE IF NOT EXISTS eval_metrics (
    step INTEGER NOT NULL, key TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (step, key));
CREATE TABLE IF NOT EXISTS step_terms (
    step INTEGER NOT NULL, key TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (step, key));
CREATE TABLE IF NOT EXISTS embedding_maps (step INTEGER PRIMARY KEY, snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (step INTEGER NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (step INTEGER NOT NULL, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (step INTEGER NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS controls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, sent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS live_views (
    kind TEXT PRIMARY KEY, step INTEGER NOT NULL, head TEXT NOT NULL, data BLOB);
CREATE TABLE IF NOT EXISTS attention (
    step INTEGER PRIMARY KEY, tokens TEXT NOT NULL, n_layer INTEGER NOT NULL, n_head INTEGER NOT NULL,
    seq INTEGER NOT NULL, weights BLOB NOT NULL);
";

/// What a user wrote about a run (its spec stays as it was trained).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Annotations {
    /// Shown instead of the spec's name when set.
    pub display_name: Option<String>,
    /// Free labels for filtering and grouping.
    pub tags: Vec<String>,
    /// Free text.
    pub notes: String,
}

impl RunStore {
    /// The run's spec file in its folder.
    pub const SPEC_FILE: &'static str = "spec.json";
    /// The run's history database in its folder.
    pub const DB_FILE: &'static str = "run.sqlite";

    /// Creates the run folder `dir` (which must not already hold a run) and writes the spec.
    pub fn create(dir: &Path, spec: &RunSpec) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        };
        if dir.join(Self::DB_FILE).exists() {
            return Err(StoreError::Invalid {
                path: dir.to_path_buf(),
                message: "already holds a run; choose another folder".to_string(),
            });
        }
        std::fs::create_dir_all(dir.join("checkpoints")).map_err(io)?;
        let json = serde_json::to_string_pretty(spec).expect("a spec always serializes");
        write_atomic(&dir.join(Self::SPEC_FILE), json.as_bytes())?;
        let store = Self::open_db(dir)?;
        store.set_status(&RunStatus::Created)?;
        Ok(store)
    }

    /// Opens an existing run folder.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if !dir.join(Self::SPEC_FILE).exists() {
            return Err(StoreError::Invalid {
                path: dir.to_path_buf(),
                message: format!("not a run folder (no {})", Self::SPEC_FILE),
            });
        }
        // A missing history is damage to report, never a fresh empty history to create.
        let db = dir.join(Self::DB_FILE);
        if !db.exists() {
            return Err(StoreError::Io {
                path: db,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "missing"),
            });
        }
        Self::open_db(dir)
    }

    /// Opens the run's history and runs SQLite's quick check over it (every page and index),
    /// without needing `spec.json`.
    pub fn check_db(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(Self::DB_FILE);
        if !path.exists() {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "missing"),
            });
        }
        let store = Self::open_db(dir)?;
        let verdict: Vec<String> = store
            .conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get::<_, String>(0))
                    .and_then(|rows| rows.collect())
            })
            .map_err(|e| store.db_err(e))?;
        if verdict.len() == 1 && verdict[0] == "ok" {
            Ok(store)
        } else {
            Err(StoreError::Invalid {
                path,
                message: verdict.join("; "),
            })
        }
    }

    /// The newest checkpoint recorded: its step and weights file.
    pub fn newest_checkpoint(&self) -> Result<Option<(usize, PathBuf)>, StoreError> {
        self.conn
            .query_row(
                "SELECT step, path FROM checkpoints ORDER BY step DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as usize,
                        PathBuf::from(r.get::<_, String>(1)?),
                    ))
                },
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// The newest checkpoint's step and file, found in the run folder `dir` itself when the
    /// folder was moved since it was recorded; `None` before the first checkpoint.
    pub fn newest_checkpoint_in(&self, dir: &Path) -> Result<Option<(usize, PathBuf)>, StoreError> {
        Ok(self.newest_checkpoint()?.map(|(step, path)| {
            if path.exists() {
                return (step, path);
            }
            let moved = match path.file_name() {
                Some(name) => dir.join("checkpoints").join(name),
                None => path,
            };
            (step, moved)
        }))
    }

    fn open_db(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(Self::DB_FILE);
        let db = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        conn.execute_batch(super::dynamics::SCHEMA).map_err(db)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            conn,
        })
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The open database, for the other parts of the store (live views, controls).
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(super) fn db_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.dir.join(Self::DB_FILE),
            source,
        }
    }

    /// The run's spec, read from its folder.
    pub fn spec(&self) -> Result<RunSpec, StoreError> {
        read_spec(&self.dir)
    }

    pub(super) fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    pub(super) fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Records where the run stands.
    pub fn set_status(&self, status: &RunStatus) -> Result<(), StoreError> {
        self.set_meta(
            "status",
            &serde_json::to_string(status).expect("serializes"),
        )
    }

    /// Where the run stands (`Created` when nothing is recorded or it does not read).
    pub fn status(&self) -> Result<RunStatus, StoreError> {
        Ok(self
            .meta("status")?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(RunStatus::Created))
    }

    /// Records how the run ended.
    pub fn set_summary(&self, summary: &RunSummary) -> Result<(), StoreError> {
        self.set_meta(
            "summary",
            &serde_json::to_string(summary).expect("serializes"),
        )
    }

    /// How the run ended, once it has.
    pub fn summary(&self) -> Result<Option<RunSummary>, StoreError> {
        Ok(self
            .meta("summary")?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Saves the simple models' figures on the run's data (see [`Reference`]).
    pub fn set_references(&self, references: &[Reference]) -> Result<(), StoreError> {
        self.set_meta(
            "references",
            &serde_json::to_string(references).expect("serializes"),
        )
    }

    /// The simple models' figures on the run's data; `None` before training started (or for
    /// runs recorded before they were computed).
    pub fn references(&self) -> Result<Option<Vec<Reference>>, StoreError> {
        Ok(self
            .meta("references")?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Saves the user's name, tags and notes for the run.
    pub fn set_annotations(&self, annotations: &Annotations) -> Result<(), StoreError> {
        self.set_meta(
            "annotations",
            &serde_json::to_string(annotations).expect("serializes"),
        )
    }

    /// The user's name, tags and notes (empty when none are saved).
    pub fn annotations(&self) -> Result<Annotations, StoreError> {
        Ok(self
            .meta("annotations")?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    /// Keeps an attention snapshot (weights as little-endian f32).
    pub fn append_attention(&self, snapshot: &AttentionSnapshot) -> Result<(), StoreError> {
        let maps = &snapshot.maps;
        let bytes: Vec<u8> = maps.weights.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO attention VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    snapshot.step as i64,
                    serde_json::to_string(&snapshot.tokens).expect("serializes"),
                    maps.n_layer as i64,
                    maps.n_head as i64,
                    maps.seq as i64,
                    bytes
                ],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// Keeps an embedding map (one per step; a later one for the same step replaces it).
    pub fn append_embedding_map(&self, snapshot: &EmbeddingSnapshot) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO embedding_maps VALUES (?1, ?2)",
                params![
                    snapshot.step as i64,
                    serde_json::to_string(snapshot).expect("serializes")
                ],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// Every embedding map, in step order.
    pub fn embedding_maps(&self) -> Result<Vec<EmbeddingSnapshot>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot FROM embedding_maps ORDER BY step")
            .map_err(|e| self.db_err(e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        Ok(rows
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect())
    }

    /// Steps that have an attention snapshot, ascending.
    pub fn attention_steps(&self) -> Result<Vec<usize>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT step FROM attention ORDER BY step")
            .map_err(|e| self.db_err(e))?;
        stmt.query_map([], |r| Ok(r.get::<_, i64>(0)? as usize))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))
    }

    /// The attention snapshot of `step`.
    pub fn attention_at(&self, step: usize) -> Result<Option<AttentionSnapshot>, StoreError> {
        self.conn
            .query_row(
                "SELECT tokens, n_layer, n_head, seq, weights FROM attention WHERE step = ?1",
                [step as i64],
                |r| {
                    let tokens: String = r.get(0)?;
                    let bytes: Vec<u8> = r.get(4)?;
                    Ok(AttentionSnapshot {
                        step,
                        tokens: serde_json::from_str(&tokens).unwrap_or_default(),
                        maps: AttentionMaps {
                            n_layer: r.get::<_, i64>(1)? as usize,
                            n_head: r.get::<_, i64>(2)? as usize,
                            seq: r.get::<_, i64>(3)? as usize,
                            weights: bytes
                                .chunks_exact(4)
                                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                                .collect(),
                        },
                    })
                },
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Forgets everything recorded after `step`, before a run resumes from its checkpoint there.
    pub fn truncate_after(&self, step: usize) -> Result<(), StoreError> {
        for table in [
            "steps",
            "eval_metrics",
            "evals",
            "samples",
            "checkpoints",
            "attention",
            "embedding_maps",
            "messages",
            "live_views",
        ] {
            self.conn
                .execute(
                    &format!("DELETE FROM {table} WHERE step > ?1"),
                    [step as i64],
                )
                .map_err(|e| self.db_err(e))?;
        }
        self.truncate_dynamics_after(step)?;
        Ok(())
    }

    /// Appends (or replaces) one step's metrics.
    pub fn append_step(&self, m: &StepMetrics) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO steps VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .and_then(|mut stmt| {
                stmt.execute(params![
                    m.step as i64,
                    f64::from(m.train_loss),
                    m.lr,
                    f64::from(m.grad_norm),
                    m.tokens_per_s,
                    m.elapsed_s,
                    m.tokens_seen as i64
                ])
            })
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// Appends many steps in one transaction (imports and generated projects).
    pub fn append_steps(&self, metrics: &[StepMetrics]) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN")
            .map_err(|e| self.db_err(e))?;
        for m in metrics {
            if let Err(err) = self.append_step(m) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(err);
            }
        }
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| self.db_err(e))
    }

    /// Records the terms of step `step`'s loss (see [`RunEvent::StepTerms`]).
    ///
    /// [`RunEvent::StepTerms`]: crate::events::RunEvent::StepTerms
    pub fn append_step_terms(
        &self,
        step: usize,
        terms: &[(String, f64)],
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO step_terms VALUES (?1, ?2, ?3)")
            .map_err(|e| self.db_err(e))?;
        for (key, value) in terms {
            stmt.execute(params![step as i64, key, value])
                .map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }

    /// Appends (or replaces) one evaluation and its objective metrics.
    pub fn append_eval(&self, m: &EvalMetrics) -> Result<(), StoreError> {
        // One transaction, so a reader never sees the evaluation without its metrics.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.db_err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO evals VALUES (?1, ?2, ?3, ?4)",
            params![
                m.step as i64,
                f64::from(m.train_loss),
                f64::from(m.val_loss),
                m.elapsed_s
            ],
        )
        .map_err(|e| self.db_err(e))?;
        for (key, value) in &m.extra {
            tx.execute(
                "INSERT OR REPLACE INTO eval_metrics VALUES (?1, ?2, ?3)",
                params![m.step as i64, key, value],
            )
            .map_err(|e| self.db_err(e))?;
        }
        tx.commit().map_err(|e| self.db_err(e))
    }

    /// Records objective metrics at `step` measured outside training (an STS evaluation of
    /// a checkpoint), beside that step's evaluation if it has one. A step with metrics but no
    /// evaluation loads as an evaluation whose losses are NaN (not measured); plots skip them.
    pub fn append_eval_metrics(
        &self,
        step: usize,
        metrics: &[(String, f64)],
    ) -> Result<(), StoreError> {
        for (key, value) in metrics {
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO eval_metrics VALUES (?1, ?2, ?3)",
                    params![step as i64, key, value],
                )
                .map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }

    /// Appends a generated sample.
    pub fn append_sample(&self, step: usize, text: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO samples VALUES (?1, ?2)",
                params![step as i64, text],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// Records a checkpoint written at `step`.
    pub fn append_checkpoint(&self, step: usize, path: &Path) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO checkpoints VALUES (?1, ?2)",
                params![step as i64, path.to_string_lossy()],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// Appends a message at `step` with its level (`warning`, `error`, ...).
    pub fn append_message(
        &self,
        step: usize,
        level: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO messages VALUES (?1, ?2, ?3)",
                params![step as i64, level, message],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    /// The last recorded step and its training loss, without loading the whole history.
    pub fn last_step(&self) -> Result<Option<(usize, f32)>, StoreError> {
        self.conn
            .query_row(
                "SELECT step, train_loss FROM steps ORDER BY step DESC LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)? as usize, row.get::<_, f64>(1)? as f32)),
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// The latest evaluation's step and its objective metrics (`key`, value), without loading
    /// the whole history; `None` before the first evaluation.
    pub fn last_eval_metrics(&self) -> Result<Option<LastEval>, StoreError> {
        let step: Option<i64> = self
            .conn
            .query_row("SELECT MAX(step) FROM evals", [], |row| row.get(0))
            .map_err(|e| self.db_err(e))?;
        let Some(step) = step else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM eval_metrics WHERE step = ?1 ORDER BY key")
            .map_err(|e| self.db_err(e))?;
        let metrics = stmt
            .query_map([step], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, f64>(1)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.db_err(e))?;
        Ok(Some((step as usize, metrics)))
    }

    /// The evaluation with the lowest validation loss: its step and that loss.
    pub fn best_val_loss(&self) -> Result<Option<(usize, f32)>, StoreError> {
        self.conn
            .query_row(
                "SELECT step, val_loss FROM evals ORDER BY val_loss ASC LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)? as usize, row.get::<_, f64>(1)? as f32)),
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Loads every recorded row, in step order.
    pub fn load_history(&self) -> Result<RunHistory, StoreError> {
        Ok(self.history_since(&HistoryCursor::default())?.0)
    }

    /// The rows recorded after `cursor` (everything, from the default cursor), and the cursor
    /// after them: what a window following a run reads each time it looks.
    pub fn history_since(
        &self,
        cursor: &HistoryCursor,
    ) -> Result<(RunHistory, HistoryCursor), StoreError> {
        let q = |sql: &str| self.conn.prepare_cached(sql).map_err(|e| self.db_err(e));
        let mut next = cursor.clone();
        let mut history = RunHistory::default();
        let mut stmt = q(
            "SELECT step, train_loss, lr, grad_norm, tokens_per_s, elapsed_s, tokens_seen FROM steps WHERE step > ?1 ORDER BY step",
        )?;
        history.steps = stmt
            .query_map([cursor.step], |r| {
                Ok(StepMetrics {
                    step: r.get::<_, i64>(0)? as usize,
                    train_loss: r.get::<_, f64>(1)? as f32,
                    lr: r.get(2)?,
                    grad_norm: r.get::<_, f64>(3)? as f32,
                    tokens_per_s: r.get(4)?,
                    elapsed_s: r.get(5)?,
                    tokens_seen: r.get::<_, i64>(6)? as u64,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        if let Some(last) = history.steps.last() {
            next.step = last.step as i64;
        }
        let mut stmt = q(
            "SELECT step, train_loss, val_loss, elapsed_s FROM evals WHERE step > ?1 ORDER BY step",
        )?;
        history.evals = stmt
            .query_map([cursor.eval], |r| {
                Ok(EvalMetrics {
                    step: r.get::<_, i64>(0)? as usize,
                    train_loss: r.get::<_, f64>(1)? as f32,
                    val_loss: r.get::<_, f64>(2)? as f32,
                    elapsed_s: r.get(3)?,
                    extra: Vec::new(),
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        // Metrics recorded outside an evaluation (a checkpoint's STS score) are read with the
        // whole history only; a follower sees those of each new evaluation.
        let extras_after = if cursor == &HistoryCursor::default() {
            -1
        } else {
            cursor.eval
        };
        let mut stmt =
            q("SELECT step, key, value FROM eval_metrics WHERE step > ?1 ORDER BY step, rowid")?;
        let extras: Vec<(usize, String, f64)> = stmt
            .query_map([extras_after], |r| {
                Ok((r.get::<_, i64>(0)? as usize, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        if let Some(last) = history.evals.last() {
            next.eval = last.step as i64;
        }
        for (step, key, value) in extras {
            match history.evals.iter().position(|e| e.step == step) {
                Some(i) => history.evals[i].extra.push((key, value)),
                None if cursor != &HistoryCursor::default() => {}
                None => {
                    // Metrics recorded without an evaluation (a checkpoint's STS score).
                    let at = history.evals.partition_point(|e| e.step < step);
                    history.evals.insert(
                        at,
                        EvalMetrics {
                            step,
                            train_loss: f32::NAN,
                            val_loss: f32::NAN,
                            elapsed_s: 0.0,
                            extra: vec![(key, value)],
                        },
                    );
                }
            }
        }
        let mut stmt = q(
            "SELECT step, key, value, rowid FROM step_terms WHERE rowid > ?1 ORDER BY step, rowid",
        )?;
        let terms: Vec<(usize, String, f64, i64)> = stmt
            .query_map([cursor.terms], |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        next.terms = terms.iter().map(|t| t.3).max().unwrap_or(cursor.terms);
        history.step_terms = terms.into_iter().map(|(s, k, v, _)| (s, k, v)).collect();
        let mut stmt = q("SELECT step, text, rowid FROM samples WHERE rowid > ?1 ORDER BY rowid")?;
        let samples: Vec<(usize, String, i64)> = stmt
            .query_map([cursor.samples], |r| {
                Ok((r.get::<_, i64>(0)? as usize, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        next.samples = samples.last().map_or(cursor.samples, |s| s.2);
        history.samples = samples.into_iter().map(|(s, t, _)| (s, t)).collect();
        let mut stmt =
            q("SELECT step, path, rowid FROM checkpoints WHERE rowid > ?1 ORDER BY rowid")?;
        let checkpoints: Vec<(usize, PathBuf, i64)> = stmt
            .query_map([cursor.checkpoints], |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    PathBuf::from(r.get::<_, String>(1)?),
                    r.get(2)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        next.checkpoints = checkpoints.last().map_or(cursor.checkpoints, |c| c.2);
        history.checkpoints = checkpoints.into_iter().map(|(s, p, _)| (s, p)).collect();
        let mut stmt =
            q("SELECT step, level, message, rowid FROM messages WHERE rowid > ?1 ORDER BY rowid")?;
        let messages: Vec<(usize, String, String, i64)> = stmt
            .query_map([cursor.messages], |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        next.messages = messages.last().map_or(cursor.messages, |m| m.3);
        history.messages = messages.into_iter().map(|(s, l, m, _)| (s, l, m)).collect();
        Ok((history, next))
    }
}

/// Where a reader of a run's history stands: the newest step and evaluation it has read, and
/// the newest row of each table kept in insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor {
    step: i64,
    eval: i64,
    terms: i64,
    samples: i64,
    checkpoints: i64,
    messages: i64,
}

impl Default for HistoryCursor {
    fn default() -> Self {
        Self {
            step: -1,
            eval: -1,
            terms: 0,
            samples: 0,
            checkpoints: 0,
            messages: 0,
        }
    }
}

/// An evaluation's step and its objective metrics (`key`, value).
pub type LastEval = (usize, Vec<(String, f64)>);

/// The tokenizer a run saved (`tokenizer.json`), if it has one that reads.
pub fn read_tokenizer(dir: &Path) -> Option<crate::data::Tokenizer> {
    let text = std::fs::read_to_string(dir.join("tokenizer.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Reads `spec.json` of a run folder.
pub fn read_spec(dir: &Path) -> Result<RunSpec, StoreError> {
    let path = dir.join(RunStore::SPEC_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io {
        path: path.clone(),
        source,
    })?;
    RunSpec::from_json(&text).map_err(|source| StoreError::Spec { path, source })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// LoRA adapters of `rank` (alpha `2 x rank`, on the attention projections) over the newest
/// checkpoint of the run folder `base_run`, named by its absolute path.
pub fn lora_on_run(rank: usize, base_run: &Path) -> Result<crate::model::LoraSpec, String> {
    let store = RunStore::open(base_run).map_err(|e| e.to_string())?;
    let (_, path) = store
        .newest_checkpoint_in(base_run)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: the run has no checkpoint", base_run.display()))?;
    let base = path
        .canonicalize()
        .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
    Ok(crate::model::LoraSpec {
        rank,
        alpha: 2.0 * rank as f64,
        base,
        ..crate::model::LoraSpec::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_folder_is_refused_twice() {
        let dir = tempfile::tempdir().unwrap();
        let spec = RunSpec::default();
        RunStore::create(dir.path(), &spec).unwrap();
        let err = RunStore::create(dir.path(), &spec)
            .err()
            .expect("second create fails");
        assert!(err.to_string().contains("already holds a run"), "{err}");
    }

    #[test]
    fn rows_round_trip_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::create(dir.path(), &RunSpec::default()).unwrap();
        let step = StepMetrics {
            step: 1,
            train_loss: 4.174_387_5,
            lr: 9.900_990_099e-6,
            grad_norm: 0.123_456_79,
            tokens_per_s: 7_654.321,
            elapsed_s: 0.1,
            tokens_seen: 768,
        };
        store.append_step(&step).unwrap();
        store
            .set_status(&RunStatus::Failed { reason: "x".into() })
            .unwrap();
        drop(store);
        let store = RunStore::open(dir.path()).unwrap();
        assert_eq!(store.load_history().unwrap().steps, vec![step]);
        assert_eq!(
            store.status().unwrap(),
            RunStatus::Failed { reason: "x".into() }
        );
    }
}
