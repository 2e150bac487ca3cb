//! The studio's pages, one module each: every page owns its state, draws from a read-only
//! [`crate::AppContext`] and returns the [`crate::Action`]s the shell applies.

pub mod compare;
pub mod dataset;
pub mod improve;
pub mod monitor;
pub mod runs;
pub mod setup;
pub mod sweep;
pub mod try_it;
