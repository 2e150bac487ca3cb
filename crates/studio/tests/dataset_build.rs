//! "Save dataset" on the Dataset page builds the token shards in the background with its
//! progress shown, a Cancel leaves the dataset folder as it was, and a source that does not
//! read is named with its line.

mod harness;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hearth_engine::data::DataSource;
use hearth_engine::data::dataset::{DatasetRecipe, SourceSpec};
use hearth_engine::data::shards::{MANIFEST_FILE, TOKENS_DIR, read_manifest};
use hearth_engine::data::sources::SourceKind;
use hearth_studio::{Action, StudioApp};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Holds a build at its next status report until released, and counts the reports.
#[derive(Default)]
struct Gate {
    hold: AtomicBool,
    held: AtomicUsize,
    stages: Mutex<Vec<String>>,
}

impl Gate {
    /// Installs the gate in the studio's Dataset page.
    fn install(harness: &mut Harness<'static, StudioApp>) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        let g = Arc::clone(&gate);
        harness
            .state_mut()
            .dataset_mut()
            .set_status_hook(Arc::new(move |stage: &str| {
                g.stages.lock().unwrap().push(stage.to_string());
                if g.hold.swap(false, Ordering::SeqCst) {
                    g.held.fetch_add(1, Ordering::SeqCst);
                    // Held until the test releases it (or gives up after a minute).
                    let start = std::time::Instant::now();
                    while g.held.load(Ordering::SeqCst) % 2 == 1
                        && start.elapsed() < Duration::from_secs(60)
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }));
        gate
    }

    /// Holds the build at its next report.
    fn hold_next(&self) {
        self.held.store(0, Ordering::SeqCst);
        self.hold.store(true, Ordering::SeqCst);
    }

    fn is_holding(&self) -> bool {
        self.held.load(Ordering::SeqCst) % 2 == 1
    }

    fn release(&self) {
        self.held.fetch_add(1, Ordering::SeqCst);
    }
}

/// The studio on `project` with a draft that builds dataset `name` from the text file `text`.
fn studio_with_recipe(project: &Path, name: &str, text: &Path) -> Harness<'static, StudioApp> {
    let mut harness = harness::studio(project);
    harness.run_steps(2);
    set_recipe(&mut harness, name, text);
    harness
}

fn set_recipe(harness: &mut Harness<'static, StudioApp>, name: &str, text: &Path) {
    let mut draft = harness.state().project().file.draft.clone();
    draft.data.source = DataSource::Dataset {
        recipe: Box::new(DatasetRecipe {
            name: name.to_string(),
            sources: vec![SourceSpec::new(SourceKind::for_file(text.to_path_buf()))],
            ..DatasetRecipe::default()
        }),
        folder: None,
    };
    harness.state_mut().apply(Action::SetDraft(Box::new(draft)));
    harness.run_steps(2);
}

/// A text of `paragraphs` short paragraphs.
fn write_text(path: &Path, paragraphs: usize) {
    let text: String = (0..paragraphs)
        .map(|i| {
            format!(
                "Note {i}: the fox {} over the dog.\n\n",
                ["jumps", "leaps"][i % 2]
            )
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

fn draft_folder(app: &StudioApp) -> Option<PathBuf> {
    match &app.project().file.draft.data.source {
        DataSource::Dataset { folder, .. } => folder.clone(),
        _ => None,
    }
}

/// Runs frames until the save started by a click (taken at the next frame) has ended.
fn wait_saved(harness: &mut Harness<'static, StudioApp>) {
    harness.step();
    harness::step_until(harness, Duration::from_secs(60), "the save's end", |app| {
        !app.dataset().is_saving()
    });
}

#[test]
fn save_dataset_builds_the_token_shards_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    write_text(&text, 300);
    let mut harness = studio_with_recipe(dir.path(), "notes", &text);
    let gate = Gate::install(&mut harness);
    gate.hold_next();
    harness.get_by_label("Save dataset").click();
    harness::step_until(
        &mut harness,
        Duration::from_secs(60),
        "the build's first report",
        |_| gate.is_holding(),
    );
    harness.run_steps(2);
    // Held at a report: the page shows the stage and the bytes, and a Cancel.
    assert!(harness.state().dataset().is_saving());
    let progress = harness.state().dataset().save_progress().unwrap();
    let stage = gate.stages.lock().unwrap().last().cloned().unwrap();
    assert_eq!(progress.stage, stage);
    harness.get_by_label_contains("Building notes into");
    // In words, and on the bar too when the stage's size is known.
    assert!(
        harness.query_all_by_label_contains(&stage).count() >= 1,
        "the page names the stage {stage:?}"
    );
    harness.get_by_label("Cancel");
    assert_eq!(
        harness.query_all_by_label("Save dataset").count(),
        0,
        "no second save while one builds"
    );
    gate.release();
    wait_saved(&mut harness);

    let folder = dir.path().join("datasets").join("notes");
    assert!(folder.join(TOKENS_DIR).join(MANIFEST_FILE).is_file());
    assert!(folder.join("dataset.json").is_file());
    assert!(folder.join("tokenizer.json").is_file());
    let manifest = read_manifest(&folder).unwrap();
    assert_eq!(manifest.version, 1);
    assert!(manifest.train.tokens > 1_000, "{}", manifest.train.tokens);
    let message = harness.state().dataset().message().unwrap().to_string();
    assert!(message.starts_with("Saved to"), "{message}");
    harness.get_by_label_contains("Saved to");
    assert!(harness.state().dataset().save_error().is_none());
    assert_eq!(
        draft_folder(harness.state()),
        Some(folder.clone()),
        "the draft trains on the saved dataset"
    );
    // The page's statistics now come from the saved shards.
    harness::step_until(
        &mut harness,
        Duration::from_secs(60),
        "the statistics of the shards",
        |app| {
            app.dataset()
                .stats
                .as_ref()
                .is_some_and(|s| s.from_shards && s.train_tokens == manifest.train.tokens)
        },
    );
}

#[test]
fn cancel_leaves_no_half_built_shards_and_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    write_text(&text, 300);
    let mut harness = studio_with_recipe(dir.path(), "notes", &text);
    let gate = Gate::install(&mut harness);
    let folder = dir.path().join("datasets").join("notes");

    // A first build cancelled: no dataset folder at all.
    gate.hold_next();
    harness.get_by_label("Save dataset").click();
    harness::step_until(&mut harness, Duration::from_secs(60), "a report", |_| {
        gate.is_holding()
    });
    harness.run_steps(1);
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    harness.get_by_label("Cancelling…");
    gate.release();
    wait_saved(&mut harness);
    let message = harness.state().dataset().message().unwrap().to_string();
    assert!(message.starts_with("Cancelled"), "{message}");
    harness.get_by_label_contains("Cancelled");
    assert!(!folder.exists(), "a cancelled first build leaves nothing");
    assert_eq!(draft_folder(harness.state()), None);

    // A complete build, then a rebuild cancelled: the first build's shards stay as they were.
    harness.get_by_label("Save dataset").click();
    wait_saved(&mut harness);
    let manifest_path = folder.join(TOKENS_DIR).join(MANIFEST_FILE);
    let before = std::fs::read(&manifest_path).unwrap();
    let shard = folder
        .join(TOKENS_DIR)
        .join(format!("{}-00000.bin", "train"));
    assert!(
        shard.is_file(),
        "{:?}",
        std::fs::read_dir(folder.join(TOKENS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    );
    let shard_before = std::fs::read(&shard).unwrap();
    write_text(&text, 600);
    gate.hold_next();
    harness.get_by_label("Save dataset").click();
    harness::step_until(&mut harness, Duration::from_secs(60), "a report", |_| {
        gate.is_holding()
    });
    harness.run_steps(1);
    assert!(
        folder.join("tokens.building").exists(),
        "the new shards are built beside the old ones"
    );
    harness.get_by_label("Cancel").click();
    harness.run_steps(1);
    gate.release();
    wait_saved(&mut harness);
    assert!(
        harness
            .state()
            .dataset()
            .message()
            .unwrap()
            .starts_with("Cancelled")
    );
    assert_eq!(std::fs::read(&manifest_path).unwrap(), before);
    assert_eq!(std::fs::read(&shard).unwrap(), shard_before);
    assert_eq!(read_manifest(&folder).unwrap().version, 1);
    for half_built in ["tokens.building", "tokens.old"] {
        assert!(!folder.join(half_built).exists(), "{half_built} is left");
    }
}

#[test]
fn a_source_that_does_not_read_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("broken.txt");
    let mut bytes = b"first line\nsecond line\n".to_vec();
    bytes.extend_from_slice(&[b'b', 0xff, 0xfe, b'\n']);
    std::fs::write(&text, bytes).unwrap();
    let mut harness = studio_with_recipe(dir.path(), "broken", &text);
    harness.get_by_label("Save dataset").click();
    wait_saved(&mut harness);
    let page = harness.state().dataset();
    let err = page
        .save_error()
        .unwrap_or_else(|| panic!("no error; the page says {:?}", page.message()))
        .to_string();
    assert!(err.contains("broken.txt:3:"), "the file and line: {err}");
    harness.get_by_label_contains("Not saved:");
    assert!(!dir.path().join("datasets").join("broken").exists());
}
