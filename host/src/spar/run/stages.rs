//! The self-play stages of one iteration as the run loop drives them: actor samples, then
//! judgments and trees, then pairs and the refiner's data. Each writes its output atomically and is
//! skipped when that output exists.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use super::plan::{Role, Run};
use super::resume::{judge_resumably, sample_resumably};
use crate::backend::sampler::{SampleSettings, seed_of};
use crate::config::PairSource;
use crate::engine::chat_template::Message;
use crate::records::{JudgedSample, Sample, TreeRecord};
use crate::spar::refiner_data::refiner_data;
use crate::spar::steps::{self, merge};
use crate::storage::{read_jsonl, write_jsonl};

/// The training prompts of `iteration` and the line the first is on: all of them, or its own
/// slice of `prompts.per_iteration` (the config check makes sure the file has enough).
fn iteration_prompts(run: &Run, iteration: usize) -> anyhow::Result<(Vec<Value>, usize)> {
    let cfg = &run.config;
    let path = run.resolve(&cfg.prompts.train);
    let prompts: Vec<Value> = read_jsonl(&path)?;
    let n = cfg.prompts.per_iteration;
    if n == 0 {
        return Ok((prompts, 1));
    }
    let start = (iteration - 1) * n;
    anyhow::ensure!(
        start + n <= prompts.len(),
        "prompts.per_iteration: iteration {iteration} needs lines {}..{} of {}, which has {}",
        start + 1,
        start + n,
        path.display(),
        prompts.len()
    );
    Ok((prompts[start..start + n].to_vec(), start + 1))
}

/// Step 1: the actor's samples (`samples.jsonl`): `actor.n` per prompt, each with its own seed.
pub fn actor_samples(run: &Run, iteration: usize, dir: &Path, actor: &Path) -> anyhow::Result<()> {
    let samples_path = dir.join("samples.jsonl");
    if samples_path.exists() {
        return Ok(());
    }
    let cfg = &run.config;
    let started = Instant::now();
    let prompts_path = run.resolve(&cfg.prompts.train);
    let (prompts, first_line) = iteration_prompts(run, iteration)?;
    let model = run.local_model(Role::Actor, actor)?;
    let sampler = run.sampler(Role::Actor, model.as_ref())?;
    let mut jobs = Vec::new();
    let mut meta = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let text = p.get("prompt").and_then(Value::as_str).with_context(|| {
            format!(
                "{}:{}: needs a `prompt` string",
                prompts_path.display(),
                first_line + i
            )
        })?;
        let id = p
            .get("id")
            .or_else(|| p.get("key"))
            .cloned()
            .unwrap_or(json!(first_line - 1 + i));
        for s in 0..cfg.actor.n {
            let seed = seed_of(
                cfg.seed,
                &[
                    "actor",
                    &iteration.to_string(),
                    &id.to_string(),
                    &s.to_string(),
                ],
            );
            jobs.push((vec![Message::new("user", text)], seed));
            meta.push((p, id.clone(), s));
        }
    }
    let settings = SampleSettings {
        temperature: cfg.actor.temperature,
        top_p: cfg.actor.top_p,
        top_k: 0,
        max_new_tokens: cfg.actor.max_new_tokens,
    };
    let outputs = sample_resumably(
        &sampler,
        &jobs,
        &settings,
        &dir.join("samples.partial.jsonl"),
    )?;
    let samples: Vec<Sample> = meta
        .into_iter()
        .zip(outputs)
        .map(|((p, id, s), output)| Sample {
            id: json!(format!(
                "{}-{s}",
                id.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| id.to_string())
            )),
            prompt: p["prompt"].as_str().unwrap_or_default().to_string(),
            response: output.text,
            finish_reason: output.finish_reason,
            tokens: output.tokens,
            instruction_id_list: p
                .get("instruction_id_list")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
            kwargs: p
                .get("kwargs")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
        })
        .collect();
    write_jsonl(&samples_path, &samples)?;
    let secs = started.elapsed().as_secs_f64();
    let mut stats = json!({"samples": samples.len(), "tokens": sampler.tokens.get(),
    "tokens_per_second": sampler.tokens.get() as f64 / secs.max(1e-9),
    "max_new_tokens": cfg.actor.max_new_tokens});
    merge(&mut stats, steps::finish_stats(samples.iter()));
    run.metrics.record(iteration, "samples", secs, stats)?;
    Ok(())
}

/// Steps 2-3: the refiner judges the samples (`judgments.jsonl`) and searches refinements of the
/// failed ones (`trees.jsonl`). The independent-pairs baseline searches nothing: its trees are
/// empty.
pub fn judge_and_search(
    run: &Run,
    iteration: usize,
    dir: &Path,
    refiner: &Path,
) -> anyhow::Result<()> {
    let cfg = &run.config;
    let samples_path = dir.join("samples.jsonl");
    let judgments_path = dir.join("judgments.jsonl");
    let trees_path = dir.join("trees.jsonl");
    if !judgments_path.exists() || !trees_path.exists() {
        let model = run.local_model(Role::Refiner, refiner)?;
        let sampler = run.sampler(Role::Refiner, model.as_ref())?;
        if !judgments_path.exists() {
            let started = Instant::now();
            let samples: Vec<Sample> = read_jsonl(&samples_path)?;
            let mut judger = run.judger(Some(&sampler), iteration as u64)?;
            let records = judge_resumably(
                samples,
                &mut judger,
                cfg.actor.batch_size * 4,
                &dir.join("judgments.partial.jsonl"),
            )?;
            let stats = steps::judge_stats(&records, &judger);
            write_jsonl(&judgments_path, &records)?;
            run.metrics
                .record(iteration, "judge", started.elapsed().as_secs_f64(), stats)?;
        }
        if cfg.pairs.source != PairSource::Independent && !trees_path.exists() {
            let started = Instant::now();
            let judged: Vec<JudgedSample> = read_jsonl(&judgments_path)?;
            let mut judger = run.judger(Some(&sampler), iteration as u64)?;
            let settings = steps::SearchSettings::from_config(
                &cfg.search,
                cfg.pairs.source == PairSource::Single,
                cfg.seed ^ iteration as u64,
            )?;
            let journal = dir.join("search.journal.jsonl");
            let (trees, stats) = steps::search_negatives(
                &judged,
                &run.strategy,
                &settings,
                &sampler,
                &mut judger,
                run.verifiers
                    .as_ref()
                    .filter(|_| cfg.search.refine.uses_repair()),
                Some(&journal),
            )?;
            write_jsonl(&trees_path, &trees)?;
            let _ = std::fs::remove_file(&journal);
            run.metrics
                .record(iteration, "search", started.elapsed().as_secs_f64(), stats)?;
        }
    }
    if cfg.pairs.source == PairSource::Independent
        && judgments_path.exists()
        && !trees_path.exists()
    {
        // The baseline searches nothing: no trees.
        write_jsonl::<TreeRecord>(&trees_path, &[])?;
        run.metrics.record(
            iteration,
            "search",
            0.0,
            json!({"skipped": "pairs.source = independent: no tree search"}),
        )?;
    }
    Ok(())
}

/// Step 4: preference pairs (`pairs.jsonl`) from the trees, or from the samples for the
/// independent baseline, through the configured filters; and the refiner's RFT data
/// (`refiner-sft.jsonl`) from the trees and judgments. A tree whose pair a filter dropped gives
/// the refiner nothing either: its search output failed a quality gate (counted as
/// `trees_gated_out_of_rft`). The baseline trains no refiner.
pub fn pairs(run: &Run, iteration: usize, dir: &Path) -> anyhow::Result<()> {
    let cfg = &run.config;
    let (judgments_path, trees_path) = (dir.join("judgments.jsonl"), dir.join("trees.jsonl"));
    let (pairs_path, sft_path) = (dir.join("pairs.jsonl"), dir.join("refiner-sft.jsonl"));
    if pairs_path.exists() && sft_path.exists() {
        return Ok(());
    }
    let started = Instant::now();
    let trees: Vec<TreeRecord> = read_jsonl(&trees_path)?;
    let judged: Vec<JudgedSample> = read_jsonl(&judgments_path)?;
    let seed = cfg.seed ^ iteration as u64;
    let (pairs, mut stats, gated) = steps::make_pairs_gated(
        &trees,
        Some(&judged),
        &run.filters,
        steps::PairSettings {
            source: cfg.pairs.source,
            max_pairs: cfg.pairs.max_pairs,
            seed,
        },
    )?;
    let examples = if cfg.pairs.source == PairSource::Independent {
        Vec::new()
    } else {
        let kept_trees: Vec<TreeRecord> = trees
            .into_iter()
            .filter(|t| !gated.contains(&t.id))
            .collect();
        let (examples, data_stats) = refiner_data(
            &kept_trees,
            &judged,
            &mut run.judge_session(),
            &cfg.rft,
            seed,
        )?;
        merge(&mut stats, data_stats);
        stats["trees_gated_out_of_rft"] = json!(gated.len());
        examples
    };
    // The refiner's data first: a stop between the two writes reruns this deterministic stage.
    write_jsonl(&sft_path, &examples)?;
    write_jsonl(&pairs_path, &pairs)?;
    run.metrics
        .record(iteration, "pairs", started.elapsed().as_secs_f64(), stats)?;
    Ok(())
}
