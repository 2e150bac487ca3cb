//! Hearth's tokenizers as Hugging Face `tokenizer.json` files, built with the `tokenizers`
//! crate so `AutoTokenizer` gives the ids Hearth uses:
//!
//! - a character vocabulary is a BPE model with no merges over the characters (ids in
//!   Hearth's order), no pre-tokenizer, and a decoder that joins tokens as they are (`Fuse`);
//!   characters outside the vocabulary are dropped, as Hearth drops them;
//! - the byte vocabulary is a BPE model with no merges over GPT-2's byte-to-character map
//!   (token `i` is byte `i`), a byte-level pre-tokenizer and decoder;
//! - a trained BPE model is written as it is.
//!
//! Reserved tokens (`[pad] [mask] [cls] [sep]`, after the base vocabulary) become special
//! added tokens. Hugging Face tokenizers split them out of text, so a text that spells
//! `[mask]` encodes to the mask token there, while Hearth encodes it letter by letter.

use super::HfError;
use crate::data::{Special, Tokenizer};
use serde_json::{Value, json};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer as HfTokenizerImpl};

/// The names of the reserved tokens, in id order.
pub const SPECIAL_TOKENS: [&str; 4] = ["[pad]", "[mask]", "[cls]", "[sep]"];

/// Text both tokenizers must encode alike before a tokenizer is written.
const PROBE: &str = "The quick brown fox, 42 times!\nÇa va? \u{2014} tabs\there  and  spaces.\n";

/// GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the others for
/// the characters from U+0100 on, in byte order.
pub fn byte_chars() -> [char; 256] {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        out[b as usize] = if printable(b) {
            char::from_u32(b).expect("Latin-1")
        } else {
            let c = char::from_u32(next).expect("below the surrogates");
            next += 1;
            c
        };
    }
    out
}

/// A Hearth tokenizer as a Hugging Face one, with the ids of its special tokens.
pub struct HfTokenizer {
    /// The tokenizer as `tokenizers` builds it.
    pub tokenizer: HfTokenizerImpl,
    /// Every id the model embeds.
    pub vocab_size: usize,
    /// Whether `[pad] [mask] [cls] [sep]` follow the base vocabulary.
    pub specials: bool,
    /// The id of a `[pad]` added for padding alone (see [`HfTokenizer::with_pad`]).
    pub added_pad: Option<u32>,
    base_size: usize,
    /// A pretrained tokenizer's own `[PAD]`, `[MASK]`, `[CLS]` and `[SEP]` ids, written back by
    /// name in `tokenizer_config.json`.
    pretrained: Option<[Option<u32>; 4]>,
}

fn tokenizer_error(message: impl Into<String>) -> HfError {
    HfError::invalid(Path::new("tokenizer.json"), message)
}

fn bpe_without_merges(tokens: impl Iterator<Item = String>) -> Result<BPE, HfError> {
    let vocab: Vocab = tokens
        .enumerate()
        .map(|(id, token)| (token, id as u32))
        .collect();
    BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .build()
        .map_err(|e| tokenizer_error(e.to_string()))
}

impl HfTokenizer {
    /// Converts `tok`, checking that both encode a probe text to the same ids.
    pub fn new(tok: &Tokenizer) -> Result<Self, HfError> {
        if let Tokenizer::Pretrained { model, specials } = tok {
            // Written back as it came in: its special tokens are already in its vocabulary.
            let tokenizer = model
                .json
                .parse::<HfTokenizerImpl>()
                .map_err(|e| tokenizer_error(e.to_string()))?;
            return Ok(Self {
                tokenizer,
                vocab_size: tok.vocab_size(),
                specials: false,
                added_pad: specials.pad,
                base_size: tok.vocab_size(),
                pretrained: Some([specials.pad, specials.mask, specials.cls, specials.sep]),
            });
        }
        let mut hf = match tok {
            Tokenizer::Char { chars, .. } => {
                let mut hf =
                    HfTokenizerImpl::new(bpe_without_merges(chars.iter().map(|c| c.to_string()))?);
                hf.with_decoder(Some(Fuse::new()));
                hf
            }
            Tokenizer::Byte { .. } => {
                let mut hf = HfTokenizerImpl::new(bpe_without_merges(
                    byte_chars().iter().map(|c| c.to_string()),
                )?);
                // Without the GPT-2 regex: no merges, so splitting the text changes nothing.
                hf.with_pre_tokenizer(Some(ByteLevel::new(false, false, false)));
                hf.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
                hf
            }
            Tokenizer::Bpe { model, .. } | Tokenizer::Pretrained { model, .. } => model
                .json
                .parse::<HfTokenizerImpl>()
                .map_err(|e| tokenizer_error(e.to_string()))?,
        };
        let base_size = tok.base_size();
        if hf.get_vocab_size(true) != base_size {
            return Err(tokenizer_error(format!(
                "the converted vocabulary has {} tokens, Hearth's {base_size}",
                hf.get_vocab_size(true)
            )));
        }
        if tok.has_specials() {
            hf.add_special_tokens(SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)))
                .map_err(|e| tokenizer_error(e.to_string()))?;
            for (k, name) in SPECIAL_TOKENS.iter().enumerate() {
                let want = (base_size + k) as u32;
                if hf.token_to_id(name) != Some(want) {
                    return Err(tokenizer_error(format!(
                        "{name} would not get id {want}: the base vocabulary already has it"
                    )));
                }
            }
        }
        let out = Self {
            tokenizer: hf,
            vocab_size: tok.vocab_size(),
            specials: tok.has_specials(),
            added_pad: None,
            base_size,
            pretrained: None,
        };
        let mut probe = PROBE.to_string();
        if let Tokenizer::Char { chars, .. } = tok {
            probe.extend(chars.iter());
        }
        let ids = out.encode(&probe)?;
        if ids != tok.encode(&probe) {
            return Err(tokenizer_error(format!(
                "the converted tokenizer encodes {probe:?} to other ids than Hearth's"
            )));
        }
        Ok(out)
    }

    /// The ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, HfError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| tokenizer_error(e.to_string()))
    }

    /// The id of a reserved token; `None` without them.
    pub fn special(&self, which: Special) -> Option<u32> {
        self.specials
            .then_some((self.base_size + which as usize) as u32)
    }

    /// The padding token's id, if the tokenizer has one.
    pub fn pad(&self) -> Option<u32> {
        self.special(Special::Pad).or(self.added_pad)
    }

    /// The tokenizer with a padding token: itself when it has one, else with `[pad]` added
    /// after the vocabulary (one more id, which the model must embed: padded positions are
    /// masked, so any embedding does). Batches of texts of unequal length need it.
    pub fn with_pad(&self) -> Result<Self, HfError> {
        let mut tokenizer = self.tokenizer.clone();
        if self.pad().is_some() {
            return Ok(Self { tokenizer, ..*self });
        }
        let id = self.vocab_size as u32;
        tokenizer
            .add_special_tokens([AddedToken::from(SPECIAL_TOKENS[0], true)])
            .map_err(|e| tokenizer_error(e.to_string()))?;
        if tokenizer.token_to_id(SPECIAL_TOKENS[0]) != Some(id) {
            return Err(tokenizer_error(format!(
                "{} would not get id {id}: the vocabulary already has it",
                SPECIAL_TOKENS[0]
            )));
        }
        Ok(Self {
            tokenizer,
            vocab_size: self.vocab_size + 1,
            added_pad: Some(id),
            ..*self
        })
    }

    /// `(bos, eos, pad)` ids for a model config: `[cls]`, `[sep]` and `[pad]` when the
    /// vocabulary reserves them, else 0 (Hearth's models have no such tokens; generation is
    /// bounded by length), with an added `[pad]`'s id for padding.
    pub fn bos_eos_pad(&self) -> (u32, u32, u32) {
        match (
            self.special(Special::Cls),
            self.special(Special::Sep),
            self.special(Special::Pad),
        ) {
            (Some(bos), Some(eos), Some(pad)) => (bos, eos, pad),
            _ => (0, 0, self.added_pad.unwrap_or(0)),
        }
    }

    /// `tokenizer.json`.
    pub fn json(&self) -> Result<String, HfError> {
        self.tokenizer
            .to_string(true)
            .map_err(|e| tokenizer_error(e.to_string()))
    }

    /// `tokenizer_config.json`: `PreTrainedTokenizerFast` over `tokenizer.json`, the special
    /// tokens by name, no clean-up of spaces on decoding, and only the inputs Hearth's models
    /// take (GPT-2 would add the embedding of token 0 for `token_type_ids`).
    pub fn config(&self, context: usize) -> Value {
        let mut config = json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": context,
            "model_input_names": ["input_ids", "attention_mask"],
            "padding_side": "right",
            "truncation_side": "right",
            "clean_up_tokenization_spaces": false,
        });
        if let Some(ids) = self.pretrained {
            let map = config.as_object_mut().expect("an object");
            for (key, id) in ["pad_token", "mask_token", "cls_token", "sep_token"]
                .into_iter()
                .zip(ids)
            {
                if let Some(token) = id.and_then(|id| self.tokenizer.id_to_token(id)) {
                    map.insert(key.to_string(), json!(token));
                }
            }
            return config;
        }
        if self.added_pad.is_some() {
            config["pad_token"] = json!(SPECIAL_TOKENS[0]);
        }
        if self.specials {
            let map = config.as_object_mut().expect("an object");
            for (key, token) in [
                ("pad_token", "[pad]"),
                ("mask_token", "[mask]"),
                ("cls_token", "[cls]"),
                ("sep_token", "[sep]"),
                ("bos_token", "[cls]"),
                ("eos_token", "[sep]"),
            ] {
                map.insert(key.to_string(), json!(token));
            }
        }
        config
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `dir`.
    pub fn write(&self, dir: &Path, context: usize) -> Result<(), HfError> {
        super::write_file(&dir.join("tokenizer.json"), self.json()?.as_bytes())?;
        super::write_json(&dir.join("tokenizer_config.json"), &self.config(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TokenizerKind;

    fn reloaded(hf: &HfTokenizer) -> HfTokenizerImpl {
        hf.json().unwrap().parse().unwrap()
    }

    #[test]
    fn the_byte_map_is_gpt2s() {
        let map = byte_chars();
        assert_eq!(map[b'A' as usize], 'A');
        assert_eq!(map[b' ' as usize], '\u{120}');
        assert_eq!(map[b'\n' as usize], '\u{10a}');
        assert_eq!(map[0xad], '\u{143}');
        let distinct: std::collections::BTreeSet<char> = map.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn every_kind_encodes_and_decodes_as_hearth_after_a_reload() {
        let text = crate::data::generated::story_text(2, 5_000);
        let unseen = "Zebra, \u{e9}t\u{e9}! 42\n\t~";
        for kind in [
            TokenizerKind::Char,
            TokenizerKind::Byte,
            TokenizerKind::Bpe { vocab_size: 300 },
        ] {
            for specials in [false, true] {
                let tok = Tokenizer::fit(kind, &text).with_specials(specials);
                let hf = HfTokenizer::new(&tok).unwrap();
                let back = reloaded(&hf);
                assert_eq!(back.get_vocab_size(true), tok.vocab_size());
                for sample in [&text[..400], unseen] {
                    let ids = tok.encode(sample);
                    let got = back.encode(sample, false).unwrap();
                    assert_eq!(got.get_ids(), ids, "{kind:?} specials={specials}");
                    assert_eq!(back.decode(&ids, false).unwrap(), tok.decode(&ids));
                }
                if specials {
                    let pad = tok.special(Special::Pad).unwrap();
                    assert_eq!(back.token_to_id("[pad]"), Some(pad));
                    assert_eq!(hf.bos_eos_pad().2, pad);
                    assert_eq!(hf.config(16)["mask_token"], "[mask]");
                } else {
                    assert_eq!(hf.bos_eos_pad(), (0, 0, 0));
                    assert!(hf.config(16).get("pad_token").is_none());
                    let padded = hf.with_pad().unwrap();
                    let pad = tok.vocab_size() as u32;
                    assert_eq!(padded.pad(), Some(pad));
                    assert_eq!(padded.vocab_size, tok.vocab_size() + 1);
                    assert_eq!(padded.config(16)["pad_token"], "[pad]");
                    let back = reloaded(&padded);
                    assert_eq!(back.token_to_id("[pad]"), Some(pad));
                    assert_eq!(
                        back.encode(unseen, false).unwrap().get_ids(),
                        tok.encode(unseen)
                    );
                }
            }
        }
    }
}
