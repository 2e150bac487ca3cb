//! Hearth's engine: everything a training run needs, with no GUI crate in its dependency tree.
//!
//! Rooms, from the bottom up (each imports only rooms listed before it):
//! - [`model`] (the transformer and its settings), [`viz`] (pure functions the studio draws
//!   from), [`backend`] (where a run computes), [`dynamics`] (per-matrix update figures and
//!   the rules that read them), [`events`] (what a run reports);
//! - [`data`] (sources to batches);
//! - [`eval`] (evaluation and inference helpers), [`objective`] (losses and metrics, one file
//!   per objective behind one trait);
//! - [`spec`] (a run's whole recipe), [`project`] (project folder and run store),
//!   [`preview`] (the first batch as the model sees it);
//! - [`train`] (the run worker thread), [`export`] (Hugging Face folders out of runs and GPT-2
//!   folders into runs);
//! - [`improve`] (a finished run improved from its own checked samples: STaR, DPO,
//!   self-correction), [`sweep`] (many runs over a space of settings, stopped early, ranked).

#![warn(missing_docs)]

pub mod backend;
pub mod data;
pub mod dynamics;
pub mod eval;
pub mod events;
pub mod export;
pub mod gguf;
pub mod improve;
pub mod model;
pub mod objective;
pub mod preview;
pub mod project;
pub mod spec;
pub mod sweep;
pub mod train;
pub mod viz;
