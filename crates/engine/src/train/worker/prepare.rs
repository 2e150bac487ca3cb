//! Before the first step: the base run of a fine-tune, the corpus and pairs, the objective's
//! note and reference figures, the initial model (fresh, from the base, or restored where a
//! resumed run stopped) and its optimizer.

use super::clock::ActiveClock;
use super::{ResumePoint, RunFailure, Worker, step_data};
use crate::data::Corpus;
use crate::data::pairs::read_pairs;
use crate::events::RunEvent;
use crate::model::Model;
use crate::objective::{PairSet, Positives};
use crate::project::{RunStore, StoreError};
use crate::spec::{InitSpec, RunSpec};
use crate::train::optim::{AdamW, flatten_params, unflatten_params};
use burn::module::Module;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What a run trains on, loaded once before the first step.
pub(super) struct Prepared {
    /// The tokenized corpus.
    pub(super) corpus: Corpus,
    /// Labelled pairs, for an embedding objective with `positives = pairs`.
    pub(super) pairs: Option<PairSet>,
    /// The base run of a fine-tune.
    pub(super) base: Option<Base>,
}

/// The state the training loop carries from step to step.
pub(super) struct Session {
    /// The model being trained (on the autodiff device).
    pub(super) model: Model,
    /// Its optimizer, with its moments.
    pub(super) optim: AdamW,
    /// The stream the batches are drawn from.
    pub(super) rng: StdRng,
    /// Active time, including a resumed run's earlier time.
    pub(super) active: ActiveClock,
}

impl Worker {
    /// Loads what the run trains on and tells the user what the objective wants them to
    /// know: its start note and the reference figures of simple models on this data. Writes
    /// the run's tokenizer.
    pub(super) fn prepare(&mut self) -> Result<Prepared, RunFailure> {
        let spec = self.spec.clone();
        let base = spec
            .init
            .as_ref()
            .map(|init| load_base(init, &spec))
            .transpose()?;
        // A resumed run keeps the tokenizer it was saved with (a BPE vocabulary is not trained
        // again); a fine-tune takes its base run's.
        let saved = self
            .resume
            .as_ref()
            .and_then(|_| crate::project::store::read_tokenizer(self.store.dir()));
        // A resumed run trains on the dataset tokens it recorded, or is refused.
        let mut data = spec.data.clone();
        if data.shards.is_none() {
            data.shards = crate::data::corpus::read_recorded_shards(self.store.dir());
        }
        let corpus = match (&base, saved) {
            (Some(base), _) => Corpus::load_with(&data, base.tokenizer.clone()),
            (None, Some(tokenizer)) => Corpus::load_with(&data, tokenizer),
            (None, None) => Corpus::load_for(&data, spec.objective.needs_specials()),
        }?;
        if let Some(shards) = &corpus.shards {
            let path = self.store.dir().join(crate::data::corpus::RUN_SHARDS_FILE);
            self.record(
                crate::data::corpus::record_shards(self.store.dir(), shards)
                    .map_err(|source| StoreError::Io { path, source }),
            );
        }
        self.objective.check_corpus(&corpus)?;
        let pairs = self.pairs(&spec, &corpus)?;
        if let (Some(path), true) = (&spec.objective.sts_file, self.objective.uses_embeddings()) {
            self.sts = Some(Arc::new(crate::data::pairs::read_scored_pairs(path)?));
        }
        self.announce(&spec, &corpus, pairs.as_ref());
        corpus.check_context(spec.model.context)?;
        // The epoch size, so a window reading the run later needs no second pass over the data.
        let path = self.store.dir().join(crate::data::corpus::RUN_EPOCH_FILE);
        self.record(
            crate::data::corpus::record_epoch_tokens(
                self.store.dir(),
                corpus.epoch_tokens(spec.model.context),
            )
            .map_err(|source| StoreError::Io { path, source }),
        );
        let tokenizer_json = serde_json::to_string(&corpus.tokenizer).expect("serializes");
        let path = self.store.dir().join("tokenizer.json");
        self.record(
            std::fs::write(&path, tokenizer_json).map_err(|source| StoreError::Io { path, source }),
        );
        Ok(Prepared {
            corpus,
            pairs,
            base,
        })
    }

    /// The labelled pairs an embedding objective trains on with `positives = pairs`.
    fn pairs(&self, spec: &RunSpec, corpus: &Corpus) -> Result<Option<PairSet>, RunFailure> {
        if let (Some(path), true) = (&spec.objective.pairs_file, self.objective.scored_pairs()) {
            let pairs = crate::data::pairs::read_scored_pairs(path)?;
            if pairs.len() < 2 {
                return Err(RunFailure::TooFewPairs(path.clone()));
            }
            return Ok(Some(PairSet::scored(
                &pairs,
                &corpus.tokenizer.clone().with_specials(true),
            )));
        }
        let path = match (&spec.objective.pairs_file, spec.objective.positives) {
            (Some(path), Positives::Pairs) if self.objective.uses_embeddings() => path,
            _ => return Ok(None),
        };
        let pairs = read_pairs(path)?;
        if pairs.len() < 2 {
            return Err(RunFailure::TooFewPairs(path.clone()));
        }
        Ok(Some(PairSet::new(
            &pairs,
            &corpus.tokenizer.clone().with_specials(true),
        )))
    }

    /// Sends the objective's start note and its reference figures (computed once per run; a
    /// resumed run reads them back).
    fn announce(&mut self, spec: &RunSpec, corpus: &Corpus, pairs: Option<&PairSet>) {
        let data = step_data(spec, corpus, pairs);
        if let Some(message) = self.objective.start_note(&data) {
            let step = self.step;
            self.send(RunEvent::Warning { step, message });
        }
        let references = match self.store.references() {
            Ok(Some(stored)) => stored,
            _ => {
                let computed = self.objective.references(&data);
                self.record(self.store.set_references(&computed));
                computed
            }
        };
        if !references.is_empty() {
            self.send(RunEvent::References(references));
        }
    }

    /// The model and optimizer of the first step: fresh weights, or the base run's (with
    /// the parts the fine-tune freezes), the same on every rank; for a resumed run, the
    /// weights, moments, clock and batch stream where it stopped.
    pub(super) fn start_session(
        &mut self,
        prepared: &Prepared,
        device: &Device,
    ) -> Result<Session, RunFailure> {
        let spec = self.spec.clone();
        let train_device = device.clone().autodiff();
        let vocab = prepared.corpus.tokenizer.vocab_size();
        let mut model = Model::new(&spec.model, vocab, &train_device);
        if let (Some(base), Some(init)) = (&prepared.base, &spec.init) {
            // Adapters start fresh on the base's frozen weights.
            let from_base = |model: Model| {
                if model.has_lora() {
                    model.load_lora_base()
                } else {
                    model.try_load_file(&base.checkpoint)
                }
            };
            model = from_base(model).map_err(|e| RunFailure::Checkpoint {
                action: "load",
                path: base.checkpoint.clone(),
                message: e.to_string(),
            })?;
            model = model.map(&mut Freeze {
                path: crate::model::ParamPath::default(),
                embeddings: init.freeze_embeddings,
                layers: init.freeze_layers,
            });
            let step = self.step;
            self.record(self.store.append_message(
                step,
                "info",
                &format!("initialised from {}", base.checkpoint.display()),
            ));
            if let Some(lora) = &spec.model.lora {
                let trained = lora.n_params(&spec.model);
                let total = spec.model.n_params(vocab) + trained;
                self.record(self.store.append_message(
                    step,
                    "info",
                    &format!(
                        "LoRA rank {} (alpha {}) on {}: {trained} of {total} parameters train ({:.2}%), about {} MB to train; checkpoints hold the adapters only",
                        lora.rank,
                        lora.alpha,
                        lora.targets.join(","),
                        100.0 * trained as f64 / total.max(1) as f64,
                        spec.model.train_memory_bytes(
                            vocab,
                            spec.train.batch_size,
                            spec.train.backend.keeps_attention()
                        ) / 1_000_000
                    ),
                ));
            }
        }
        // Every rank starts from rank 0's weights.
        if self.collective.size() > 1 {
            let mut flat = flatten_params(&model);
            self.collective.broadcast(&mut flat);
            model = unflatten_params(model, &flat);
        }
        let mut session = Session {
            model,
            optim: AdamW::new(spec.optim.clone()),
            rng: StdRng::seed_from_u64(spec.train.seed),
            active: ActiveClock::start(),
        };
        if let Some(point) = self.resume.clone() {
            self.restore(&point, &mut session, vocab, device)?;
        }
        Ok(session)
    }

    /// Puts `session` where the resumed run stopped: its weights, optimizer moments, active
    /// time, and a batch stream determined by seed and step.
    fn restore(
        &mut self,
        point: &ResumePoint,
        session: &mut Session,
        vocab: usize,
        device: &Device,
    ) -> Result<(), RunFailure> {
        let model_spec = &self.spec.model;
        let load = |path: &Path, device: &Device| {
            Model::new(model_spec, vocab, device)
                .try_load_file(path)
                .map_err(|e| RunFailure::Checkpoint {
                    action: "resume from",
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
        };
        session.model = load(&point.weights, &device.clone().autodiff())?;
        let first = load(&point.moments.0, device)?;
        let second = load(&point.moments.1, device)?;
        session
            .optim
            .restore(&session.model, &first, &second, point.step as i32);
        session.active.banked = Duration::from_secs_f64(point.elapsed_s);
        // A fresh batch stream for the continuation, still determined by seed and step.
        session.rng = StdRng::seed_from_u64(
            self.spec.train.seed ^ (point.step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let step = self.step;
        self.record(
            self.store
                .append_message(step, "info", &format!("resumed from step {step}")),
        );
        Ok(())
    }
}

/// What a fine-tuning run starts from.
pub(super) struct Base {
    /// The base run's tokenizer, which the fine-tune keeps.
    pub(super) tokenizer: crate::data::Tokenizer,
    /// The base run's newest checkpoint.
    pub(super) checkpoint: PathBuf,
}

/// Reads the base run of a fine-tune and checks that it fits `spec`.
fn load_base(init: &InitSpec, spec: &RunSpec) -> Result<Base, RunFailure> {
    let fail = |message: String| RunFailure::Base {
        path: init.from_run.clone(),
        message,
    };
    let store = RunStore::open(&init.from_run).map_err(|e| fail(e.to_string()))?;
    let base_spec = store.spec().map_err(|e| fail(e.to_string()))?;
    let (theirs, ours) = (&base_spec.model, &spec.model);
    if theirs.n_layer != ours.n_layer
        || theirs.n_head != ours.n_head
        || theirs.d_model != ours.d_model
        || (theirs.context != ours.context && theirs.family != crate::model::Family::Llama)
        || theirs.tie_weights != ours.tie_weights
        || theirs.bias != ours.bias
        || theirs.arch != ours.arch
    {
        let shape = |m: &crate::model::ModelSpec| {
            format!(
                "{} {} layers, {} heads, width {}, context {}",
                m.arch.name(),
                m.n_layer,
                m.n_head,
                m.d_model,
                m.context
            )
        };
        return Err(fail(format!(
            "its model ({}) differs from this run's ({})",
            shape(theirs),
            shape(ours)
        )));
    }
    let text = std::fs::read_to_string(init.from_run.join("tokenizer.json"))
        .map_err(|e| fail(format!("no tokenizer.json ({e})")))?;
    let tokenizer: crate::data::Tokenizer =
        serde_json::from_str(&text).map_err(|e| fail(format!("tokenizer.json: {e}")))?;
    if spec.objective.needs_specials() && !tokenizer.has_specials() {
        return Err(fail(format!(
            "its vocabulary has no special tokens, which the {} objective needs",
            spec.objective.kind.name()
        )));
    }
    let history = store.load_history().map_err(|e| fail(e.to_string()))?;
    let checkpoint = history
        .checkpoints
        .last()
        .map(|(_, p)| p.clone())
        .filter(|p| p.exists())
        .ok_or_else(|| fail("no checkpoint to start from".to_string()))?;
    Ok(Base {
        tokenizer,
        checkpoint,
    })
}

/// Marks embeddings and the lowest blocks as not trained.
struct Freeze {
    path: crate::model::ParamPath,
    embeddings: bool,
    layers: usize,
}

impl burn::module::ModuleMapper for Freeze {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _: &str, container_type: &str) {
        self.path.exit(container_type);
    }
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<D>> {
        let top = self.path.parts().first().map(String::as_str);
        let embedding = matches!(top, Some("tok_emb" | "pos_emb"));
        let low_block = top == Some("blocks")
            && self
                .path
                .parts()
                .get(1)
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < self.layers);
        if (self.embeddings && embedding) || low_block {
            param.set_require_grad(false)
        } else {
            param
        }
    }
}
