//! Searched trees (`trees.jsonl`): the failed sample at the root, every judged refinement below.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Votes;
use crate::backend::FinishReason;
use crate::storage::jsonl::Validate;

/// One node of a search tree as stored in `trees.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: u32,
    pub parent: Option<u32>,
    pub depth: u32,
    /// The response (for the root, the original failed response); empty when unparseable.
    pub response: String,
    /// The judge's critique agreeing with its majority verdict.
    pub critique: String,
    pub value: f64,
    /// False when the refinement could not be parsed after the retries.
    pub valid: bool,
    pub votes: Votes,
    /// The refiner's whole answer (reflection and markers) that produced this node, kept as
    /// training data for the refiner.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raw: String,
    /// Why the generation behind this node stopped (`length`: cut by the token limit); absent
    /// when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Tokens that generation produced, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// Made by a verifier's repair of the parent, not by the refiner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repaired: bool,
}

impl NodeRecord {
    /// Cut off by the token limit: never a chosen answer.
    pub fn truncated(&self) -> bool {
        self.finish_reason == Some(FinishReason::Length)
    }
}

/// How one tree ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<NodeRecord>,
    /// The node the strategy picked.
    pub chosen: Option<u32>,
    /// Whether the picked node is a refinement that passes the gate.
    pub solved: bool,
    /// Why the tree ended abnormally (a plugin fault), if it did.
    pub error: Option<String>,
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

impl Validate for TreeRecord {
    /// Node `i` has id `i`; each parent is an earlier node; the chosen node exists.
    fn validate(&self) -> Result<(), String> {
        let nodes = &self.tree.nodes;
        if nodes.is_empty() {
            return Err(format!("tree {} has no nodes", self.id));
        }
        for (i, n) in nodes.iter().enumerate() {
            if n.id as usize != i {
                return Err(format!("tree {}: node {i} has id {}", self.id, n.id));
            }
            if n.parent.is_some_and(|p| p as usize >= i) {
                return Err(format!(
                    "tree {}: node {i}'s parent {} is not an earlier node",
                    self.id,
                    n.parent.unwrap_or_default()
                ));
            }
        }
        if let Some(chosen) = self.tree.chosen
            && chosen as usize >= nodes.len()
        {
            return Err(format!(
                "tree {}: the chosen node {chosen} is not in the tree",
                self.id
            ));
        }
        Ok(())
    }
}
