//! Run setup page: model, optimizer, schedule and backend, with live size estimates and
//! impossible settings refused at their field.

mod objective;

use crate::action::{Action, AppContext, DataStatus};
use crate::pages::dataset::missing_path;
use crate::services::shortcuts::{self, Command};
use hearth_engine::model::{Arch, Family, LORA_TARGETS, SpecError};
use hearth_engine::spec::RunSpec;
use hearth_engine::train::BackendKind;
use objective::{objective_section_ui, recipe_ui};
use std::path::{Path, PathBuf};

/// The run setup page. The settings it edits are the project's draft; the page keeps only
/// what it read to show them.
#[derive(Debug, Default)]
pub struct SetupPage {
    /// A fine-tune's base run and the size of its vocabulary (read from its tokenizer once).
    base_vocab: Option<(PathBuf, Option<usize>)>,
    /// Why LoRA adapters could not be set up on the base run.
    lora_error: Option<String>,
}

impl SetupPage {
    /// Draws the page on a copy of the draft; returns the edited draft and the start.
    #[must_use = "the app applies what the page asks for"]
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>) -> Vec<Action> {
        let mut spec = ctx.draft().clone();
        let base_vocab = spec
            .init
            .as_ref()
            .and_then(|init| self.base_vocab(&init.from_run));
        let lora_error = &mut self.lora_error;
        // Errors are shown live as values change, not only after a refused start.
        let errors = spec.validate();
        let mut start_clicked = false;
        // File dialogs asked for by the objective's file settings.
        let mut file_actions = Vec::new();
        let mut reset_clicked = false;
        ui.heading("Run setup");
        let data = if missing_path(&spec.data) {
            "a text file, not chosen yet (see the Dataset page)".to_string()
        } else {
            spec.data.source.describe()
        };
        ui.label(egui::RichText::new(format!("Data: {data}")).weak());
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.columns(2, |cols| {
                model_section_ui(&mut cols[0], &mut spec, &errors, ctx.data);
                let ui = &mut cols[1];
                optimizer_section_ui(ui, &mut spec, &errors);
                if spec.init.is_some()
                    && fine_tune_section_ui(ui, &mut spec, &errors, base_vocab, lora_error)
                {
                    // Adapters adapt a base: from scratch, every weight trains.
                    spec.init = None;
                    spec.model.lora = None;
                }
                let kind_before = spec.objective.kind.clone();
                objective_section_ui(ui, &mut spec.objective, &errors, &mut file_actions);
                // A newly chosen objective starts from its recipe.
                if spec.objective.kind != kind_before {
                    spec.apply_recipe();
                }
                recipe_ui(ui, &mut spec);
                training_section_ui(ui, &mut spec, &errors);
            });
            ui.add_space(12.0);
            ui.horizontal(|ui| {
                let ok = errors.is_empty();
                let start = ui
                    .add_enabled(
                        ok,
                        egui::Button::new(egui::RichText::new("Start run").strong()),
                    )
                    .on_hover_text(shortcuts::hint(ui.ctx(), Command::StartRun));
                start_clicked = start.clicked();
                if !ok {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!(
                            "{} setting(s) need fixing before a run can start",
                            errors.len()
                        ),
                    );
                }
                reset_clicked = ui.button("Reset to nanoGPT CPU defaults").clicked();
            });
            if let Some(note) = sharing_note(ctx.runs, &spec) {
                ui.label(egui::RichText::new(note).color(ui.visuals().warn_fg_color));
            }
        });
        if reset_clicked {
            spec = RunSpec {
                name: spec.name.clone(),
                data: spec.data.clone(),
                ..Default::default()
            };
        }
        let mut actions = Vec::new();
        if spec != *ctx.draft() {
            actions.push(Action::SetDraft(Box::new(spec)));
        }
        actions.extend(file_actions);
        if start_clicked {
            actions.push(Action::StartRun);
        }
        actions
    }
}

impl SetupPage {
    /// The vocabulary size of the base run in `base` (its tokenizer read once per base).
    fn base_vocab(&mut self, base: &Path) -> Option<usize> {
        if self.base_vocab.as_ref().is_none_or(|(dir, _)| dir != base) {
            let vocab = hearth_engine::project::store::read_tokenizer(base).map(|t| t.vocab_size());
            self.base_vocab = Some((base.to_path_buf(), vocab));
            self.lora_error = None;
        }
        self.base_vocab.as_ref().and_then(|(_, vocab)| *vocab)
    }
}

/// What a run started now shares with the runs already training: on the CPU, their cores.
fn sharing_note(runs: &[crate::run_view::RunView], draft: &RunSpec) -> Option<String> {
    let on_cpu = |s: &RunSpec| s.train.backend != BackendKind::LibtorchCuda;
    let busy = runs
        .iter()
        .filter(|r| r.is_live() && on_cpu(&r.spec))
        .count();
    (busy > 0 && on_cpu(draft)).then(|| {
        let runs = if busy == 1 {
            "1 run is".to_string()
        } else {
            format!("{busy} runs are")
        };
        format!(
            "{runs} already training on this computer's CPU: a run started now shares its cores, \
             so each trains more slowly (two LibTorch runs side by side each take about twice as \
             long per step)"
        )
    })
}

/// Shows the message of `field`'s error (if any) under the widget.
fn field_error(ui: &mut egui::Ui, errors: &[SpecError], field: &str) {
    for e in errors.iter().filter(|e| e.field == field) {
        ui.colored_label(ui.visuals().error_fg_color, e.message.clone());
    }
}

/// One labelled row: the widget and, beside it, its error.
fn row(
    ui: &mut egui::Ui,
    errors: &[SpecError],
    label: &str,
    field: &str,
    add: impl FnOnce(&mut egui::Ui) -> egui::Response,
) {
    let label = ui.label(label);
    ui.horizontal(|ui| {
        add(ui).labelled_by(label.id);
        field_error(ui, errors, field);
    });
    ui.end_row();
}

/// A two-column grid of rows under a strong title.
fn section(ui: &mut egui::Ui, title: &str, id: &str, rows: impl FnOnce(&mut egui::Ui)) {
    ui.label(egui::RichText::new(title).strong());
    egui::Grid::new(id)
        .num_columns(2)
        .spacing([12.0, 6.0])
        .show(ui, rows);
}

/// The model's shape, and its size once the data's vocabulary is known.
fn model_section_ui(
    ui: &mut egui::Ui,
    spec: &mut RunSpec,
    errors: &[SpecError],
    data: &DataStatus,
) {
    section(ui, "Model", "model_grid", |ui| {
        row(ui, errors, "Name", "name", |ui| {
            ui.text_edit_singleline(&mut spec.name)
        });
        let fine_tune = spec.init.is_some();
        let m = &mut spec.model;
        row(ui, errors, "Family", "model.family", |ui| {
            let info = m.family.info();
            if fine_tune {
                // A fine-tune has its base's model.
                return ui
                    .label(info.name)
                    .on_hover_text(format!("{} (the base run's)", info.description));
            }
            egui::ComboBox::from_id_salt("model_family")
                .selected_text(info.name)
                .show_ui(ui, |ui| {
                    for f in hearth_engine::model::FAMILIES
                        .iter()
                        .filter(|f| f.from_scratch)
                    {
                        ui.selectable_value(&mut m.family, f.family, f.name)
                            .on_hover_text(f.description);
                    }
                })
                .response
                .on_hover_text(info.description)
        });
        if m.family == hearth_engine::model::Family::Bert {
            // BERT has biases throughout.
            m.bias = true;
            m.arch = Arch::Classic;
        }
        if m.family == hearth_engine::model::Family::Gpt {
            row(ui, errors, "Architecture", "model.arch", |ui| {
                egui::ComboBox::from_id_salt("model_arch")
                    .selected_text(m.arch.name())
                    .show_ui(ui, |ui| {
                        for a in Arch::ALL {
                            ui.selectable_value(&mut m.arch, a, a.name());
                        }
                    })
                    .response
                    .on_hover_text(
                        "classic: nanoGPT's GPT-2 (learned positions, LayerNorm, GELU MLP); \
                         modern: rotary positions, RMSNorm, SwiGLU MLP, QK-norm, no biases",
                    )
            });
        }
        row(ui, errors, "Layers", "model.n_layer", |ui| {
            ui.add(egui::DragValue::new(&mut m.n_layer).range(0..=64))
        });
        row(ui, errors, "Heads", "model.n_head", |ui| {
            ui.add(egui::DragValue::new(&mut m.n_head).range(0..=64))
        });
        row(ui, errors, "Width", "model.d_model", |ui| {
            ui.add(egui::DragValue::new(&mut m.d_model).range(0..=4096))
        });
        row(ui, errors, "Context (tokens)", "model.context", |ui| {
            ui.add(egui::DragValue::new(&mut m.context).range(0..=4096))
        });
        row(ui, errors, "Dropout", "model.dropout", |ui| {
            ui.add(
                egui::DragValue::new(&mut m.dropout)
                    .speed(0.01)
                    .range(0.0..=0.99),
            )
        });
        row(
            ui,
            errors,
            "Tie embedding and head",
            "model.tie_weights",
            |ui| ui.checkbox(&mut m.tie_weights, ""),
        );
        row(ui, errors, "Biases", "model.bias", |ui| {
            ui.checkbox(&mut m.bias, "")
        });
    });
    ui.add_space(8.0);
    let m = &spec.model;
    if !m.validate().is_empty() {
        return;
    }
    match (data.vocab, &data.error) {
        (Some(vocab), _) => {
            let params = m.n_params(vocab);
            let mem = m.train_memory_bytes(
                vocab,
                spec.train.batch_size,
                spec.train.backend.keeps_attention(),
            );
            ui.label(format!(
                "{:.2}M parameters · about {:.0} MB to train (vocabulary {vocab})",
                params as f64 / 1e6,
                mem as f64 / 1e6
            ));
        }
        (None, Some(err)) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("The dataset cannot be built (see the Dataset page): {err}"),
            );
        }
        (None, None) => {
            ui.label("Parameter count appears once the dataset is read.");
        }
    }
}

/// Learning rate, its schedule, and the optimizer's settings.
fn optimizer_section_ui(ui: &mut egui::Ui, spec: &mut RunSpec, errors: &[SpecError]) {
    section(ui, "Optimizer and schedule", "optim_grid", |ui| {
        let o = &mut spec.optim;
        row(ui, errors, "Learning rate", "optim.lr", |ui| {
            ui.add(egui::DragValue::new(&mut o.lr).speed(1e-5).max_decimals(6))
        });
        row(ui, errors, "Minimum learning rate", "optim.min_lr", |ui| {
            ui.add(
                egui::DragValue::new(&mut o.min_lr)
                    .speed(1e-5)
                    .max_decimals(6),
            )
        });
        row(ui, errors, "Warmup steps", "optim.warmup_steps", |ui| {
            ui.add(egui::DragValue::new(&mut o.warmup_steps))
        });
        row(ui, errors, "Weight decay", "optim.weight_decay", |ui| {
            ui.add(egui::DragValue::new(&mut o.weight_decay).speed(0.01))
        });
        row(ui, errors, "Block matrices", "optim.optimizer", |ui| {
            use hearth_engine::spec::OptimizerKind;
            ui.horizontal(|ui| {
                ui.selectable_value(&mut o.optimizer, OptimizerKind::Adamw, "AdamW");
                ui.selectable_value(&mut o.optimizer, OptimizerKind::Muon, "Muon");
            })
            .response
            .on_hover_text(
                "Muon orthogonalises the momentum of the weight matrices inside the blocks (Jordan et al. 2024); the embeddings, head, biases and gains keep AdamW",
            )
        });
        if o.optimizer == hearth_engine::spec::OptimizerKind::Muon {
            row(ui, errors, "Muon learning rate", "optim.muon_lr", |ui| {
                ui.add(
                    egui::DragValue::new(&mut o.muon_lr)
                        .speed(1e-3)
                        .max_decimals(4),
                )
            });
        }
        row(ui, errors, "Beta 2", "optim.beta2", |ui| {
            ui.add(
                egui::DragValue::new(&mut o.beta2)
                    .speed(0.001)
                    .max_decimals(4),
            )
        });
        row(
            ui,
            errors,
            "Gradient clip (0 = off)",
            "optim.grad_clip",
            |ui| ui.add(egui::DragValue::new(&mut o.grad_clip).speed(0.05)),
        );
    });
    ui.add_space(8.0);
}

/// Where a fine-tune starts from, and what trains: every weight (some frozen), or for a
/// Llama-family base LoRA adapters alone. Returns true when the user asks to train from
/// scratch instead.
fn fine_tune_section_ui(
    ui: &mut egui::Ui,
    spec: &mut RunSpec,
    errors: &[SpecError],
    base_vocab: Option<usize>,
    lora_error: &mut Option<String>,
) -> bool {
    let mut clear = false;
    let llama = spec.model.family == Family::Llama;
    let pretrained_lr =
        hearth_engine::objective::recipe::Recipe::of(&spec.objective.kind).pretrained_lr;
    let Some(init) = &mut spec.init else {
        return false;
    };
    section(ui, "Fine-tuning", "init_grid", |ui| {
        ui.label("Starts from");
        ui.vertical(|ui| {
            let name = init
                .from_run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            ui.label(egui::RichText::new(name).weak())
                .on_hover_text(init.from_run.display().to_string());
            field_error(ui, errors, "init.from_run");
            clear = ui.small_button("Train from scratch instead").clicked();
        });
        ui.end_row();
        row(
            ui,
            errors,
            "Learning-rate multiplier",
            "init.lr_multiplier",
            |ui| {
                ui.add(
                    egui::DragValue::new(&mut init.lr_multiplier)
                        .speed(0.01)
                        .range(0.0..=10.0),
                )
                .on_hover_text(
                    "Multiplies the learning rate and its minimum: a tenth suits retraining every \
                     weight; LoRA adapters start at zero and take the rate as it is (1)",
                )
            },
        );
        if llama {
            let lora = &mut spec.model.lora;
            let was = lora.is_some();
            let mut on = was;
            ui.label("LoRA");
            ui.horizontal(|ui| {
                ui.checkbox(&mut on, "Train low-rank adapters only")
                    .on_hover_text(
                        "LoRA (Hu et al. 2021): the base's weights stay frozen and small \
                         adapters on the chosen projections train; checkpoints hold the \
                         adapters alone",
                    );
                field_error(ui, errors, "model.lora");
            });
            ui.end_row();
            if on && !was {
                match hearth_engine::project::store::lora_on_run(8, &init.from_run) {
                    Ok(spec) => {
                        *lora = Some(spec);
                        init.lr_multiplier = 1.0;
                        *lora_error = None;
                    }
                    Err(e) => *lora_error = Some(e),
                }
            } else if !on && was {
                *lora = None;
                init.lr_multiplier = if pretrained_lr { 1.0 } else { 0.1 };
            }
            if let Some(e) = lora_error.as_ref() {
                ui.label("");
                ui.colored_label(ui.visuals().error_fg_color, format!("no adapters: {e}"));
                ui.end_row();
            }
        }
        if let Some(lora) = spec.model.lora.as_mut().filter(|_| llama) {
            row(ui, errors, "LoRA rank", "model.lora.rank", |ui| {
                let before = lora.rank;
                let r = ui.add(egui::DragValue::new(&mut lora.rank).range(1..=1024));
                // Alpha at its usual twice the rank follows the rank.
                if lora.rank != before && lora.alpha == 2.0 * before as f64 {
                    lora.alpha = 2.0 * lora.rank as f64;
                }
                r.on_hover_text("The rank of each adapter: its two matrices are d x r and r x d")
            });
            row(ui, errors, "LoRA alpha", "model.lora.alpha", |ui| {
                ui.add(
                    egui::DragValue::new(&mut lora.alpha)
                        .speed(0.5)
                        .range(0.0..=4096.0),
                )
                .on_hover_text("The adapters add alpha / rank times their product")
            });
            let label = ui.label("LoRA targets");
            ui.horizontal(|ui| {
                for target in LORA_TARGETS {
                    let mut chosen = lora.targets(target);
                    if ui.checkbox(&mut chosen, target).changed() {
                        if chosen {
                            lora.targets.push(target.to_string());
                            // Kept in the order of a block.
                            lora.targets.sort_by_key(|t| {
                                LORA_TARGETS
                                    .iter()
                                    .position(|x| x == t)
                                    .unwrap_or(usize::MAX)
                            });
                        } else {
                            lora.targets.retain(|t| t != target);
                        }
                    }
                }
                field_error(ui, errors, "model.lora.targets");
            })
            .response
            .labelled_by(label.id)
            .on_hover_text(
                "The projections that get adapters: attention's queries, keys, values and \
                 output, the MLP's gate, up and down",
            );
            ui.end_row();
            row(ui, errors, "LoRA dropout", "model.lora.dropout", |ui| {
                ui.add(
                    egui::DragValue::new(&mut lora.dropout)
                        .speed(0.01)
                        .range(0.0..=0.99),
                )
                .on_hover_text("Dropout on the adapters' input while training")
            });
            let lora = lora.clone();
            ui.label("");
            ui.label(lora_share(&lora, &spec.model, base_vocab));
            ui.end_row();
        } else {
            row(
                ui,
                errors,
                "Freeze embeddings",
                "init.freeze_embeddings",
                |ui| ui.checkbox(&mut init.freeze_embeddings, ""),
            );
            row(
                ui,
                errors,
                "Freeze lowest blocks",
                "init.freeze_layers",
                |ui| ui.add(egui::DragValue::new(&mut init.freeze_layers).range(0..=64)),
            );
        }
    });
    ui.add_space(8.0);
    clear
}

/// "N of M parameters train (x%)" for adapters `lora` on a model of `model`'s shape over a
/// vocabulary of `vocab` tokens (when known).
pub fn lora_share(
    lora: &hearth_engine::model::LoraSpec,
    model: &hearth_engine::model::ModelSpec,
    vocab: Option<usize>,
) -> String {
    let trained = lora.n_params(model);
    match vocab {
        Some(vocab) => {
            let total = model.n_params(vocab).saturating_add(trained);
            format!(
                "{} of {} parameters train ({:.2}%)",
                grouped(trained),
                grouped(total),
                100.0 * trained as f64 / total.max(1) as f64
            )
        }
        None => format!("{} adapter parameters train", grouped(trained)),
    }
}

/// `n` with its thousands grouped: 1,234,567.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Batch, length, evaluation, seed, backend and probes.
fn training_section_ui(ui: &mut egui::Ui, spec: &mut RunSpec, errors: &[SpecError]) {
    section(ui, "Training", "train_grid", |ui| {
        let t = &mut spec.train;
        row(ui, errors, "Batch size", "train.batch_size", |ui| {
            ui.add(egui::DragValue::new(&mut t.batch_size).range(0..=4096))
                .on_hover_text("Sequences per micro-batch")
        });
        row(
            ui,
            errors,
            "Gradient accumulation",
            "train.grad_accum",
            |ui| {
                let accum = t.grad_accum.max(1);
                let r = ui.add(
                    egui::DragValue::new(&mut t.grad_accum)
                        .range(1..=4096)
                        .suffix(" micro-batches"),
                );
                r.on_hover_text(format!(
                    "Micro-batches per optimizer step: each step sees {} sequences at the memory of {}",
                    t.batch_size * accum,
                    t.batch_size
                ))
            },
        );
        row(ui, errors, "Steps", "train.steps", |ui| {
            ui.add(egui::DragValue::new(&mut t.steps).range(0..=10_000_000))
        });
        row(ui, errors, "Evaluate every", "train.eval_interval", |ui| {
            ui.add(egui::DragValue::new(&mut t.eval_interval))
        });
        row(
            ui,
            errors,
            "Evaluation batches",
            "train.eval_batches",
            |ui| ui.add(egui::DragValue::new(&mut t.eval_batches)),
        );
        row(
            ui,
            errors,
            "Record dynamics every",
            "train.dynamics_interval",
            |ui| {
                let r = ui.add(
                    egui::DragValue::new(&mut t.dynamics_interval)
                        .range(0..=1_000_000)
                        .suffix(" steps"),
                );
                r.on_hover_text(
                    "Each matrix's gradient norm, update ratio and weight norm, for the Monitor's Dynamics tab; 0 records none",
                )
            },
        );
        row(ui, errors, "Seed", "train.seed", |ui| {
            ui.add(egui::DragValue::new(&mut t.seed))
        });
        row(ui, errors, "Backend", "train.backend", |ui| {
            egui::ComboBox::from_id_salt("backend")
                .selected_text(t.backend.label())
                .show_ui(ui, |ui| {
                    for b in BackendKind::available() {
                        ui.selectable_value(&mut t.backend, b, b.label());
                    }
                })
                .response
        });
        row(
            ui,
            errors,
            "Threads (0 = all but one)",
            "train.threads",
            |ui| ui.add(egui::DragValue::new(&mut t.threads).range(0..=256)),
        );
        row(ui, errors, "Replicas (devices)", "train.devices", |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut t.devices)
                    .hint_text("one device")
                    .desired_width(160.0),
            )
            .on_hover_text(
                "Data-parallel replicas, each computing its share of every batch: cpu:2, or cuda:0,cuda:1 with LibTorch CUDA. Empty: the backend's one device.",
            )
        });
        row(
            ui,
            errors,
            "Attention every (steps)",
            "train.attention_interval",
            |ui| ui.add(egui::DragValue::new(&mut t.attention_interval)),
        );
        row(ui, errors, "Probe text", "train.probe_text", |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut t.probe_text)
                    .hint_text("start of the validation text"),
            )
        });
    });
}
