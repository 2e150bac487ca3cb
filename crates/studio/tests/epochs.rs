//! The loss curves on an epochs axis: tokens seen over the training tokens of the run's
//! dataset; the Monitor says how many epochs the run's steps cover, and Compare leaves out
//! the runs whose epoch size is unknown, naming them.

mod harness;

use egui_kittest::kittest::{NodeT, Queryable};
use hearth_engine::data::corpus::{ShardsIdentity, describe_epochs, record_shards};
use hearth_studio::{Action, Tab, XAxis};
use std::time::Duration;

#[test]
fn the_epochs_axis_is_tokens_seen_over_the_dataset_tokens() {
    let dir = tempfile::tempdir().unwrap();
    // Two runs of 50 steps of 768 tokens; the first trained on a dataset of 12,000 tokens.
    hearth_studio::bench::generate_project(dir.path(), 2, 50).unwrap();
    let runs_dir = dir.path().join("runs");
    record_shards(
        &runs_dir.join("run-0000"),
        &ShardsIdentity {
            version: 1,
            checksum: "0123".into(),
            train_tokens: 12_000,
        },
    )
    .unwrap();
    let mut harness = harness::studio(dir.path());
    harness.run_steps(2);
    let index = |name: &str| {
        harness
            .state()
            .runs()
            .iter()
            .position(|r| r.spec.name == name)
            .unwrap()
    };
    let (known, unknown) = (index("run-0000"), index("run-0001"));
    let mut plot = harness.state().prefs().plot();
    plot.x_axis = XAxis::Epochs;
    harness.state_mut().apply(Action::SetPlot(plot));
    harness.state_mut().apply(Action::Monitor(known));
    harness::step_until(
        &mut harness,
        Duration::from_secs(30),
        "the run's history",
        |app| app.runs()[known].curves.train.len() == 50,
    );
    harness.run_steps(2);

    let run = &harness.state().runs()[known];
    assert_eq!(run.curves.epoch_tokens(), Some(12_000.0));
    let history = run.history.as_ref().unwrap();
    let epochs = run.curves.xs(XAxis::Epochs);
    assert_eq!(epochs.len(), history.steps.len());
    for (x, m) in epochs.iter().zip(&history.steps) {
        assert_eq!(*x, m.tokens_seen as f64 / 12_000.0);
    }
    assert_eq!(epochs.last(), Some(&3.2), "50 x 768 tokens over 12,000");
    // The header says what the run's steps cover.
    let steps = run.spec.train.steps;
    let line = describe_epochs(steps, 768.0, Some(12_000));
    assert!(line.contains("epochs of 12k tokens"), "{line}");
    harness.get_by_label_contains(&line);
    harness.get_by_label_contains("now at epoch 3.20");

    // A run with no dataset record: its size is unknown; its chart stays on tokens, saying so.
    harness.state_mut().apply(Action::Monitor(unknown));
    harness::step_until(
        &mut harness,
        Duration::from_secs(30),
        "the other run's history",
        |app| app.runs()[unknown].curves.train.len() == 50,
    );
    harness.run_steps(2);
    assert_eq!(harness.state().runs()[unknown].curves.epoch_tokens(), None);
    harness.get_by_label_contains("(epochs unknown)");
    harness.get_by_label_contains("Epochs unknown for this run");

    // Compare on the epochs axis leaves the unknown run out and says so.
    for run in [known, unknown] {
        harness.state_mut().apply(Action::SetCompared {
            run,
            compared: true,
        });
    }
    harness.state_mut().apply(Action::ShowTab(Tab::Compare));
    harness.run_steps(3);
    let node = harness.get_by_label_contains("Not on the epochs axis");
    let node = node.accesskit_node();
    let note = node.label().or(node.value()).unwrap_or_default();
    assert!(
        note.contains("run-0001") && !note.contains("run-0000"),
        "{note}"
    );
    // On the tokens axis every run is drawn.
    let mut plot = harness.state().prefs().plot();
    plot.x_axis = XAxis::Tokens;
    harness.state_mut().apply(Action::SetPlot(plot));
    harness.run_steps(3);
    assert_eq!(
        harness
            .query_all_by_label_contains("Not on the epochs axis")
            .count(),
        0
    );
}
