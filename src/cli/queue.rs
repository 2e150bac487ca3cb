//! `hearth queue`: the project's runs that wait for a slot and those training now; change the
//! limit, the order, cancel a waiting run or start it at once.

use anyhow::{Result, bail};
use clap::Args;
use hearth_engine::project::live::worker_process;
use hearth_engine::project::queue::{RunQueue, running_slots};
use hearth_engine::project::{Project, default_project_dir};
use hearth_engine::train::launch_worker_process;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    /// Runs that train at once: a number, or `auto` (as many as the cores allow at the runs'
    /// thread counts).
    #[arg(long)]
    pub limit: Option<String>,
    /// Take a waiting run (its name or folder) out of the queue.
    #[arg(long, value_name = "RUN")]
    pub cancel: Option<String>,
    /// Start a waiting run now, whatever the limit.
    #[arg(long, value_name = "RUN")]
    pub start: Option<String>,
    /// Move a waiting run one place towards the front.
    #[arg(long, value_name = "RUN")]
    pub up: Option<String>,
    /// Move a waiting run one place towards the back.
    #[arg(long, value_name = "RUN")]
    pub down: Option<String>,
}

/// The waiting run a name or folder names.
fn waiting_run(queue: &RunQueue, name: &str) -> Result<PathBuf> {
    let state = queue.read()?;
    let found = state.waiting.iter().find(|r| {
        r.dir == Path::new(name)
            || r.dir.file_name().is_some_and(|n| n == name)
            || hearth_engine::project::store::read_spec(&r.dir).is_ok_and(|s| s.name == name)
    });
    match found {
        Some(r) => Ok(r.dir.clone()),
        None => bail!("{name}: no such run waits in the queue (`hearth queue` lists them)"),
    }
}

/// Applies the changes asked for, starts what fits, and lists the queue.
pub fn run(args: &QueueArgs, project: Option<PathBuf>) -> Result<()> {
    let root = project.unwrap_or_else(default_project_dir);
    let project = Project::open_or_create(&root)?;
    let queue = RunQueue::new(&root);
    if let Some(limit) = &args.limit {
        let limit = match limit.as_str() {
            "auto" => None,
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => bail!("--limit {n}: a number of runs (1 or more) or `auto`"),
            },
        };
        queue.set_limit(limit)?;
    }
    if let Some(name) = &args.cancel {
        let dir = waiting_run(&queue, name)?;
        queue.cancel(&dir)?;
        println!("cancelled {}", dir.display());
    }
    for (name, by) in [(&args.up, -1), (&args.down, 1)] {
        if let Some(name) = name {
            let dir = waiting_run(&queue, name)?;
            queue.shift(&dir, by)?;
        }
    }
    if let Some(name) = &args.start {
        let dir = waiting_run(&queue, name)?;
        let exe = std::env::current_exe()?;
        queue.start_now(&dir, |d| {
            launch_worker_process(&exe, Some(&root), d, false)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        println!("started {}", dir.display());
    }
    for dir in super::worker::dispatch(&root) {
        println!("started {}", dir.display());
    }
    let state = queue.read()?;
    let limit = state.limit.map_or_else(
        || "auto (as the cores allow)".to_string(),
        |l| l.to_string(),
    );
    println!("limit: {limit}");
    let running = running_slots(&project.run_dirs());
    println!("training ({}):", running.len());
    for slot in &running {
        let who = worker_process(&slot.dir).map_or_else(String::new, |p| p.describe());
        println!("  {}  {} threads  {who}", slot.dir.display(), slot.threads);
    }
    println!("waiting ({}):", state.waiting.len());
    for (i, run) in state.waiting.iter().enumerate() {
        println!("  {}. {}", i + 1, run.dir.display());
    }
    Ok(())
}
