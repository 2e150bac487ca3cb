//! What a user saves: the project folder, run specs and the run store.

pub mod project;
pub mod spec;
pub mod store;

pub use project::{Project, RunEntry};
pub use spec::{RunSpec, SCHEMA_VERSION, TrainSpec};
pub use store::{Annotations, RunHistory, RunStatus, RunStore, StoreError};
