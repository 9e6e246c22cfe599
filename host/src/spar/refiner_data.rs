//! The refiner's RFT data, mixed as the authors' `process_rft_data` does
//! (thu-coai/SPaR `src/process_data.py`, `src/ToT/base.py::getCritiqueRFT`):
//! - **refinements**: the final (successful) edge of each solved tree, as the refine conversation
//!   (judge prompt on the parent, its critique, the refine request, the raw refinement);
//! - **positive / negative critiques**: from each tree, one critique drawn among its non-root nodes
//!   whose LLM vote was split on the Yes side (0.5 < value < 1) and one on the No side
//!   (0 < value < 0.5); verifier judgments have no votes and give none;
//! - **judgments of actor samples** whose votes disagreed (both a Yes and a No), with the majority's
//!   critique as the target, split by verdict.
//!
//! Each kind is shuffled by the seed and capped ([`RftCaps`], the authors' 4000/1500/1000/500/2500),
//! then the kinds are concatenated in that order keeping the first example of each first user turn
//! (the authors' dedup: a refinement's first turn is the judge prompt of its parent, so the parent's
//! critique is not trained twice), and the mix is shuffled.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::search::NodeRecord;
use crate::backend::sampler::seed_of;
pub use crate::config::RftCaps;
use crate::engine::chat_template::Message;
use crate::plugins::Message as WitMessage;
use crate::plugins::Session;
use crate::plugins::bindings::judge::Judge as JudgeWorld;
use crate::records::{JudgedSample, SftRecord, TreeRecord};

/// The kinds of refiner example, in the order the mix takes them (earlier kinds win the dedup).
const KINDS: [&str; 5] = [
    "refinement",
    "positive_critique",
    "negative_critique",
    "no_judgment",
    "yes_judgment",
];

fn to_messages(wit: Vec<WitMessage>) -> Vec<Message> {
    wit.into_iter().map(Message::from).collect()
}

/// The examples one tree offers, by kind (before caps and dedup).
pub fn tree_examples(
    tree: &TreeRecord,
    judge: &mut Session<JudgeWorld>,
    seed: u64,
) -> anyhow::Result<Vec<(&'static str, SftRecord)>> {
    let t = &tree.tree;
    let node = |id: u32| {
        t.nodes
            .get(id as usize)
            .ok_or_else(|| anyhow::anyhow!("tree {}: node {id} is missing", tree.id))
    };
    let mut examples = Vec::new();
    if t.solved {
        let last = node(t.chosen.unwrap_or(0))?;
        if let Some(parent) = last.parent
            && !last.raw.is_empty()
        {
            let parent = node(parent)?;
            let mut messages = to_messages(judge.refine_prompt(
                &tree.prompt,
                &parent.response,
                &parent.critique,
            )?);
            messages.push(Message::new("assistant", last.raw.clone()));
            examples.push((
                KINDS[0],
                SftRecord {
                    messages,
                    meta: json!({"kind": KINDS[0], "tree": tree.id, "node": last.id}),
                },
            ));
        }
    }
    // One critique per side, drawn by the seed among the tree's split-vote children. The side is
    // the authors' value test (0.5 < value < 1 or 0 < value < 0.5), read on the LLM votes so that
    // a verifier's share of constraints passed (no votes) never passes for a split vote.
    let split = |n: &&NodeRecord, yes_side: bool| {
        let v = &n.votes;
        n.parent.is_some()
            && !n.critique.is_empty()
            && v.yes > 0
            && v.no > 0
            && if yes_side {
                v.yes > v.no && n.value > 0.5
            } else {
                v.no > v.yes && n.value < 0.5
            }
    };
    for (kind, yes_side) in [(KINDS[1], true), (KINDS[2], false)] {
        let candidates: Vec<&NodeRecord> = t.nodes.iter().filter(|n| split(n, yes_side)).collect();
        let Some(drawn) = candidates
            .iter()
            .min_by_key(|n| seed_of(seed, &[kind, &tree.id.to_string(), &n.id.to_string()]))
        else {
            continue;
        };
        let mut messages = to_messages(judge.judge_prompt(&tree.prompt, &drawn.response)?);
        messages.push(Message::new("assistant", drawn.critique.clone()));
        examples.push((
            kind,
            SftRecord {
                messages,
                meta: json!({"kind": kind, "tree": tree.id, "node": drawn.id}),
            },
        ));
    }
    Ok(examples)
}

/// The judgment examples of actor samples whose votes disagreed (the authors' `d_0`/`d_1`).
pub fn judgment_examples(
    judged: &[JudgedSample],
    judge: &mut Session<JudgeWorld>,
) -> anyhow::Result<Vec<(&'static str, SftRecord)>> {
    let mut examples = Vec::new();
    for j in judged {
        let votes = &j.judgment.votes;
        let (Some(verdict), true) = (j.judgment.verdict, votes.yes > 0 && votes.no > 0) else {
            continue;
        };
        // A hybrid judgment overruled by the verifiers is not the votes' verdict.
        if verdict != (votes.yes > votes.no) {
            continue;
        }
        if j.judgment.critique.is_empty() {
            continue;
        }
        let kind = if verdict { KINDS[4] } else { KINDS[3] };
        let mut messages = to_messages(judge.judge_prompt(&j.sample.prompt, &j.sample.response)?);
        messages.push(Message::new("assistant", j.judgment.critique.clone()));
        examples.push((
            kind,
            SftRecord {
                messages,
                meta: json!({"kind": kind, "sample": j.sample.id}),
            },
        ));
    }
    Ok(examples)
}

/// Shuffle each kind, cap it, concatenate in [`KINDS`] order keeping the first example of each
/// first user turn, and shuffle the mix; all by `seed`. Returns the mix and its counts by kind
/// (`available`, `capped_out`, `duplicates_dropped`, `kept`).
pub fn mix(
    candidates: Vec<(&'static str, SftRecord)>,
    caps: &RftCaps,
    seed: u64,
) -> (Vec<SftRecord>, Value) {
    let key = |kind: &str, e: &SftRecord| {
        seed_of(
            seed,
            &[
                kind,
                &serde_json::to_string(&e.messages).unwrap_or_default(),
            ],
        )
    };
    let mut by_kind: BTreeMap<&str, Vec<SftRecord>> = BTreeMap::new();
    for (kind, e) in candidates {
        by_kind.entry(kind).or_default().push(e);
    }
    let caps_of = [
        caps.max_refinements,
        caps.max_positive_critiques,
        caps.max_negative_critiques,
        caps.max_no_judgments,
        caps.max_yes_judgments,
    ];
    let mut seen: HashSet<String> = HashSet::new();
    let mut mixed = Vec::new();
    let mut counts = serde_json::Map::new();
    for (kind, cap) in KINDS.iter().zip(caps_of) {
        let mut examples = by_kind.remove(kind).unwrap_or_default();
        let available = examples.len();
        examples.sort_by_cached_key(|e| key(kind, e));
        if cap > 0 {
            examples.truncate(cap);
        }
        let capped_out = available - examples.len();
        let mut duplicates = 0;
        let mut kept = 0;
        for e in examples {
            let first_user = e
                .messages
                .iter()
                .find(|m| m.role == "user")
                .map(|m| m.content.clone())
                .unwrap_or_default();
            if seen.insert(first_user) {
                mixed.push(e);
                kept += 1;
            } else {
                duplicates += 1;
            }
        }
        counts.insert(
            kind.to_string(),
            json!({"available": available, "capped_out": capped_out,
                   "duplicates_dropped": duplicates, "kept": kept}),
        );
    }
    mixed.sort_by_cached_key(|e| key("mix", e));
    (mixed, Value::Object(counts))
}

/// The whole RFT mix of one iteration: every tree's examples and the actor samples' split-vote
/// judgments, mixed by [`mix`]. The stats give the counts by kind and the total.
pub fn refiner_data(
    trees: &[TreeRecord],
    judged: &[JudgedSample],
    judge: &mut Session<JudgeWorld>,
    caps: &RftCaps,
    seed: u64,
) -> anyhow::Result<(Vec<SftRecord>, Value)> {
    let mut candidates = Vec::new();
    for tree in trees {
        candidates.extend(tree_examples(tree, judge, seed)?);
    }
    candidates.extend(judgment_examples(judged, judge)?);
    let (mixed, by_kind) = mix(candidates, caps, seed);
    let stats = json!({"refiner_examples": mixed.len(), "refiner_examples_by_kind": by_kind});
    Ok((mixed, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(user: &str, answer: &str) -> SftRecord {
        SftRecord {
            messages: vec![
                Message::new("user", user),
                Message::new("assistant", answer),
            ],
            meta: json!({}),
        }
    }

    #[test]
    fn the_mix_caps_each_kind_and_keeps_the_first_of_each_first_turn() {
        let mut candidates = Vec::new();
        for i in 0..5 {
            candidates.push(("refinement", example(&format!("judge {i}"), "refined")));
        }
        // Two critiques whose judge prompt a refinement already opened: dropped as duplicates.
        candidates.push(("negative_critique", example("judge 0", "No")));
        candidates.push(("negative_critique", example("judge 1", "No")));
        for i in 0..4 {
            candidates.push(("yes_judgment", example(&format!("sample {i}"), "Yes")));
        }
        let caps = RftCaps {
            max_refinements: 0,
            max_yes_judgments: 3,
            ..RftCaps::default()
        };
        let (mixed, counts) = mix(candidates.clone(), &caps, 7);
        assert_eq!(mixed.len(), 5 + 3);
        assert_eq!(counts["refinement"]["kept"], 5);
        assert_eq!(counts["negative_critique"]["duplicates_dropped"], 2);
        assert_eq!(counts["yes_judgment"]["capped_out"], 1);
        let firsts: HashSet<&str> = mixed
            .iter()
            .map(|e| e.messages[0].content.as_str())
            .collect();
        assert_eq!(firsts.len(), mixed.len());
        // Deterministic by seed; the order is shuffled, not grouped by kind.
        assert_eq!(mix(candidates.clone(), &caps, 7).0, mixed);
        let orders: HashSet<Vec<String>> = (0..8)
            .map(|seed| {
                mix(candidates.clone(), &caps, seed)
                    .0
                    .iter()
                    .map(|e| e.messages[0].content.clone())
                    .collect()
            })
            .collect();
        assert!(orders.len() > 1);
    }
}
