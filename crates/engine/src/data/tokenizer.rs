//! Tokenizers: characters seen in a corpus, raw bytes, or byte-level BPE trained on the corpus
//! with Hugging Face's `tokenizers`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// A tokenizer name that does not parse, or a saved BPE model that does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizerError {
    /// `bpe:N` with N of 256 or less: the bytes alone take 256 tokens.
    #[error("tokenizer \"{name}\": a BPE vocabulary needs more than 256 tokens")]
    VocabularyTooSmall {
        /// The name as given.
        name: String,
    },
    /// Not `char`, `byte`, `bpe` or `bpe:N`.
    #[error("tokenizer \"{name}\": expected char, byte, bpe or bpe:<vocab size>")]
    UnknownName {
        /// The name as given.
        name: String,
    },
    /// A saved BPE model that `tokenizers` cannot read.
    #[error("{0}")]
    InvalidBpe(String),
}

/// Which tokenizer a dataset uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// One token per distinct character of the corpus (nanoGPT's `shakespeare_char`).
    #[default]
    Char,
    /// One token per byte: a fixed vocabulary of 256 that needs no fitting.
    Byte,
    /// Byte-level BPE (as GPT-2) trained on the corpus up to `vocab_size` tokens.
    Bpe {
        /// Tokens in the vocabulary, the 256 bytes included.
        vocab_size: usize,
    },
    /// A pretrained model's own tokenizer (WordPiece for BERT), brought in with the model by
    /// `hearth import`; never fitted to a corpus.
    Pretrained {
        /// Tokens in the vocabulary, its special tokens included.
        vocab_size: usize,
    },
}

impl TokenizerKind {
    /// Every kind, BPE at its default size, in the order the studio lists them.
    pub const ALL: [TokenizerKind; 3] = [
        TokenizerKind::Char,
        TokenizerKind::Byte,
        TokenizerKind::Bpe { vocab_size: 512 },
    ];

    /// The kind's name without its size.
    pub fn label(self) -> &'static str {
        match self {
            TokenizerKind::Char => "char",
            TokenizerKind::Byte => "byte",
            TokenizerKind::Bpe { .. } => "bpe",
            TokenizerKind::Pretrained { .. } => "pretrained",
        }
    }

    /// Parses `char`, `byte`, `bpe` (512 tokens) or `bpe:N`.
    pub fn parse(text: &str) -> Result<Self, TokenizerError> {
        match text {
            "char" => Ok(TokenizerKind::Char),
            "byte" => Ok(TokenizerKind::Byte),
            "bpe" => Ok(TokenizerKind::Bpe { vocab_size: 512 }),
            _ => match text.strip_prefix("bpe:").map(str::parse::<usize>) {
                Some(Ok(vocab_size)) if vocab_size > 256 => Ok(TokenizerKind::Bpe { vocab_size }),
                Some(Ok(_)) => Err(TokenizerError::VocabularyTooSmall {
                    name: text.to_string(),
                }),
                // Not a number (or one too large for this machine), or not BPE at all.
                Some(Err(_)) | None => Err(TokenizerError::UnknownName {
                    name: text.to_string(),
                }),
            },
        }
    }
}

/// A trained BPE model: its Hugging Face JSON (saved) and the loaded tokenizer. A saved model
/// is checked as it is read, so a tokenizer file that holds a broken model is refused.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "SavedBpe")]
pub struct BpeModel {
    /// `tokenizers`' own JSON serialization.
    pub json: String,
    #[serde(skip)]
    loaded: Arc<OnceLock<tokenizers::Tokenizer>>,
}

/// [`BpeModel`] as saved, before its JSON is checked.
#[derive(Deserialize)]
struct SavedBpe {
    json: String,
}

impl TryFrom<SavedBpe> for BpeModel {
    type Error = TokenizerError;

    fn try_from(saved: SavedBpe) -> Result<Self, TokenizerError> {
        BpeModel::from_json(saved.json)
    }
}

impl std::fmt::Debug for BpeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BpeModel({} tokens)", self.vocab_size())
    }
}

impl PartialEq for BpeModel {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}
impl Eq for BpeModel {}

impl BpeModel {
    /// Trains byte-level BPE on `texts` up to `vocab_size` tokens (at least the 256 bytes).
    pub fn train<'a>(texts: impl Iterator<Item = &'a str> + Send, vocab_size: usize) -> Self {
        use tokenizers::models::TrainerWrapper;
        use tokenizers::models::bpe::{BPE, BpeTrainer};
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        let byte_level = ByteLevel::new(false, false, true);
        let mut trainer: TrainerWrapper = BpeTrainer::builder()
            .vocab_size(vocab_size.max(257))
            .min_frequency(2)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut tok = tokenizers::Tokenizer::new(BPE::default());
        tok.with_pre_tokenizer(Some(byte_level));
        tok.with_decoder(Some(byte_level));
        tok.train(&mut trainer, texts)
            .expect("BPE training on in-memory text cannot fail");
        let json = tok
            .to_string(false)
            .expect("a trained tokenizer serializes");
        Self::from_json(json).expect("a tokenizer just serialized loads back")
    }

    /// Loads a saved model, checking it parses and that its token ids are below its vocabulary
    /// size (the rows of the model's embedding).
    pub fn from_json(json: String) -> Result<Self, TokenizerError> {
        // The tokenizers library panics on some malformed models (an arithmetic overflow
        // while building the merges): such a file is refused like any other broken one.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            json.parse::<tokenizers::Tokenizer>()
        }));
        let tok = match parsed {
            Ok(result) => result.map_err(|e| TokenizerError::InvalidBpe(format!("{e}")))?,
            Err(_) => {
                return Err(TokenizerError::InvalidBpe(
                    "the BPE model's vocabulary and merges do not fit together".to_string(),
                ));
            }
        };
        let size = tok.get_vocab_size(true);
        if let Some((token, id)) = tok
            .get_vocab(true)
            .into_iter()
            .find(|&(_, id)| id as usize >= size)
        {
            return Err(TokenizerError::InvalidBpe(format!(
                "token {token:?} has id {id}, beyond the vocabulary of {size}"
            )));
        }
        let loaded = OnceLock::new();
        let _ = loaded.set(tok);
        Ok(Self {
            json,
            loaded: Arc::new(loaded),
        })
    }

    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        self.loaded.get_or_init(|| {
            self.json
                .parse()
                .expect("the BPE model was checked when it was loaded")
        })
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer().get_vocab_size(true)
    }

    /// The text of token `id` as the vocabulary spells it (special tokens included; empty
    /// outside the vocabulary).
    pub fn token_text(&self, id: u32) -> String {
        self.tokenizer().id_to_token(id).unwrap_or_default()
    }

    /// The id of the token spelled `text`, if the vocabulary has it.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.tokenizer().token_to_id(text)
    }

    /// The ids of `text` (empty if `tokenizers` fails on it).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenizer()
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// The text of `ids` (empty if `tokenizers` fails on them).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer().decode(ids, false).unwrap_or_default()
    }

    /// The ids of `text` and, for each byte offset of `marks` (ascending), the index of the
    /// first token that starts at or after it (where a document starting there begins).
    pub fn encode_marked(&self, text: &str, marks: &[usize]) -> (Vec<u32>, Vec<usize>) {
        if marks.is_empty() {
            let ids = self
                .tokenizer()
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default();
            return (ids, Vec::new());
        }
        let Ok(enc) = self.tokenizer().encode(text, false) else {
            return (Vec::new(), vec![0; marks.len()]);
        };
        let offsets = enc.get_offsets();
        let positions = marks
            .iter()
            .map(|&m| offsets.partition_point(|&(start, _)| start < m))
            .collect();
        (enc.get_ids().to_vec(), positions)
    }
}

/// The special tokens of a pretrained tokenizer, inside its vocabulary (BERT: `[PAD]` 0,
/// `[CLS]` 101, `[SEP]` 102, `[MASK]` 103).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PretrainedSpecials {
    /// Fills rows shorter than the batch's length.
    pub pad: Option<u32>,
    /// Replaces the tokens a masked objective predicts.
    pub mask: Option<u32>,
    /// Starts every text the model reads on its own.
    pub cls: Option<u32>,
    /// Ends every text the model reads on its own.
    pub sep: Option<u32>,
    /// Every id the tokenizer marks special (the four above, `[UNK]` and any others).
    pub all: Vec<u32>,
    /// Starts a text, for models trained with one (a decoder's `bos_token`).
    #[serde(default)]
    pub bos: Option<u32>,
    /// Ends a text or a turn: generation stops at any of these (a decoder's `eos_token`, and
    /// the end-of-turn token of a chat template).
    #[serde(default)]
    pub eos: Vec<u32>,
    /// The model's chat template (Jinja, as Hugging Face and GGUF files keep it).
    #[serde(default)]
    pub chat_template: Option<String>,
    /// Rows of the model's embedding when it has more than the tokenizer has tokens (Qwen
    /// pads its vocabulary); 0 for the tokenizer's size.
    #[serde(default)]
    pub rows: usize,
}

/// A fitted tokenizer. Its vocabulary is saved with each run so checkpoints decode the same way.
/// With `specials`, four reserved tokens follow the base vocabulary: `[pad] [mask] [cls] [sep]`
/// (text never encodes to them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tokenizer {
    /// `chars[i]` is the character of token `i`, sorted by code point.
    Char {
        /// The vocabulary.
        chars: Vec<char>,
        /// Whether the reserved tokens follow it.
        #[serde(default)]
        specials: bool,
    },
    /// Token `i` is byte `i`.
    Byte {
        /// Whether the reserved tokens follow the 256 bytes.
        #[serde(default)]
        specials: bool,
    },
    /// A trained byte-level BPE model.
    Bpe {
        /// The model.
        model: BpeModel,
        /// Whether the reserved tokens follow its vocabulary.
        #[serde(default)]
        specials: bool,
    },
    /// A pretrained model's tokenizer (its `tokenizer.json`, without its padding and
    /// truncation: batches are padded and cut here), whose special tokens are part of its
    /// vocabulary.
    Pretrained {
        /// The Hugging Face tokenizer.
        model: BpeModel,
        /// Where its special tokens are.
        specials: PretrainedSpecials,
    },
}

/// The reserved tokens, in id order after the base vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// Fills rows shorter than the batch's length.
    Pad = 0,
    /// Replaces the tokens a masked objective predicts.
    Mask = 1,
    /// Starts a sequence whose first state is pooled or classified.
    Cls = 2,
    /// Ends each segment of a pair.
    Sep = 3,
}

const SPECIAL_NAMES: [&str; 4] = ["[pad]", "[mask]", "[cls]", "[sep]"];

impl Tokenizer {
    /// Fits a tokenizer of `kind` to `text`.
    pub fn fit(kind: TokenizerKind, text: &str) -> Self {
        Self::fit_texts(kind, &[text])
    }

    /// Fits a tokenizer of `kind` to several texts (documents).
    pub fn fit_texts(kind: TokenizerKind, texts: &[&str]) -> Self {
        match kind {
            TokenizerKind::Char => {
                let set: BTreeSet<char> = texts.iter().flat_map(|t| t.chars()).collect();
                Tokenizer::Char {
                    chars: set.into_iter().collect(),
                    specials: false,
                }
            }
            TokenizerKind::Byte => Tokenizer::Byte { specials: false },
            TokenizerKind::Bpe { vocab_size } => Tokenizer::Bpe {
                model: BpeModel::train(texts.iter().copied(), vocab_size),
                specials: false,
            },
            // Nothing to fit: a pretrained tokenizer comes with its run (`Corpus::load_for`
            // refuses a data spec that names one without it); bytes need no fitting.
            TokenizerKind::Pretrained { .. } => Tokenizer::Byte { specials: false },
        }
    }

    /// The same tokenizer with (or without) the reserved special tokens.
    pub fn with_specials(mut self, on: bool) -> Self {
        match &mut self {
            Tokenizer::Char { specials, .. }
            | Tokenizer::Byte { specials }
            | Tokenizer::Bpe { specials, .. } => *specials = on,
            // Its special tokens are part of its vocabulary.
            Tokenizer::Pretrained { .. } => {}
        }
        self
    }

    /// The kind (BPE with its trained size).
    pub fn kind(&self) -> TokenizerKind {
        match self {
            Tokenizer::Char { .. } => TokenizerKind::Char,
            Tokenizer::Byte { .. } => TokenizerKind::Byte,
            Tokenizer::Bpe { model, .. } => TokenizerKind::Bpe {
                vocab_size: model.vocab_size(),
            },
            Tokenizer::Pretrained { model, .. } => TokenizerKind::Pretrained {
                vocab_size: model.vocab_size(),
            },
        }
    }

    /// Tokens that text encodes to (the vocabulary without specials).
    pub fn base_size(&self) -> usize {
        match self {
            Tokenizer::Char { chars, .. } => chars.len(),
            Tokenizer::Byte { .. } => 256,
            Tokenizer::Bpe { model, .. } | Tokenizer::Pretrained { model, .. } => {
                model.vocab_size()
            }
        }
    }

    /// Whether the reserved tokens follow the base vocabulary (a pretrained tokenizer's
    /// special tokens are inside it: true when it has `[pad]` and `[mask]`).
    pub fn has_specials(&self) -> bool {
        match self {
            Tokenizer::Char { specials, .. }
            | Tokenizer::Byte { specials }
            | Tokenizer::Bpe { specials, .. } => *specials,
            Tokenizer::Pretrained { specials, .. } => {
                specials.pad.is_some() && specials.mask.is_some()
            }
        }
    }

    /// Every id the model embeds: the base vocabulary and any reserved tokens.
    pub fn vocab_size(&self) -> usize {
        if let Tokenizer::Pretrained { model, specials } = self {
            return model.vocab_size().max(specials.rows);
        }
        self.base_size()
            + if self.has_specials() {
                SPECIAL_NAMES.len()
            } else {
                0
            }
    }

    /// The id of a reserved token; `None` without specials.
    pub fn special(&self, which: Special) -> Option<u32> {
        if let Tokenizer::Pretrained { specials, .. } = self {
            return match which {
                Special::Pad => specials.pad,
                Special::Mask => specials.mask,
                Special::Cls => specials.cls,
                Special::Sep => specials.sep,
            };
        }
        self.has_specials()
            .then(|| (self.base_size() + which as usize) as u32)
    }

    /// Whether `id` is one of the reserved tokens.
    pub fn is_special(&self, id: u32) -> bool {
        if let Tokenizer::Pretrained { specials, .. } = self {
            return specials.all.contains(&id);
        }
        self.has_specials() && (id as usize) >= self.base_size()
    }

    /// The tokens generation stops after (a pretrained decoder's end of text and of turn).
    pub fn stop_tokens(&self) -> &[u32] {
        match self {
            Tokenizer::Pretrained { specials, .. } => &specials.eos,
            _ => &[],
        }
    }

    /// The model's chat template, when its tokenizer brought one.
    pub fn chat_template(&self) -> Option<&str> {
        match self {
            Tokenizer::Pretrained { specials, .. } => specials.chat_template.as_deref(),
            _ => None,
        }
    }

    /// `messages` rendered with the model's chat template (`add_generation_prompt`: ending
    /// where the assistant's turn starts); an error when the model has no template.
    pub fn render_chat(
        &self,
        messages: &[super::chat::Message],
        add_generation_prompt: bool,
    ) -> Result<String, super::chat::ChatError> {
        let template = self.chat_template().ok_or_else(|| {
            super::chat::ChatError(
                "the model has no chat template (its tokenizer brought none)".into(),
            )
        })?;
        super::chat::render(
            template,
            messages,
            add_generation_prompt,
            &self.template_tokens(),
        )
    }

    /// The texts of the special tokens a chat template names.
    pub fn template_tokens(&self) -> super::chat::TemplateTokens {
        let text = |id: Option<u32>| id.map(|id| self.decode_raw(id)).unwrap_or_default();
        match self {
            Tokenizer::Pretrained { specials, .. } => super::chat::TemplateTokens {
                bos: text(specials.bos),
                eos: text(specials.eos.first().copied()),
            },
            _ => super::chat::TemplateTokens::default(),
        }
    }

    /// The text of one token, special tokens included.
    fn decode_raw(&self, id: u32) -> String {
        match self {
            Tokenizer::Bpe { model, .. } | Tokenizer::Pretrained { model, .. } => {
                model.token_text(id)
            }
            _ => self.decode(&[id]),
        }
    }

    /// The ids of one text as the model reads it on its own: a pretrained tokenizer's
    /// `[CLS] text [SEP]` (as its post-processor adds them, and sentence-transformers feeds
    /// them), the text's ids for the others.
    pub fn encode_text(&self, text: &str) -> Vec<u32> {
        let ids = self.encode(text);
        match self {
            Tokenizer::Pretrained { specials, .. } => specials
                .cls
                .into_iter()
                .chain(ids)
                .chain(specials.sep)
                .collect(),
            _ => ids,
        }
    }

    /// Encodes `text`; characters outside a char vocabulary are skipped.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Char { chars, .. } => text
                .chars()
                .filter_map(|c| chars.binary_search(&c).ok().map(|i| i as u32))
                .collect(),
            Tokenizer::Byte { .. } => text.bytes().map(u32::from).collect(),
            Tokenizer::Bpe { model, .. } | Tokenizer::Pretrained { model, .. } => {
                model.encode(text)
            }
        }
    }

    /// Decodes token ids; invalid byte sequences become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        if let Tokenizer::Pretrained { model, .. } = self {
            return model.decode(ids);
        }
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
                Tokenizer::Bpe { model, .. } | Tokenizer::Pretrained { model, .. } => {
                    out.push_str(&model.decode(run))
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
    fn a_bpe_model_the_library_cannot_build_is_refused_not_a_panic() {
        let text = crate::data::generated::story_text(3, 5_000);
        let model = BpeModel::train(std::iter::once(text.as_str()), 280);
        assert!(model.json.contains("\"continuing_subword_prefix\":null"));
        // A continuing-subword prefix the merges do not carry makes the library's builder
        // overflow.
        let broken = model.json.replace(
            "\"continuing_subword_prefix\":null",
            "\"continuing_subword_prefix\":\"{prompt}\"",
        );
        match BpeModel::from_json(broken) {
            Err(TokenizerError::InvalidBpe(message)) => {
                assert!(message.contains("merges"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn bpe_round_trip_and_reload() {
        let text = crate::data::generated::story_text(3, 20_000);
        let kind = TokenizerKind::parse("bpe:300").unwrap();
        let tok = Tokenizer::fit(kind, &text).with_specials(true);
        assert_eq!(tok.base_size(), 300, "trained up to the chosen vocabulary");
        let ids = tok.encode(&text);
        assert!(
            ids.len() * 10 < text.len() * 6,
            "merges compress the text: {} tokens for {} bytes",
            ids.len(),
            text.len()
        );
        assert_eq!(tok.decode(&ids), text, "lossless round trip");
        let unseen = "Zebra quartz, \u{e9}t\u{e9}! 42\n\ttabs";
        assert_eq!(
            tok.decode(&tok.encode(unseen)),
            unseen,
            "bytes cover unseen text"
        );
        let pad = tok.special(Special::Pad).unwrap();
        assert_eq!(pad, 300);
        assert!(tok.encode(&text).iter().all(|&i| i < 300));
        let saved = serde_json::to_string(&tok).unwrap();
        let back: Tokenizer = serde_json::from_str(&saved).unwrap();
        assert_eq!(back, tok);
        assert_eq!(
            back.encode(unseen),
            tok.encode(unseen),
            "a reloaded model encodes the same"
        );
        assert!(TokenizerKind::parse("bpe:100").is_err());
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
