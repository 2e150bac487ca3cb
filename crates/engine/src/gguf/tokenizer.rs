//! The tokenizer a GGUF file carries, as a Hugging Face `tokenizer.json`, and back.
//!
//! llama.cpp stores a tokenizer as metadata (`tokenizer.ggml.*`, see the "Tokenizer" section of
//! ggml's `docs/gguf.md`): the kind of model (`tokenizer.ggml.model`), the tokens in id order,
//! their types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), the BPE
//! merges as `"left right"` strings, the ids of the special tokens, and the name of the
//! pre-tokenizer (`tokenizer.ggml.pre`: which regex splits text into words before BPE).
//!
//! [`tokenizer()`] reads byte-level BPE vocabularies (`tokenizer.ggml.model` = `gpt2`, used by
//! GPT-2, Llama 3, Qwen, SmolLM, ...) and builds the tokenizer `transformers` builds from the
//! same file (`AutoTokenizer.from_pretrained(folder, gguf_file=...)`, in
//! `transformers/integrations/gguf/gguf_tokenizer_mapping.py`):
//!
//! - a BPE model over the tokens, normal tokens not spelled in GPT-2's byte alphabet respelled
//!   byte by byte into it, with the file's merges;
//! - the pre-tokenizer `tokenizer.ggml.pre` names: the Llama 3, Qwen 2, Qwen 3.5, Tekken or
//!   GPT-4o split regex followed by a byte-level step, or GPT-2's byte-level regex for every
//!   other name (`gpt-2`, `smollm`, `default`, ...);
//! - a byte-level decoder;
//! - control tokens (type 3) and the BOS, EOS, unknown and padding tokens as special added
//!   tokens, user-defined tokens (type 4) as plain added tokens, so both are matched whole in
//!   text (`<|im_start|>` is one id);
//! - a BOS (EOS) token put before (after) each text only when `tokenizer.ggml.add_bos_token`
//!   (`add_eos_token`) is true.
//!
//! Two cases differ from `transformers` on purpose, both where it would give ids the model has
//! no embedding for: a control or user-defined token spelled outside the byte alphabet (such
//! as `<｜User｜>`) keeps its own text and id here, as in llama.cpp and the original
//! `tokenizer.json`, where `transformers` respells it and matches it as bytes (and, for a BOS or
//! EOS token, adds its text again at a new id past the vocabulary); and `transformers` adds
//! `<|endoftext|>` at a new id when the vocabulary lacks it, which this does not.
//!
//! SentencePiece vocabularies (`llama`, with scores instead of merges), unigram (`t5`) and the
//! others are refused by name.
//!
//! [`write_tokenizer_metadata`] goes the other way: a byte-level BPE `tokenizer.json` becomes
//! `tokenizer.ggml.*` keys, so that an exported GGUF keeps its tokenizer.

use super::write::GgufWriter;
use super::{GgufError, GgufFile, GgufValue};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Token type: an ordinary token.
pub const TOKEN_NORMAL: i32 = 1;
/// Token type: the unknown token.
pub const TOKEN_UNKNOWN: i32 = 2;
/// Token type: a control token (BOS, EOS, chat markers): a special token.
pub const TOKEN_CONTROL: i32 = 3;
/// Token type: a user-defined token, matched whole in text but not special.
pub const TOKEN_USER_DEFINED: i32 = 4;
/// Token type: an id no text maps to (padding the vocabulary).
pub const TOKEN_UNUSED: i32 = 5;

/// The Llama 3 split regex.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Mistral's Tekken split regex.
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The GPT-4o (o200k) split regex.
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The Qwen 2 split regex.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The Qwen 3.5 split regex.
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// `tokenizer.ggml.pre` names whose split regex is not GPT-2's (`GGUF_PRE_TOKENIZER_SPLITS`
/// in `transformers`). The first name of each regex is the one [`write_tokenizer_metadata`]
/// writes.
const PRE_SPLITS: &[(&str, &str)] = &[
    ("llama-bpe", LLAMA3_SPLIT),
    ("llama3", LLAMA3_SPLIT),
    ("llama-v3", LLAMA3_SPLIT),
    ("falcon3", LLAMA3_SPLIT),
    ("falcon-h1", LLAMA3_SPLIT),
    ("pixtral", LLAMA3_SPLIT),
    ("midm-2.0", LLAMA3_SPLIT),
    ("lfm2", LLAMA3_SPLIT),
    ("jina-v5-nano", LLAMA3_SPLIT),
    ("dbrx", LLAMA3_SPLIT),
    ("smaug-bpe", LLAMA3_SPLIT),
    ("tekken", TEKKEN_SPLIT),
    ("qwen2", QWEN2_SPLIT),
    ("deepseek-r1-qwen", QWEN2_SPLIT),
    ("kormo", QWEN2_SPLIT),
    ("f2llmv2", QWEN2_SPLIT),
    ("megrez", QWEN2_SPLIT),
    ("qwen35", QWEN35_SPLIT),
    ("gpt-4o", GPT4O_SPLIT),
    ("llama4", GPT4O_SPLIT),
    ("kanana2", GPT4O_SPLIT),
    ("talkie", GPT4O_SPLIT),
    ("minimax-m2", GPT4O_SPLIT),
];

/// A GGUF file's tokenizer as a Hugging Face tokenizer.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    /// The `tokenizer.json` text (`tokenizers::Tokenizer::to_string(false)`).
    pub json: String,
    /// The beginning-of-sequence token (`tokenizer.ggml.bos_token_id`).
    pub bos: Option<u32>,
    /// The end-of-sequence token (`tokenizer.ggml.eos_token_id`).
    pub eos: Option<u32>,
    /// The padding token (`tokenizer.ggml.padding_token_id`).
    pub pad: Option<u32>,
    /// Every special token's id, ascending: the control tokens and the BOS, EOS, unknown and
    /// padding tokens.
    pub special_ids: Vec<u32>,
    /// The Jinja chat template (`tokenizer.chat_template`).
    pub chat_template: Option<String>,
}

/// GGUF's byte-level alphabet (GPT-2's `bytes_to_unicode`): printable Latin-1 bytes stand for
/// themselves, the 68 others for U+0100 to U+0143 in byte order.
fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut next = 0x100u32;
    for (b, c) in out.iter_mut().enumerate() {
        let b = b as u32;
        *c = if printable_byte(b) {
            char::from_u32(b).expect("Latin-1")
        } else {
            next += 1;
            char::from_u32(next - 1).expect("below the surrogates")
        };
    }
    out
}

fn printable_byte(b: u32) -> bool {
    (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
}

/// Whether `c` is one of the 256 characters of [`byte_chars`].
fn in_alphabet(c: char) -> bool {
    let c = c as u32;
    printable_byte(c) || (0x100..0x100 + 68).contains(&c)
}

/// Builds the Hugging Face tokenizer of `file`'s `tokenizer.ggml.*` metadata (see the module
/// documentation for what is built and how it compares with `transformers`).
pub fn tokenizer(file: &GgufFile) -> Result<GgufTokenizer, GgufError> {
    let path = file.path();
    let missing = |key: &str, what: &str| GgufError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
        message: format!("missing or not {what}"),
    };
    let refuse = |message: String| GgufError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let model = file
        .get_str("tokenizer.ggml.model")
        .ok_or_else(|| missing("tokenizer.ggml.model", "a string"))?;
    match model {
        "gpt2" => {}
        "llama" => {
            return Err(refuse(
                "tokenizer.ggml.model is \"llama\" (a SentencePiece vocabulary with scores), \
                 which Hearth does not convert; it reads \"gpt2\" (byte-level BPE) vocabularies"
                    .into(),
            ));
        }
        other => {
            return Err(refuse(format!(
                "tokenizer.ggml.model is {other:?}, which Hearth does not convert; it reads \
                 \"gpt2\" (byte-level BPE) vocabularies"
            )));
        }
    }
    let tokens = file
        .get_str_array("tokenizer.ggml.tokens")
        .ok_or_else(|| missing("tokenizer.ggml.tokens", "an array of strings"))?;
    let merges = file
        .get_str_array("tokenizer.ggml.merges")
        .ok_or_else(|| missing("tokenizer.ggml.merges", "an array of strings"))?;
    let types = match file.get("tokenizer.ggml.token_type") {
        None => vec![TOKEN_NORMAL; tokens.len()],
        Some(_) => file
            .get_i32_array("tokenizer.ggml.token_type")
            .filter(|t| t.len() == tokens.len())
            .ok_or_else(|| {
                missing(
                    "tokenizer.ggml.token_type",
                    "an array of integers, one per token",
                )
            })?,
    };
    let id_of = |key: &str| -> Result<Option<u32>, GgufError> {
        match file.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(id) if (id as usize) < tokens.len() => Ok(Some(id as u32)),
                _ => Err(GgufError::Metadata {
                    path: path.to_path_buf(),
                    key: key.to_string(),
                    message: format!("{v:?} is not a token id below {}", tokens.len()),
                }),
            },
        }
    };
    let bos = id_of("tokenizer.ggml.bos_token_id")?;
    let eos = id_of("tokenizer.ggml.eos_token_id")?;
    let unk = id_of("tokenizer.ggml.unknown_token_id")?;
    let pad = id_of("tokenizer.ggml.padding_token_id")?;

    // The BPE vocabulary. A later token with the same spelling replaces an earlier one, as in
    // the Python dict `transformers` builds.
    let spelling = byte_chars();
    let keys: Vec<String> = tokens
        .iter()
        .zip(&types)
        .map(|(&token, &ty)| {
            if token.chars().all(in_alphabet) || ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED {
                token.to_string()
            } else {
                token.bytes().map(|b| spelling[usize::from(b)]).collect()
            }
        })
        .collect();
    let mut vocab = Map::new();
    for (id, key) in keys.iter().enumerate() {
        vocab.insert(key.clone(), json!(id));
    }
    let merges: Vec<Value> = merges
        .iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok(json!([a, b])),
            None => Err(refuse(format!(
                "merge {m:?} in tokenizer.ggml.merges is not two tokens separated by a space"
            ))),
        })
        .collect::<Result<_, _>>()?;

    // Added tokens: control tokens and the named specials as special, user-defined as plain.
    let mut added: BTreeMap<u32, bool> = BTreeMap::new();
    for (id, &ty) in types.iter().enumerate() {
        match ty {
            TOKEN_CONTROL => {
                added.insert(id as u32, true);
            }
            TOKEN_USER_DEFINED => {
                added.entry(id as u32).or_insert(false);
            }
            _ => {}
        }
    }
    for id in [bos, eos, unk, pad].into_iter().flatten() {
        added.insert(id, true);
    }
    let added_tokens: Vec<Value> = added
        .iter()
        .map(|(&id, &special)| {
            json!({
                "id": id,
                "content": keys[id as usize],
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": special,
            })
        })
        .collect();
    let special_ids: Vec<u32> = added.iter().filter(|e| *e.1).map(|e| *e.0).collect();

    let byte_level = |use_regex: bool| {
        json!({
            "type": "ByteLevel",
            "add_prefix_space": false,
            "trim_offsets": true,
            "use_regex": use_regex,
        })
    };
    let pre = file.get_str("tokenizer.ggml.pre").unwrap_or("default");
    let pre_tokenizer = match PRE_SPLITS.iter().find(|(name, _)| *name == pre) {
        Some((_, regex)) => json!({
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": regex},
                    "behavior": "Isolated",
                    "invert": false,
                },
                byte_level(false),
            ],
        }),
        None => byte_level(true),
    };

    let add_bos = bos.filter(|_| file.get_bool("tokenizer.ggml.add_bos_token") == Some(true));
    let add_eos = eos.filter(|_| file.get_bool("tokenizer.ggml.add_eos_token") == Some(true));
    let post_processor = template_processing(&keys, add_bos, add_eos);

    let json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": true,
            "trim_offsets": true,
            "use_regex": true,
        },
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": merges,
        },
    });
    // Loading it checks that the merges fit the vocabulary; saving gives the library's form.
    // The library panics on some malformed merges instead of failing: such a file is refused
    // like any other.
    let text = json.to_string();
    let parsed = std::panic::catch_unwind(|| text.parse::<tokenizers::Tokenizer>());
    let loaded = match parsed {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(e)) => {
            return Err(refuse(format!(
                "the vocabulary and merges do not form a BPE model: {e}"
            )));
        }
        Err(_) => {
            return Err(refuse(
                "the vocabulary and merges do not form a BPE model".into(),
            ));
        }
    };
    let json = loaded
        .to_string(false)
        .map_err(|e| refuse(format!("cannot serialize the tokenizer: {e}")))?;
    Ok(GgufTokenizer {
        json,
        bos,
        eos,
        pad,
        special_ids,
        chat_template: file.get_str("tokenizer.chat_template").map(str::to_string),
    })
}

/// The post-processor `transformers` sets: `[BOS] $A [EOS]` with each only when asked for.
fn template_processing(tokens: &[String], bos: Option<u32>, eos: Option<u32>) -> Value {
    let special = |id: u32, type_id: u32| json!({"SpecialToken": {"id": tokens[id as usize], "type_id": type_id}});
    let sequence = |name: &str, type_id: u32| json!({"Sequence": {"id": name, "type_id": type_id}});
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Map::new();
    for (seq, type_id) in [("A", 0), ("B", 1)] {
        if let Some(id) = bos {
            pair.push(special(id, type_id));
        }
        pair.push(sequence(seq, type_id));
        if let Some(id) = eos {
            pair.push(special(id, type_id));
        }
    }
    if let Some(id) = bos {
        single.push(special(id, 0));
    }
    single.push(sequence("A", 0));
    if let Some(id) = eos {
        single.push(special(id, 0));
    }
    for id in [bos, eos].into_iter().flatten() {
        let token = &tokens[id as usize];
        specials.insert(
            token.to_string(),
            json!({"id": token, "ids": [id], "tokens": [token]}),
        );
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}

/// Writes the `tokenizer.ggml.*` keys (and `tokenizer.chat_template`) of a byte-level BPE
/// tokenizer given as `tokenizer.json` text: `model` = `gpt2`, the `pre`-tokenizer's name,
/// the tokens in id order (ids no token has become `[PAD<id>]`, type unused), their types
/// (special added tokens control, other added tokens user-defined), the merges, the BOS, EOS,
/// padding and unknown ids, and whether the post-processor adds BOS or EOS.
///
/// Refuses a tokenizer [`tokenizer()`] could not rebuild the same: a model other than BPE, a
/// normalizer, a pre-tokenizer other than GPT-2's byte level or a known split regex followed
/// by a byte-level step, a prefix space, or merges of tokens that contain spaces.
pub fn write_tokenizer_metadata(
    writer: &mut GgufWriter<'_>,
    tokenizer_json: &str,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    chat_template: Option<&str>,
) -> Result<(), GgufError> {
    let path = PathBuf::from("tokenizer.json");
    let refuse = |message: String| GgufError::Tokenizer {
        path: path.clone(),
        message,
    };
    let root: Value =
        serde_json::from_str(tokenizer_json).map_err(|e| refuse(format!("not JSON: {e}")))?;
    let model = &root["model"];
    if model["type"] != "BPE" {
        return Err(refuse(format!(
            "the model is {}, not a BPE model; GGUF's gpt2 tokenizer is byte-level BPE",
            model["type"]
        )));
    }
    if !root["normalizer"].is_null() {
        return Err(refuse(format!(
            "it has a normalizer ({}), which GGUF's gpt2 tokenizer cannot state",
            root["normalizer"]["type"]
        )));
    }
    let merges: Vec<(String, String)> = match &model["merges"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|m| match m {
                Value::String(s) => s
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string())),
                Value::Array(pair) if pair.len() == 2 => {
                    Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string()))
                }
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| refuse("the model's merges are not pairs of tokens".into()))?,
        _ => return Err(refuse("the model's merges are not a list".into())),
    };
    if let Some((a, b)) = merges
        .iter()
        .find(|(a, b)| a.contains(' ') || b.contains(' '))
    {
        return Err(refuse(format!(
            "merge ({a:?}, {b:?}) has a space in a token, which GGUF's \"left right\" \
             merges cannot hold"
        )));
    }
    let pre = pre_tokenizer_name(&root["pre_tokenizer"], !merges.is_empty()).map_err(refuse)?;

    let mut tokens: BTreeMap<u32, (String, i32)> = BTreeMap::new();
    let vocab = model["vocab"]
        .as_object()
        .ok_or_else(|| refuse("the model has no vocabulary".into()))?;
    for (token, id) in vocab {
        let id = id
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| refuse(format!("token {token:?} has id {id}")))?;
        if let Some((other, _)) = tokens.insert(id, (token.clone(), TOKEN_NORMAL)) {
            return Err(refuse(format!(
                "tokens {other:?} and {token:?} share id {id}"
            )));
        }
    }
    for added in root["added_tokens"].as_array().into_iter().flatten() {
        let (Some(id), Some(content)) = (
            added["id"].as_u64().and_then(|id| u32::try_from(id).ok()),
            added["content"].as_str(),
        ) else {
            return Err(refuse(format!("added token {added} has no id or content")));
        };
        let ty = if added["special"] == true {
            TOKEN_CONTROL
        } else {
            TOKEN_USER_DEFINED
        };
        match tokens.get(&id) {
            Some((other, _)) if other != content => {
                return Err(refuse(format!(
                    "added token {content:?} has id {id}, which is {other:?} in the vocabulary"
                )));
            }
            _ => {
                tokens.insert(id, (content.to_string(), ty));
            }
        }
    }
    let n = tokens
        .last_key_value()
        .map_or(0, |(&id, _)| id as usize + 1);
    let mut names = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for id in 0..n as u32 {
        let (name, ty) = tokens
            .remove(&id)
            .unwrap_or_else(|| (format!("[PAD{id}]"), TOKEN_UNUSED));
        names.push(name);
        types.push(ty);
    }
    for (key, id) in [("bos", bos), ("eos", eos), ("padding", pad)] {
        if let Some(id) = id.filter(|&id| id as usize >= n) {
            return Err(refuse(format!(
                "the {key} token id {id} is beyond the vocabulary of {n}"
            )));
        }
    }
    let unk = model["unk_token"]
        .as_str()
        .and_then(|t| names.iter().position(|n| n == t));
    let (add_bos, add_eos) = template_adds(&root["post_processor"]);

    writer.set_str("tokenizer.ggml.model", "gpt2");
    writer.set_str("tokenizer.ggml.pre", pre);
    writer.set("tokenizer.ggml.tokens", GgufValue::string_array(names));
    writer.set_i32_array("tokenizer.ggml.token_type", types);
    writer.set(
        "tokenizer.ggml.merges",
        GgufValue::string_array(merges.iter().map(|(a, b)| format!("{a} {b}"))),
    );
    for (key, id) in [
        ("tokenizer.ggml.bos_token_id", bos),
        ("tokenizer.ggml.eos_token_id", eos),
        ("tokenizer.ggml.unknown_token_id", unk.map(|u| u as u32)),
        ("tokenizer.ggml.padding_token_id", pad),
    ] {
        if let Some(id) = id {
            writer.set_u32(key, id);
        }
    }
    writer.set_bool("tokenizer.ggml.add_bos_token", add_bos && bos.is_some());
    writer.set_bool("tokenizer.ggml.add_eos_token", add_eos && eos.is_some());
    if let Some(template) = chat_template {
        writer.set_str("tokenizer.chat_template", template);
    }
    Ok(())
}

/// The `tokenizer.ggml.pre` name for a `tokenizer.json` pre-tokenizer. Without merges, how
/// text is split into words changes no ids, so a byte-level step without the regex is
/// written as GPT-2's.
fn pre_tokenizer_name(pre: &Value, has_merges: bool) -> Result<&'static str, String> {
    let byte_level = |v: &Value| v["type"] == "ByteLevel";
    if byte_level(pre) && pre["add_prefix_space"] != true {
        if pre["use_regex"] != false || !has_merges {
            return Ok("gpt-2");
        }
    } else if pre["type"] == "Sequence"
        && let Some([split, bl]) = pre["pretokenizers"].as_array().map(Vec::as_slice)
        && split["type"] == "Split"
        && split["behavior"] == "Isolated"
        && split["invert"] != true
        && byte_level(bl)
        && bl["add_prefix_space"] != true
        && bl["use_regex"] == false
        && let Some(regex) = split["pattern"]["Regex"].as_str()
    {
        return PRE_SPLITS
            .iter()
            .find(|(_, r)| *r == regex)
            .map(|(name, _)| *name)
            .ok_or_else(|| {
                format!("its split regex {regex:?} is not one GGUF names in tokenizer.ggml.pre")
            });
    }
    Err(format!(
        "its pre-tokenizer ({pre}) is not GPT-2's byte level nor a known split regex followed \
         by a byte-level step without a prefix space"
    ))
}

/// Whether a `TemplateProcessing` post-processor puts a special token before (after) a single
/// text.
fn template_adds(post: &Value) -> (bool, bool) {
    if post["type"] != "TemplateProcessing" {
        return (false, false);
    }
    let single = post["single"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let is_special = |v: Option<&Value>| v.is_some_and(|v| v.get("SpecialToken").is_some());
    (is_special(single.first()), is_special(single.last()))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{has_transformers, python, smollm2, trained_bpe_json};
    use super::super::{GgufFile, GgufWriter};
    use super::*;
    use std::path::Path;

    /// Texts whose ids are compared: words, digits (split differently by each regex),
    /// contractions, code, runs of spaces and newlines, accents, CJK, emoji and chat markers.
    const TEXTS: &[&str] = &[
        "Hello world",
        "The quick brown fox jumps over the lazy dog.",
        "12345",
        "I'm sure they'll say it's 3.14159 or 2,718!",
        "def foo(x):\n    return x ** 2  # square\n",
        "  leading spaces and trailing   ",
        "h\u{e9}llo w\u{f6}rld \u{2014} na\u{ef}ve caf\u{e9}",
        "\u{65e5}\u{672c}\u{8a9e}\u{306e}\u{30c6}\u{30ad}\u{30b9}\u{30c8} \u{1f642}\u{1f680}",
        "<|im_start|>user\nHi<|im_end|>\n",
        "<|im_start|>assistant\n<think>ok</think><|endoftext|>",
        "line1\r\nline2\n\n\nline3\t\ttab",
        "<think>reason</think> done",
        "",
    ];

    /// For each GGUF file of `sys.argv[1]` (a JSON list of paths), encodes and decodes the
    /// texts of `sys.argv[2]` (a JSON list) with the tokenizer transformers builds from it.
    const TRANSFORMERS_ENCODE: &str = r#"
import sys, json, os
from transformers import AutoTokenizer
texts = json.loads(sys.argv[2])
out = []
for path in json.loads(sys.argv[1]):
    folder, name = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    encoded = []
    for text in texts:
        ids = tok(text)["input_ids"]
        encoded.append({"ids": ids, "decoded": tok.decode(ids),
                        "skipped": tok.decode(ids, skip_special_tokens=True)})
    out.append(encoded)
print(json.dumps(out))
"#;

    /// Compares the ids and decodings of [`TEXTS`] with transformers' for each file and its
    /// tokenizer. Where a vocabulary has no `<|endoftext|>`, transformers adds one past the
    /// vocabulary (see the module documentation), so texts spelling it are left out there.
    fn assert_like_transformers(files: &[(PathBuf, GgufTokenizer)]) {
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.to_str().unwrap()).collect();
        let texts = serde_json::to_string(TEXTS).unwrap();
        let out = python(
            TRANSFORMERS_ENCODE,
            &[&serde_json::to_string(&paths).unwrap(), &texts],
        );
        let theirs: Vec<Vec<Value>> = serde_json::from_str(&out).unwrap();
        for ((path, tok), theirs) in files.iter().zip(theirs) {
            let hf: tokenizers::Tokenizer = tok.json.parse().unwrap();
            let has_eot = hf.token_to_id("<|endoftext|>").is_some();
            for (text, theirs) in TEXTS.iter().zip(theirs) {
                if !has_eot && text.contains("<|endoftext|>") {
                    continue;
                }
                let ids = hf.encode(*text, true).unwrap().get_ids().to_vec();
                let want: Vec<u32> = serde_json::from_value(theirs["ids"].clone()).unwrap();
                assert_eq!(ids, want, "{}: ids of {text:?}", path.display());
                assert_eq!(
                    hf.decode(&ids, false).unwrap(),
                    theirs["decoded"].as_str().unwrap(),
                    "{}: decoding of {text:?}",
                    path.display()
                );
                assert_eq!(
                    hf.decode(&ids, true).unwrap(),
                    theirs["skipped"].as_str().unwrap(),
                    "{}: decoding of {text:?} without special tokens",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn real_smollm2_tokenizer_encodes_like_transformers() {
        let Some(path) = smollm2("real_smollm2_tokenizer_encodes_like_transformers") else {
            return;
        };
        let file = GgufFile::open(path).unwrap();
        let tok = tokenizer(&file).unwrap();
        assert_eq!((tok.bos, tok.eos, tok.pad), (Some(1), Some(2), Some(2)));
        assert_eq!(tok.special_ids, (0..17).collect::<Vec<u32>>());
        assert!(
            tok.chat_template
                .as_deref()
                .unwrap()
                .contains("<|im_start|>")
        );
        let hf: tokenizers::Tokenizer = tok.json.parse().unwrap();
        assert_eq!(hf.get_vocab_size(true), 49152);
        let ids = hf.encode("<|im_start|>user\nHi<|im_end|>\n", true).unwrap();
        assert_eq!(ids.get_ids(), [1, 4093, 198, 26843, 2, 198]);
        if has_transformers("real_smollm2_tokenizer_encodes_like_transformers (comparison)") {
            assert_like_transformers(&[(path.to_path_buf(), tok)]);
        }
    }

    #[test]
    fn real_smollm2_tokenizer_survives_a_round_trip() {
        let Some(path) = smollm2("real_smollm2_tokenizer_survives_a_round_trip") else {
            return;
        };
        let file = GgufFile::open(path).unwrap();
        let tok = tokenizer(&file).unwrap();
        let mut w = GgufWriter::new();
        write_tokenizer_metadata(
            &mut w,
            &tok.json,
            tok.bos,
            tok.eos,
            tok.pad,
            tok.chat_template.as_deref(),
        )
        .unwrap();
        for key in [
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.merges",
            "tokenizer.ggml.token_type",
        ] {
            assert_eq!(w.get(key), file.get(key), "{key}");
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("copy.gguf");
        w.write(&out).unwrap();
        let copy = tokenizer(&GgufFile::open(&out).unwrap()).unwrap();
        assert_eq!(copy.special_ids, tok.special_ids);
        assert_eq!(copy.chat_template, tok.chat_template);
        let (a, b): (tokenizers::Tokenizer, tokenizers::Tokenizer) =
            (tok.json.parse().unwrap(), copy.json.parse().unwrap());
        for text in TEXTS {
            assert_eq!(
                a.encode(*text, true).unwrap().get_ids(),
                b.encode(*text, true).unwrap().get_ids(),
                "{text:?}"
            );
        }
    }

    /// A GGUF holding only a tokenizer (and the few `llama.*` keys transformers wants),
    /// written from `json` with `pre` as `tokenizer.ggml.pre`.
    fn tokenizer_only(dir: &Path, name: &str, json: &str, pre: &str, add_bos: bool) -> PathBuf {
        let hf: tokenizers::Tokenizer = json.parse().unwrap();
        let mut w = GgufWriter::new();
        w.set_str("general.architecture", "llama");
        for (key, v) in [
            ("llama.block_count", 1),
            ("llama.context_length", 64),
            ("llama.embedding_length", 8),
            ("llama.feed_forward_length", 16),
            ("llama.attention.head_count", 2),
            ("llama.attention.head_count_kv", 1),
        ] {
            w.set_u32(key, v);
        }
        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
        let (start, end) = (hf.token_to_id("<|im_start|>"), hf.token_to_id("<|im_end|>"));
        write_tokenizer_metadata(&mut w, json, start, end, end, None).unwrap();
        w.set_str("tokenizer.ggml.pre", pre);
        w.set_bool("tokenizer.ggml.add_bos_token", add_bos);
        let path = dir.join(name);
        w.write(&path).unwrap();
        path
    }

    #[test]
    fn every_split_regex_encodes_like_transformers() {
        if !has_transformers("every_split_regex_encodes_like_transformers") {
            return;
        }
        let json = trained_bpe_json();
        let dir = tempfile::tempdir().unwrap();
        let mut digits = Vec::new();
        let mut files = Vec::new();
        for (i, (pre, add_bos)) in [
            ("gpt-2", false),
            ("smollm", true),
            ("llama-bpe", false),
            ("qwen2", true),
            ("qwen35", false),
            ("tekken", false),
            ("gpt-4o", false),
        ]
        .into_iter()
        .enumerate()
        {
            let path = tokenizer_only(dir.path(), &format!("t{i}.gguf"), &json, pre, add_bos);
            let tok = tokenizer(&GgufFile::open(&path).unwrap()).unwrap();
            let hf: tokenizers::Tokenizer = tok.json.parse().unwrap();
            digits.push(hf.encode("12345 it's", false).unwrap().get_ids().to_vec());
            files.push((path, tok));
        }
        assert_like_transformers(&files);
        // The regexes split digits differently: GPT-2 not at all, Llama 3 by three, Qwen 2 by one.
        assert_ne!(digits[0], digits[2]);
        assert_ne!(digits[2], digits[3]);
    }

    #[test]
    fn a_written_tokenizer_reads_back_the_same() {
        let json = trained_bpe_json();
        let original: tokenizers::Tokenizer = json.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = tokenizer_only(dir.path(), "t.gguf", &json, "gpt-2", false);
        let file = GgufFile::open(&path).unwrap();
        assert_eq!(file.get_str("tokenizer.ggml.model"), Some("gpt2"));
        let types = file.get_i32_array("tokenizer.ggml.token_type").unwrap();
        let start = original.token_to_id("<|im_start|>").unwrap();
        let think = original.token_to_id("<think>").unwrap();
        assert_eq!(types[start as usize], TOKEN_CONTROL);
        assert_eq!(types[think as usize], TOKEN_USER_DEFINED);
        assert_eq!(types[0], TOKEN_NORMAL);
        let tok = tokenizer(&file).unwrap();
        assert_eq!(tok.bos, Some(start));
        assert!(tok.special_ids.contains(&start) && !tok.special_ids.contains(&think));
        let ours: tokenizers::Tokenizer = tok.json.parse().unwrap();
        for text in TEXTS {
            assert_eq!(
                ours.encode(*text, false).unwrap().get_ids(),
                original.encode(*text, false).unwrap().get_ids(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_control_token_outside_the_byte_alphabet_stays_whole() {
        let json = trained_bpe_json();
        let mut w = GgufWriter::new();
        write_tokenizer_metadata(&mut w, &json, None, None, None, None).unwrap();
        let mut tokens: Vec<String> = w
            .get("tokenizer.ggml.tokens")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        let mut types: Vec<i32> = w
            .get("tokenizer.ggml.token_type")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap() as i32)
            .collect();
        tokens.push("<\u{ff5c}User\u{ff5c}>".into());
        types.push(TOKEN_CONTROL);
        let user = tokens.len() as u32 - 1;
        w.set_str_array("tokenizer.ggml.tokens", tokens);
        w.set_i32_array("tokenizer.ggml.token_type", types);
        w.set_u32("tokenizer.ggml.eos_token_id", user);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gguf");
        w.write(&path).unwrap();
        let tok = tokenizer(&GgufFile::open(&path).unwrap()).unwrap();
        let hf: tokenizers::Tokenizer = tok.json.parse().unwrap();
        assert_eq!(hf.get_vocab_size(true), user as usize + 1);
        let ids = hf.encode("hi<\u{ff5c}User\u{ff5c}>", false).unwrap();
        assert_eq!(ids.get_ids().last(), Some(&user));
        assert_eq!(tok.special_ids.last(), Some(&user));
    }

    #[test]
    fn refuses_sentencepiece_and_other_models_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (model, words) in [("llama", "SentencePiece"), ("t5", "\"t5\"")] {
            let mut w = GgufWriter::new();
            w.set_str("tokenizer.ggml.model", model);
            w.set_str_array("tokenizer.ggml.tokens", ["a"]);
            let path = dir.path().join(format!("{model}.gguf"));
            w.write(&path).unwrap();
            let err = tokenizer(&GgufFile::open(&path).unwrap()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, GgufError::Tokenizer { .. }), "{err:?}");
            assert!(
                msg.contains(&format!("{model}.gguf")) && msg.contains(words),
                "{msg}"
            );
        }
        let path = dir.path().join("none.gguf");
        GgufWriter::new().write(&path).unwrap();
        let err = tokenizer(&GgufFile::open(&path).unwrap()).unwrap_err();
        assert!(err.to_string().contains("tokenizer.ggml.model"), "{err}");
    }

    #[test]
    fn refuses_to_write_tokenizers_gguf_cannot_state() {
        let json: Value = serde_json::from_str(&trained_bpe_json()).unwrap();
        let mut w = GgufWriter::new();
        let mut char_level = json.clone();
        char_level["pre_tokenizer"] = Value::Null;
        let err = write_tokenizer_metadata(&mut w, &char_level.to_string(), None, None, None, None)
            .unwrap_err();
        assert!(err.to_string().contains("pre-tokenizer"), "{err}");
        let mut split = json.clone();
        split["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]});
        let err = write_tokenizer_metadata(&mut w, &split.to_string(), None, None, None, None)
            .unwrap_err();
        assert!(err.to_string().contains("split regex"), "{err}");
        let mut normalized = json.clone();
        normalized["normalizer"] = serde_json::json!({"type": "NFC"});
        assert!(
            write_tokenizer_metadata(&mut w, &normalized.to_string(), None, None, None, None)
                .is_err()
        );
        let mut wordpiece = json;
        wordpiece["model"]["type"] = "WordPiece".into();
        let err = write_tokenizer_metadata(&mut w, &wordpiece.to_string(), None, None, None, None)
            .unwrap_err();
        assert!(err.to_string().contains("not a BPE model"), "{err}");
    }
}
