//! Pure functions the UI draws from (no egui here).

pub mod curves;
pub mod groups;
pub mod lod;
pub mod pca;
pub mod smoothing;
