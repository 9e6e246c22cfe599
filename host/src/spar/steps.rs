//! The self-play steps as functions over records, shared by the single-step commands
//! (`spar-host judge|search|pairs`) and the run loop. Each returns its output and a stats object.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use std::path::Path;

use super::journal::JournaledExpander;
use super::judge::{JudgeItem, Judger};
use super::pairs::{build_pairs, filter_pairs, refiner_examples};
use super::records::{JudgedSample, PairRecord, Sample, SftRecord, TreeRecord};
use super::refine::Refiner;
use super::sampler::{ChatSampler, SampleSettings};
use super::search::{Expander as _, Root, search};
use crate::plugins::world_calls::SearchParams;
use crate::plugins::{FilterPlugin, SearchPlugin};

/// Judge every sample.
pub fn judge_samples(
    samples: Vec<Sample>,
    judger: &mut Judger<'_>,
) -> anyhow::Result<(Vec<JudgedSample>, Value)> {
    let items = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(JudgeItem {
                instruction: s.prompt.clone(),
                response: s.response.clone(),
                constraints: s
                    .constraints()
                    .map_err(|e| anyhow::anyhow!("sample {}: {e}", i + 1))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let judgments = judger.judge(&items)?;
    let records: Vec<JudgedSample> = samples
        .into_iter()
        .zip(judgments)
        .map(|(sample, judgment)| JudgedSample { sample, judgment })
        .collect();
    let stats = judge_stats(&records, judger);
    Ok((records, stats))
}

/// The judge stage's stats line over its records.
pub fn judge_stats(records: &[JudgedSample], judger: &Judger<'_>) -> Value {
    let count = |v: Option<bool>| records.iter().filter(|r| r.judgment.verdict == v).count();
    json!({
        "samples": records.len(),
        "judged": judger.stats.judged,
        "cache_hits": judger.stats.cache_hits,
        "passed": count(Some(true)),
        "negatives": count(Some(false)),
        "ties_dropped": count(None),
        "pass_rate": if records.is_empty() { 0.0 } else { count(Some(true)) as f64 / records.len() as f64 },
        "llm_samples": judger.stats.llm_samples,
        "unparsed_verdicts": judger.stats.unparsed_verdicts,
    })
}

/// How the search refines.
pub struct SearchSettings {
    pub params: SearchParams,
    pub refine: SampleSettings,
    pub retries: u32,
    pub seed: u64,
}

/// SPaR: one failed sample per prompt (the lowest-valued, first on ties) goes to search.
pub fn pick_negatives(judged: &[JudgedSample]) -> Vec<&JudgedSample> {
    let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in judged.iter().enumerate() {
        if r.judgment.verdict != Some(false) {
            continue;
        }
        let better = match chosen.get(r.sample.prompt.as_str()) {
            Some(&j) => r.judgment.value < judged[j].judgment.value,
            None => true,
        };
        if better {
            chosen.insert(&r.sample.prompt, i);
        }
    }
    let mut picked: Vec<usize> = chosen.into_values().collect();
    picked.sort_unstable();
    picked.into_iter().map(|i| &judged[i]).collect()
}

/// Search every picked negative; returns the trees, the refiner's examples and stats. With a
/// `journal`, every round is recorded there and a rerun after a crash resumes from it.
pub fn search_negatives<'s>(
    judged: &[JudgedSample],
    strategy: &SearchPlugin,
    settings: &SearchSettings,
    sampler: &'s ChatSampler<'s>,
    judger: &mut Judger<'_>,
    journal: Option<&Path>,
) -> anyhow::Result<(Vec<TreeRecord>, Vec<SftRecord>, Value)> {
    let negatives = pick_negatives(judged);
    let constraints: Vec<_> = negatives
        .iter()
        .map(|r| r.sample.constraints())
        .collect::<anyhow::Result<_>>()?;
    let roots: Vec<Root> = negatives
        .iter()
        .map(|r| Root {
            instruction: r.sample.prompt.clone(),
            response: r.sample.response.clone(),
            critique: r.judgment.critique.clone(),
            value: r.judgment.value,
            votes: r.judgment.votes,
        })
        .collect();
    let params = SearchParams {
        pass_gate: judger.pass_gate(settings.params.pass_gate),
        ..settings.params
    };
    let passes_before = sampler.passes.get();
    let mut refiner = Refiner {
        sampler,
        judger: &mut *judger,
        settings: settings.refine.clone(),
        retries: settings.retries,
        seed: settings.seed,
        constraints: &constraints,
        unparsed_refinements: 0,
    };
    let (trees, stats, unparsed, replayed) = match journal {
        Some(path) => {
            let mut journaled = JournaledExpander::open(path, &mut refiner)?;
            let (trees, stats) = search(strategy, &roots, params, &mut journaled)?;
            (trees, stats, journaled.unparsed(), journaled.replayed)
        }
        None => {
            let (trees, stats) = search(strategy, &roots, params, &mut refiner)?;
            (trees, stats, refiner.unparsed_refinements, 0)
        }
    };
    let records: Vec<TreeRecord> = negatives
        .iter()
        .zip(trees)
        .map(|(r, tree)| TreeRecord {
            id: r.sample.id.clone(),
            prompt: r.sample.prompt.clone(),
            instruction_id_list: r.sample.instruction_id_list.clone(),
            kwargs: r.sample.kwargs.clone(),
            tree,
        })
        .collect();
    let mut examples = Vec::new();
    for record in &records {
        examples.extend(refiner_examples(record, judger.judge_session())?);
    }
    let mean = if stats.batch_sizes.is_empty() {
        0.0
    } else {
        stats.batch_sizes.iter().sum::<usize>() as f64 / stats.batch_sizes.len() as f64
    };
    let stats = json!({
        "judged_samples": judged.len(),
        "negatives_searched": roots.len(),
        "trees_solved": stats.solved,
        "solved_by_depth": stats.solved_by_depth,
        "rounds": stats.rounds,
        "children_per_round": stats.batch_sizes,
        "mean_children_per_round": mean,
        "nodes_expanded": stats.nodes_expanded,
        "unparsed_refinements": unparsed,
        "failed_children": stats.invalid_children,
        "tree_errors": stats.tree_errors,
        "generation_passes": sampler.passes.get() - passes_before,
        "rounds_replayed_from_journal": replayed,
        "refiner_examples": examples.len(),
    });
    Ok((records, examples, stats))
}

/// Pairs from solved trees, filtered.
pub fn make_pairs(
    trees: &[TreeRecord],
    filters: &[(FilterPlugin, String)],
) -> anyhow::Result<(Vec<PairRecord>, Value)> {
    let built = build_pairs(trees);
    let total = built.len();
    let (kept, drops) = filter_pairs(built, filters)?;
    let stats = json!({
        "trees": trees.len(),
        "unsolved_trees": trees.iter().filter(|t| !t.tree.solved).count(),
        "pairs_built": total,
        "pairs_kept": kept.len(),
        "dropped": drops,
    });
    Ok((kept, stats))
}
