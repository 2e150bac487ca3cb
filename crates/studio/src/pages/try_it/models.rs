//! The models the Try it page answers with: each run's newest checkpoint, loaded in a background
//! thread and kept per run folder while the page is used.

use burn::tensor::Device;
use hearth_engine::backend::{BackendKind, default_threads};
use hearth_engine::export::LoadedRun;
use hearth_engine::project::RunStore;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A run's newest checkpoint, ready to answer.
pub struct Loaded {
    /// The model and its tokenizer. One answer at a time uses it.
    run: Mutex<LoadedRun>,
    /// Where it computes.
    pub device: Device,
    /// The backend of that device.
    pub backend: BackendKind,
    /// The step of the checkpoint.
    pub step: usize,
    /// The checkpoint file (a newer one makes the page load again).
    pub checkpoint: PathBuf,
    /// Whether its tokenizer brought a chat template.
    pub chat_template: bool,
    /// Seconds the load took.
    pub load_s: f64,
}

impl Loaded {
    /// The model, for one answer. A generation that panicked while holding it leaves it as it
    /// was (generation does not change weights), so a poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, LoadedRun> {
        self.run
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Where one run's model stands.
pub enum Slot {
    /// A background thread reads the checkpoint.
    Loading {
        answer: Receiver<Result<Loaded, String>>,
        since: Instant,
    },
    /// Ready to answer.
    Ready(Arc<Loaded>),
    /// It cannot load; why.
    Failed(String),
}

/// What the page shows of one run's model.
pub enum ModelState<'a> {
    /// Not asked for yet.
    Absent,
    /// Loading for this many seconds.
    Loading(f64),
    /// Ready.
    Ready(&'a Arc<Loaded>),
    /// Failed, with the reason.
    Failed(&'a str),
}

/// The loaded models, per run folder.
#[derive(Default)]
pub struct Models {
    slots: HashMap<PathBuf, Slot>,
}

impl Models {
    /// Starts loading the run in `dir` unless it is loaded, loading or known not to load.
    pub fn want(&mut self, dir: &Path, ctx: &egui::Context) {
        if !self.slots.contains_key(dir) {
            self.load(dir, ctx);
        }
    }

    /// Loads the run in `dir` again (a failed load retried, or a newer checkpoint).
    pub fn load(&mut self, dir: &Path, ctx: &egui::Context) {
        let (tx, answer) = channel();
        let owned = dir.to_path_buf();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("hearth-try-load".into())
            .spawn(move || {
                let result =
                    std::panic::catch_unwind(|| load_run(&owned)).unwrap_or_else(|panic| {
                        Err(format!("loading panicked: {}", panic_text(&panic)))
                    });
                let _ = tx.send(result);
                ctx.request_repaint();
            });
        let slot = match spawned {
            Ok(_) => Slot::Loading {
                answer,
                since: Instant::now(),
            },
            Err(e) => Slot::Failed(format!("cannot start loading: {e}")),
        };
        self.slots.insert(dir.to_path_buf(), slot);
    }

    /// Takes in finished loads; true when one finished.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        for slot in self.slots.values_mut() {
            let Slot::Loading { answer, .. } = slot else {
                continue;
            };
            let done = match answer.try_recv() {
                Ok(Ok(loaded)) => Slot::Ready(Arc::new(loaded)),
                Ok(Err(reason)) => Slot::Failed(reason),
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Disconnected) => {
                    Slot::Failed("the loading thread ended without a model".to_string())
                }
            };
            *slot = done;
            changed = true;
        }
        changed
    }

    /// The state of the run in `dir`.
    pub fn state(&self, dir: &Path) -> ModelState<'_> {
        match self.slots.get(dir) {
            None => ModelState::Absent,
            Some(Slot::Loading { since, .. }) => ModelState::Loading(since.elapsed().as_secs_f64()),
            Some(Slot::Ready(loaded)) => ModelState::Ready(loaded),
            Some(Slot::Failed(reason)) => ModelState::Failed(reason),
        }
    }

    /// True while some model loads.
    pub fn is_loading(&self) -> bool {
        self.slots
            .values()
            .any(|s| matches!(s, Slot::Loading { .. }))
    }

    /// Forgets the model of `dir` (a generation panicked with it, or the run went away).
    pub fn forget(&mut self, dir: &Path) {
        self.slots.remove(dir);
    }

    /// Forgets every model that is not loading (the page is not used any more).
    pub fn clear(&mut self) {
        self.slots.retain(|_, s| matches!(s, Slot::Loading { .. }));
    }

    /// True when the loaded model of `dir` is older than the run's newest checkpoint (the run
    /// trained on since), or failed to load: it should load again before answering.
    pub fn stale(&self, dir: &Path) -> bool {
        match self.slots.get(dir) {
            Some(Slot::Ready(loaded)) => {
                newest_checkpoint(dir).is_some_and(|newest| newest != loaded.checkpoint)
            }
            Some(Slot::Failed(_)) => true,
            _ => false,
        }
    }

    /// The run folders with a model loaded or loading.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

/// The newest checkpoint file of the run in `dir`, if it has one.
fn newest_checkpoint(dir: &Path) -> Option<PathBuf> {
    let store = RunStore::open(dir).ok()?;
    store
        .newest_checkpoint_in(dir)
        .ok()
        .flatten()
        .map(|(_, p)| p)
}

/// Loads the newest checkpoint of the run in `dir` on its own backend, else on the preferred
/// one (a run trained on a GPU this computer lacks).
fn load_run(dir: &Path) -> Result<Loaded, String> {
    let started = Instant::now();
    let spec = hearth_engine::project::store::read_spec(dir).map_err(|e| e.to_string())?;
    let (backend, device) = match spec.train.backend.device() {
        Ok(device) => (spec.train.backend, device),
        Err(_) => {
            let preferred = BackendKind::preferred();
            (preferred, preferred.device().map_err(|e| e.to_string())?)
        }
    };
    // All cores but one: the window keeps one to draw on.
    let run = backend
        .with_threads(default_threads(), || LoadedRun::load(dir, &device))
        .map_err(|e| e.to_string())?;
    Ok(Loaded {
        backend,
        step: run.step,
        checkpoint: run.checkpoint.clone(),
        chat_template: run.tokenizer.chat_template().is_some(),
        run: Mutex::new(run),
        device,
        load_s: started.elapsed().as_secs_f64(),
    })
}

/// The message of a caught panic.
pub fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "no message".to_string())
}
