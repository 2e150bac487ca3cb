//! Work the studio does in the background (imports, exports, STS scores): each job is a thread
//! that sends one result, with what the status bar says while it runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::Instant;

/// One piece of work on its own thread.
struct Job<T> {
    /// What it does, in words ("importing smol.gguf as run smol").
    what: String,
    started: Instant,
    answer: Receiver<Result<T, String>>,
}

/// Jobs of one kind, each with `Tag`: what the app needs to know when its result comes.
pub(crate) struct Jobs<Tag, T> {
    list: Vec<(Tag, Job<T>)>,
}

impl<Tag, T: Send + 'static> Jobs<Tag, T> {
    pub(crate) fn new() -> Self {
        Self { list: Vec::new() }
    }

    /// Runs `work` on a thread named `thread`; `what` says what it does. A panic in `work`
    /// becomes an error result. Err: the thread could not start (in words).
    pub(crate) fn start(
        &mut self,
        tag: Tag,
        what: String,
        thread: &str,
        work: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<(), String> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(work))
                    .unwrap_or_else(|_| Err("it failed unexpectedly".to_string()));
                let _ = tx.send(result);
            })
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        self.list.push((
            tag,
            Job {
                what,
                started: Instant::now(),
                answer: rx,
            },
        ));
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The tags of the jobs still running.
    pub(crate) fn tags(&self) -> impl Iterator<Item = &Tag> {
        self.list.iter().map(|(tag, _)| tag)
    }

    /// What the status bar says of each running job: what it does and for how long.
    pub(crate) fn progress(&self) -> impl Iterator<Item = String> {
        self.list.iter().map(|(_, job)| {
            format!(
                "{} ({:.0} s)…",
                job.what,
                job.started.elapsed().as_secs_f64()
            )
        })
    }

    /// The jobs that have ended, with their results; the others keep running. A thread that
    /// ended without a result gives an error that says what it was doing.
    pub(crate) fn finished(&mut self) -> Vec<(Tag, Result<T, String>)> {
        let mut done = Vec::new();
        let mut running = Vec::new();
        for (tag, job) in self.list.drain(..) {
            match job.answer.try_recv() {
                Ok(result) => done.push((tag, result)),
                Err(TryRecvError::Empty) => running.push((tag, job)),
                Err(TryRecvError::Disconnected) => {
                    done.push((tag, Err(format!("{} stopped without a result", job.what))));
                }
            }
        }
        self.list = running;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait<Tag, T: Send + 'static>(jobs: &mut Jobs<Tag, T>) -> Vec<(Tag, Result<T, String>)> {
        let start = Instant::now();
        let mut done = Vec::new();
        while !jobs.is_empty() && start.elapsed() < Duration::from_secs(10) {
            done.extend(jobs.finished());
            std::thread::sleep(Duration::from_millis(5));
        }
        done
    }

    #[test]
    fn a_result_comes_once_with_its_tag_and_a_panic_becomes_an_error() {
        let mut jobs = Jobs::new();
        jobs.start("a", "adding".into(), "t-a", || Ok(2 + 2))
            .unwrap();
        jobs.start("b", "failing".into(), "t-b", || panic!("boom"))
            .unwrap();
        assert_eq!(jobs.progress().count(), 2);
        assert!(jobs.progress().all(|p| p.ends_with("s)…")));
        let mut done = wait(&mut jobs);
        done.sort_by_key(|(tag, _)| *tag);
        assert_eq!(done[0], ("a", Ok(4)));
        assert_eq!(done[1].0, "b");
        assert!(
            done[1]
                .1
                .as_ref()
                .is_err_and(|e| e.contains("unexpectedly"))
        );
        assert!(jobs.is_empty() && jobs.finished().is_empty());
    }
}
