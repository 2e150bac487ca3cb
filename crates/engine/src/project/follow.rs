//! Following a run through its store: what was recorded since the last look, as the events a
//! worker in this process would have sent. A window attaches to a run this way whichever
//! process trains it (a worker process the studio started, `hearth train`, rank 0 of an MPI
//! job, another studio).

use super::live::{LiveView, effective_status};
use super::store::{HistoryCursor, RunHistory, RunStatus, RunStore, StoreError};
use crate::events::{RunEvent, RunSummary};
use std::path::{Path, PathBuf};

/// Reads a run's store for what is new.
pub struct RunFollower {
    dir: PathBuf,
    store: RunStore,
    cursor: HistoryCursor,
    embedding_step: i64,
    views: i64,
    status: RunStatus,
    started: bool,
    ended: bool,
}

impl RunFollower {
    /// Follows the run in `dir`: its history as recorded now, and the follower whose
    /// [`RunFollower::poll`] returns what comes after it.
    pub fn attach(dir: &Path) -> Result<(Self, RunHistory), StoreError> {
        let store = RunStore::open(dir)?;
        let (history, cursor) = store.history_since(&HistoryCursor::default())?;
        let embedding_step = store.embedding_maps()?.last().map_or(-1, |m| m.step as i64);
        let status = store.status()?;
        let follower = Self {
            dir: dir.to_path_buf(),
            store,
            cursor,
            embedding_step,
            // The newest views are shown at once.
            views: 0,
            status,
            started: false,
            ended: false,
        };
        Ok((follower, history))
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True once the run ended (finished, stopped, failed or interrupted) and that was
    /// returned.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Everything recorded since the last call, in the order a worker sends it; the last
    /// event is `Finished` or `Failed` once the run has ended (`Failed` with the reason
    /// "interrupted" when its worker's process is gone without a word).
    pub fn poll(&mut self) -> Result<Vec<RunEvent>, StoreError> {
        if self.ended {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        // Read the status first: rows written before a final status are read below.
        let stored = self.store.status()?;
        let status = effective_status(&self.dir, stored);
        if !self.started
            && let Some(start) = self.store.worker_start()?
        {
            self.started = true;
            events.push(RunEvent::Started {
                n_params: start.n_params,
                vocab: start.vocab,
                device: start.device,
                threads: start.threads,
                total_steps: start.total_steps,
            });
        }
        let (history, cursor) = self.store.history_since(&self.cursor)?;
        self.cursor = cursor;
        let mut terms = history.step_terms.into_iter().peekable();
        for step in history.steps {
            let at = step.step;
            events.push(RunEvent::Step(step));
            let mut these = Vec::new();
            while let Some((_, key, value)) = terms.next_if(|t| t.0 <= at) {
                these.push((key, value));
            }
            if !these.is_empty() {
                events.push(RunEvent::StepTerms {
                    step: at,
                    terms: these,
                });
            }
        }
        events.extend(history.evals.into_iter().map(RunEvent::Eval));
        for map in self.store.embedding_maps()? {
            if map.step as i64 > self.embedding_step {
                self.embedding_step = map.step as i64;
                events.push(RunEvent::EmbeddingMap(map));
            }
        }
        for (id, view) in self.store.live_views_after(self.views)? {
            self.views = self.views.max(id);
            events.push(match view {
                LiveView::Attention(s) => RunEvent::Attention(s),
                LiveView::ContrastiveBatch(b) => RunEvent::ContrastiveBatch(b),
                LiveView::MaskedProbe(p) => RunEvent::MaskedProbe(p),
            });
        }
        events.extend(
            history
                .samples
                .into_iter()
                .map(|(step, text)| RunEvent::Sample { step, text }),
        );
        events.extend(
            history
                .checkpoints
                .into_iter()
                .map(|(step, path)| RunEvent::Checkpoint { step, path }),
        );
        events.extend(
            history
                .messages
                .into_iter()
                .filter(|(_, level, _)| level == "warning")
                .map(|(step, _, message)| RunEvent::Warning { step, message }),
        );
        let step = self.cursor_step();
        if status != self.status {
            match (&self.status, &status) {
                (_, RunStatus::Paused) => events.push(RunEvent::Paused { step }),
                (RunStatus::Paused, RunStatus::Running) => events.push(RunEvent::Resumed { step }),
                _ => {}
            }
        }
        match &status {
            RunStatus::Finished | RunStatus::Stopped => {
                let summary = self.store.summary()?.unwrap_or(RunSummary {
                    step,
                    train_loss: f32::NAN,
                    val_loss: f32::NAN,
                    tokens_per_s: 0.0,
                    elapsed_s: 0.0,
                    stopped_early: status == RunStatus::Stopped,
                    allreduce_s: 0.0,
                });
                events.push(RunEvent::Finished(summary));
                self.ended = true;
            }
            RunStatus::Failed { reason } => {
                events.push(RunEvent::Failed {
                    step,
                    reason: reason.clone(),
                });
                self.ended = true;
            }
            RunStatus::Interrupted => {
                events.push(RunEvent::Failed {
                    step,
                    reason: INTERRUPTED.to_string(),
                });
                self.ended = true;
            }
            RunStatus::Created | RunStatus::Queued | RunStatus::Running | RunStatus::Paused => {}
        }
        self.status = status;
        Ok(events)
    }

    /// The status as stored (a killed worker's run still reads running here).
    pub fn stored_status(&self) -> Result<RunStatus, StoreError> {
        self.store.status()
    }

    fn cursor_step(&self) -> usize {
        self.store.newest_step().ok().flatten().unwrap_or_default()
    }
}

/// Why a run whose worker vanished stopped, as the studio and `hearth runs` say it.
pub const INTERRUPTED: &str = "interrupted: the process training it ended without finishing (resume it from its newest checkpoint)";
