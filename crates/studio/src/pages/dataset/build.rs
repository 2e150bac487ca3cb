//! "Save dataset": the recipe built into token shards in a background thread by the engine's
//! [`dataset::build_shards`] (as `hearth dataset` builds it), with its stage, bytes done of
//! the total, rate and time left, and a Cancel that leaves the dataset folder as it was.

use hearth_engine::data::dataset::{
    self, BuildStatus, BuiltShards, DatasetError, DatasetRecipe, ShardOptions,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Called with the stage at each status report of a build, on the build's thread (tests hold
/// a build at a stage with it).
pub type StatusHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Where a build stands, as its last status report said.
#[derive(Debug, Clone, Default)]
pub struct ShardProgress {
    /// What the build is doing.
    pub stage: String,
    /// Bytes of source text done in this stage.
    pub done_bytes: u64,
    /// Bytes this stage does (0: not known).
    pub total_bytes: u64,
    /// When this stage began.
    stage_started: Option<Instant>,
}

impl ShardProgress {
    fn update(&mut self, status: &BuildStatus<'_>, now: Instant) {
        if self.stage != status.stage || self.stage_started.is_none() {
            self.stage = status.stage.to_string();
            self.stage_started = Some(now);
        }
        self.done_bytes = status.done_bytes;
        self.total_bytes = status.total_bytes;
    }

    /// Bytes per second in this stage so far.
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let secs = now.duration_since(self.stage_started?).as_secs_f64();
        (secs > 0.05 && self.done_bytes > 0).then(|| self.done_bytes as f64 / secs)
    }

    /// Seconds left in this stage at its rate so far.
    pub fn eta(&self, now: Instant) -> Option<f64> {
        let left = self.total_bytes.checked_sub(self.done_bytes)?;
        Some(left as f64 / self.rate(now)?)
    }

    /// Share of this stage done (`None`: its size is not known).
    pub fn fraction(&self) -> Option<f32> {
        (self.total_bytes > 0)
            .then(|| (self.done_bytes as f64 / self.total_bytes as f64).clamp(0.0, 1.0) as f32)
    }

    /// `tokenizing: 12.3 MB of 40.0 MB · 8.1 MB/s · 3 s left`.
    pub fn describe(&self, now: Instant) -> String {
        if self.stage.is_empty() {
            return "starting".to_string();
        }
        let mut text = self.stage.clone();
        if self.total_bytes > 0 {
            text.push_str(&format!(
                ": {} of {}",
                bytes(self.done_bytes as f64),
                bytes(self.total_bytes as f64)
            ));
        } else if self.done_bytes > 0 {
            text.push_str(&format!(": {}", bytes(self.done_bytes as f64)));
        }
        if let Some(rate) = self.rate(now) {
            text.push_str(&format!(" · {}/s", bytes(rate)));
        }
        if let Some(eta) = self.eta(now) {
            text.push_str(&format!(" · ETA {}", seconds(eta)));
        }
        if self.total_bytes == 0
            && let Some(start) = self.stage_started
        {
            // A stage of unknown size says how long it has run.
            text.push_str(&format!(
                " · {}",
                seconds(now.duration_since(start).as_secs_f64())
            ));
        }
        text
    }
}

/// `950 B`, `12.3 kB`, `40.0 MB`, `2.10 GB`.
pub fn bytes(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n:.0} B")
    }
}

pub(super) fn seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// A build of a dataset's token shards running in the background.
pub struct ShardBuild {
    /// The dataset folder it builds into.
    pub dir: PathBuf,
    /// The recipe it builds.
    pub recipe: DatasetRecipe,
    /// When it started.
    pub started: Instant,
    /// The folder held a dataset before the build.
    pub existed: bool,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<ShardProgress>>,
    done: Receiver<Result<BuiltShards, DatasetError>>,
}

/// How a build ended.
pub enum BuildEnd {
    /// The shards, recipe and tokenizer are in the folder.
    Built(Box<BuiltShards>),
    /// Cancelled: the folder is as it was.
    Cancelled,
    /// Why it failed (the folder is as it was).
    Failed(String),
}

impl ShardBuild {
    /// Starts building `recipe` into `dir` with the default options (those of `hearth
    /// dataset`); `repaint` is woken at each report and at the end.
    pub fn start(
        recipe: DatasetRecipe,
        dir: PathBuf,
        repaint: egui::Context,
        hook: Option<StatusHook>,
    ) -> Self {
        let existed = dir.join(dataset::DATASET_FILE).exists();
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new(ShardProgress::default()));
        let (tx, done) = channel();
        {
            let (recipe, dir) = (recipe.clone(), dir.clone());
            let (cancel, progress) = (Arc::clone(&cancel), Arc::clone(&progress));
            std::thread::spawn(move || {
                let status = |s: &BuildStatus<'_>| {
                    if let Ok(mut p) = progress.lock() {
                        p.update(s, Instant::now());
                    }
                    repaint.request_repaint();
                    if let Some(hook) = &hook {
                        hook(s.stage);
                    }
                };
                let result = dataset::build_shards(
                    &recipe,
                    &dir,
                    None,
                    &ShardOptions::default(),
                    &status,
                    &cancel,
                );
                let _ = tx.send(result);
                repaint.request_repaint();
            });
        }
        Self {
            existed,
            dir,
            recipe,
            started: Instant::now(),
            cancel,
            progress,
            done,
        }
    }

    /// Asks the build to stop; it ends at its next check, leaving the folder as it was.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// True once Cancel was pressed.
    pub fn is_cancelling(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The last status reported.
    pub fn progress(&self) -> ShardProgress {
        self.progress.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// How the build ended, once it has.
    pub fn finished(&self) -> Option<BuildEnd> {
        match self.done.try_recv() {
            Ok(Ok(built)) => Some(BuildEnd::Built(Box::new(built))),
            Ok(Err(DatasetError::Cancelled)) => Some(BuildEnd::Cancelled),
            Ok(Err(e)) => Some(BuildEnd::Failed(e.to_string())),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(BuildEnd::Failed(
                "the build stopped without a result".to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn progress_gives_rate_and_time_left_within_a_stage() {
        let t0 = Instant::now();
        let mut p = ShardProgress::default();
        let status = |done, total| BuildStatus {
            stage: "tokenizing",
            done_bytes: done,
            total_bytes: total,
        };
        p.update(&status(0, 4_000_000), t0);
        assert_eq!(p.rate(t0), None);
        p.update(&status(1_000_000, 4_000_000), t0 + Duration::from_secs(1));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(p.rate(now), Some(500_000.0));
        assert_eq!(p.eta(now), Some(6.0));
        assert_eq!(p.fraction(), Some(0.25));
        assert_eq!(
            p.describe(now),
            "tokenizing: 1.0 MB of 4.0 MB · 500.0 kB/s · ETA 6 s"
        );
        // A new stage starts its clock again.
        p.update(
            &BuildStatus {
                stage: "writing shards",
                done_bytes: 0,
                total_bytes: 0,
            },
            now,
        );
        assert_eq!((p.rate(now), p.fraction()), (None, None));
        assert_eq!(p.describe(now), "writing shards · 0 s");
        assert_eq!(
            p.describe(now + Duration::from_secs(75)),
            "writing shards · 1m15s"
        );
    }
}
