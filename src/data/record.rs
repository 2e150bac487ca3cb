//! The unit every source yields and every transform consumes: a record of named text fields.

use serde::{Deserialize, Serialize};

/// One document or row: named text fields, and where it came from (`file:line`) for messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `path:line` (or `generator:index`) of the record, shown in messages and previews.
    pub origin: String,
    /// Field name and value, in source order. A plain text document has one field, `text`.
    pub fields: Vec<(String, String)>,
}

impl Record {
    pub fn new(origin: impl Into<String>, fields: Vec<(String, String)>) -> Self {
        Self {
            origin: origin.into(),
            fields,
        }
    }

    /// A record with a single `text` field.
    pub fn text_only(origin: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new(origin, vec![("text".to_string(), text.into())])
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a field the transform requires, or an error naming the record and field.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("{}: no field \"{name}\"", self.origin))
    }

    /// The values of every field joined by newlines: what the model reads when no transform
    /// gives the record a structure.
    pub fn text(&self) -> String {
        self.text_ref().into_owned()
    }

    /// [`Record::text`] without a copy when the record has a single field.
    pub fn text_ref(&self) -> std::borrow::Cow<'_, str> {
        match self.fields.as_slice() {
            [(_, v)] => std::borrow::Cow::Borrowed(v.as_str()),
            fields => {
                let values: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
                std::borrow::Cow::Owned(values.join("\n"))
            }
        }
    }

    /// The text, taking the single field's value out instead of copying it.
    pub fn into_text(mut self) -> String {
        if self.fields.len() == 1 {
            return self.fields.pop().map(|(_, v)| v).unwrap_or_default();
        }
        self.text()
    }
}

/// A supervised example: the model reads `prompt` and is trained (and evaluated) on `answer`.
/// The loss covers the answer's tokens only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextExample {
    pub prompt: String,
    pub answer: String,
}

/// LinkBERT's three relations between segment A and segment B of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Relation {
    /// B is the segment that follows A in the same document.
    Next = 0,
    /// B is a segment of a random document.
    Random = 1,
    /// B is a segment of a document that A's document links to.
    Linked = 2,
}

impl Relation {
    pub const ALL: [Relation; 3] = [Relation::Next, Relation::Random, Relation::Linked];

    pub fn label(self) -> &'static str {
        match self {
            Relation::Next => "next",
            Relation::Random => "random",
            Relation::Linked => "linked",
        }
    }
}

/// One LinkBERT pair; the model reads `[cls] a [sep] b [sep]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationPair {
    pub a: String,
    pub b: String,
    pub relation: Relation,
    /// Index (into the documents given to the transform) of A's and B's documents.
    pub a_doc: usize,
    pub b_doc: usize,
}
