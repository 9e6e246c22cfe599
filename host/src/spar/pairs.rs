//! Preference pairs from solved trees (chosen = the passing refinement, rejected = the original
//! failed response, same prompt), pair-filter plugins with every drop counted by reason, and the
//! refiner's training examples from the successful search trajectories.

use std::collections::BTreeMap;

use serde_json::json;

use super::records::{PairRecord, SftRecord, TreeRecord};
use crate::engine::chat_template::Message;
use crate::plugins::FilterPlugin;
use crate::plugins::Message as WitMessage;
use crate::plugins::Session;
use crate::plugins::bindings::judge::Judge as JudgeWorld;
use crate::plugins::world_calls::{Decision, Pair};

/// A pair for every solved tree.
pub fn build_pairs(trees: &[TreeRecord]) -> Vec<PairRecord> {
    trees
        .iter()
        .filter(|t| t.tree.solved)
        .map(|t| {
            let chosen = &t.tree.nodes[t.tree.chosen.expect("solved") as usize];
            let root = &t.tree.nodes[0];
            PairRecord {
                id: t.id.clone(),
                prompt: vec![Message::new("user", t.prompt.clone())],
                chosen: vec![Message::new("assistant", chosen.response.clone())],
                rejected: vec![Message::new("assistant", root.response.clone())],
                meta: json!({
                    "chosen_value": chosen.value,
                    "rejected_value": root.value,
                    "depth": chosen.depth,
                    "chosen_node": chosen.id,
                }),
            }
        })
        .collect()
}

/// Run every filter in order; returns the kept pairs and the drops by reason.
pub fn filter_pairs(
    pairs: Vec<PairRecord>,
    filters: &[(FilterPlugin, String)],
) -> anyhow::Result<(Vec<PairRecord>, BTreeMap<String, usize>)> {
    let mut kept = pairs;
    let mut drops: BTreeMap<String, usize> = BTreeMap::new();
    for (plugin, config) in filters {
        let wit: Vec<Pair> = kept
            .iter()
            .map(|p| Pair {
                id: p.id.to_string(),
                prompt: p
                    .prompt
                    .iter()
                    .map(|m| WitMessage {
                        role: m.role.clone(),
                        content: m.content.clone(),
                    })
                    .collect(),
                chosen: p
                    .chosen
                    .last()
                    .map(|m| m.content.clone())
                    .unwrap_or_default(),
                rejected: p
                    .rejected
                    .last()
                    .map(|m| m.content.clone())
                    .unwrap_or_default(),
                chosen_value: p.meta["chosen_value"].as_f64().unwrap_or(0.0),
                rejected_value: p.meta["rejected_value"].as_f64().unwrap_or(0.0),
            })
            .collect();
        let decisions = plugin.session().filter(config, &wit)?;
        let mut next = Vec::with_capacity(kept.len());
        for (pair, decision) in kept.into_iter().zip(decisions) {
            match decision {
                Decision::Keep => next.push(pair),
                Decision::Drop(reason) => {
                    *drops
                        .entry(format!("{}: {reason}", plugin.name()))
                        .or_default() += 1;
                }
            }
        }
        kept = next;
    }
    Ok((kept, drops))
}

fn to_messages(wit: Vec<WitMessage>) -> Vec<Message> {
    wit.into_iter()
        .map(|m| Message::new(&m.role, m.content))
        .collect()
}

/// The refiner's examples from one solved tree: along the path from the root to the chosen
/// node, each failed node's critique (the search confirmed it: a better refinement was found)
/// and each refinement that led on; then the chosen node's passing judgment.
pub fn refiner_examples(
    tree: &TreeRecord,
    judge: &mut Session<JudgeWorld>,
) -> anyhow::Result<Vec<SftRecord>> {
    let t = &tree.tree;
    if !t.solved {
        return Ok(Vec::new());
    }
    let mut path = vec![t.chosen.expect("solved") as usize];
    while let Some(parent) = t.nodes[*path.last().expect("non-empty")].parent {
        path.push(parent as usize);
    }
    path.reverse();
    let mut examples = Vec::new();
    for pair in path.windows(2) {
        let (parent, child) = (&t.nodes[pair[0]], &t.nodes[pair[1]]);
        let mut judging = to_messages(judge.judge_prompt(&tree.prompt, &parent.response)?);
        judging.push(Message::new("assistant", parent.critique.clone()));
        examples.push(SftRecord {
            messages: judging,
            meta: json!({"kind": "judgment", "tree": tree.id, "node": parent.id, "verdict": false}),
        });
        if !child.raw.is_empty() {
            let mut refining = to_messages(judge.refine_prompt(
                &tree.prompt,
                &parent.response,
                &parent.critique,
            )?);
            refining.push(Message::new("assistant", child.raw.clone()));
            examples.push(SftRecord {
                messages: refining,
                meta: json!({"kind": "refinement", "tree": tree.id, "node": child.id}),
            });
        }
    }
    let chosen = &t.nodes[*path.last().expect("non-empty")];
    if judge.parse_judgment(&chosen.critique)? == Some(true) {
        let mut judging = to_messages(judge.judge_prompt(&tree.prompt, &chosen.response)?);
        judging.push(Message::new("assistant", chosen.critique.clone()));
        examples.push(SftRecord {
            messages: judging,
            meta: json!({"kind": "judgment", "tree": tree.id, "node": chosen.id, "verdict": true}),
        });
    }
    Ok(examples)
}
