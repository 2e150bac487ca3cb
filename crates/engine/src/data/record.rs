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

/// A record lacks a field that a transform reads; the message names the record and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: no field \"{field}\"")]
pub struct MissingField {
    /// The record's origin (`path:line`).
    pub origin: String,
    /// The field the transform asked for.
    pub field: String,
}

impl Record {
    /// A record from `origin` with these fields, in order.
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

    /// The value of field `name`, if the record has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a field the transform requires, or an error naming the record and field.
    pub fn require(&self, name: &str) -> Result<&str, MissingField> {
        self.get(name).ok_or_else(|| MissingField {
            origin: self.origin.clone(),
            field: name.to_string(),
        })
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
    /// What the model reads first (no loss on it).
    pub prompt: String,
    /// What follows the prompt and is trained on.
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
    /// Every relation, in label-id order.
    pub const ALL: [Relation; 3] = [Relation::Next, Relation::Random, Relation::Linked];

    /// The relation's name in metrics and previews.
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
    /// Segment A.
    pub a: String,
    /// Segment B.
    pub b: String,
    /// How B relates to A: the label the relation head learns.
    pub relation: Relation,
    /// Index (into the documents given to the transform) of A's document.
    pub a_doc: usize,
    /// Index (into the documents given to the transform) of B's document.
    pub b_doc: usize,
}
