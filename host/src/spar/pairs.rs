//! Preference pairs from solved trees (chosen = the passing refinement, rejected = the original
//! failed response, same prompt), or, as the baseline the paper argues against, from independent
//! samples (a passing and a failing sample of the same prompt); pair-filter plugins with every
//! drop counted by reason. A text cut by the token limit is never a chosen answer.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::backend::sampler::seed_of;
use crate::engine::chat_template::Message;
use crate::plugins::FilterPlugin;
use crate::plugins::Message as WitMessage;
use crate::plugins::world_calls::{Decision, Pair};
use crate::records::{JudgedSample, PairRecord, TreeRecord};

/// A pair for every solved tree; the second value counts solved trees left out because their
/// chosen node was cut by the token limit (a `trees.jsonl` from elsewhere may have them). A
/// solved tree whose chosen node is not in the tree is an error naming the tree.
pub fn build_pairs(trees: &[TreeRecord]) -> anyhow::Result<(Vec<PairRecord>, usize)> {
    let mut pairs = Vec::new();
    let mut truncated = 0;
    for t in trees.iter().filter(|t| t.tree.solved) {
        let node = |id: Option<u32>, what: &str| {
            id.and_then(|id| t.tree.nodes.get(id as usize))
                .ok_or_else(|| anyhow::anyhow!("tree {}: solved, but its {what} is missing", t.id))
        };
        let chosen = node(t.tree.chosen, "chosen node")?;
        let root = node(Some(0), "root")?;
        if chosen.truncated() {
            truncated += 1;
            continue;
        }
        pairs.push(PairRecord {
            id: t.id.clone(),
            prompt: vec![Message::new("user", t.prompt.clone())],
            chosen: vec![Message::new("assistant", chosen.response.clone())],
            rejected: vec![Message::new("assistant", root.response.clone())],
            meta: json!({
                "source": "tree",
                "chosen_value": chosen.value,
                "rejected_value": root.value,
                "depth": chosen.depth,
                "chosen_node": chosen.id,
                "chosen_repaired": chosen.repaired,
                "chosen_finish_reason": chosen.finish_reason,
                "rejected_finish_reason": root.finish_reason,
                "chosen_tokens": chosen.tokens,
                "rejected_tokens": root.tokens,
                "instruction_id_list": t.instruction_id_list,
                "kwargs": t.kwargs,
            }),
        });
    }
    Ok((pairs, truncated))
}

/// The baseline pairs: per prompt (in order of first appearance), one passing sample as chosen
/// and one failing sample as rejected, each drawn by `seed`; samples cut by the token limit
/// take no part (a cut answer fails for the wrong reason, and is never chosen).
pub fn independent_pairs(judged: &[JudgedSample], seed: u64) -> Vec<PairRecord> {
    let mut prompts: Vec<&str> = Vec::new();
    let mut by_prompt: BTreeMap<&str, (Vec<&JudgedSample>, Vec<&JudgedSample>)> = BTreeMap::new();
    for r in judged.iter().filter(|r| !r.sample.truncated()) {
        let entry = by_prompt.entry(&r.sample.prompt).or_insert_with(|| {
            prompts.push(&r.sample.prompt);
            Default::default()
        });
        match r.judgment.verdict {
            Some(true) => entry.0.push(r),
            Some(false) => entry.1.push(r),
            None => {}
        }
    }
    let draw = |from: &[&'_ JudgedSample], what: &str, prompt: &str| -> usize {
        (seed_of(seed, &["independent", what, prompt]) % from.len() as u64) as usize
    };
    let mut pairs = Vec::new();
    for prompt in prompts {
        let (passing, failing) = &by_prompt[prompt];
        if passing.is_empty() || failing.is_empty() {
            continue;
        }
        let chosen = passing[draw(passing, "chosen", prompt)];
        let rejected = failing[draw(failing, "rejected", prompt)];
        pairs.push(PairRecord {
            id: chosen.sample.id.clone(),
            prompt: vec![Message::new("user", prompt)],
            chosen: vec![Message::new("assistant", chosen.sample.response.clone())],
            rejected: vec![Message::new("assistant", rejected.sample.response.clone())],
            meta: json!({
                "source": "independent",
                "chosen_value": chosen.judgment.value,
                "rejected_value": rejected.judgment.value,
                "chosen_sample": chosen.sample.id,
                "rejected_sample": rejected.sample.id,
                "chosen_finish_reason": chosen.sample.finish_reason,
                "rejected_finish_reason": rejected.sample.finish_reason,
                "chosen_tokens": chosen.sample.tokens,
                "rejected_tokens": rejected.sample.tokens,
                "instruction_id_list": chosen.sample.instruction_id_list,
                "kwargs": chosen.sample.kwargs,
            }),
        });
    }
    pairs
}

/// At most `max` pairs (0: all), a subset drawn by `seed`, in their original order; so two pair
/// sources can train on the same number of pairs.
pub fn cap_pairs(pairs: Vec<PairRecord>, max: usize, seed: u64) -> Vec<PairRecord> {
    if max == 0 || pairs.len() <= max {
        return pairs;
    }
    let mut order: Vec<(u64, usize)> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (seed_of(seed, &["cap", &p.id.to_string()]), i))
        .collect();
    order.sort_unstable();
    let mut keep: Vec<usize> = order[..max].iter().map(|&(_, i)| i).collect();
    keep.sort_unstable();
    let mut keep = keep.into_iter().peekable();
    pairs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.next_if_eq(i).is_some())
        .map(|(_, p)| p)
        .collect()
}

/// The texts of a pair: (chosen, rejected), the last turn of each.
pub fn pair_texts(p: &PairRecord) -> (&str, &str) {
    fn last(m: &[Message]) -> &str {
        m.last().map(|m| m.content.as_str()).unwrap_or("")
    }
    (last(&p.chosen), last(&p.rejected))
}

/// A pair's value of a meta field as a number.
pub fn meta_f64(p: &PairRecord, key: &str) -> f64 {
    p.meta.get(key).and_then(Value::as_f64).unwrap_or(0.0)
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
                chosen: pair_texts(p).0.to_string(),
                rejected: pair_texts(p).1.to_string(),
                chosen_value: meta_f64(p, "chosen_value"),
                rejected_value: meta_f64(p, "rejected_value"),
            })
            .collect();
        let decisions = plugin.session().filter(config, &wit)?;
        let mut next = Vec::with_capacity(kept.len());
        for (pair, decision) in kept.into_iter().zip(decisions) {
            match decision {
                Decision::Keep => next.push(pair),
                Decision::Drop(reason) => {
                    *drops
                        .entry(format!(
                            "{}: {}",
                            plugin.name(),
                            crate::plugins::sandbox::printable(&reason, 200)
                        ))
                        .or_default() += 1;
                }
            }
        }
        kept = next;
    }
    Ok((kept, drops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::FinishReason;
    use crate::records::Sample;
    use crate::spar::judge::Judgment;
    use crate::spar::search::{NodeRecord, Tree, Votes};

    fn judged(id: &str, prompt: &str, response: &str, pass: bool, cut: bool) -> JudgedSample {
        JudgedSample {
            sample: Sample {
                id: json!(id),
                prompt: prompt.into(),
                response: response.into(),
                finish_reason: Some(if cut {
                    FinishReason::Length
                } else {
                    FinishReason::Stop
                }),
                tokens: Some(3),
                instruction_id_list: None,
                kwargs: None,
            },
            judgment: Judgment {
                value: if pass { 1.0 } else { 0.0 },
                verdict: Some(pass),
                votes: Votes::default(),
                critique: String::new(),
                fault: None,
            },
        }
    }

    fn samples() -> Vec<JudgedSample> {
        vec![
            judged("a-0", "A", "a fails", false, false),
            judged("a-1", "A", "a passes", true, false),
            judged("a-2", "A", "a passes too", true, false),
            judged("a-3", "A", "a passes but was cut", true, true),
            judged("b-0", "B", "b fails", false, false),
            judged("b-1", "B", "b fails but was cut", false, true),
            judged("b-2", "B", "b passes but was cut", true, true),
            judged("c-0", "C", "c passes", true, false),
        ]
    }

    #[test]
    fn independent_pairs_put_a_passing_sample_over_a_failing_one_of_the_same_prompt() {
        let pairs = independent_pairs(&samples(), 3);
        // B's only passing sample was cut and C has no failing one: only A makes a pair.
        assert_eq!(pairs.len(), 1);
        let (chosen, rejected) = pair_texts(&pairs[0]);
        assert!(chosen == "a passes" || chosen == "a passes too", "{chosen}");
        assert_eq!(rejected, "a fails");
        assert_eq!(pairs[0].prompt[0].content, "A");
        assert_eq!(pairs[0].meta["source"], "independent");
        assert_eq!(pairs[0].meta["chosen_finish_reason"], "stop");
        // Deterministic by seed; other seeds draw the other passing sample.
        assert_eq!(independent_pairs(&samples(), 3), pairs);
        let drawn: std::collections::BTreeSet<String> = (0..16)
            .map(|seed| {
                pair_texts(&independent_pairs(&samples(), seed)[0])
                    .0
                    .to_string()
            })
            .collect();
        assert_eq!(drawn.len(), 2, "{drawn:?}");
    }

    fn node(id: u32, response: &str, value: f64, cut: bool) -> NodeRecord {
        NodeRecord {
            id,
            parent: (id > 0).then_some(0),
            depth: u32::from(id > 0),
            response: response.into(),
            critique: String::new(),
            value,
            valid: true,
            votes: Votes::default(),
            raw: String::new(),
            finish_reason: Some(if cut {
                FinishReason::Length
            } else {
                FinishReason::Stop
            }),
            tokens: None,
            repaired: false,
        }
    }

    fn tree(id: &str, chosen_cut: bool) -> TreeRecord {
        TreeRecord {
            id: json!(id),
            prompt: "Say hi with a P.S.".into(),
            instruction_id_list: None,
            kwargs: None,
            tree: Tree {
                nodes: vec![
                    node(0, "hi", 0.0, false),
                    node(1, "hi. P.S. bye", 1.0, chosen_cut),
                ],
                chosen: Some(1),
                solved: true,
                error: None,
            },
        }
    }

    #[test]
    fn a_truncated_refinement_is_never_chosen() {
        let (pairs, truncated) = build_pairs(&[tree("kept", false), tree("cut", true)]).unwrap();
        assert_eq!(truncated, 1);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].id, json!("kept"));
        assert_eq!(pairs[0].meta["source"], "tree");
        assert_eq!(pair_texts(&pairs[0]), ("hi. P.S. bye", "hi"));
    }

    #[test]
    fn a_solved_tree_without_its_chosen_node_is_an_error_not_a_panic() {
        let mut broken = tree("broken", false);
        broken.tree.nodes.truncate(1);
        let error = build_pairs(&[broken]).unwrap_err().to_string();
        assert!(
            error.contains("tree \"broken\"") && error.contains("chosen node"),
            "{error}"
        );
    }

    #[test]
    fn capping_keeps_a_seeded_subset_in_order() {
        let pairs: Vec<PairRecord> = (0..10)
            .map(|i| {
                build_pairs(&[tree(&i.to_string(), false)])
                    .unwrap()
                    .0
                    .remove(0)
            })
            .collect();
        let capped = cap_pairs(pairs.clone(), 4, 1);
        assert_eq!(capped.len(), 4);
        let positions: Vec<usize> = capped
            .iter()
            .map(|c| pairs.iter().position(|p| p == c).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert_eq!(cap_pairs(pairs.clone(), 4, 1), capped);
        assert_eq!(cap_pairs(pairs.clone(), 0, 1).len(), 10);
    }
}
