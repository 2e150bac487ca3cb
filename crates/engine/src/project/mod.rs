//! What a user saves: the project folder, run specs and the run store.

mod dynamics;
pub mod folder;
pub mod follow;
pub mod health;
pub mod live;
pub mod queue;
pub mod store;

pub use folder::{Project, RunEntry, default_project_dir};
pub use health::{CheckpointError, FileCheck, RunCheck, check_run};
pub use store::{Annotations, RunHistory, RunStatus, RunStore, StoreError};
