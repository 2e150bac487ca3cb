//! `hearth worker`: trains one prepared run folder in this process, as the studio and the
//! queue start runs, so that a run outlives the window that started it. Its output goes to
//! the run's `worker.log`; everything a window shows goes through the run's store.

use anyhow::{Context, Result, bail};
use clap::Args;
use hearth_engine::project::Project;
use hearth_engine::project::queue::RunQueue;
use hearth_engine::train::{RunEvent, launch_worker_process, spawn_prepared, spawn_resume};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// The run folder (made by the studio or `hearth train --queue`).
    #[arg(long)]
    pub run: PathBuf,
    /// Continue the run from its newest checkpoint instead of starting it.
    #[arg(long)]
    pub resume: bool,
}

/// Trains the run to its end, then starts what the project's queue holds next.
pub fn run(args: &WorkerArgs, project: Option<PathBuf>) -> Result<()> {
    let handle = if args.resume {
        spawn_resume(&args.run, None)
    } else {
        spawn_prepared(&args.run, None)
    }
    .with_context(|| format!("cannot train {}", args.run.display()))?;
    println!(
        "worker pid {} training {}",
        std::process::id(),
        args.run.display()
    );
    let mut outcome = Ok(());
    loop {
        match handle.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(RunEvent::Started { device, .. })) => println!("started on {device}"),
            Ok(Some(RunEvent::Warning { step, message })) => {
                println!("warning at step {step}: {message}")
            }
            Ok(Some(RunEvent::Eval(e))) => {
                println!("step {}: val_loss {:.4}", e.step, e.val_loss)
            }
            Ok(Some(RunEvent::Finished(summary))) => {
                println!(
                    "finished at step {} (val_loss {:.4})",
                    summary.step, summary.val_loss
                );
            }
            Ok(Some(RunEvent::Failed { step, reason })) => {
                println!("failed at step {step}: {reason}");
                outcome = Err(anyhow::anyhow!("run failed at step {step}: {reason}"));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // The thread has ended and let go of the run's lock: its slot is free.
    drop(handle);
    if let Some(root) = project {
        dispatch(&root);
    }
    outcome
}

/// Starts the project's waiting runs that fit now, each in its own worker process; reports
/// (without failing) when the queue cannot be read.
pub fn dispatch(root: &Path) -> Vec<PathBuf> {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("cannot start queued runs: {err}");
            return Vec::new();
        }
    };
    let project = match Project::open_or_create(root) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("cannot start queued runs: {err}");
            return Vec::new();
        }
    };
    match RunQueue::new(root).dispatch_beside(&project.run_dirs(), |dir| {
        launch_worker_process(&exe, Some(root), dir, false)
            .map(drop)
            .map_err(|e| e.to_string())
    }) {
        Ok(started) => started,
        Err(err) => {
            eprintln!("cannot start queued runs: {err}");
            Vec::new()
        }
    }
}

/// `hearth train --queue`: the run folder `dir` is made; it waits in the queue (or starts at
/// once in a worker process when there is room).
pub fn enqueue(root: &Path, dir: &Path) -> Result<()> {
    let position = RunQueue::new(root).push(dir)?;
    let started = dispatch(root);
    if started.iter().any(|d| d == dir) {
        println!(
            "started in a worker process: {} (its output: {})",
            dir.display(),
            dir.join(hearth_engine::train::worker::WORKER_LOG).display()
        );
    } else if RunQueue::new(root)
        .read()?
        .waiting
        .iter()
        .any(|r| r.dir == dir)
    {
        println!(
            "queued at position {position}: {} (`hearth queue` lists the queue)",
            dir.display()
        );
    } else {
        bail!("{}: the run left the queue without starting", dir.display());
    }
    Ok(())
}
