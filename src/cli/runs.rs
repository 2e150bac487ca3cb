//! `hearth runs`: the project's runs as a table (or JSON for scripts), damaged ones with which
//! file is damaged and what still reads.

use anyhow::Result;
use clap::Args;
use hearth_engine::project::{Project, RunEntry, RunStore, default_project_dir};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct RunsArgs {
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One listed run as the table and the JSON show it.
struct Row {
    name: String,
    objective: String,
    status: String,
    step: Option<usize>,
    /// Epochs the steps so far cover, when the run recorded its dataset's size.
    epochs: Option<f64>,
    best_val: Option<(usize, f32)>,
    dir: PathBuf,
    damage: Option<Value>,
    note: Option<String>,
}

impl Row {
    fn healthy(entry: &RunEntry) -> Self {
        let best_val = RunStore::open(&entry.dir)
            .ok()
            .and_then(|s| s.best_val_loss().ok().flatten());
        Self {
            name: entry.name().to_string(),
            objective: entry.spec.objective.kind.name().to_string(),
            // Marked running, but its worker's lock is free: its process died.
            status: hearth_engine::project::live::effective_status(
                &entry.dir,
                entry.status.clone(),
            )
            .label()
            .to_string(),
            step: entry.last_step.map(|(s, _)| s),
            epochs: epochs_done(entry),
            best_val,
            dir: entry.dir.clone(),
            damage: None,
            note: match &entry.status {
                hearth_engine::project::RunStatus::Failed { reason } => Some(reason.clone()),
                _ => None,
            },
        }
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "objective": self.objective,
            "status": self.status,
            "step": self.step,
            "epochs": self.epochs,
            "best_val_loss": self.best_val.map(|(_, v)| v),
            "best_val_step": self.best_val.map(|(s, _)| s),
            "dir": self.dir,
            "damaged": self.damage,
        })
    }
}

/// Epochs the run's steps so far cover: tokens seen over the training tokens of the dataset
/// it recorded (`dataset-shards.json`); `None` when it recorded none.
fn epochs_done(entry: &RunEntry) -> Option<f64> {
    let (step, _) = entry.last_step?;
    let shards = hearth_engine::data::corpus::read_recorded_shards(&entry.dir)
        .or_else(|| entry.spec.data.shards.clone())
        .filter(|s| s.train_tokens > 0)?;
    let t = &entry.spec.train;
    let tokens_per_step = (t.batch_size * t.grad_accum.max(1) * entry.spec.model.context) as f64;
    Some(step as f64 * tokens_per_step / shards.train_tokens as f64)
}

/// Lists the runs of the project (`--project`, or the default one).
pub fn run(args: &RunsArgs, project: Option<PathBuf>) -> Result<()> {
    let dir = project.unwrap_or_else(default_project_dir);
    let project = Project::open_or_create(&dir)?;
    let rows: Vec<Row> = project
        .list_runs()
        .iter()
        .map(|listed| match listed {
            Ok(entry) => Row::healthy(entry),
            Err(check) => Row {
                name: check.name.clone(),
                objective: "-".to_string(),
                status: "damaged".to_string(),
                step: None,
                epochs: None,
                best_val: None,
                dir: check.dir.clone(),
                damage: Some(json!({
                    "summary": check.summary(),
                    "files": check.files.iter().map(|f| json!({
                        "file": f.file,
                        "reads": f.problem.is_none(),
                        "problem": f.problem,
                    })).collect::<Vec<_>>(),
                })),
                note: Some(check.summary()),
            },
        })
        .collect();
    if args.json {
        let all: Vec<Value> = rows.iter().map(Row::json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no runs in {}", project.dir.display());
        return Ok(());
    }
    let width = |f: &dyn Fn(&Row) -> usize, title: &str| {
        rows.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let name_w = width(&|r| r.name.chars().count(), "NAME");
    let obj_w = width(&|r| r.objective.len(), "OBJECTIVE");
    let status_w = width(&|r| r.status.len(), "STATUS");
    println!(
        "{:name_w$}  {:obj_w$}  {:status_w$}  {:>7}  {:>7}  {:>14}  FOLDER",
        "NAME", "OBJECTIVE", "STATUS", "STEP", "EPOCHS", "BEST VAL LOSS"
    );
    for r in &rows {
        let step = r.step.map_or("-".to_string(), |s| s.to_string());
        let epochs = r.epochs.map_or("-".to_string(), |e| format!("{e:.2}"));
        let best = r
            .best_val
            .map_or("-".to_string(), |(s, v)| format!("{v:.4} @{s}"));
        println!(
            "{:name_w$}  {:obj_w$}  {:status_w$}  {step:>7}  {epochs:>7}  {best:>14}  {}",
            r.name,
            r.objective,
            r.status,
            r.dir.display()
        );
        if let Some(note) = &r.note {
            println!("{:name_w$}  {note}", "");
        }
    }
    Ok(())
}
