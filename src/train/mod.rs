//! The run worker: a named thread per run that trains, sends typed events out, takes controls
//! in, and appends everything to the run store. No UI code here.

pub mod backend;
pub mod events;
pub mod optim;
pub mod schedule;
pub mod steps;
pub mod worker;

pub use backend::BackendKind;
pub use events::{EvalMetrics, RunControl, RunEvent, RunSummary, StepMetrics};
pub use optim::{AdamW, OptimSpec};
pub use worker::{RunHandle, TrainSpec, spawn_resume, spawn_run};
