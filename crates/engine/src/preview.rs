//! The first training batch of a run, decoded token by token exactly as the model will see it,
//! with the tokens the loss is computed on marked.

use crate::data::{Corpus, IGNORE, Special, Split};
use crate::objective::StepData;
use crate::spec::RunSpec;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// One token of a previewed row.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewToken {
    /// The token's text as the model reads it (`[mask]` where it was masked).
    pub text: String,
    /// The loss is computed on this token (it is a prediction target).
    pub target: bool,
}

/// One row of the first batch.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewRow {
    /// Padding is left out.
    pub tokens: Vec<PreviewToken>,
    /// The row's class label, for LinkBERT rows.
    pub label: Option<String>,
}

impl PreviewRow {
    /// The text of the tokens the loss is computed on, in order.
    pub fn target_text(&self) -> String {
        self.tokens
            .iter()
            .filter(|t| t.target)
            .map(|t| t.text.as_str())
            .collect()
    }

    /// The row as plain text with targets in `«»`, for the command line.
    pub fn marked_text(&self) -> String {
        let mut out = String::new();
        let mut open = false;
        for t in &self.tokens {
            if t.target != open {
                out.push_str(if t.target { "«" } else { "»" });
                open = t.target;
            }
            out.push_str(&t.text);
        }
        if open {
            out.push('»');
        }
        match &self.label {
            Some(label) => format!("{out}  => {label}"),
            None => out,
        }
    }
}

/// The first training batch of a run with `spec` on `corpus`: drawn with the same seed and the
/// same functions as the worker's first step (at most `max_rows` rows).
pub fn first_batch(corpus: &Corpus, spec: &RunSpec, max_rows: usize) -> Vec<PreviewRow> {
    let mut rng = StdRng::seed_from_u64(spec.train.seed);
    let (b, ctx) = (spec.train.batch_size, spec.model.context);
    let tok = &corpus.tokenizer;
    let pad = tok.special(Special::Pad).map(i64::from);
    let label = |id: i64| tok.decode(&[id as u32]);
    let rows_of = |inputs: &[i64], is_target: &dyn Fn(usize) -> bool, len: usize| {
        (0..inputs.len() / len)
            .take(max_rows)
            .map(|r| PreviewRow {
                // Padding is left out; a target never is (a model whose padding token is its
                // end-of-turn token learns to end its answers with it).
                tokens: (0..len)
                    .filter(|&t| Some(inputs[r * len + t]) != pad || is_target(r * len + t))
                    .map(|t| PreviewToken {
                        text: label(inputs[r * len + t]),
                        target: is_target(r * len + t),
                    })
                    .collect(),
                label: None,
            })
            .collect::<Vec<_>>()
    };
    let data = StepData {
        objective: &spec.objective,
        context: ctx,
        batch_size: b,
        eval_batches: spec.train.eval_batches,
        corpus,
        pairs: None,
        progress: 0.0,
    };
    // Objectives that change what the model reads (masks, relation rows) draw their own batch;
    // next-token text and instruction data are shown here.
    let own_batch = spec
        .objective
        .kind
        .objective()
        .and_then(|o| o.preview_batch(&data, &mut rng));
    match own_batch {
        Some(batch) => {
            let mut out = rows_of(&batch.inputs, &|i| batch.targets[i], batch.row_len);
            for (row, label) in out.iter_mut().zip(batch.row_labels) {
                row.label = Some(label);
            }
            out
        }
        None if corpus.is_instructions() => {
            let (inputs, labels) = corpus.sample_instruction_batch(Split::Train, b, ctx, &mut rng);
            // Token t is a target when position t - 1 predicts it.
            let mut out = rows_of(&inputs, &|i| i % ctx > 0 && labels[i - 1] != IGNORE, ctx);
            // The last position's target lies past the window.
            for (r, row) in out.iter_mut().enumerate() {
                let last = labels[r * ctx + ctx - 1];
                if last != IGNORE {
                    row.tokens.push(PreviewToken {
                        text: label(last),
                        target: true,
                    });
                }
            }
            out
        }
        None => {
            let batch = corpus.sample_batch(Split::Train, b, ctx, &mut rng);
            let mut out = rows_of(&batch.inputs, &|i| i % ctx > 0, ctx);
            for (r, row) in out.iter_mut().enumerate() {
                row.tokens.push(PreviewToken {
                    text: label(batch.targets[r * ctx + ctx - 1]),
                    target: true,
                });
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataSource, DataSpec};

    #[test]
    fn instruction_preview_marks_only_the_response() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sft.tsv");
        std::fs::write(&path, "ab\tXY\ncd\tXY\nef\tXY\n").unwrap();
        let mut spec = RunSpec {
            data: DataSpec {
                source: DataSource::PromptResponse { path },
                val_fraction: 0.34,
                ..DataSpec::default()
            },
            ..RunSpec::default()
        };
        spec.model.context = 8;
        spec.train.batch_size = 3;
        let corpus = Corpus::load(&spec.data).unwrap();
        let rows = first_batch(&corpus, &spec, 10);
        assert_eq!(rows.len(), 3);
        for row in &rows {
            let targets = row.target_text();
            assert_eq!(targets, "XY\n", "{}", row.marked_text());
            assert!(
                row.marked_text().ends_with("\n«XY\n»"),
                "{:?}",
                row.marked_text()
            );
        }
    }

    #[test]
    fn a_chat_answer_shows_its_end_of_turn_token_even_when_it_pads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.jsonl");
        let line = r#"{"messages": [{"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "It is four."}]}"#;
        std::fs::write(&path, format!("{line}\n{line}\n{line}\n")).unwrap();
        // As SmolLM2: the padding token is the end-of-turn token.
        let mut tokenizer = crate::data::corpus::tests::chat_tokenizer();
        if let crate::data::Tokenizer::Pretrained { specials, .. } = &mut tokenizer {
            specials.pad = specials.eos.first().copied();
        }
        let mut spec = RunSpec {
            data: DataSpec {
                source: DataSource::Chat { path },
                val_fraction: 0.34,
                ..DataSpec::default()
            },
            ..RunSpec::default()
        };
        spec.model.context = 48;
        spec.train.batch_size = 2;
        let corpus = Corpus::load_with(&spec.data, tokenizer).unwrap();
        let rows = first_batch(&corpus, &spec, 10);
        assert!(!rows.is_empty());
        for row in &rows {
            let targets = row.target_text();
            assert_eq!(targets, "It is four.<|im_end|>\n", "{}", row.marked_text());
        }
    }
}
