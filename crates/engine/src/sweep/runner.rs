//! Trials trained in this process, each on the run worker's own thread (the command line and
//! the studio; tests).

use super::driver::{TrialEvent, TrialRun, TrialRunner};
use crate::events::RunEvent;
use crate::spec::RunSpec;
use crate::train::worker::{Notify, RunHandle, spawn_resume, spawn_run};
use std::path::Path;
use std::time::Duration;

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
