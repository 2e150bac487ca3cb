//! Damaged run folders: each is listed with the file that does not read and what still reads,
//! and the rest of the project loads as usual.

mod common;

use common::project_with_damaged_runs;
use hearth_engine::project::{Project, RunCheck};

fn check_of<'a>(
    listed: &'a [Result<hearth_engine::project::RunEntry, RunCheck>],
    dir: &std::path::Path,
) -> &'a RunCheck {
    listed
        .iter()
        .find_map(|l| l.as_ref().err().filter(|c| c.dir == dir))
        .unwrap_or_else(|| panic!("{} is not listed as damaged", dir.display()))
}

#[test]
fn each_damaged_file_is_named_and_the_healthy_run_still_lists() {
    let dir = tempfile::tempdir().unwrap();
    let runs = project_with_damaged_runs(dir.path());
    let project = Project::open_or_create(dir.path()).unwrap();
    let listed = project.list_runs();
    assert_eq!(listed.len(), 4);
    let healthy: Vec<_> = listed.iter().filter_map(|l| l.as_ref().ok()).collect();
    assert_eq!(healthy.len(), 1, "{listed:?}");
    assert_eq!(healthy[0].dir, runs.healthy);
    assert_eq!(healthy[0].last_step.map(|(s, _)| s), Some(10));

    let damaged_files =
        |check: &RunCheck| -> Vec<String> { check.damaged().map(|f| f.file.clone()).collect() };
    let spec = check_of(&listed, &runs.bad_spec);
    assert_eq!(damaged_files(spec), ["spec.json"], "{spec:?}");
    assert!(spec.summary().contains("run.sqlite"), "{}", spec.summary());
    // The name comes from the folder when the spec does not read.
    assert!(spec.name.ends_with("bad-spec"), "{}", spec.name);

    let db = check_of(&listed, &runs.bad_db);
    assert_eq!(damaged_files(db), ["run.sqlite"], "{db:?}");
    assert_eq!(db.name, "bad-db");
    // With the history unreadable, the newest checkpoint on disk is still checked.
    assert!(
        db.intact().any(|f| f.file == "checkpoints/step-000010.bpk"),
        "{db:?}"
    );

    let ckpt = check_of(&listed, &runs.bad_checkpoint);
    assert_eq!(
        damaged_files(ckpt),
        ["checkpoints/step-000010.bpk"],
        "{ckpt:?}"
    );
    let summary = ckpt.summary();
    assert!(
        summary.starts_with("checkpoints/step-000010.bpk is damaged")
            && summary.contains("spec.json")
            && summary.contains("still read"),
        "{summary}"
    );
}

#[test]
fn a_run_with_a_damaged_checkpoint_does_not_resume_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let runs = project_with_damaged_runs(dir.path());
    let store = hearth_engine::project::RunStore::open(&runs.bad_checkpoint).unwrap();
    let before = store.load_history().unwrap();
    // A finished run has nothing to resume; the damaged weights are reported by the check.
    assert!(hearth_engine::train::spawn_resume(&runs.bad_checkpoint, None).is_err());
    assert_eq!(store.load_history().unwrap(), before);
    assert!(!hearth_engine::project::check_run(&runs.bad_checkpoint).is_healthy());
    assert!(hearth_engine::project::check_run(&runs.healthy).is_healthy());
}
