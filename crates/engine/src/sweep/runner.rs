//! Trials trained in this process, each on the run worker's own thread (the command line and
//! the studio; tests).

use super::driver::{TrialEvent, TrialRun, TrialRunner};
use crate::events::RunEvent;
use crate::spec::RunSpec;
use crate::train::worker::{Notify, RunHandle, spawn_resume, spawn_run};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The runner a sweep of `project` uses: trials go through the project's run queue as worker
/// processes ([`Queued`]) where a `hearth` executable runs them, else they train in this
/// process ([`InProcess`]).
pub fn default_runner(project: &Path, notify: Option<Notify>) -> Box<dyn TrialRunner> {
    match crate::train::worker_exe() {
        Some(exe) => Box::new(Queued::new(exe, project.to_path_buf(), notify)),
        None => Box::new(InProcess { notify }),
    }
}

/// Starts trials as run worker threads of this process, one at a time.
#[derive(Default)]
pub struct InProcess {
    /// Called after a worker sends events (a UI repaints).
    pub notify: Option<Notify>,
}

impl TrialRunner for InProcess {
    fn start(&mut self, spec: RunSpec, dir: &Path) -> Result<Box<dyn TrialRun>, String> {
        let handle = spawn_run(spec, dir, self.notify.clone()).map_err(|e| e.to_string())?;
        Ok(Box::new(ThreadTrial {
            handle,
            ended: false,
        }))
    }

    fn resume(&mut self, dir: &Path) -> Result<Box<dyn TrialRun>, String> {
        let handle = spawn_resume(dir, self.notify.clone()).map_err(|e| e.to_string())?;
        Ok(Box::new(ThreadTrial {
            handle,
            ended: false,
        }))
    }
}

/// A trial trained by a worker thread of this process.
struct ThreadTrial {
    handle: RunHandle,
    ended: bool,
}

impl ThreadTrial {
    fn convert(&mut self, event: RunEvent, out: &mut Vec<TrialEvent>) {
        match event {
            RunEvent::Step(m) => out.push(TrialEvent::Step(m.step)),
            RunEvent::Eval(e) => out.push(TrialEvent::Eval(e)),
            RunEvent::Finished(s) => {
                self.ended = true;
                out.push(TrialEvent::Ended {
                    step: s.step,
                    stopped_early: s.stopped_early,
                });
            }
            RunEvent::Failed { step, reason } => {
                self.ended = true;
                out.push(TrialEvent::Failed { step, reason });
            }
            _ => {}
        }
    }
}

impl TrialRun for ThreadTrial {
    fn poll(&mut self, timeout: Duration) -> Vec<TrialEvent> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match self.handle.recv_timeout(timeout) {
            Ok(Some(event)) => self.convert(event, &mut out),
            Ok(None) => return out,
            Err(_) => {
                self.ended = true;
                out.push(TrialEvent::Failed {
                    step: 0,
                    reason: "the training thread ended without a result".into(),
                });
                return out;
            }
        }
        while !self.ended
            && let Some(event) = self.handle.try_recv()
        {
            self.convert(event, &mut out);
        }
        out
    }

    fn stop(&mut self) {
        self.handle.send(crate::events::RunControl::Stop);
    }
}

/// Starts trials through the project's run queue: each trial is an ordinary run of the project
/// that waits for a slot and trains in its own `hearth worker` process, followed through its
/// store; pruning sends it a stop through the store.
pub struct Queued {
    /// The `hearth` executable the workers run.
    pub exe: PathBuf,
    /// The project folder (its queue and runs).
    pub project: PathBuf,
    /// Called when a trial records something (a UI repaints).
    pub notify: Option<Notify>,
    /// The slots last read from the queue, and when.
    slots: Cell<Option<(Instant, usize)>>,
}

impl Queued {
    /// A runner that starts trials through `project`'s run queue as `exe` worker processes.
    pub fn new(exe: PathBuf, project: PathBuf, notify: Option<Notify>) -> Self {
        Self {
            exe,
            project,
            notify,
            slots: Cell::new(None),
        }
    }

    /// Starts the queue's waiting runs that fit now.
    fn dispatch(&self) -> Result<(), String> {
        let project =
            crate::project::Project::open_or_create(&self.project).map_err(|e| e.to_string())?;
        crate::project::queue::RunQueue::new(&self.project)
            .dispatch_beside(&project.run_dirs(), |dir| {
                crate::train::launch_worker_process(&self.exe, Some(&self.project), dir, false)
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl TrialRunner for Queued {
    fn start(&mut self, spec: RunSpec, dir: &Path) -> Result<Box<dyn TrialRun>, String> {
        crate::train::prepare_run(spec, dir).map_err(|e| e.to_string())?;
        crate::project::queue::RunQueue::new(&self.project)
            .push(dir)
            .map_err(|e| e.to_string())?;
        let handle =
            crate::train::attach_run(dir, self.notify.clone()).map_err(|e| e.to_string())?;
        self.dispatch()?;
        Ok(Box::new(ThreadTrial {
            handle,
            ended: false,
        }))
    }

    fn resume(&mut self, dir: &Path) -> Result<Box<dyn TrialRun>, String> {
        // A trial whose worker still trains (the sweep's driver ended, the trial did not) is
        // followed again, not started twice.
        let handle = if crate::project::live::worker_alive(dir) {
            crate::train::attach_run(dir, self.notify.clone())
        } else {
            crate::train::spawn_worker_process(
                &self.exe,
                Some(&self.project),
                dir,
                true,
                self.notify.clone(),
            )
        }
        .map_err(|e| e.to_string())?;
        Ok(Box::new(ThreadTrial {
            handle,
            ended: false,
        }))
    }

    /// As many as the queue lets train at once (the trials beyond wait in the queue); the
    /// queue's limit is read at most once a second.
    fn slots(&self) -> usize {
        if let Some((at, slots)) = self.slots.get()
            && at.elapsed() < Duration::from_secs(1)
        {
            return slots;
        }
        let limit = crate::project::queue::RunQueue::new(&self.project)
            .read()
            .ok()
            .and_then(|q| q.limit);
        let slots = limit.unwrap_or_else(|| {
            (crate::backend::available_cores() / crate::backend::default_threads()).max(1)
        });
        self.slots.set(Some((Instant::now(), slots)));
        slots
    }
}
