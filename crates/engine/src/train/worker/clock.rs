//! Time measures of a run: active wall time (pauses excluded) and recent throughput.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Wall time that excludes pauses.
pub(super) struct ActiveClock {
    /// Active time before the current stretch (including a resumed run's earlier time).
    pub(super) banked: Duration,
    since: Option<Instant>,
}

impl ActiveClock {
    pub(super) fn start() -> Self {
        Self {
            banked: Duration::ZERO,
            since: Some(Instant::now()),
        }
    }
    pub(super) fn pause(&mut self) {
        if let Some(since) = self.since.take() {
            self.banked += since.elapsed();
        }
    }
    pub(super) fn resume(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }
    pub(super) fn elapsed_s(&self) -> f64 {
        (self.banked + self.since.map(|s| s.elapsed()).unwrap_or_default()).as_secs_f64()
    }
}

/// Tokens per second over the last steps.
#[derive(Default)]
pub(super) struct Throughput {
    window: VecDeque<(Instant, u64)>,
}

impl Throughput {
    const WINDOW: usize = 20;

    pub(super) fn record(&mut self, tokens: u64) -> f64 {
        let now = Instant::now();
        self.window.push_back((now, tokens));
        if self.window.len() > Self::WINDOW + 1 {
            self.window.pop_front();
        }
        let (first, _) = self.window[0];
        let secs = now.duration_since(first).as_secs_f64();
        let counted: u64 = self.window.iter().skip(1).map(|(_, n)| n).sum();
        if secs > 0.0 && counted > 0 {
            counted as f64 / secs
        } else {
            0.0
        }
    }
}
