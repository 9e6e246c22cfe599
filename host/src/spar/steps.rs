//! The self-play steps as functions over records, shared by the single-step commands
//! (`spar-host judge|search|pairs`) and the run loop. Each returns its output and a stats object.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use std::path::Path;

use super::journal::JournaledExpander;
use super::judge::{JudgeItem, Judger, Judgment, Votes};
use super::pairs::{build_pairs, cap_pairs, filter_pairs, independent_pairs, pair_texts};
use super::refine::Refiner;
use super::repair::RefineMode;
use super::search::{Expander as _, Root, search};
use super::similarity::mean_similarity;
use crate::backend::sampler::{ChatSampler, SampleSettings, seed_of};
use crate::config::{NegativeChoice, PairSource, SearchConfig};
use crate::plugins::verifiers::Verifiers;
use crate::plugins::world_calls::SearchParams;
use crate::plugins::{FilterPlugin, SearchPlugin};
use crate::records::{JudgedSample, PairRecord, Sample, TreeRecord};

/// Add `extra`'s keys to the object `stats`.
pub fn merge(stats: &mut Value, extra: Value) {
    if let (Some(stats), Value::Object(extra)) = (stats.as_object_mut(), extra) {
        stats.extend(extra);
    }
}

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
    // A plugin fault on one sample leaves that sample unjudged (its verdict `None`, the error
    // kept in `fault`), never the others.
    let judgments = judger.judge_each(&items)?;
    let records: Vec<JudgedSample> = samples
        .into_iter()
        .zip(judgments)
        .map(|(sample, judgment)| {
            let judgment = judgment.unwrap_or_else(|fault| {
                tracing::warn!("sample {}: not judged: {fault}", sample.id);
                Judgment {
                    value: 0.0,
                    verdict: None,
                    votes: Votes::default(),
                    critique: String::new(),
                    fault: Some(fault),
                }
            });
            JudgedSample { sample, judgment }
        })
        .collect();
    let stats = judge_stats(&records, judger);
    Ok((records, stats))
}

/// Why the samples' generation stopped: `{stop, length (truncated), unknown}` and the share cut.
pub fn finish_stats<'a>(samples: impl Iterator<Item = &'a Sample>) -> Value {
    let (mut stop, mut length, mut unknown) = (0usize, 0usize, 0usize);
    for s in samples {
        match s.finish_reason {
            Some(crate::backend::FinishReason::Stop) => stop += 1,
            Some(crate::backend::FinishReason::Length) => length += 1,
            None => unknown += 1,
        }
    }
    let known = stop + length;
    json!({
        "stopped": stop,
        "truncated": length,
        "finish_unknown": unknown,
        "truncated_share": if known == 0 { 0.0 } else { length as f64 / known as f64 },
    })
}

/// The judge stage's stats line over its records.
pub fn judge_stats(records: &[JudgedSample], judger: &Judger<'_>) -> Value {
    let count = |v: Option<bool>| records.iter().filter(|r| r.judgment.verdict == v).count();
    let faults = records
        .iter()
        .filter(|r| r.judgment.fault.is_some())
        .count();
    let truncated = |v: Option<bool>| {
        records
            .iter()
            .filter(|r| r.judgment.verdict == v && r.sample.truncated())
            .count()
    };
    json!({
        "samples": records.len(),
        "truncated_samples": records.iter().filter(|r| r.sample.truncated()).count(),
        // Samples from files written before finish reasons were recorded (or by hand).
        "finish_unknown_samples": records.iter().filter(|r| r.sample.finish_reason.is_none()).count(),
        "truncated_passed": truncated(Some(true)),
        "truncated_negatives": truncated(Some(false)),
        "truncated_judgments": judger.stats.truncated_judgments,
        "judged": judger.stats.judged,
        "cache_hits": judger.stats.cache_hits,
        "passed": count(Some(true)),
        "negatives": count(Some(false)),
        "ties_dropped": count(None) - faults,
        "plugin_faults": faults,
        "pass_rate": if records.is_empty() { 0.0 } else { count(Some(true)) as f64 / records.len() as f64 },
        "llm_samples": judger.stats.llm_samples,
        "unparsed_verdicts": judger.stats.unparsed_verdicts,
        "tie_resamples": judger.stats.tie_resamples,
    })
}

/// How the search refines.
pub struct SearchSettings {
    pub params: SearchParams,
    pub refine: SampleSettings,
    pub retries: u32,
    pub seed: u64,
    /// Search failed samples that the token limit cut off too. Off by default: a cut answer
    /// fails constraints it might have kept, so its tree repairs the limit, not the answer.
    pub search_truncated: bool,
    /// Children by the refiner, by the verifiers' repairs, or both.
    pub refine_mode: RefineMode,
    /// Which failed sample of a prompt is searched.
    pub negative: NegativeChoice,
}

impl SearchSettings {
    /// The settings `[search]` (or the same command options) describes. `single`: no tree, one
    /// greedy refinement per failed sample (branch, select, depth and budget 1, temperature 0).
    pub fn from_config(config: &SearchConfig, single: bool, seed: u64) -> anyhow::Result<Self> {
        let count = |key: &str, value: i64| -> anyhow::Result<u32> {
            match u32::try_from(value) {
                Ok(v) if v >= 1 => Ok(if single { 1 } else { v }),
                _ => anyhow::bail!("search.{key}: must be at least 1, got {value}"),
            }
        };
        Ok(SearchSettings {
            params: SearchParams {
                branch: count("branch", config.branch)?,
                select: count("select", config.select)?,
                max_depth: count("max_depth", config.max_depth)?,
                pass_gate: config.pass_gate,
                budget: count("budget", config.budget)?,
            },
            refine: SampleSettings {
                temperature: if single { 0.0 } else { config.temperature },
                top_p: config.top_p,
                top_k: 0,
                max_new_tokens: config.max_new_tokens,
            },
            retries: config.retries,
            seed,
            search_truncated: config.search_truncated,
            refine_mode: config.refine,
            negative: config.negative,
        })
    }
}

/// SPaR: one failed sample per prompt goes to search, drawn at random (by `seed`), or with
/// `Lowest` the lowest-valued (first on ties). Unless `search_truncated`, samples cut by the
/// token limit are left out; the second value counts them.
pub fn pick_negatives(
    judged: &[JudgedSample],
    search_truncated: bool,
    choice: NegativeChoice,
    seed: u64,
) -> (Vec<&JudgedSample>, usize) {
    // A uniform draw per prompt: the failed sample with the smallest seeded key.
    let key = |r: &JudgedSample| seed_of(seed, &["negative", &r.sample.id.to_string()]);
    let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut truncated = 0;
    for (i, r) in judged.iter().enumerate() {
        if r.judgment.verdict != Some(false) {
            continue;
        }
        if r.sample.truncated() && !search_truncated {
            truncated += 1;
            continue;
        }
        let better = match (chosen.get(r.sample.prompt.as_str()), choice) {
            (None, _) => true,
            (Some(&j), NegativeChoice::Lowest) => r.judgment.value < judged[j].judgment.value,
            (Some(&j), NegativeChoice::Random) => key(r) < key(&judged[j]),
        };
        if better {
            chosen.insert(&r.sample.prompt, i);
        }
    }
    let mut picked: Vec<usize> = chosen.into_values().collect();
    picked.sort_unstable();
    (picked.into_iter().map(|i| &judged[i]).collect(), truncated)
}

/// Search every picked negative; returns the trees, the refiner's examples and stats. With a
/// `journal`, every round is recorded there and a rerun after a crash resumes from it.
/// `repairers` are the verifiers that repair, needed when the refine mode uses repair.
#[allow(clippy::too_many_arguments)]
pub fn search_negatives<'s>(
    judged: &[JudgedSample],
    strategy: &SearchPlugin,
    settings: &SearchSettings,
    sampler: &'s ChatSampler<'s>,
    judger: &mut Judger<'_>,
    repairers: Option<&'s Verifiers>,
    journal: Option<&Path>,
) -> anyhow::Result<(Vec<TreeRecord>, Value)> {
    if settings.refine_mode.uses_repair() && !repairers.is_some_and(Verifiers::any_repair) {
        anyhow::bail!(
            "refining by repair needs a verifier plugin that offers repair (verifier-ifeval does)"
        );
    }
    let (negatives, truncated_skipped) = pick_negatives(
        judged,
        settings.search_truncated,
        settings.negative,
        settings.seed,
    );
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
            finish_reason: r.sample.finish_reason,
            tokens: r.sample.tokens,
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
        truncated_refinements: 0,
        mode: settings.refine_mode,
        repairs: repairers.map(Verifiers::sessions),
        repaired_children: 0,
        unrepairable_nodes: 0,
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
    let truncated_resampled = refiner.truncated_refinements;
    let (repaired_children, unrepairable_nodes) =
        (refiner.repaired_children, refiner.unrepairable_nodes);
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
    let mean = if stats.batch_sizes.is_empty() {
        0.0
    } else {
        stats.batch_sizes.iter().sum::<usize>() as f64 / stats.batch_sizes.len() as f64
    };
    let truncated_children = records
        .iter()
        .flat_map(|r| &r.tree.nodes[1..])
        .filter(|n| n.truncated())
        .count();
    let stats = json!({
        "judged_samples": judged.len(),
        "negatives_searched": roots.len(),
        "truncated_negatives_not_searched": truncated_skipped,
        "search_truncated": settings.search_truncated,
        "truncated_refinements_resampled": truncated_resampled,
        "truncated_children_failed": truncated_children,
        "refine": settings.refine_mode,
        "repaired_children": repaired_children,
        "unrepairable_nodes": unrepairable_nodes,
        "trees_solved": stats.solved,
        "solved_by_depth": stats.solved_by_depth,
        "rounds": stats.rounds,
        "children_per_round": stats.batch_sizes,
        "mean_children_per_round": mean,
        "nodes_expanded": stats.nodes_expanded,
        "unparsed_refinements": unparsed,
        "failed_children": stats.invalid_children,
        "tree_errors": stats.tree_errors,
        "tree_drop_errors": stats.drop_errors,
        "generation_passes": sampler.passes.get() - passes_before,
        "rounds_replayed_from_journal": replayed,
    });
    Ok((records, stats))
}

/// Which pairs a pairs step makes.
#[derive(Clone, Copy, Debug)]
pub struct PairSettings {
    pub source: PairSource,
    /// At most this many pairs after filtering (0: all).
    pub max_pairs: usize,
    pub seed: u64,
}

/// Pairs from solved trees (`tree`, `single`) or from independent samples (`independent`),
/// filtered and capped. `judged` (the judge step's records) is needed for independent pairs;
/// given with any source, the stats also carry the similarity of the independent pairs the same
/// samples make, the paper's point of comparison.
pub fn make_pairs(
    trees: &[TreeRecord],
    judged: Option<&[JudgedSample]>,
    filters: &[(FilterPlugin, String)],
    settings: PairSettings,
) -> anyhow::Result<(Vec<PairRecord>, Value)> {
    let (kept, stats, _) = make_pairs_gated(trees, judged, filters, settings)?;
    Ok((kept, stats))
}

/// [`make_pairs`], also returning the ids of the pairs a filter dropped (not those the cap left
/// out): their trees' search output failed a quality gate.
pub fn make_pairs_gated(
    trees: &[TreeRecord],
    judged: Option<&[JudgedSample]>,
    filters: &[(FilterPlugin, String)],
    settings: PairSettings,
) -> anyhow::Result<(Vec<PairRecord>, Value, Vec<Value>)> {
    let independent = judged.map(|j| independent_pairs(j, settings.seed));
    let (built, truncated_chosen) = match settings.source {
        PairSource::Tree | PairSource::Single => build_pairs(trees)?,
        PairSource::Independent => (
            independent.clone().ok_or_else(|| {
                anyhow::anyhow!("independent pairs need the judged samples (judgments.jsonl)")
            })?,
            0,
        ),
    };
    let total = built.len();
    let built_ids: Vec<Value> = built.iter().map(|p| p.id.clone()).collect();
    let (kept, drops) = filter_pairs(built, filters)?;
    let dropped_ids: Vec<Value> = built_ids
        .into_iter()
        .filter(|id| !kept.iter().any(|p| &p.id == id))
        .collect();
    let filtered = kept.len();
    let kept = cap_pairs(kept, settings.max_pairs, settings.seed);
    let similarity = |pairs: &[PairRecord]| mean_similarity(pairs.iter().map(pair_texts));
    let stats = json!({
        "source": settings.source.name(),
        "trees": trees.len(),
        "unsolved_trees": trees.iter().filter(|t| !t.tree.solved).count(),
        "pairs_built": total,
        "truncated_chosen_skipped": truncated_chosen,
        "pairs_kept": kept.len(),
        "dropped": drops,
        "capped": filtered - kept.len(),
        "similarity_kept": similarity(&kept),
        "independent_pairs_available": independent.as_ref().map(Vec::len),
        "similarity_independent": independent.as_deref().and_then(similarity),
    });
    Ok((kept, stats, dropped_ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spar::judge::Judgment;
    use crate::spar::search::Votes;

    fn failed(id: &str, value: f64) -> JudgedSample {
        JudgedSample {
            sample: Sample {
                id: json!(id),
                prompt: "P".into(),
                response: id.into(),
                finish_reason: None,
                tokens: None,
                instruction_id_list: None,
                kwargs: None,
            },
            judgment: Judgment {
                value,
                verdict: Some(false),
                votes: Votes::default(),
                critique: String::new(),
                fault: None,
            },
        }
    }

    #[test]
    fn the_searched_negative_is_drawn_at_random_as_spar_does_or_the_lowest() {
        let judged = [failed("a", 0.4), failed("b", 0.2), failed("c", 0.3)];
        let pick = |choice, seed| {
            pick_negatives(&judged, false, choice, seed).0[0]
                .sample
                .response
                .clone()
        };
        assert_eq!(pick(NegativeChoice::Lowest, 0), "b");
        let drawn: std::collections::BTreeSet<String> = (0..32)
            .map(|seed| pick(NegativeChoice::Random, seed))
            .collect();
        assert_eq!(drawn.len(), 3, "{drawn:?}");
        assert_eq!(
            pick(NegativeChoice::Random, 7),
            pick(NegativeChoice::Random, 7)
        );
    }
}
