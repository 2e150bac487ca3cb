//! The model families a run can name, one line each: the family, its name, what it is and
//! whether it reads text in both directions only. Each family is a module beside this one
//! (`gpt`, `bert`) and a variant of [`super::Model`]; adding one is a module, a variant and a
//! line in [`FAMILIES`].

use serde::{Deserialize, Serialize};

/// Which transformer family a model belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Hearth's GPT (nanoGPT's GPT-2, or the modern variant): pre-norm blocks, causal or
    /// bidirectional attention, an LM head.
    #[default]
    Gpt,
    /// BERT (Devlin et al. 2019): token, position and token-type embeddings with a LayerNorm,
    /// post-LayerNorm blocks, GELU; the encoder of sentence-transformers models such as
    /// all-MiniLM-L6-v2. Its pooler is not part of it.
    Bert,
    /// Llama (Touvron et al. 2023) and the decoders built like it (Mistral, Qwen2, Qwen3,
    /// SmolLM2): RMSNorm, rotary positions, grouped-query attention, a SwiGLU MLP.
    Llama,
}

/// What the studio and the command line say about a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyInfo {
    /// The family.
    pub family: Family,
    /// Its name in spec files and on the command line.
    pub name: &'static str,
    /// One line about it.
    pub description: &'static str,
    /// Whether its models are trained from scratch as well as imported.
    pub from_scratch: bool,
}

/// Every family, in the order the studio lists them.
pub const FAMILIES: [FamilyInfo; 3] = [
    FamilyInfo {
        family: Family::Gpt,
        name: "gpt",
        description: "GPT (classic GPT-2 or modern): Hearth's own transformer",
        from_scratch: true,
    },
    FamilyInfo {
        family: Family::Bert,
        name: "bert",
        description: "BERT encoder (post-LayerNorm, learned positions), as imported sentence encoders",
        from_scratch: true,
    },
    FamilyInfo {
        family: Family::Llama,
        name: "llama",
        description: "Llama decoder (RMSNorm, rotary, grouped-query attention, SwiGLU), as imported SmolLM2, Qwen and Mistral models",
        from_scratch: true,
    },
];

impl Family {
    /// What is said about the family.
    pub fn info(self) -> FamilyInfo {
        FAMILIES
            .into_iter()
            .find(|f| f.family == self)
            .expect("every family has a line in FAMILIES")
    }

    /// The name used in spec files and on the command line.
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_one_line_and_its_serde_name() {
        for info in FAMILIES {
            assert_eq!(info.family.name(), info.name);
            assert_eq!(
                serde_json::to_value(info.family).unwrap(),
                serde_json::Value::from(info.name)
            );
        }
        let spec: super::super::ModelSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec.family, Family::Gpt, "old spec files read as gpt");
    }
}
