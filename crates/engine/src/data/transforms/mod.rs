//! Transforms: what records become for each training objective.
//!
//! - [`sft`]: instruction formatting, loss on the response.
//! - [`raft`] / [`raft_eval`]: retrieval-aware fine-tuning, documents (the right one or not,
//!   plus distractors) in the prompt, loss on the answer.
//! - [`symbol_prompts`]: symbol tuning, k-shot prompts whose labels are arbitrary symbols.
//! - [`linkbert_pairs`]: LinkBERT segment pairs with a next / random / linked relation.
//!
//! Every transform is deterministic given its options' seed.

mod linkbert;
mod raft;
mod sft;
mod symbols;

pub use linkbert::{LinkOptions, TFIDF_NEIGHBOURS, link_graph, linkbert_pairs, segments};
pub use raft::{
    Bm25, DistractorMode, EDITED_ANSWER_FIELD, EDITED_DOCUMENT_FIELD, RaftEval, RaftOptions, raft,
    raft_eval,
};
pub use sft::{SftOptions, sft};
pub use symbols::{LabelMode, SymbolOptions, split_by_task, symbol_prompts, task_labels};

use super::record::MissingField;

/// Why a transform cannot turn records into examples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A record lacks a field the transform reads.
    #[error(transparent)]
    MissingField(#[from] MissingField),
    /// The SFT template has no `{prompt}` slot for the instruction.
    #[error("the instruction template has no {{prompt}}: {template:?}")]
    TemplateWithoutPrompt {
        /// The template as given.
        template: String,
    },
    /// No task has more records than the shots of a prompt.
    #[error(
        "symbol tuning needs a task with at least {} records ({k_shot} shots and a query)",
        .k_shot + 1
    )]
    TooFewTaskRecords {
        /// Labelled examples per prompt.
        k_shot: usize,
    },
    /// No document is long enough to give a segment A that has a next segment.
    #[error("no document is long enough for two segments of {segment_chars} characters")]
    NoTwoSegmentDocument {
        /// The segment length asked for.
        segment_chars: usize,
    },
    /// Random pairs need a second document to draw from.
    #[error("LinkBERT pairs need at least two documents with text")]
    TooFewDocuments,
    /// Linked pairs need a link from a document with two segments to one with text.
    #[error("no document with two segments links to another document with text")]
    NoLinkedDocument,
    /// Drawing a linked document by inverse in-degree failed.
    #[error("{0}")]
    Weights(#[from] rand::distr::weighted::Error),
}

/// `text` with every run of whitespace (newlines included) turned into one space, so that a
/// value takes exactly one line of a prompt.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lowercase alphanumeric tokens, for BM25 and TF-IDF.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

/// A record of `fields` from `origin`.
#[cfg(test)]
fn rec(origin: &str, fields: &[(&str, &str)]) -> super::record::Record {
    super::record::Record::new(
        origin,
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}
