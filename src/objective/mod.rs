//! Training objectives: one file each.

pub mod next_token;
