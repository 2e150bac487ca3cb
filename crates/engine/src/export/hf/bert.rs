//! BERT-family runs as Hugging Face `BertModel` folders, with the sentence-transformers modules
//! of an embedding run: the inverse of `import::bert`'s mapping. q, k and v are split out of
//! the fused projection and every matrix is transposed to `nn.Linear`'s `[out, in]`; the pooler
//! `BertModel` expects is written as an identity (sentence encoders pool the token states
//! themselves, so nothing reads it).

use super::names::pooler_tensors;
use super::{SAFETENSORS_METADATA, Tensors};
use crate::eval::Pooling;
use crate::export::tokenizer_json::HfTokenizer;
use crate::export::weights::write_safetensors;
use crate::export::{HfError, write_json};
use crate::model::ModelSpec;
use serde_json::{Value, json};
use std::path::Path;

/// The `transformers` class of exported BERT-family runs.
pub const BERT_CLASS: &str = "BertModel";

/// `BertModel`'s tensors from Hearth's parameters of a BERT-family model.
pub fn bert_tensors(params: &Tensors, spec: &ModelSpec) -> Result<Tensors, HfError> {
    let get = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| HfError::invalid(Path::new("model"), format!("no parameter {name}")))
    };
    let d = spec.d_model;
    let mut out = Tensors::new();
    for (from, to) in [
        ("tok_emb", "word_embeddings"),
        ("pos_emb", "position_embeddings"),
        ("type_emb", "token_type_embeddings"),
    ] {
        out.insert(
            format!("embeddings.{to}.weight"),
            get(&format!("{from}.weight"))?.clone(),
        );
    }
    out.insert(
        "embeddings.LayerNorm.weight".into(),
        get("emb_ln.gamma")?.clone(),
    );
    out.insert(
        "embeddings.LayerNorm.bias".into(),
        get("emb_ln.beta")?.clone(),
    );
    for i in 0..spec.n_layer {
        let block = |name: &str| get(&format!("blocks.{i}.{name}"));
        let layer = format!("encoder.layer.{i}");
        let qkv = block("attn.qkv.weight")?;
        let qkv_bias = block("attn.qkv.bias")?;
        for (k, part) in ["query", "key", "value"].into_iter().enumerate() {
            out.insert(
                format!("{layer}.attention.self.{part}.weight"),
                qkv.columns(k * d, d).transpose(),
            );
            out.insert(
                format!("{layer}.attention.self.{part}.bias"),
                qkv_bias.range(k * d, d),
            );
        }
        for (from, to) in [
            ("attn.proj", "attention.output.dense"),
            ("mlp.fc", "intermediate.dense"),
            ("mlp.proj", "output.dense"),
        ] {
            out.insert(
                format!("{layer}.{to}.weight"),
                block(&format!("{from}.weight"))?.transpose(),
            );
            out.insert(
                format!("{layer}.{to}.bias"),
                block(&format!("{from}.bias"))?.clone(),
            );
        }
        for (from, to) in [
            ("ln_1", "attention.output.LayerNorm"),
            ("ln_2", "output.LayerNorm"),
        ] {
            out.insert(
                format!("{layer}.{to}.weight"),
                block(&format!("{from}.gamma"))?.clone(),
            );
            out.insert(
                format!("{layer}.{to}.bias"),
                block(&format!("{from}.beta"))?.clone(),
            );
        }
    }
    out.extend(pooler_tensors(d));
    Ok(out)
}

/// `config.json` of `BertModel` for `spec`.
pub fn bert_config(spec: &ModelSpec, tokenizer: &HfTokenizer) -> Value {
    json!({
        "architectures": [BERT_CLASS],
        "model_type": "bert",
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": spec.d_model,
        "num_hidden_layers": spec.n_layer,
        "num_attention_heads": spec.n_head,
        "intermediate_size": spec.mlp_hidden(),
        "hidden_act": "gelu",
        "hidden_dropout_prob": spec.dropout,
        "attention_probs_dropout_prob": spec.dropout,
        "max_position_embeddings": spec.position_rows(),
        "type_vocab_size": spec.bert.type_vocab,
        "layer_norm_eps": spec.bert.norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": tokenizer.pad().unwrap_or(0),
        "initializer_range": 0.02,
    })
}

/// Writes a BERT-family run as a `BertModel` folder, with the sentence-transformers modules
/// (Transformer, Pooling as the run pools, Normalize) when `pooling` is given.
pub fn write_bert(
    dir: &Path,
    spec: &ModelSpec,
    params: &Tensors,
    tokenizer: &HfTokenizer,
    pooling: Option<Pooling>,
) -> Result<(), HfError> {
    let tensors = bert_tensors(params, spec)?;
    write_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        SAFETENSORS_METADATA,
    )?;
    write_json(&dir.join("config.json"), &bert_config(spec, tokenizer))?;
    tokenizer.write(dir, spec.context)?;
    if let Some(pooling) = pooling {
        super::write_sentence_transformers(dir, spec, pooling)?;
    }
    Ok(())
}
