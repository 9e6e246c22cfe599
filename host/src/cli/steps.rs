//! `spar-host judge`, `spar-host search` and `spar-host pairs`: the self-play steps, each alone on
//! JSONL files, each ending with a stats line on stderr.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::generator::{GeneratorArgs, Loaded};
use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::config::{JudgeConfig, PairSource, SearchConfig};
use crate::plugins::verifiers::Verifiers;
use crate::plugins::{FilterPlugin, JudgePlugin, Limits, PluginHost, SearchPlugin, World, builtin};
use crate::records::{JudgedSample, Sample, TreeRecord};
use crate::spar::judge::{JudgeMode, Judger};
use crate::spar::refiner_data::{RftCaps, refiner_data};
use crate::spar::steps::{self, merge};
use crate::storage::{read_jsonl, write_jsonl};

/// The refiner model and how it judges.
#[derive(Args, Clone)]
pub struct JudgeArgs {
    /// The refiner (`--model` or `--server`; not needed with `--mode verifier` for `judge`).
    #[command(flatten)]
    generator: GeneratorArgs,
    /// The `[judge]` options of a run config, with the same defaults.
    #[command(flatten)]
    judge: JudgeConfig,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn load_model(args: &JudgeArgs) -> anyhow::Result<Option<Loaded>> {
    if !args.generator.is_given() && args.judge.mode != JudgeMode::Verifier {
        anyhow::bail!(
            "--model or --server is required with --mode {:?}",
            args.judge.mode
        );
    }
    args.generator.load()
}

fn plugins(
    args: &JudgeArgs,
    host: &PluginHost,
) -> anyhow::Result<(JudgePlugin, Option<Verifiers>)> {
    let judge_path = match &args.judge.plugin {
        Some(p) => p.clone(),
        None => builtin::default_for(World::Judge)?,
    };
    let judge: JudgePlugin = host.load(&judge_path)?;
    let verifiers = if args.judge.mode == JudgeMode::Llm {
        None
    } else {
        Some(Verifiers::load(host, &verifier_paths(args)?)?)
    };
    Ok((judge, verifiers))
}

/// `--verifier` paths, or the built-in verifier-ifeval.
fn verifier_paths(args: &JudgeArgs) -> anyhow::Result<Vec<PathBuf>> {
    Ok(if args.judge.verifiers.is_empty() {
        vec![builtin::default_for(World::Verifier)?]
    } else {
        args.judge.verifiers.clone()
    })
}

fn stats_line(step: &str, stats: serde_json::Value) {
    eprintln!("stats {step}: {stats}");
}

#[derive(Args)]
pub struct JudgeCommand {
    /// Samples: `{"id", "prompt", "response"}` (+ `instruction_id_list`, `kwargs`) per line.
    #[arg(long)]
    input: PathBuf,
    /// Where judgments.jsonl goes.
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    judge: JudgeArgs,
}

pub fn judge(command: JudgeCommand) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let samples: Vec<Sample> = read_jsonl(&command.input)?;
    let host = PluginHost::new(Limits::default())?;
    let (judge_plugin, verifiers) = plugins(&command.judge, &host)?;
    let loaded = load_model(&command.judge)?;
    // `None` without a model or server: verifier-only judging.
    let sampler = command.judge.generator.sampler(loaded.as_ref())?;
    let mut judger = Judger::from_config(
        &command.judge.judge,
        command.judge.seed,
        sampler.as_ref(),
        &judge_plugin,
        verifiers.as_ref(),
    )?;
    let (records, mut stats) = steps::judge_samples(samples, &mut judger)
        .with_context(|| format!("{}", command.input.display()))?;
    write_jsonl(&command.output, &records)?;
    stats["generation_passes"] = json!(sampler.as_ref().map_or(0, |s| s.passes.get()));
    stats["seconds"] = json!(started.elapsed().as_secs_f64());
    stats_line("judge", stats);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct SearchCommand {
    /// judgments.jsonl from `spar-host judge`.
    #[arg(long)]
    input: PathBuf,
    /// Where trees.jsonl goes.
    #[arg(long)]
    output: PathBuf,
    /// Where the refiner's training examples (refiner-sft.jsonl) go.
    #[arg(long)]
    sft_output: Option<PathBuf>,
    /// The `[search]` options of a run config, with the same defaults.
    #[command(flatten)]
    search: SearchConfig,
    /// No tree search: one greedy refinement per failed sample (branch, depth and budget 1,
    /// temperature 0).
    #[arg(long)]
    single: bool,
    #[command(flatten)]
    judge: JudgeArgs,
}

pub fn search_command(command: SearchCommand) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let judged: Vec<JudgedSample> = read_jsonl(&command.input)?;
    let host = PluginHost::new(Limits::default())?;
    let (judge_plugin, verifiers) = plugins(&command.judge, &host)?;
    let repair_verifiers: Option<Verifiers>;
    let strategy: SearchPlugin = host.load(&match &command.search.plugin {
        Some(p) => p.clone(),
        None => builtin::default_for(World::SearchStrategy)?,
    })?;
    if !command.judge.generator.is_given() {
        anyhow::bail!("--model or --server is required: refinements are generated by the refiner");
    }
    let loaded = load_model(&command.judge)?;
    let sampler = command
        .judge
        .generator
        .sampler(loaded.as_ref())?
        .expect("a generator was given");
    let mut judger = Judger::from_config(
        &command.judge.judge,
        command.judge.seed,
        Some(&sampler),
        &judge_plugin,
        verifiers.as_ref(),
    )?;
    let settings =
        steps::SearchSettings::from_config(&command.search, command.single, command.judge.seed)?;
    let repairers = match (&verifiers, command.search.refine.uses_repair()) {
        (_, false) => None,
        (Some(v), true) => Some(v),
        (None, true) => {
            // An LLM judge loads no verifiers; repairs still come from them.
            repair_verifiers = Some(Verifiers::load(&host, &verifier_paths(&command.judge)?)?);
            repair_verifiers.as_ref()
        }
    };
    let (records, mut stats) = steps::search_negatives(
        &judged,
        &strategy,
        &settings,
        &sampler,
        &mut judger,
        repairers,
        None,
    )?;
    write_jsonl(&command.output, &records)?;
    if let Some(sft) = &command.sft_output {
        let (examples, data_stats) = refiner_data(
            &records,
            &judged,
            judger.judge_session(),
            &RftCaps::default(),
            command.judge.seed,
        )?;
        write_jsonl(sft, &examples)?;
        merge(&mut stats, data_stats);
    }
    stats["sequences_generated"] = json!(sampler.sequences.get());
    stats["tokens_generated"] = json!(sampler.tokens.get());
    stats["judgments"] = json!(judger.stats.judged);
    stats["judgment_cache_hits"] = json!(judger.stats.cache_hits);
    stats["seconds"] = json!(started.elapsed().as_secs_f64());
    stats_line("search", stats);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PairsCommand {
    #[command(subcommand)]
    show: Option<PairsSubcommand>,
    /// trees.jsonl from `spar-host search`.
    #[arg(long, required = true)]
    input: Option<PathBuf>,
    /// Where pairs.jsonl goes.
    #[arg(long, required = true)]
    output: Option<PathBuf>,
    /// `tree` (SPaR: refinement vs original), `single` (trees of one greedy refinement) or
    /// `independent` (a passing vs a failing sample of the prompt; needs `--judgments`).
    #[arg(long, value_enum, default_value = "tree")]
    source: PairSource,
    /// judgments.jsonl from `spar-host judge`: the samples for independent pairs, and for the
    /// similarity of independent pairs in the stats.
    #[arg(long)]
    judgments: Option<PathBuf>,
    /// Keep at most this many pairs after filtering, drawn by `--seed` (0: all).
    #[arg(long, default_value_t = 0)]
    max_pairs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Pair-filter plugins, applied in order: paths, or names of built-in ones (filter-dedup,
    /// filter-value-gap, filter-edit-distance, filter-echo, filter-scaffold, filter-meta-talk).
    /// Default: none, as SPaR keeps every pair that passed the gate.
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// JSON settings per filter, as `PLUGIN_NAME=JSON` (e.g. `filter-value-gap={"min_gap":0.3}`).
    #[arg(long = "filter-config")]
    filter_configs: Vec<String>,
}

#[derive(clap::Subcommand)]
pub enum PairsSubcommand {
    /// Print pairs as word-level diffs (rejected → chosen), with the constraints each side keeps
    /// or breaks: what DPO will learn.
    Show(super::pairs_show::ShowCommand),
}

pub fn pairs_command(command: PairsCommand) -> anyhow::Result<ExitCode> {
    if let Some(PairsSubcommand::Show(show)) = command.show {
        return super::pairs_show::show_command(show);
    }
    let (Some(input), Some(output)) = (&command.input, &command.output) else {
        anyhow::bail!("pairs: --input and --output are required");
    };
    let trees: Vec<TreeRecord> = read_jsonl(input)?;
    let judged: Option<Vec<JudgedSample>> =
        command.judgments.as_deref().map(read_jsonl).transpose()?;
    let host = PluginHost::new(Limits::default())?;
    // No --filter: none, as SPaR keeps every pair whose refinement passed the gate. A filter is
    // a path, or the name of a built-in one (`filter-echo`).
    let paths: Vec<PathBuf> = if command.filters == ["none"] {
        Vec::new()
    } else {
        command
            .filters
            .iter()
            .map(|f| {
                let path = PathBuf::from(f);
                if path.exists() || f.contains(std::path::MAIN_SEPARATOR) || f.ends_with(".wasm") {
                    Ok(path)
                } else {
                    builtin::find(f)
                }
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut configs: BTreeMap<String, String> = BTreeMap::new();
    for entry in &command.filter_configs {
        let (name, json) = entry
            .split_once('=')
            .with_context(|| format!("--filter-config `{entry}`: expected PLUGIN_NAME=JSON"))?;
        serde_json::from_str::<serde_json::Value>(json)
            .with_context(|| format!("--filter-config `{entry}`: not JSON"))?;
        configs.insert(name.to_string(), json.to_string());
    }
    let mut filters = Vec::new();
    for path in &paths {
        let plugin: FilterPlugin = host.load(path)?;
        let config = configs
            .remove(plugin.name())
            .unwrap_or_else(|| "{}".to_string());
        filters.push((plugin, config));
    }
    if let Some(name) = configs.keys().next() {
        anyhow::bail!("--filter-config names `{name}`, which is not a loaded filter");
    }
    let (kept, stats) = steps::make_pairs(
        &trees,
        judged.as_deref(),
        &filters,
        steps::PairSettings {
            source: command.source,
            max_pairs: command.max_pairs,
            seed: command.seed,
        },
    )?;
    write_jsonl(output, &kept)?;
    stats_line("pairs", stats);
    Ok(ExitCode::SUCCESS)
}
