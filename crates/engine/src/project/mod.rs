//! What a user saves: the project folder, run specs and the run store.

pub mod folder;
pub mod store;

pub use folder::{Project, RunEntry, default_project_dir};
pub use store::{Annotations, RunHistory, RunStatus, RunStore, StoreError};
