//! Runs trained in another process: a worker process started here (`hearth worker`), or any
//! run followed through its store. Either way the caller gets a [`RunHandle`] whose events
//! come from the store and whose controls go to it.

use super::{Notify, RunHandle, SpawnError};
use crate::events::{RunControl, RunEvent};
use crate::project::follow::RunFollower;
use crate::project::live::worker_alive;
use crate::project::{RunStatus, RunStore, StoreError};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How often a follower reads the store.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// The file in a run folder that holds its worker process's output.
pub const WORKER_LOG: &str = "worker.log";

/// Follows the run in `dir` (trained by any process): events come as the store records them,
/// controls are written to the store for its worker. Dropping the handle stops following,
/// never the run.
pub fn attach_run(dir: &Path, notify: Option<Notify>) -> Result<RunHandle, SpawnError> {
    follow(dir, None, notify)
}

/// Starts `hearth worker` (the executable `exe`) on the run folder `dir`, made by
/// [`super::prepare_run`] (or to resume it), in its own process group with its output in
/// `worker.log`, and waits until it holds the run's lock. The process is not followed: the
/// queue starts runs this way, and windows attach to them.
pub fn launch_worker_process(
    exe: &Path,
    project: Option<&Path>,
    dir: &Path,
    resume: bool,
) -> Result<Child, SpawnError> {
    let log_path = dir.join(WORKER_LOG);
    let io = |source| {
        SpawnError::Store(StoreError::Io {
            path: log_path.clone(),
            source,
        })
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io)?;
    let mut command = Command::new(exe);
    if let Some(project) = project {
        command.arg("--project").arg(project);
    }
    command.arg("worker").arg("--run").arg(dir);
    if resume {
        command.arg("--resume");
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io)?)
        .stderr(log);
    #[cfg(unix)]
    {
        // Its own process group: a Ctrl+C or a closed terminal meant for the studio does not
        // reach the run.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|source| {
        SpawnError::Store(StoreError::Io {
            path: exe.to_path_buf(),
            source,
        })
    })?;
    // Until the worker is set up (its lock held, a resume's history cut), another look at
    // the queue would count one run too few, and a follower could start reading rows the
    // worker is about to drop.
    let ready = |pid: u32| {
        RunStore::open(dir)
            .and_then(|s| s.worker_ready())
            .is_ok_and(|p| p == Some(pid))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(child.id()) && Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

/// Starts a worker process on `dir` (see [`launch_worker_process`]) and follows it. When the
/// process dies without saying how the run ended (a signal, an abort in native code), the run
/// is marked failed with the reason and the last lines of its output.
pub fn spawn_worker_process(
    exe: &Path,
    project: Option<&Path>,
    dir: &Path,
    resume: bool,
    notify: Option<Notify>,
) -> Result<RunHandle, SpawnError> {
    let child = launch_worker_process(exe, project, dir, resume)?;
    follow(dir, Some(child), notify)
}

/// The follower thread behind a [`RunHandle`].
fn follow(
    dir: &Path,
    child: Option<Child>,
    notify: Option<Notify>,
) -> Result<RunHandle, SpawnError> {
    let (mut follower, history) = RunFollower::attach(dir)?;
    let (event_tx, event_rx) = channel();
    let (control_tx, control_rx) = channel::<RunControl>();
    let detach = Arc::new(AtomicBool::new(false));
    let let_go = detach.clone();
    let folder = dir.to_path_buf();
    let mut child = child;
    let name = format!(
        "hearth-follow-{}",
        dir.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let mut told_error = false;
            loop {
                if let_go.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(process) = child.as_mut() {
                    let mut exited = process.try_wait().ok().flatten();
                    // The lock is gone while the store still says running: the process is
                    // ending without a word; wait for it, to say how it ended.
                    if exited.is_none()
                        && follower.stored_status().is_ok_and(|s| s.is_active())
                        && !worker_alive(&folder)
                    {
                        exited = process.wait().ok();
                    }
                    if let Some(exited) = exited {
                        child = None;
                        if let Some(reason) = death_reason(&folder, exited) {
                            mark_failed(&folder, &reason);
                        }
                    }
                }
                let mut gone = false;
                match follower.poll() {
                    Ok(events) => {
                        let any = !events.is_empty();
                        for event in events {
                            if event_tx.send(event).is_err() {
                                gone = true;
                            }
                        }
                        if any && let Some(notify) = &notify {
                            notify();
                        }
                    }
                    Err(err) if !told_error => {
                        told_error = true;
                        let _ = event_tx.send(RunEvent::Warning {
                            step: 0,
                            message: format!("cannot read the run's store: {err}"),
                        });
                    }
                    Err(_) => {}
                }
                if gone || follower.ended() {
                    break;
                }
                match control_rx.recv_timeout(FOLLOW_INTERVAL) {
                    Ok(control) => {
                        if let Err(err) =
                            RunStore::open(&folder).and_then(|s| s.send_control(control))
                        {
                            let _ = event_tx.send(RunEvent::Warning {
                                step: 0,
                                message: format!("cannot send {}: {err}", control.word()),
                            });
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            // A worker process still running goes on; the system reaps it once this process
            // ends.
            drop(child);
        })
        .map_err(SpawnError::Thread)?;
    Ok(RunHandle {
        dir: dir.to_path_buf(),
        events: event_rx,
        control: control_tx,
        thread: Some(thread),
        detach: Some(detach),
        history: Some(history),
    })
}

/// Why a worker process that ended left its run unfinished, or `None` when the run's store
/// says how it ended.
fn death_reason(dir: &Path, exited: std::process::ExitStatus) -> Option<String> {
    let status = RunStore::open(dir).and_then(|s| s.status()).ok()?;
    if !matches!(
        status,
        RunStatus::Created | RunStatus::Queued | RunStatus::Running | RunStatus::Paused
    ) {
        return None;
    }
    let how = exit_words(exited);
    let tail = log_tail(dir, 6);
    Some(if tail.is_empty() {
        format!("the worker process {how}")
    } else {
        format!("the worker process {how}; its last output:\n{tail}")
    })
}

/// `was killed by signal 9 (SIGKILL)`, `exited with status 3`.
fn exit_words(exited: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = exited.signal() {
            let name = match signal {
                6 => " (SIGABRT: an abort, often in native code)",
                9 => " (SIGKILL: killed, for example by the out-of-memory killer)",
                11 => " (SIGSEGV: a crash in native code)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("was killed by signal {signal}{name}");
        }
    }
    match exited.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended".to_string(),
    }
}

/// The last `n` lines of the run's worker log.
pub fn log_tail(dir: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(dir.join(WORKER_LOG)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Records that the run failed for `reason` (its worker cannot any more).
fn mark_failed(dir: &Path, reason: &str) {
    if let Ok(store) = RunStore::open(dir) {
        let step = store.newest_step().ok().flatten().unwrap_or(0);
        let _ = store.append_message(step, "error", reason);
        let _ = store.set_status(&RunStatus::Failed {
            reason: reason.to_string(),
        });
    }
}

/// The executable to start workers with: `HEARTH_WORKER_EXE` when set, else this program when
/// it is `hearth`.
pub fn worker_exe() -> Option<PathBuf> {
    if let Some(exe) = std::env::var_os("HEARTH_WORKER_EXE") {
        return Some(PathBuf::from(exe));
    }
    let me = std::env::current_exe().ok()?;
    let name = format!("hearth{}", std::env::consts::EXE_SUFFIX);
    me.file_name()
        .is_some_and(|n| n == name.as_str())
        .then_some(me)
}
