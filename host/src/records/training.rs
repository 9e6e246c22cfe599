//! Training data: preference pairs for the actor (`pairs.jsonl`) and conversations for the
//! refiner (`refiner-sft.jsonl`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::chat_template::Message;
use crate::storage::jsonl::Validate;

/// A preference pair (`pairs.jsonl`): TRL's conversational format with an explicit prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub id: Value,
    pub prompt: Vec<Message>,
    pub chosen: Vec<Message>,
    pub rejected: Vec<Message>,
    pub meta: Value,
}

impl PairRecord {
    /// The constraints of the pair's prompt from its meta (`instruction_id_list`, `kwargs`), as
    /// (id, kwargs JSON) pairs; `None` when the meta has none.
    pub fn constraint_args(&self) -> Option<Vec<(String, String)>> {
        let ids = self.meta.get("instruction_id_list")?.as_array()?;
        let kwargs = self.meta.get("kwargs").and_then(Value::as_array);
        Some(
            ids.iter()
                .enumerate()
                .filter_map(|(i, id)| {
                    let args = kwargs
                        .and_then(|k| k.get(i))
                        .cloned()
                        .unwrap_or_else(|| serde_json::json!({}));
                    Some((id.as_str()?.to_string(), args.to_string()))
                })
                .collect(),
        )
    }
}

/// A refiner training example (`refiner-sft.jsonl`): a conversation whose assistant turns are
/// the targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftRecord {
    pub messages: Vec<Message>,
    pub meta: Value,
}

/// The conversation ends with an assistant turn: the text to learn.
fn ends_with_answer(what: &str, messages: &[Message]) -> Result<(), String> {
    match messages.last() {
        Some(m) if m.role == "assistant" => Ok(()),
        _ => Err(format!("`{what}` must end with an assistant turn")),
    }
}

impl Validate for PairRecord {
    fn validate(&self) -> Result<(), String> {
        ends_with_answer("chosen", &self.chosen)?;
        ends_with_answer("rejected", &self.rejected)
    }
}

impl Validate for SftRecord {
    fn validate(&self) -> Result<(), String> {
        ends_with_answer("messages", &self.messages)
    }
}
