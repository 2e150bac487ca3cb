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
/// With `specials`, four reserved tokens follow the base vocabulary: `[pad] [mask] [cls] [sep]`
/// (text never encodes to them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tokenizer {
    /// `chars[i]` is the character of token `i`, sorted by code point.
    Char {
        chars: Vec<char>,
        #[serde(default)]
        specials: bool,
    },
    Byte {
        #[serde(default)]
        specials: bool,
    },
}

/// The reserved tokens, in id order after the base vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Pad = 0,
    Mask = 1,
    Cls = 2,
    Sep = 3,
}

const SPECIAL_NAMES: [&str; 4] = ["[pad]", "[mask]", "[cls]", "[sep]"];

impl Tokenizer {
    /// Fits a tokenizer of `kind` to `text`.
    pub fn fit(kind: TokenizerKind, text: &str) -> Self {
        match kind {
            TokenizerKind::Char => {
                let set: BTreeSet<char> = text.chars().collect();
                Tokenizer::Char {
                    chars: set.into_iter().collect(),
                    specials: false,
                }
            }
            TokenizerKind::Byte => Tokenizer::Byte { specials: false },
        }
    }

    /// The same tokenizer with (or without) the reserved special tokens.
    pub fn with_specials(mut self, on: bool) -> Self {
        match &mut self {
            Tokenizer::Char { specials, .. } | Tokenizer::Byte { specials } => *specials = on,
        }
        self
    }

    pub fn kind(&self) -> TokenizerKind {
        match self {
            Tokenizer::Char { .. } => TokenizerKind::Char,
            Tokenizer::Byte { .. } => TokenizerKind::Byte,
        }
    }

    /// Tokens that text encodes to (the vocabulary without specials).
    pub fn base_size(&self) -> usize {
        match self {
            Tokenizer::Char { chars, .. } => chars.len(),
            Tokenizer::Byte { .. } => 256,
        }
    }

    pub fn has_specials(&self) -> bool {
        match self {
            Tokenizer::Char { specials, .. } | Tokenizer::Byte { specials } => *specials,
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.base_size()
            + if self.has_specials() {
                SPECIAL_NAMES.len()
            } else {
                0
            }
    }

    /// The id of a reserved token; `None` without specials.
    pub fn special(&self, which: Special) -> Option<u32> {
        self.has_specials()
            .then(|| (self.base_size() + which as usize) as u32)
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.has_specials() && (id as usize) >= self.base_size()
    }

    /// Encodes `text`; characters outside a char vocabulary are skipped.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Char { chars, .. } => text
                .chars()
                .filter_map(|c| chars.binary_search(&c).ok().map(|i| i as u32))
                .collect(),
            Tokenizer::Byte { .. } => text.bytes().map(u32::from).collect(),
        }
    }

    /// Decodes token ids; invalid byte sequences become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        // Runs of ordinary tokens decode together (bytes may span several tokens).
        let mut run: Vec<u32> = Vec::new();
        let flush = |run: &mut Vec<u32>, out: &mut String| {
            match self {
                Tokenizer::Char { chars, .. } => {
                    out.extend(
                        run.iter()
                            .map(|&i| chars.get(i as usize).copied().unwrap_or('\u{FFFD}')),
                    );
                }
                Tokenizer::Byte { .. } => {
                    let bytes: Vec<u8> = run.iter().map(|&i| i.min(255) as u8).collect();
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            run.clear();
        };
        for &id in ids {
            if self.is_special(id) {
                flush(&mut run, &mut out);
                let k = id as usize - self.base_size();
                out.push_str(SPECIAL_NAMES.get(k).copied().unwrap_or("[?]"));
            } else {
                run.push(id);
            }
        }
        flush(&mut run, &mut out);
        out
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
    fn specials_are_reserved_after_the_base_vocabulary() {
        let tok = Tokenizer::fit(TokenizerKind::Char, "abc").with_specials(true);
        assert_eq!(tok.vocab_size(), 7);
        assert_eq!(tok.special(Special::Mask), Some(4));
        assert!(
            tok.encode("abc [mask]")
                .iter()
                .all(|&id| !tok.is_special(id)),
            "text never encodes to a special"
        );
        assert_eq!(tok.decode(&[0, 4, 2, 3]), "a[mask]c[pad]");
        let old: Tokenizer = serde_json::from_str(r#"{"kind":"char","chars":["a"]}"#).unwrap();
        assert!(
            !old.has_specials(),
            "files written before specials still load"
        );
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
