//! Chat templates: the model's own Jinja template rendered with minijinja, configured as
//! transformers configures Jinja (`trim_blocks`, `lstrip_blocks`, Python string methods,
//! `raise_exception`, `strftime_now`).

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// A compiled chat template and the token strings it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// Where the template came from, for errors.
    source_name: String,
    /// The template text, to write into checkpoints.
    source: String,
    bos_token: String,
    eos_token: String,
}

const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compile `template`; `source_name` names where it came from in errors.
    pub fn new(
        template: &str,
        source_name: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> anyhow::Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("default delimiters are valid"),
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function("strftime_now", |format: String| -> String {
            strftime_now(&format)
        });
        env.add_template_owned(NAME, template.to_string())
            .map_err(|e| {
                anyhow::anyhow!(
                    "chat template from {source_name} does not compile: {}",
                    describe(&e)
                )
            })?;
        Ok(ChatTemplate {
            env,
            source_name: source_name.to_string(),
            source: template.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The BOS and EOS token strings the template is rendered with.
    pub fn special_tokens(&self) -> (&str, &str) {
        (&self.bos_token, &self.eos_token)
    }

    /// Render `messages`, ending with the assistant's turn opener when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> anyhow::Result<String> {
        let template = self.env.get_template(NAME).expect("added in new");
        template
            .render(context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| {
                anyhow::anyhow!(
                    "chat template from {} failed to render: {}",
                    self.source_name,
                    describe(&e)
                )
            })
    }
}

/// Split of a conversation into prompt ids and completion ids with an exact boundary: the prompt
/// is the template's rendering up to the assistant's turn opener, the completion is the assistant
/// text plus the template's end-of-turn, each tokenized on its own (no string slicing of a rendered
/// conversation).
pub fn tokenize_turn(
    template: &ChatTemplate,
    tokenizer: &super::tokenizer::Tokenizer,
    prompt: &[Message],
    completion: &str,
) -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
    let prompt_ids = tokenizer.encode(&template.render(prompt, true)?)?;
    let suffix = template.assistant_suffix(prompt)?;
    let completion_ids = tokenizer.encode(&format!("{completion}{suffix}"))?;
    Ok((prompt_ids, completion_ids))
}

impl ChatTemplate {
    /// What the template writes after an assistant message's content (e.g. `<|im_end|>\n`),
    /// found by rendering a marker message; also checks that the template renders the prompt as
    /// a prefix of the full conversation, which training relies on.
    pub fn assistant_suffix(&self, prompt: &[Message]) -> anyhow::Result<String> {
        const MARKER: &str = "\u{1}SPAR-ASSISTANT-CONTENT\u{1}";
        let mut conversation = prompt.to_vec();
        conversation.push(Message::new("assistant", MARKER));
        let full = self.render(&conversation, false)?;
        let opener = self.render(prompt, true)?;
        let Some(at) = full.find(MARKER) else {
            anyhow::bail!(
                "chat template from {} drops the assistant's content",
                self.source_name
            );
        };
        if full[..at] != opener {
            anyhow::bail!(
                "chat template from {} renders the prompt differently with and without the assistant's answer; cannot split prompt and completion exactly",
                self.source_name
            );
        }
        Ok(full[at + MARKER.len()..].to_string())
    }
}

/// The error and, where minijinja knows it, the line and the construct that failed.
fn describe(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    if let Some(line) = error.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    if let Some(source) = error.template_source()
        && let Some(range) = error.range()
        && let Some(snippet) = source.get(range)
    {
        text.push_str(&format!(" at `{snippet}`"));
    }
    text
}

/// Python's `datetime.now().strftime(format)` for the directives chat templates use.
fn strftime_now(format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format
        .replace("%d", &format!("{day:02}"))
        .replace("%m", &format!("{month:02}"))
        .replace("%Y", &year.to_string())
        .replace("%B", MONTHS[(month - 1) as usize])
        .replace("%b", &MONTHS[(month - 1) as usize][..3])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2's own template (from its GGUF metadata / tokenizer_config.json).
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_renders_as_transformers_does() {
        let t = ChatTemplate::new(SMOLLM2, "test", "", "<|im_end|>").unwrap();
        let rendered = t
            .render(
                &[Message::new(
                    "user",
                    "Write a haiku about the sea in lowercase letters only.",
                )],
                true,
            )
            .unwrap();
        // transformers' apply_chat_template(..., add_generation_prompt=True, tokenize=False):
        assert_eq!(
            rendered,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWrite a haiku about the sea in lowercase letters only.<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn the_assistant_suffix_is_the_end_of_turn() {
        let t = ChatTemplate::new(SMOLLM2, "test", "", "<|im_end|>").unwrap();
        let suffix = t.assistant_suffix(&[Message::new("user", "hi")]).unwrap();
        assert_eq!(suffix, "<|im_end|>\n");
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if m['role'] not in ['user', 'assistant'] %}{{ raise_exception('bad role ' + m['role']) }}{% endif %}{{ m['content'].strip().upper() }}|{% endfor %}",
            "inline",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            t.render(&[Message::new("user", "  hi ")], false).unwrap(),
            "HI|"
        );
        let error = t
            .render(&[Message::new("tool", "x")], false)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("chat template from inline failed to render: "),
            "{error}"
        );
        assert!(error.contains("bad role tool"), "{error}");
    }

    #[test]
    fn a_template_that_does_not_compile_names_its_source_and_construct() {
        let error = ChatTemplate::new(
            "{% for m in messages %}{{ m.content }",
            "model/tokenizer_config.json",
            "",
            "",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            error.starts_with("chat template from model/tokenizer_config.json does not compile: "),
            "{error}"
        );
        assert!(error.contains("line 1"), "{error}");
    }
}
