//! The studio opened on a project folder, as the tests drive it.

// Each test file uses only some of these.
#![allow(dead_code)]

use egui_kittest::Harness;
use hearth_studio::{Prefs, StudioApp};
use std::path::Path;

/// The studio on `project` in a window of `width` x `height` points, with default preferences.
pub fn studio_sized(project: &Path, width: f32, height: f32) -> Harness<'static, StudioApp> {
    let project = project.to_path_buf();
    Harness::builder()
        .with_size(egui::vec2(width, height))
        .build_eframe(move |cc| {
            StudioApp::with_project(cc.egui_ctx.clone(), &project, Prefs::default())
        })
}

/// The studio on `project` at the screenshots' size, drawing characters no font has as boxes
/// (the answers of a model with random weights hold any character).
pub fn studio_answering(project: &Path) -> Harness<'static, StudioApp> {
    let project = project.to_path_buf();
    Harness::builder()
        .with_size(egui::vec2(1360.0, 860.0))
        .allow_missing_glyphs()
        .build_eframe(move |cc| {
            StudioApp::with_project(cc.egui_ctx.clone(), &project, Prefs::default())
        })
}

/// The studio on `project` at the size the screenshots use (1360 x 860).
pub fn studio(project: &Path) -> Harness<'static, StudioApp> {
    studio_sized(project, 1360.0, 860.0)
}

/// A chat template in the shape of ChatML's, with plain-text markers.
pub const CHAT_TEMPLATE: &str = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}\n\
{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/// A pretrained-style tokenizer: byte-level BPE trained on a few lines, carrying
/// [`CHAT_TEMPLATE`] when `chat` is set.
pub fn tokenizer(chat: bool) -> hearth_engine::data::Tokenizer {
    use hearth_engine::data::tokenizer::{BpeModel, PretrainedSpecials};
    let texts = [
        "What is the capital of France? The capital of France is Paris.",
        "<|user|>\nHello there\n<|assistant|>\nHello! How can I help you today?\n",
        "The quick brown fox jumps over the lazy dog, again and again.",
    ];
    let model = BpeModel::train(texts.iter().copied(), 320);
    hearth_engine::data::Tokenizer::Pretrained {
        model,
        specials: PretrainedSpecials {
            chat_template: chat.then(|| CHAT_TEMPLATE.to_string()),
            ..PretrainedSpecials::default()
        },
    }
}

/// A finished Llama-family run of `project` named `name`, as an import leaves one: one small
/// block, `tokenizer`, and a fresh model's checkpoint at step 5 (no Python, no download). With
/// `base`, the spec says it is a fine-tune of that run.
pub fn llama_run(
    project: &hearth_engine::project::Project,
    name: &str,
    tokenizer: &hearth_engine::data::Tokenizer,
    base: Option<&Path>,
) -> std::path::PathBuf {
    use hearth_engine::data::{DataSource, DataSpec, TokenizerKind};
    use hearth_engine::model::{Family, Model, ModelSpec};
    use hearth_engine::project::{RunStatus, RunStore};
    use hearth_engine::spec::{InitSpec, RunSpec, TrainSpec};
    use hearth_engine::train::BackendKind;
    let spec = RunSpec {
        name: name.to_string(),
        model: ModelSpec {
            family: Family::Llama,
            n_layer: 1,
            n_head: 2,
            d_model: 16,
            context: 32,
            tie_weights: false,
            bias: false,
            ..ModelSpec::default()
        },
        data: DataSpec {
            source: DataSource::Generated {
                seed: 3,
                n_chars: 20_000,
            },
            tokenizer: TokenizerKind::Pretrained {
                vocab_size: tokenizer.vocab_size(),
            },
            val_fraction: 0.1,
            shards: None,
        },
        train: TrainSpec {
            backend: BackendKind::preferred(),
            steps: 4,
            batch_size: 4,
            eval_interval: 2,
            eval_batches: 1,
            threads: 1,
            sample_tokens: 8,
            ..TrainSpec::default()
        },
        init: base.map(|b| InitSpec {
            from_run: b.to_path_buf(),
            ..InitSpec::default()
        }),
        ..RunSpec::default()
    };
    let dir = project.new_run_dir(name);
    let store = RunStore::create(&dir, &spec).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_string(tokenizer).unwrap(),
    )
    .unwrap();
    let device = BackendKind::Flex.device().unwrap();
    let path = dir.join("checkpoints/step-000005.bpk");
    Model::new(&spec.model, tokenizer.vocab_size(), &device)
        .save_file(&path)
        .unwrap();
    store.append_checkpoint(5, &path).unwrap();
    store.set_status(&RunStatus::Finished).unwrap();
    dir
}

/// Runs frames until `done` holds; fails with what the app says after `timeout`.
pub fn step_until(
    harness: &mut Harness<'static, StudioApp>,
    timeout: std::time::Duration,
    what: &str,
    done: impl Fn(&StudioApp) -> bool,
) {
    let start = std::time::Instant::now();
    while !done(harness.state()) {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; messages: {:?}",
            harness.state().messages()
        );
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    harness.step();
}

/// Types `text` into the text field labelled `label` (which must be the only one).
pub fn type_into(harness: &mut Harness<'static, StudioApp>, label: &str, text: &str) {
    use egui_kittest::kittest::Queryable;
    let field = || egui::accesskit::Role::TextInput;
    harness.get_by_role_and_label(field(), label).focus();
    harness.run_steps(1);
    harness
        .get_by_role_and_label(field(), label)
        .type_text(text);
    harness.run_steps(2);
}

/// Types `path` into the open in-app picker and chooses it.
pub fn pick_folder(harness: &mut Harness<'static, StudioApp>, path: &Path) {
    use egui_kittest::kittest::Queryable;
    // The window fades in over a few frames.
    harness.run_steps(4);
    type_into(harness, "Folder", &path.display().to_string());
    harness.get_by_label("Choose this folder").click();
    harness.run_steps(3);
}

/// Opens run `index` on Monitor and clicks Run details ▸ Fine-tune from here (Run setup
/// then shows a fine-tune of it).
pub fn fine_tune_from(harness: &mut Harness<'static, StudioApp>, index: usize) {
    use egui_kittest::kittest::Queryable;
    harness
        .state_mut()
        .apply(hearth_studio::Action::Monitor(index));
    harness.run_steps(2);
    harness.get_by_label("Run details").click();
    harness.run_steps(2);
    harness.get_by_label("Fine-tune from here").click();
    harness.run_steps(2);
}
