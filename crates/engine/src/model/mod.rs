//! The transformer, its configuration and the attention maps it can capture.

pub mod config;
mod flex_ops;
pub mod fused;
pub mod gpt;

pub use config::{Arch, ModelSpec, SpecError};
pub use gpt::{AttentionMaps, AttentionMode, Gpt};
