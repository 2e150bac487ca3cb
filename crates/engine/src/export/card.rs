//! The model card (`README.md`) of an export: what the model is, what it was trained on and
//! how, its final metrics, and how to load it.

use super::hf::{ENCODER_CLASS, GPT2_CLASS, MASKED_CLASS};
use super::{HfError, Layout, LoadedRun};
use crate::data::{DataSource, TokenizerKind};
use crate::eval::Pooling;
use crate::events::{EvalMetrics, RunSummary};
use crate::project::{RunHistory, RunStore};
use std::fmt::Write;

/// How the pooling reads in words.
fn pooling_words(pooling: Pooling) -> &'static str {
    match pooling {
        Pooling::Mean => "the mean of the token states over the non-padding positions",
        Pooling::Cls => "the state of the first position",
        Pooling::Last => "the state of the last non-padding position",
        Pooling::Max => "the largest value of each feature over the non-padding positions",
    }
}

fn tokenizer_words(kind: TokenizerKind, vocab: usize, specials: bool) -> String {
    let base = match kind {
        TokenizerKind::Char => "characters of the training text".to_string(),
        TokenizerKind::Byte => "bytes".to_string(),
        TokenizerKind::Bpe { vocab_size } => format!("byte-level BPE ({vocab_size} tokens)"),
        TokenizerKind::Pretrained { vocab_size } => {
            return format!(
                "the pretrained model's own tokenizer ({vocab_size} tokens, its special tokens included)"
            );
        }
    };
    let specials = if specials {
        ", then the reserved tokens `[pad] [mask] [cls] [sep]`"
    } else {
        ""
    };
    format!("{base}{specials}: {vocab} tokens in all")
}

/// The model card of `run` exported with `layout`.
pub fn model_card(run: &LoadedRun, layout: &Layout) -> Result<String, HfError> {
    let store = RunStore::open(&run.dir)?;
    let history = store.load_history()?;
    let summary = store.summary()?;
    let mut out = String::new();
    front_matter(&mut out, run, layout);
    model_section(&mut out, run);
    training_section(&mut out, run, layout, &history);
    metrics_section(&mut out, summary.as_ref(), history.evals.last());
    use_section(&mut out, run, layout);
    notes_section(&mut out, run);
    Ok(out)
}

// Writing to a String cannot fail: the `fmt::Result`s below are ignored for that reason.

/// The YAML front matter (pipeline and tags), the title and the opening line.
fn front_matter(w: &mut String, run: &LoadedRun, layout: &Layout) {
    let (pipeline, architecture) = if layout.decoder {
        ("text-generation", GPT2_CLASS)
    } else if layout.masked {
        ("fill-mask", MASKED_CLASS)
    } else {
        ("sentence-similarity", ENCODER_CLASS)
    };
    let mut tags = vec![
        "hearth",
        if layout.decoder {
            "gpt2"
        } else {
            "megatron-bert"
        },
    ];
    if layout.embedding.is_some() {
        tags.push("sentence-transformers");
    }
    let _ = writeln!(
        w,
        "---\nlibrary_name: transformers\npipeline_tag: {pipeline}"
    );
    let _ = writeln!(w, "tags:");
    for tag in &tags {
        let _ = writeln!(w, "- {tag}");
    }
    let _ = writeln!(w, "---\n\n# {}\n", run.spec.name);
    let _ = writeln!(
        w,
        "A small model trained with Hearth and exported as `{architecture}`: it loads in \
         `transformers` with no custom code and gives Hearth's outputs.\n"
    );
}

/// "Model": the shape, the block details and the tokenizer.
fn model_section(w: &mut String, run: &LoadedRun) {
    let m = &run.spec.model;
    let _ = writeln!(w, "## Model\n");
    let _ = writeln!(
        w,
        "- {} layer{}, {} heads, width {}, context {} tokens, {} parameters",
        m.n_layer,
        if m.n_layer == 1 { "" } else { "s" },
        m.n_head,
        m.d_model,
        m.context,
        m.n_params(run.tokenizer.vocab_size())
    );
    let _ = writeln!(
        w,
        "- pre-LayerNorm blocks (epsilon 1e-5), exact GELU, {}, {}",
        if m.bias {
            "biases"
        } else {
            "no biases (written as zeros)"
        },
        if m.tie_weights {
            "output tied to the token embedding"
        } else {
            "untied output matrix"
        }
    );
    let _ = writeln!(
        w,
        "- tokenizer: {}",
        tokenizer_words(
            run.tokenizer.kind(),
            run.tokenizer.vocab_size(),
            run.tokenizer.has_specials()
        )
    );
    let _ = writeln!(w);
}

/// "Training": objective, steps and optimizer, the starting run, the data.
fn training_section(w: &mut String, run: &LoadedRun, layout: &Layout, history: &RunHistory) {
    let spec = &run.spec;
    let _ = writeln!(w, "## Training\n");
    let _ = writeln!(
        w,
        "- objective: `{}`{}",
        spec.objective.kind,
        match (layout.embedding, layout.masked) {
            (Some(p), _) => format!(
                " (InfoNCE temperature {}, {} pooling)",
                spec.objective.temperature,
                p.name()
            ),
            (None, true) => format!(" (mask rate {})", spec.objective.mask_rate),
            _ => String::new(),
        }
    );
    let _ = writeln!(
        w,
        "- steps: {} of {} (checkpoint of step {}), batch {}, learning rate {} (cosine to {}), seed {}",
        history.steps.last().map_or(0, |s| s.step),
        spec.train.steps,
        run.step,
        spec.train.batch_size,
        spec.optim.lr,
        spec.optim.min_lr,
        spec.train.seed
    );
    if let Some(init) = &spec.init {
        let _ = writeln!(
            w,
            "- fine-tuned from the run `{}` (learning rate x{})",
            init.from_run.display(),
            init.lr_multiplier
        );
    }
    let _ = writeln!(w, "- data: {}", spec.data.source.describe());
    if let DataSource::Dataset { recipe, .. } = &spec.data.source {
        let recipe = serde_json::to_string_pretty(recipe).expect("a recipe serializes");
        let _ = writeln!(w, "\nThe dataset recipe:\n\n```json\n{recipe}\n```");
    }
    let _ = writeln!(w);
}

/// "Final metrics": the run's summary (or its last evaluation) and the last evaluation's
/// extra metrics.
fn metrics_section(w: &mut String, summary: Option<&RunSummary>, last: Option<&EvalMetrics>) {
    let _ = writeln!(w, "## Final metrics\n");
    if let Some(s) = summary {
        let _ = writeln!(
            w,
            "- step {}: train loss {:.4}, validation loss {:.4}{}",
            s.step,
            s.train_loss,
            s.val_loss,
            if s.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        );
    } else if let Some(e) = last {
        let _ = writeln!(
            w,
            "- step {}: train loss {:.4}, validation loss {:.4}",
            e.step, e.train_loss, e.val_loss
        );
    } else {
        let _ = writeln!(w, "No evaluation was recorded.");
    }
    if let Some(e) = last {
        for (key, value) in &e.extra {
            let _ = writeln!(w, "- {key} (step {}): {value:.4}", e.step);
        }
    }
    let _ = writeln!(w);
}

/// "Use": how to load each side of the export in Python.
fn use_section(w: &mut String, run: &LoadedRun, layout: &Layout) {
    let _ = writeln!(w, "## Use\n");
    if layout.decoder {
        let context = run.spec.model.context;
        let _ = writeln!(
            w,
            "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n\
             tokenizer = AutoTokenizer.from_pretrained(\"PATH\")\n\
             model = AutoModelForCausalLM.from_pretrained(\"PATH\")\n\
             ids = tokenizer(\"Once upon a time\", return_tensors=\"pt\").input_ids\n\
             print(tokenizer.decode(model.generate(ids)[0]))\n```\n\n\
             Inputs longer than {context} tokens must be cut to their last {context} tokens.\n"
        );
    }
    if layout.masked {
        let _ = writeln!(
            w,
            "```python\nfrom transformers import AutoModelForMaskedLM, AutoTokenizer\n\n\
             tokenizer = AutoTokenizer.from_pretrained(\"PATH\")\n\
             model = AutoModelForMaskedLM.from_pretrained(\"PATH\")\n\
             logits = model(**tokenizer(\"The cat [mask] down.\", return_tensors=\"pt\")).logits\n```\n\n\
             Hearth's masked models have no prediction transform between the final LayerNorm \
             and the output matrix; the export sets MegatronBERT's transform to an identity to \
             float precision (see the dense and LayerNorm weights of `cls.predictions.transform`).\n"
        );
    }
    if let Some(pooling) = layout.embedding {
        embedding_use(w, run, layout, pooling);
    }
}

/// The embedding side of "Use": sentence-transformers, or the pooling by hand.
fn embedding_use(w: &mut String, run: &LoadedRun, layout: &Layout, pooling: Pooling) {
    let sub = if layout.decoder {
        format!("PATH/{}", Layout::EMBEDDING_DIR)
    } else {
        "PATH".to_string()
    };
    if layout.decoder {
        let _ = writeln!(
            w,
            "The embedding side (bidirectional attention, the same weights) is the \
             `MegatronBertModel` in `{}/`.\n",
            Layout::EMBEDDING_DIR
        );
    }
    let _ = writeln!(
        w,
        "```python\nfrom sentence_transformers import SentenceTransformer\n\n\
         model = SentenceTransformer(\"{sub}\")\n\
         embeddings = model.encode([\"first text\", \"second text\"])\n```\n\n\
         An embedding is {} (`{}` pooling) scaled to unit length; without \
         sentence-transformers, apply that to `last_hidden_state` of \
         `AutoModel.from_pretrained(\"{sub}\")` with the attention mask.\n",
        pooling_words(pooling),
        pooling.name()
    );
    if !run.tokenizer.has_specials() {
        let _ = writeln!(
            w,
            "Hearth's vocabulary has no padding token, so the embedding model's tokenizer \
             adds `[pad]` after it (id {}), with a zero embedding: padded positions are \
             masked and pooling skips them.\n",
            run.tokenizer.vocab_size()
        );
    }
}

/// What the export leaves out or treats specially: the relation head, the special tokens.
fn notes_section(w: &mut String, run: &LoadedRun) {
    let relation_classes = run.spec.model.relation_classes;
    if relation_classes > 0 {
        let _ = writeln!(
            w,
            "The run's sentence-pair relation head ({relation_classes} classes on the first \
             position) has no place in `{MASKED_CLASS}` and is not exported.\n"
        );
    }
    if run.tokenizer.has_specials() {
        let _ = writeln!(
            w,
            "The tokenizer splits `[pad] [mask] [cls] [sep]` out of text as special tokens; \
             Hearth itself never encodes text to them.\n"
        );
    }
}
