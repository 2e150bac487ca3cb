//! Sources -> documents -> tokenizer -> batches.

pub mod chat;
pub mod corpus;
pub mod dataset;
pub mod generated;
pub mod generators;
pub mod pairs;
pub mod record;
pub mod shards;
pub mod sources;
pub mod tokenizer;
pub mod transforms;

pub use corpus::{Batch, Corpus, DataError, DataSource, DataSpec, IGNORE, RelationExample, Split};
pub use dataset::{Dataset, DatasetRecipe};
pub use tokenizer::{Special, Tokenizer, TokenizerKind};
