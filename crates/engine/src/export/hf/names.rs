//! Tensor names: Hearth's parameters in GPT-2 and MegatronBERT layouts, and back from GPT-2.

use super::{Gpt2Config, LAYER_NORM_EPS, MLM_HEAD_SCALE, TYPE_VOCAB, Tensors};
use crate::export::HfError;
use crate::export::weights::Array;
use crate::model::ModelSpec;
use std::path::Path;

/// The parameters of a Hearth model, by [`super::weights::model_params`] path.
struct Params<'a> {
    map: &'a Tensors,
}

impl Params<'_> {
    fn get(&self, name: &str) -> Result<&Array, HfError> {
        self.map.get(name).ok_or_else(|| {
            HfError::invalid(
                Path::new("model.safetensors"),
                format!("the checkpoint has no parameter {name}"),
            )
        })
    }

    /// A LayerNorm's weight and bias (zeros when the model has none).
    fn layer_norm(&self, name: &str) -> Result<(Array, Array), HfError> {
        let weight = self.get(&format!("{name}.gamma"))?.clone();
        let bias = self
            .map
            .get(&format!("{name}.beta"))
            .cloned()
            .unwrap_or_else(|| Array::zeros(weight.shape.clone()));
        Ok((weight, bias))
    }

    /// A linear layer's `[in, out]` weight and its bias (zeros when the model has none).
    fn linear(&self, name: &str) -> Result<(Array, Array), HfError> {
        let weight = self.get(&format!("{name}.weight"))?.clone();
        let bias = self
            .map
            .get(&format!("{name}.bias"))
            .cloned()
            .unwrap_or_else(|| Array::zeros(vec![weight.shape[1]]));
        Ok((weight, bias))
    }
}

fn put(out: &mut Tensors, name: String, array: Array) {
    out.insert(name, array);
}

/// How a layer of a Hearth block keeps its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LayerKind {
    /// A LayerNorm: `gamma` and `beta` in Hearth, `weight` and `bias` in both layouts.
    Norm,
    /// A linear layer: `[in, out]` weight and bias in Hearth and GPT-2 (`Conv1D`), `[out, in]`
    /// in MegatronBERT (`nn.Linear`).
    Linear,
}

/// One layer of a Hearth block and its name in each layout.
struct BlockLayer {
    /// Name under `blocks.{i}.` in Hearth.
    hearth: &'static str,
    /// LayerNorm or linear.
    kind: LayerKind,
    /// Name under `h.{i}.` in GPT-2.
    gpt2: &'static str,
    /// Name under `encoder.layer.{i}.` in MegatronBERT; `None` for the fused q/k/v
    /// projection, which MegatronBERT keeps as three layers ([`QKV_NAMES`]).
    megatron: Option<&'static str>,
    /// Input and output widths in units of the model width (a LayerNorm: `(1, 1)`).
    widths: (usize, usize),
}

/// The layers of a block, in order, as each layout names them.
const BLOCK_LAYERS: [BlockLayer; 6] = [
    BlockLayer {
        hearth: "ln_1",
        kind: LayerKind::Norm,
        gpt2: "ln_1",
        megatron: Some("attention.ln"),
        widths: (1, 1),
    },
    BlockLayer {
        hearth: "attn.qkv",
        kind: LayerKind::Linear,
        gpt2: "attn.c_attn",
        megatron: None,
        widths: (1, 3),
    },
    BlockLayer {
        hearth: "attn.proj",
        kind: LayerKind::Linear,
        gpt2: "attn.c_proj",
        megatron: Some("attention.output.dense"),
        widths: (1, 1),
    },
    BlockLayer {
        hearth: "ln_2",
        kind: LayerKind::Norm,
        gpt2: "ln_2",
        megatron: Some("ln"),
        widths: (1, 1),
    },
    BlockLayer {
        hearth: "mlp.fc",
        kind: LayerKind::Linear,
        gpt2: "mlp.c_fc",
        megatron: Some("intermediate.dense"),
        widths: (1, 4),
    },
    BlockLayer {
        hearth: "mlp.proj",
        kind: LayerKind::Linear,
        gpt2: "mlp.c_proj",
        megatron: Some("output.dense"),
        widths: (4, 1),
    },
];

/// MegatronBERT's three attention projections, in the order of Hearth's fused `[q | k | v]`.
const QKV_NAMES: [&str; 3] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
];

/// Where an export layout keeps the parameters every Hearth model has.
struct LayoutNames {
    /// The token embedding's name.
    token_embedding: String,
    /// The position embedding's name.
    position_embedding: String,
    /// What comes before the block number (`transformer.h.`, `bert.encoder.layer.`).
    block_prefix: String,
    /// The final LayerNorm's name (without `.weight`).
    final_norm: String,
    /// Whether the layout is MegatronBERT's: linear weights `[out, in]`, q/k/v split.
    megatron: bool,
}

impl LayoutNames {
    /// GPT-2's names.
    fn gpt2() -> Self {
        Self {
            token_embedding: "transformer.wte.weight".into(),
            position_embedding: "transformer.wpe.weight".into(),
            block_prefix: "transformer.h.".into(),
            final_norm: "transformer.ln_f".into(),
            megatron: false,
        }
    }

    /// MegatronBERT's names after `prefix`.
    fn megatron(prefix: &str) -> Self {
        Self {
            token_embedding: format!("{prefix}embeddings.word_embeddings.weight"),
            position_embedding: format!("{prefix}embeddings.position_embeddings.weight"),
            block_prefix: format!("{prefix}encoder.layer."),
            final_norm: format!("{prefix}encoder.ln"),
            megatron: true,
        }
    }

    /// Puts a layer's weight and bias under `name`, its weight transposed where the layout
    /// keeps linear weights `[out, in]`.
    fn put_layer(&self, out: &mut Tensors, name: &str, kind: LayerKind, (w, b): (Array, Array)) {
        let w = if self.megatron && kind == LayerKind::Linear {
            w.transpose()
        } else {
            w
        };
        put(out, format!("{name}.weight"), w);
        put(out, format!("{name}.bias"), b);
    }

    /// The embeddings, every block and the final LayerNorm of a Hearth model in this layout.
    fn tensors(&self, params: &Tensors, spec: &ModelSpec) -> Result<Tensors, HfError> {
        let p = Params { map: params };
        let d = spec.d_model;
        let mut out = Tensors::new();
        let token_embedding = p.get("tok_emb.weight")?.clone();
        put(&mut out, self.token_embedding.clone(), token_embedding);
        let position_embedding = p.get("pos_emb.weight")?.clone();
        put(
            &mut out,
            self.position_embedding.clone(),
            position_embedding,
        );
        for i in 0..spec.n_layer {
            let block = format!("{}{i}", self.block_prefix);
            for layer in &BLOCK_LAYERS {
                let hearth = format!("blocks.{i}.{}", layer.hearth);
                let pair = match layer.kind {
                    LayerKind::Norm => p.layer_norm(&hearth)?,
                    LayerKind::Linear => p.linear(&hearth)?,
                };
                let name = if self.megatron {
                    layer.megatron
                } else {
                    Some(layer.gpt2)
                };
                if let Some(name) = name {
                    self.put_layer(&mut out, &format!("{block}.{name}"), layer.kind, pair);
                } else {
                    // MegatronBERT's q, k and v: column blocks of the fused projection.
                    let (w, bias) = pair;
                    for (k, name) in QKV_NAMES.iter().enumerate() {
                        let split = (w.columns(k * d, d), bias.range(k * d, d));
                        self.put_layer(&mut out, &format!("{block}.{name}"), layer.kind, split);
                    }
                }
            }
        }
        self.put_layer(
            &mut out,
            &self.final_norm,
            LayerKind::Norm,
            p.layer_norm("ln_f")?,
        );
        Ok(out)
    }
}

/// GPT-2 (`GPT2LMHeadModel`) tensors of a Hearth model.
pub fn gpt2_tensors(params: &Tensors, spec: &ModelSpec) -> Result<Tensors, HfError> {
    let mut out = LayoutNames::gpt2().tensors(params, spec)?;
    if !spec.tie_weights {
        let head = Params { map: params }.get("lm_head.weight")?.transpose();
        put(&mut out, "lm_head.weight".into(), head);
    }
    Ok(out)
}

/// MegatronBERT encoder tensors of a Hearth model, each name after `prefix` (`bert.` inside
/// a model with a head, empty for `MegatronBertModel`).
pub fn megatron_tensors(
    params: &Tensors,
    spec: &ModelSpec,
    prefix: &str,
) -> Result<Tensors, HfError> {
    let mut out = LayoutNames::megatron(prefix).tensors(params, spec)?;
    put(
        &mut out,
        format!("{prefix}embeddings.token_type_embeddings.weight"),
        Array::zeros(vec![TYPE_VOCAB, spec.d_model]),
    );
    Ok(out)
}

/// `MegatronBertModel`'s pooler (unused by Hearth's pooling): identity weights, zero bias.
pub(super) fn pooler_tensors(d: usize) -> Tensors {
    let mut identity = Array::zeros(vec![d, d]);
    for i in 0..d {
        identity.values[i * d + i] = 1.0;
    }
    let mut out = Tensors::new();
    put(&mut out, "pooler.dense.weight".into(), identity);
    put(&mut out, "pooler.dense.bias".into(), Array::zeros(vec![d]));
    out
}

/// `MegatronBertForMaskedLM`'s head (`cls.predictions.*`) made an identity before the output
/// matrix (see the module documentation).
pub fn masked_head_tensors(params: &Tensors, spec: &ModelSpec) -> Result<Tensors, HfError> {
    let p = Params { map: params };
    let d = spec.d_model;
    let (gamma, beta) = p.layer_norm("ln_f")?;
    let m = MLM_HEAD_SCALE;
    let restore = 2.0 * LAYER_NORM_EPS.sqrt() / m;
    let mut dense = Array::zeros(vec![d, d]);
    let mut dense_bias = Array::zeros(vec![d]);
    let mut ln_weight = Array::zeros(vec![d]);
    for i in 0..d {
        let g = f64::from(gamma.values[i]);
        if g != 0.0 {
            dense.values[i * d + i] = (m / g) as f32;
            dense_bias.values[i] = (-m * f64::from(beta.values[i]) / g) as f32;
            ln_weight.values[i] = (g * restore) as f32;
        }
    }
    let mut out = Tensors::new();
    let t = "cls.predictions.transform";
    put(&mut out, format!("{t}.dense.weight"), dense);
    put(&mut out, format!("{t}.dense.bias"), dense_bias);
    put(&mut out, format!("{t}.LayerNorm.weight"), ln_weight);
    put(&mut out, format!("{t}.LayerNorm.bias"), beta);
    // The output bias (zero: Hearth's head has none) under both of its names; transformers
    // ties `decoder.bias` to `bias` only along with tied embeddings.
    let vocab = p.get("tok_emb.weight")?.shape[0];
    for name in ["cls.predictions.bias", "cls.predictions.decoder.bias"] {
        put(&mut out, name.into(), Array::zeros(vec![vocab]));
    }
    if !spec.tie_weights {
        put(
            &mut out,
            "cls.predictions.decoder.weight".into(),
            p.get("lm_head.weight")?.transpose(),
        );
    }
    Ok(out)
}

/// Buffers older GPT-2 checkpoints carry (the causal mask), which hold no weights.
fn is_buffer(name: &str) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")
}

/// Hearth parameters (by [`super::weights::model_params`] path) from GPT-2 tensors, with or
/// without the `transformer.` prefix. Fails naming the first missing tensor, a tensor of the
/// wrong shape, or the tensors it has no place for; `path` names the weights file.
pub fn params_from_gpt2(
    tensors: &Tensors,
    config: &Gpt2Config,
    path: &Path,
) -> Result<Tensors, HfError> {
    let prefix = if tensors.contains_key("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    };
    let d = config.n_embd;
    let mut used = std::collections::BTreeSet::new();
    let mut take = |name: &str, shape: &[usize]| -> Result<Array, HfError> {
        let key = format!("{prefix}{name}");
        let array = tensors
            .get(&key)
            .ok_or_else(|| HfError::invalid(path, format!("no tensor {key}")))?;
        if array.shape != shape {
            return Err(HfError::invalid(
                path,
                format!(
                    "{key} has shape {:?}; config.json makes it {shape:?}",
                    array.shape
                ),
            ));
        }
        used.insert(key);
        Ok(array.clone())
    };
    let mut out = Tensors::new();
    out.insert(
        "tok_emb.weight".into(),
        take("wte.weight", &[config.vocab_size, d])?,
    );
    out.insert(
        "pos_emb.weight".into(),
        take("wpe.weight", &[config.n_positions, d])?,
    );
    for i in 0..config.n_layer {
        for layer in &BLOCK_LAYERS {
            let (from, to) = (
                format!("h.{i}.{}", layer.gpt2),
                format!("blocks.{i}.{}", layer.hearth),
            );
            // `Conv1D` weights are `[in, out]`, as Burn's.
            let (d_in, d_out) = (layer.widths.0 * d, layer.widths.1 * d);
            let (weight, bias, weight_shape) = match layer.kind {
                LayerKind::Norm => ("gamma", "beta", vec![d]),
                LayerKind::Linear => ("weight", "bias", vec![d_in, d_out]),
            };
            out.insert(
                format!("{to}.{weight}"),
                take(&format!("{from}.weight"), &weight_shape)?,
            );
            out.insert(
                format!("{to}.{bias}"),
                take(&format!("{from}.bias"), &[d_out])?,
            );
        }
    }
    out.insert("ln_f.gamma".into(), take("ln_f.weight", &[d])?);
    out.insert("ln_f.beta".into(), take("ln_f.bias", &[d])?);
    if let Some(head) = tensors.get("lm_head.weight") {
        if head.shape != [config.vocab_size, d] {
            return Err(HfError::invalid(
                path,
                format!(
                    "lm_head.weight has shape {:?}; config.json makes it {:?}",
                    head.shape,
                    [config.vocab_size, d]
                ),
            ));
        }
        used.insert("lm_head.weight".to_string());
        if !config.tie_word_embeddings {
            out.insert("lm_head.weight".into(), head.transpose());
        }
    } else if !config.tie_word_embeddings {
        return Err(HfError::invalid(
            path,
            "no tensor lm_head.weight, and config.json unties it (tie_word_embeddings: false)",
        ));
    }
    let unknown: Vec<&str> = tensors
        .keys()
        .filter(|k| !used.contains(*k) && !is_buffer(k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(HfError::invalid(
            path,
            format!(
                "tensors GPT-2 has no place for: {}",
                unknown[..unknown.len().min(8)].join(", ")
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::weights::model_params;
    use crate::model::Model;
    use burn::tensor::Device;
    fn spec(bias: bool, tie: bool) -> ModelSpec {
        ModelSpec {
            n_layer: 2,
            n_head: 2,
            d_model: 8,
            context: 6,
            bias,
            tie_weights: tie,
            ..ModelSpec::default()
        }
    }

    #[test]
    fn gpt2_tensors_read_back_as_the_same_parameters() {
        let device = Device::flex();
        for tie in [true, false] {
            let spec = spec(true, tie);
            let params = model_params(&Model::new(&spec, 11, &device));
            let tensors = gpt2_tensors(&params, &spec).unwrap();
            assert_eq!(tensors.contains_key("lm_head.weight"), !tie);
            assert_eq!(tensors["transformer.h.1.attn.c_attn.weight"].shape, [8, 24]);
            let config = Gpt2Config {
                vocab_size: 11,
                n_positions: 6,
                n_embd: 8,
                n_layer: 2,
                n_head: 2,
                tie_word_embeddings: tie,
                dropout: 0.0,
            };
            let back = params_from_gpt2(&tensors, &config, Path::new("m")).unwrap();
            assert_eq!(back, params);
        }
    }

    #[test]
    fn a_model_without_biases_gets_zero_biases() {
        let device = Device::flex();
        let spec = spec(false, true);
        let params = model_params(&Model::new(&spec, 11, &device));
        let tensors = gpt2_tensors(&params, &spec).unwrap();
        let bias = &tensors["transformer.h.0.mlp.c_fc.bias"];
        assert_eq!(bias.shape, [32]);
        assert!(bias.values.iter().all(|&b| b == 0.0));
        assert!(
            tensors["transformer.ln_f.bias"]
                .values
                .iter()
                .all(|&b| b == 0.0)
        );
    }

    #[test]
    fn megatron_splits_and_transposes_qkv() {
        let device = Device::flex();
        let spec = spec(true, true);
        let params = model_params(&Model::new(&spec, 11, &device));
        let tensors = megatron_tensors(&params, &spec, "bert.").unwrap();
        let qkv = &params["blocks.0.attn.qkv.weight"]; // [in 8, out 24]
        let key = &tensors["bert.encoder.layer.0.attention.self.key.weight"]; // [out 8, in 8]
        assert_eq!(key.values[2 * 8 + 5], qkv.values[5 * 24 + 8 + 2]);
        let fc = &tensors["bert.encoder.layer.1.intermediate.dense.weight"];
        assert_eq!(fc.shape, [32, 8]);
    }
}
