//! What the pages use besides drawing: files and their undo, native dialogs, notifications,
//! saved preferences, keyboard shortcuts, PNG export and the UI benchmark.

pub mod bench;
pub mod dialogs;
pub mod files;
pub mod notifications;
pub mod png;
pub mod prefs;
pub mod shortcuts;
