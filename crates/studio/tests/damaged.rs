//! A project with damaged runs opens: the healthy run lists as usual, each damaged one shows
//! which file is damaged, and it can be moved to the trash.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use egui_kittest::kittest::Queryable;

#[test]
fn damaged_runs_are_listed_with_their_reason_and_can_be_trashed() {
    let dir = tempfile::tempdir().unwrap();
    let runs = common::project_with_damaged_runs(dir.path());
    let mut harness = harness::studio(dir.path());
    harness.run_steps(2);
    let app = harness.state();
    assert_eq!(app.runs().len(), 1, "only the healthy run loads");
    assert_eq!(app.runs()[0].dir, runs.healthy);
    assert_eq!(app.damaged().len(), 3);
    assert!(app.messages().is_empty(), "{:?}", app.messages());

    assert_eq!(harness.query_all_by_label("damaged").count(), 3);
    for reason in [
        "spec.json is damaged",
        "run.sqlite is damaged",
        "checkpoints/step-000010.bpk is damaged",
    ] {
        assert!(
            harness.query_by_label_contains(reason).is_some(),
            "no row says {reason:?}"
        );
    }
    let trash_buttons = harness.query_all_by_label("Move to trash").count();
    assert_eq!(trash_buttons, 3);

    // The first damaged row moves to the project's trash; the others stay listed.
    let first = harness.state().damaged()[0].dir.clone();
    harness
        .get_all_by_label("Move to trash")
        .next()
        .unwrap()
        .click();
    harness.run_steps(2);
    assert!(!first.exists());
    let name = first.file_name().unwrap();
    assert!(dir.path().join(".trash").join(name).exists());
    assert_eq!(harness.state().damaged().len(), 2);
    assert_eq!(harness.state().runs().len(), 1);
}
