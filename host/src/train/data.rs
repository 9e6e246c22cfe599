//! Training data: preference pairs (this project's and TRL's conversational format, TRL's plain
//! strings, LLaMA-Factory's `messages`/`chosen`/`rejected`) and SFT conversations, tokenized with
//! the model's chat template so the prompt/completion boundary is exact.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::engine::chat_template::{ChatTemplate, Message, tokenize_turn};
use crate::engine::tokenizer::Tokenizer;

/// One preference pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Preference {
    pub prompt: Vec<Message>,
    pub chosen: String,
    pub rejected: String,
}

/// A token sequence with the positions that carry loss (`true` = a completion token).
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    pub trained: Vec<bool>,
}

impl Sequence {
    pub fn trained_tokens(&self) -> usize {
        self.trained.iter().filter(|t| **t).count()
    }
}

/// A tokenized pair.
#[derive(Clone, Debug, PartialEq)]
pub struct PairSequences {
    pub chosen: Sequence,
    pub rejected: Sequence,
}

/// Examples skipped or shortened, by reason (reported, never silent).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DataReport {
    pub examples: usize,
    pub kept: usize,
    pub truncated: usize,
    pub skipped: BTreeMap<String, usize>,
}

impl DataReport {
    fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }
}

fn messages_of(value: &Value) -> Option<Vec<Message>> {
    serde_json::from_value(value.clone()).ok()
}

/// The assistant text of a `chosen`/`rejected` field: a string, a message, or a list of messages.
fn completion_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        Value::Array(items) => items
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// Parse one pair in any of the supported formats.
fn parse_preference(value: &Value) -> anyhow::Result<Preference> {
    let prompt = if let Some(p) = value.get("prompt") {
        match p {
            Value::String(s) => vec![Message::new("user", s.clone())],
            other => messages_of(other)
                .context("`prompt` must be a string or a list of {role, content}")?,
        }
    } else if let Some(m) = value.get("messages") {
        messages_of(m).context("`messages` must be a list of {role, content}")?
    } else {
        bail!("needs a `prompt` (or `messages`) field");
    };
    if !prompt.iter().any(|m| m.role == "user") {
        bail!("the prompt has no user turn");
    }
    let chosen = completion_of(value.get("chosen").context("missing `chosen`")?)
        .context("`chosen` must be a string, a message or a list of messages")?;
    let rejected = completion_of(value.get("rejected").context("missing `rejected`")?)
        .context("`rejected` must be a string, a message or a list of messages")?;
    Ok(Preference {
        prompt,
        chosen,
        rejected,
    })
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<(usize, Value)>> {
    crate::storage::jsonl::read_with(path, |value, line| Ok((line, value)))
}

/// Read pairs; malformed records are errors naming the line.
pub fn read_preferences(path: &Path) -> anyhow::Result<Vec<Preference>> {
    read_lines(path)?
        .into_iter()
        .map(|(line, value)| {
            parse_preference(&value).with_context(|| format!("{}:{line}", path.display()))
        })
        .collect()
}

/// Read SFT conversations (`{"messages": [...]}`); each needs an assistant turn.
pub fn read_conversations(path: &Path) -> anyhow::Result<Vec<Vec<Message>>> {
    read_lines(path)?
        .into_iter()
        .map(|(line, value)| {
            let messages = value
                .get("messages")
                .and_then(messages_of)
                .with_context(|| {
                    format!(
                        "{}:{line}: needs `messages`, a list of {{role, content}}",
                        path.display()
                    )
                })?;
            if !messages.iter().any(|m| m.role == "assistant") {
                bail!(
                    "{}:{line}: the conversation has no assistant turn to train on",
                    path.display()
                );
            }
            Ok(messages)
        })
        .collect()
}

/// Prompt ids + completion ids, truncated to `max_length` (completion cut; a prompt that fills
/// the length alone cannot be trained on).
fn sequence(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    prompt: &[Message],
    completion: &str,
    max_length: usize,
) -> anyhow::Result<Option<(Sequence, bool)>> {
    let (p, mut c) = tokenize_turn(template, tokenizer, prompt, completion)?;
    if p.len() + 1 >= max_length {
        return Ok(None);
    }
    let truncated = p.len() + c.len() > max_length;
    c.truncate(max_length - p.len());
    let mut trained = vec![false; p.len()];
    trained.extend(std::iter::repeat_n(true, c.len()));
    let mut ids = p;
    ids.extend(c);
    Ok(Some((Sequence { ids, trained }, truncated)))
}

/// Tokenize pairs, skipping (and counting) empty, identical and too-long ones.
pub fn tokenize_preferences(
    pairs: &[Preference],
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    max_length: usize,
) -> anyhow::Result<(Vec<PairSequences>, DataReport)> {
    let mut report = DataReport {
        examples: pairs.len(),
        ..DataReport::default()
    };
    let mut out = Vec::new();
    for pair in pairs {
        if pair.chosen.trim().is_empty() || pair.rejected.trim().is_empty() {
            report.skip("empty chosen or rejected");
            continue;
        }
        if pair.chosen == pair.rejected {
            report.skip("chosen equals rejected");
            continue;
        }
        let chosen = sequence(template, tokenizer, &pair.prompt, &pair.chosen, max_length)?;
        let rejected = sequence(
            template,
            tokenizer,
            &pair.prompt,
            &pair.rejected,
            max_length,
        )?;
        match (chosen, rejected) {
            (Some((chosen, t1)), Some((rejected, t2))) => {
                report.truncated += usize::from(t1 || t2);
                out.push(PairSequences { chosen, rejected });
            }
            _ => report.skip("prompt longer than max_length"),
        }
    }
    report.kept = out.len();
    Ok((out, report))
}

/// Tokenize conversations: one sequence per assistant turn, loss on that turn only.
pub fn tokenize_conversations(
    conversations: &[Vec<Message>],
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    max_length: usize,
) -> anyhow::Result<(Vec<Sequence>, DataReport)> {
    let mut report = DataReport {
        examples: conversations.len(),
        ..DataReport::default()
    };
    let mut out = Vec::new();
    for messages in conversations {
        for (i, m) in messages.iter().enumerate() {
            if m.role != "assistant" {
                continue;
            }
            if m.content.trim().is_empty() {
                report.skip("empty assistant turn");
                continue;
            }
            match sequence(template, tokenizer, &messages[..i], &m.content, max_length)? {
                Some((seq, truncated)) => {
                    report.truncated += usize::from(truncated);
                    out.push(seq);
                }
                None => report.skip("prompt longer than max_length"),
            }
        }
    }
    report.kept = out.len();
    Ok((out, report))
}
