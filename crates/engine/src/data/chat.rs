//! Chat conversations rendered with a model's chat template (the Jinja template Hugging Face
//! folders and GGUF files carry), and which characters of the rendered text are the
//! assistant's (the tokens a chat fine-tune learns).

use serde::{Deserialize, Serialize};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: String,
}

impl Message {
    /// A turn of `role`.
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A template that does not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chat template: {0}")]
pub struct ChatError(pub String);

/// The special tokens a template may name.
#[derive(Debug, Clone, Default)]
pub struct TemplateTokens {
    /// `bos_token`.
    pub bos: String,
    /// `eos_token`.
    pub eos: String,
}

/// Renders `messages` with `template`; with `add_generation_prompt`, the text ends where the
/// assistant's next turn starts.
pub fn render(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    tokens: &TemplateTokens,
) -> Result<String, ChatError> {
    let mut env = minijinja::Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    env.add_function("strftime_now", |_format: String| -> String {
        String::new()
    });
    env.add_template("chat", template)
        .map_err(|e| ChatError(e.to_string()))?;
    let tmpl = env
        .get_template("chat")
        .map_err(|e| ChatError(e.to_string()))?;
    tmpl.render(minijinja::context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => tokens.bos.as_str(),
        eos_token => tokens.eos.as_str(),
    })
    .map_err(|e| ChatError(e.to_string()))
}

/// The rendered conversation as consecutive pieces, each marked whether it is an assistant
/// turn (learned) or not (context): the text before each assistant turn is what the template
/// renders for the turns before it with the generation prompt; the turn is what rendering it
/// adds. Their concatenation is the whole rendered conversation.
pub fn assistant_spans(
    template: &str,
    messages: &[Message],
    tokens: &TemplateTokens,
) -> Result<Vec<(String, bool)>, ChatError> {
    let full = render(template, messages, false, tokens)?;
    let mut pieces = Vec::new();
    let mut done = 0;
    for (i, message) in messages.iter().enumerate() {
        if message.role != "assistant" {
            continue;
        }
        let before = render(template, &messages[..i], true, tokens)?;
        let through = render(template, &messages[..=i], false, tokens)?;
        if !full.starts_with(&through) || !through.starts_with(&before) || before.len() < done {
            return Err(ChatError(format!(
                "turn {} (assistant) does not render as a continuation of the turns before it, so its tokens cannot be told apart",
                i + 1
            )));
        }
        pieces.push((full[done..before.len()].to_string(), false));
        pieces.push((full[before.len()..through.len()].to_string(), true));
        done = through.len();
    }
    if done < full.len() {
        pieces.push((full[done..].to_string(), false));
    }
    pieces.retain(|(text, _)| !text.is_empty());
    Ok(pieces)
}

/// Conversations by the line they are on (from 1).
pub type Conversations = Vec<(usize, Vec<Message>)>;

/// The conversations of a chat JSONL file (`{"messages": [{"role", "content"}, ..]}` per
/// line; blank lines skipped), each with its line number; an error names the line.
pub fn read_chat_file(path: &std::path::Path) -> Result<Conversations, (usize, String)> {
    #[derive(Deserialize)]
    struct Line {
        messages: Vec<Message>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| (0, e.to_string()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line).map_err(|e| {
            (
                i + 1,
                format!("expected {{\"messages\": [{{\"role\": .., \"content\": ..}}, ..]}}: {e}"),
            )
        })?;
        if !parsed.messages.iter().any(|m| m.role == "assistant") {
            return Err((
                i + 1,
                "the conversation has no assistant turn to learn".into(),
            ));
        }
        out.push((i + 1, parsed.messages));
    }
    if out.is_empty() {
        return Err((0, "no conversations".into()));
    }
    Ok(out)
}

/// Whether the JSONL file at `path` holds chat conversations (its first record has
/// `messages`).
/// Reads up to the first non-empty line only (at most 8 MB), so a large file costs little to
/// ask about.
pub fn is_chat_file(path: &std::path::Path) -> bool {
    use std::io::{BufRead, Read};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // A text file without line breaks is not read whole to learn that it is not chat.
    std::io::BufReader::new(file.take(8 << 20))
        .lines()
        .map_while(Result::ok)
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .is_some_and(|v| v.get("messages").is_some_and(|m| m.is_array()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    #[test]
    fn chatml_renders_and_marks_the_assistant_turns() {
        let messages = [
            Message::new("user", "Hi"),
            Message::new("assistant", "Hello!"),
            Message::new("user", "Bye"),
            Message::new("assistant", "See you."),
        ];
        let tokens = TemplateTokens::default();
        let prompt = render(CHATML, &messages[..1], true, &tokens).unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let spans = assistant_spans(CHATML, &messages, &tokens).unwrap();
        let learned: Vec<&str> = spans
            .iter()
            .filter(|(_, a)| *a)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(learned, ["Hello!<|im_end|>\n", "See you.<|im_end|>\n"]);
        let whole: String = spans.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(whole, render(CHATML, &messages, false, &tokens).unwrap());
    }

    #[test]
    fn a_template_error_is_reported() {
        let bad = "{% if messages[0]['role'] != 'system' %}{{ raise_exception('needs a system turn') }}{% endif %}";
        let err = render(
            bad,
            &[Message::new("user", "x")],
            true,
            &TemplateTokens::default(),
        )
        .unwrap_err();
        assert!(err.0.contains("needs a system turn"), "{err}");
        assert!(render("{% for %}", &[], true, &TemplateTokens::default()).is_err());
    }
}
