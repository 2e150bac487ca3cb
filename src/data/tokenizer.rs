//! Tokenizers: characters seen in a corpus, or raw bytes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which tokenizer a dataset uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// One token per distinct character of the corpus (nanoGPT's `shakespeare_char`).
    #[default]
    Char,
    /// One token per byte: a fixed vocabulary of 256 that needs no fitting.
    Byte,
}

impl TokenizerKind {
    pub const ALL: [TokenizerKind; 2] = [TokenizerKind::Char, TokenizerKind::Byte];

    pub fn label(self) -> &'static str {
        match self {
            TokenizerKind::Char => "char",
            TokenizerKind::Byte => "byte",
        }
    }
}

/// A fitted tokenizer. Its vocabulary is saved with each run so checkpoints decode the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tokenizer {
    /// `chars[i]` is the character of token `i`, sorted by code point.
    Char {
        chars: Vec<char>,
    },
    Byte,
}

impl Tokenizer {
    /// Fits a tokenizer of `kind` to `text`.
    pub fn fit(kind: TokenizerKind, text: &str) -> Self {
        match kind {
            TokenizerKind::Char => {
                let set: BTreeSet<char> = text.chars().collect();
                Tokenizer::Char {
                    chars: set.into_iter().collect(),
                }
            }
            TokenizerKind::Byte => Tokenizer::Byte,
        }
    }

    pub fn kind(&self) -> TokenizerKind {
        match self {
            Tokenizer::Char { .. } => TokenizerKind::Char,
            Tokenizer::Byte => TokenizerKind::Byte,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Char { chars } => chars.len(),
            Tokenizer::Byte => 256,
        }
    }

    /// Encodes `text`; characters outside a char vocabulary are skipped.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Char { chars } => text
                .chars()
                .filter_map(|c| chars.binary_search(&c).ok().map(|i| i as u32))
                .collect(),
            Tokenizer::Byte => text.bytes().map(u32::from).collect(),
        }
    }

    /// Decodes token ids; invalid byte sequences become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Char { chars } => ids
                .iter()
                .map(|&i| chars.get(i as usize).copied().unwrap_or('\u{FFFD}'))
                .collect(),
            Tokenizer::Byte => {
                let bytes: Vec<u8> = ids.iter().map(|&i| i.min(255) as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    }

    /// The text of one token, for axis labels (control characters made visible).
    pub fn token_label(&self, id: u32) -> String {
        let s = self.decode(&[id]);
        match s.as_str() {
            "\n" => "\\n".to_string(),
            "\t" => "\\t".to_string(),
            " " => "·".to_string(),
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_round_trip() {
        let text = "hello, world\nçà";
        let tok = Tokenizer::fit(TokenizerKind::Char, text);
        assert_eq!(tok.vocab_size(), 12, "distinct characters");
        assert_eq!(tok.decode(&tok.encode(text)), text);
    }

    #[test]
    fn byte_round_trip() {
        let text = "héllo";
        let tok = Tokenizer::fit(TokenizerKind::Byte, text);
        assert_eq!(tok.vocab_size(), 256);
        assert_eq!(tok.encode(text).len(), 6, "é is two bytes");
        assert_eq!(tok.decode(&tok.encode(text)), text);
    }
}
