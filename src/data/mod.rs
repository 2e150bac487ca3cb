//! Sources -> documents -> tokenizer -> batches.

pub mod corpus;
pub mod generated;
pub mod pairs;
pub mod tokenizer;

pub use corpus::{Batch, Corpus, DataError, DataSource, DataSpec, Split};
pub use tokenizer::{Special, Tokenizer, TokenizerKind};
