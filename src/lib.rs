//! Hearth: a desktop studio for training small generative and embedding language models.
//!
//! Rooms: [`project`] (what a user saves), [`data`] (sources to batches), [`model`] (the
//! transformer), [`objective`] (losses), [`train`] (the run worker), [`eval`] (metrics and
//! generation), [`viz`] (pure functions the UI draws from), [`ui`] (the eframe studio),
//! [`bench`] (speed against a PyTorch reference). Only `ui` imports egui.

pub mod bench;
pub mod cli;
pub mod data;
pub mod dataset_cli;
pub mod eval;
pub mod model;
pub mod objective;
pub mod project;
pub mod train;
pub mod ui;
pub mod viz;
