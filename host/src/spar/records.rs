//! The JSONL records the self-play steps read and write.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::judge::{Constraint, Judgment};
use super::search::Tree;
use crate::backend::FinishReason;
use crate::engine::chat_template::Message;

/// An actor sample to judge: a prompt, one response, and optionally IFEval-style constraints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    pub id: Value,
    pub prompt: String,
    pub response: String,
    /// Why generation stopped (`length`: cut by the token limit); absent when unknown (a file
    /// written by hand or before finish reasons were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Tokens generated, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_id_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwargs: Option<Vec<Value>>,
}

impl Sample {
    /// Cut off by the token limit.
    pub fn truncated(&self) -> bool {
        self.finish_reason == Some(FinishReason::Length)
    }

    /// The constraints, paired up; an error when the two lists disagree.
    pub fn constraints(&self) -> anyhow::Result<Vec<Constraint>> {
        match (&self.instruction_id_list, &self.kwargs) {
            (None, _) => Ok(Vec::new()),
            (Some(ids), kwargs) => {
                let empty = Vec::new();
                let kwargs = kwargs.as_ref().unwrap_or(&empty);
                if !kwargs.is_empty() && kwargs.len() != ids.len() {
                    anyhow::bail!(
                        "`kwargs` has {} entries but `instruction_id_list` has {}",
                        kwargs.len(),
                        ids.len()
                    );
                }
                Ok(ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| Constraint {
                        id: id.clone(),
                        kwargs: kwargs
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| serde_json::json!({})),
                    })
                    .collect())
            }
        }
    }
}

/// A judged sample (`judgments.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JudgedSample {
    #[serde(flatten)]
    pub sample: Sample,
    #[serde(flatten)]
    pub judgment: Judgment,
}

/// A searched tree (`trees.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TreeRecord {
    pub id: Value,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_id_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwargs: Option<Vec<Value>>,
    #[serde(flatten)]
    pub tree: Tree,
}

/// A preference pair (`pairs.jsonl`): TRL's conversational format with an explicit prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub id: Value,
    pub prompt: Vec<Message>,
    pub chosen: Vec<Message>,
    pub rejected: Vec<Message>,
    pub meta: Value,
}

/// A refiner training example (`refiner-sft.jsonl`): a conversation whose assistant turns are
/// the targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftRecord {
    pub messages: Vec<Message>,
    pub meta: Value,
}

/// Read a JSONL file of `T`, naming the file and line of any bad record.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> anyhow::Result<Vec<T>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a valid record", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Write records as JSONL, atomically.
pub fn write_jsonl<T: Serialize>(path: &std::path::Path, records: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    crate::storage::write_atomic(path, text.as_bytes())
}
