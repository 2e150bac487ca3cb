//! `hearth sweep`: many runs over a space of settings, the bad ones stopped early; the last
//! line names the best.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser};
use hearth_engine::project::{Project, default_project_dir};
use hearth_engine::sweep::runner::default_runner;
use hearth_engine::sweep::space::short_real;
use hearth_engine::sweep::{
    Direction, Param, SchedulerKind, SchedulerSpec, SearchKind, Sweep, SweepEvent, SweepRecord,
    SweepSpec, TrialState,
};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Example:\n  hearth sweep --trials 8 --search random --param lr=log:1e-4:1e-2 \
    --param width=32,64,128 --scheduler asha --metric val_loss --seed 7 -- --data input.txt \
    --layers 2 --heads 2 --context 64 --batch 12 --steps 300 --eval-interval 50"
)]
pub struct SweepArgs {
    /// Trials to run (with --resume: the new total, to extend the sweep).
    #[arg(long)]
    pub trials: Option<usize>,
    /// How trial values are picked: every combination, uniform draws, or TPE.
    #[arg(long, value_enum, default_value = "random")]
    pub search: SearchKind,
    /// A setting to vary: NAME=SPEC, SPEC being `a,b,c`, `int:LO:HI`, `real:LO:HI` or
    /// `log:LO:HI`; NAME one of lr, min_lr, warmup, weight_decay, grad_clip, optimizer,
    /// muon_lr, width, layers, heads, context, dropout, arch, lora_rank, batch, grad_accum,
    /// seed, objective, mask_rate, temperature, gen_weight, uniformity_weight, masked_weight,
    /// masked_warmup, lexical. Repeat for each setting.
    #[arg(long = "param", value_name = "NAME=SPEC")]
    pub params: Vec<String>,
    /// Early stopping: none, asha (successive halving at rungs), median (below the completed
    /// trials' median).
    #[arg(long, value_enum, default_value = "none")]
    pub scheduler: SchedulerKind,
    /// The metric that ranks trials: val_loss, train_loss, or one the objective reports
    /// (val_masked_acc, val_mrr, val_sts_spearman, ...).
    #[arg(long, value_name = "KEY")]
    pub metric: Option<String>,
    /// Whether the metric is better low or high (default: min for losses and perplexities,
    /// max otherwise).
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
    /// Seed of the search: the same seed draws the same trials, whatever the scheduler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ASHA's first rung and the median rule's first step (default: the first evaluation).
    #[arg(long, value_name = "STEPS")]
    pub grace: Option<usize>,
    /// ASHA: rungs are this many times apart and keep the best 1/this of the trials.
    #[arg(long, default_value_t = 3.0)]
    pub reduction: f64,
    /// Median: completed trials needed before any is stopped.
    #[arg(long, default_value_t = 2)]
    pub startup: usize,
    /// No trial starts after this many minutes (the ones training finish).
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// The sweep's name (its folder in the project's sweeps/, and its trials' run names).
    #[arg(long)]
    pub name: Option<String>,
    /// Continue the project's sweep of this name (trials interrupted, queued, and more with
    /// --trials).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["params", "metric", "direction", "name"])]
    pub resume: Option<String>,
    /// With --resume: continue this pruned or stopped trial to its last step (repeatable).
    #[arg(long = "continue", value_name = "TRIAL", requires = "resume")]
    pub continue_trials: Vec<usize>,
    /// `hearth train` flags after `--`: the settings every trial starts from.
    #[arg(last = true, value_name = "TRAIN FLAGS")]
    pub train: Vec<String>,
}

/// The `hearth train` flags after `--`.
#[derive(Parser, Debug)]
#[command(name = "hearth train", no_binary_name = true)]
struct TrainFlags {
    #[command(flatten)]
    args: super::train::TrainArgs,
}

/// `hearth sweep`.
pub fn run(args: &SweepArgs, project: Option<PathBuf>) -> Result<()> {
    let project_dir = project.unwrap_or_else(default_project_dir);
    let mut sweep = match &args.resume {
        Some(name) => resume(args, &project_dir, name)?,
        None => create(args, &project_dir)?,
    };
    let spec = &sweep.record.spec;
    eprintln!(
        "sweep {}: {} trials, {} search, scheduler {}, {} ({}) — {}",
        spec.name,
        spec.trials,
        spec.search.name(),
        spec.scheduler.kind.name(),
        spec.metric,
        spec.direction.name(),
        SweepRecord::folder(&project_dir, &spec.name).display()
    );
    let total = spec.trials;
    let metric = spec.metric.clone();
    // Trials go through the project's run queue as worker processes, so the sweep shares the
    // machine with every other run of the project.
    let mut runner = default_runner(&project_dir, None);
    let stop = AtomicBool::new(false);
    let summary = sweep.run(runner.as_mut(), &stop, &mut |event, record| {
        progress(event, record, total, &metric)
    })?;
    let name = |index: usize| sweep.record.trials[index].name.clone();
    match summary.best {
        Some((index, value)) => println!(
            "best run={} {metric}={value:.4} trials={} pruned={} compute_share={:.3}",
            name(index),
            summary.trials,
            summary.pruned,
            summary.compute_share
        ),
        None => bail!(
            "no trial reported {metric} ({} trials, see the messages above)",
            sweep.record.trials.len()
        ),
    }
    Ok(())
}

/// One progress line per event, on stderr.
fn progress(event: &SweepEvent, record: &SweepRecord, total: usize, metric: &str) {
    let spec = &record.spec;
    match event {
        SweepEvent::TrialStarted { index } => {
            let t = &record.trials[*index];
            let values: Vec<String> = spec
                .params
                .iter()
                .zip(&t.values)
                .map(|(p, v)| format!("{}={v}", p.name))
                .collect();
            let again = if t.curve.is_empty() {
                ""
            } else {
                " (continued)"
            };
            eprintln!(
                "trial {}/{total} {}{again}: {}",
                index + 1,
                t.name,
                values.join(" ")
            );
        }
        SweepEvent::TrialEval { index, step, value } => {
            eprintln!("  trial {} step {step}: {metric} {value:.4}", index + 1);
        }
        SweepEvent::Decision(d) if d.stop => {
            eprintln!(
                "  trial {} pruned at step {}: {metric} {:.4} is outside the best 1/{} of {} trials at step {} (cutoff {:.4})",
                d.trial + 1,
                d.step,
                d.value,
                short_real(spec.scheduler.reduction),
                d.compared,
                d.rung,
                d.cutoff
            );
        }
        SweepEvent::Decision(_) => {}
        SweepEvent::TrialEnded { index } => {
            let t = &record.trials[*index];
            match &t.state {
                TrialState::Failed { reason } => {
                    eprintln!("  trial {} failed: {reason}", index + 1)
                }
                TrialState::Completed => eprintln!(
                    "  trial {} completed: {metric} {}",
                    index + 1,
                    t.last_value().map_or("-".into(), |v| format!("{v:.4}"))
                ),
                other => eprintln!("  trial {} {}", index + 1, other.label()),
            }
        }
        SweepEvent::Warning(message) => eprintln!("warning: {message}"),
    }
}

/// A new sweep from the arguments, checked before anything trains.
fn create(args: &SweepArgs, project_dir: &std::path::Path) -> Result<Sweep> {
    let Some(trials) = args.trials else {
        bail!("--trials: how many trials to run (e.g. --trials 8)");
    };
    let Some(metric) = args.metric.clone() else {
        bail!("--metric: the metric that ranks the trials (e.g. --metric val_loss)");
    };
    if args.params.is_empty() {
        bail!("--param: name at least one setting to vary (e.g. --param lr=log:1e-4:1e-2)");
    }
    let params = args
        .params
        .iter()
        .map(|p| Param::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let flags = TrainFlags::try_parse_from(&args.train)
        .map_err(|e| anyhow::anyhow!("the hearth train flags after --: {e}"))?;
    let train = flags.args;
    if train.out.is_some() {
        bail!("--out (after --): a sweep's trials are runs of the project, in its runs/ folder");
    }
    if train.distributed {
        bail!("--distributed (after --): a sweep trains its trials in this process");
    }
    let base = train.to_spec()?;
    let errors = base.validate();
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        bail!("invalid settings after --:\n{}", lines.join("\n"));
    }
    super::train::check_inputs(&base)?;
    if let Some(minutes) = args.max_minutes
        && !(minutes.is_finite() && minutes > 0.0)
    {
        bail!("--max-minutes: must be a positive number of minutes");
    }
    let project = Project::open_or_create(project_dir)
        .with_context(|| format!("cannot open the project {}", project_dir.display()))?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => free_name(&project.dir, &base.name),
    };
    let spec = SweepSpec {
        name,
        params,
        search: args.search,
        scheduler: SchedulerSpec {
            kind: args.scheduler,
            grace_steps: args.grace.unwrap_or(0),
            reduction: args.reduction,
            startup_trials: args.startup,
        },
        direction: args
            .direction
            .unwrap_or_else(|| Direction::for_metric(&metric)),
        metric,
        seed: args.seed,
        trials,
        max_minutes: args.max_minutes.unwrap_or(0.0),
    };
    if spec.search == SearchKind::Grid
        && let Some(size) = hearth_engine::sweep::search::grid_size(&spec.params)
        && size < trials
    {
        eprintln!("the grid has {size} combinations: the sweep runs {size} trials");
    }
    Ok(Sweep::create(&project.dir, spec, base)?)
}

/// The saved sweep `name`, extended and with trials to continue as the arguments say.
fn resume(args: &SweepArgs, project_dir: &std::path::Path, name: &str) -> Result<Sweep> {
    if !args.train.is_empty() {
        bail!("--resume: a sweep keeps the settings it started with; leave out the flags after --");
    }
    let mut sweep = Sweep::open(project_dir, name)?;
    if let Some(trials) = args.trials {
        sweep.extend(trials)?;
    }
    for &trial in &args.continue_trials {
        // Trials are numbered from 1 on the command line, as the progress lines show them.
        let index = trial
            .checked_sub(1)
            .with_context(|| format!("--continue {trial}: trials are numbered from 1"))?;
        sweep.continue_trial(index)?;
    }
    Ok(sweep)
}

/// `<run name>-sweep`, or with `-2`, `-3`, ... where the project has that sweep already.
fn free_name(project: &std::path::Path, base: &str) -> String {
    let slug: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = format!("{}-sweep", slug.trim_matches('-'));
    let taken = SweepRecord::list(project);
    if !taken.contains(&stem) {
        return stem;
    }
    (2..)
        .map(|n| format!("{stem}-{n}"))
        .find(|n| !taken.contains(n))
        .expect("some suffix is free")
}
