//! The run worker: a named thread per run that trains, sends typed events out, takes controls
//! in, and appends everything to the run store. No UI code here.

pub mod collective;
pub mod optim;
pub mod schedule;
pub mod update;
pub mod worker;

pub use crate::backend::BackendKind;
pub use crate::events::{EvalMetrics, RunControl, RunEvent, RunSummary, StepMetrics};
pub use collective::{Collective, Solo};
pub use optim::{AdamW, GradBuffer, OptimSpec, OptimizerKind};
pub use worker::{
    RunFailure, RunHandle, SpawnError, TrainSpec, WorkerGone, attach_run, launch_worker_process,
    panic_message, prepare_run, spawn_prepared, spawn_resume, spawn_run, spawn_run_with,
    spawn_worker_process, worker_exe,
};
