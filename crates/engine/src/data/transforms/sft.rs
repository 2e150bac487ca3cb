//! Instruction formatting (SFT): the prompt is a template around the instruction, the loss is
//! on the response.

use super::TransformError;
use crate::data::record::{Record, TextExample};
use serde::{Deserialize, Serialize};

/// Options of [`sft`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SftOptions {
    /// Field holding the instruction.
    pub prompt_field: String,
    /// Field holding the response (the trained part).
    pub response_field: String,
    /// The prompt; `{prompt}` is replaced by the instruction.
    pub template: String,
}

impl Default for SftOptions {
    fn default() -> Self {
        Self {
            prompt_field: "prompt".to_string(),
            response_field: "response".to_string(),
            template: "### Instruction:\n{prompt}\n### Response:\n".to_string(),
        }
    }
}

/// Instruction examples: the prompt is the template around the instruction, the answer the
/// response and a newline. Errors name the record and the missing field.
pub fn sft(records: &[Record], o: &SftOptions) -> Result<Vec<TextExample>, TransformError> {
    if !o.template.contains("{prompt}") {
        return Err(TransformError::TemplateWithoutPrompt {
            template: o.template.clone(),
        });
    }
    records
        .iter()
        .map(|r| {
            let prompt = r.require(&o.prompt_field)?;
            let response = r.require(&o.response_field)?;
            Ok(TextExample {
                prompt: o.template.replace("{prompt}", prompt),
                answer: format!("{response}\n"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::transforms::rec;

    #[test]
    fn sft_templates_prompt_and_answer() {
        let recs = vec![rec(
            "a.jsonl:1",
            &[("prompt", "add 2 and 3"), ("response", "5")],
        )];
        let ex = sft(&recs, &SftOptions::default()).unwrap();
        assert_eq!(
            ex[0].prompt,
            "### Instruction:\nadd 2 and 3\n### Response:\n"
        );
        assert_eq!(ex[0].answer, "5\n");
        let custom = SftOptions {
            template: "Q: {prompt}\nA: ".to_string(),
            ..SftOptions::default()
        };
        assert_eq!(
            sft(&recs, &custom).unwrap()[0].prompt,
            "Q: add 2 and 3\nA: "
        );
        let missing = vec![rec("b.jsonl:7", &[("prompt", "hi")])];
        let err = sft(&missing, &SftOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.jsonl:7") && err.contains("response"),
            "{err}"
        );
        let no_slot = SftOptions {
            template: "no slot".to_string(),
            ..SftOptions::default()
        };
        assert!(sft(&recs, &no_slot).is_err());
    }
}
