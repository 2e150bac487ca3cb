//! What a user saves: the project folder, run specs and the run store.

pub mod project;
pub mod store;

pub use project::{Project, RunEntry, default_project_dir};
pub use store::{Annotations, RunHistory, RunStatus, RunStore, StoreError};
