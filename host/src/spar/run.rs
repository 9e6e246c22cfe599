//! `spar-host run`: SPaR's iterations end to end from a config. Every stage writes its output
//! atomically into the run directory and is skipped when that output already exists, so running
//! the same command again after a stop continues where it left off.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device};
use serde_json::{Value, json};

use super::judge::Judger;
use super::records::{
    JudgedSample, PairRecord, Sample, SftRecord, TreeRecord, read_jsonl, write_jsonl,
};
use super::refiner_data::refiner_data;
use super::sampler::{ChatSampler, SampleSettings, seed_of};
use super::steps::{self, merge};
use crate::backend::Generated;
use crate::backend::openai::OpenAiBackend;
use crate::config::{
    self, ExternalTrainer, PairSource, Precision, RunConfig, ServerConfig, TrainerKind,
};
use crate::engine::chat_template::Message;
use crate::engine::loader::{self, LoadedModel};
use crate::engine::model::Transformer;
use crate::plugins::verifiers::Verifiers;
use crate::plugins::world_calls::SearchParams;
use crate::plugins::{FilterPlugin, JudgePlugin, Limits, PluginHost, SearchPlugin, builtin};
use crate::progress;
use crate::storage::PartialLog;
use crate::train::export::StageData;
use crate::train::external::train_external;
use crate::train::optim::{AdamWConfig, Schedule};
use crate::train::trainer::{Objective, TrainConfig, train};

struct Model {
    loaded: LoadedModel,
    transformer: Transformer,
}

fn load_model(path: &Path, device: &Device, dtype: DType) -> anyhow::Result<Model> {
    let loaded = loader::load(path)?;
    let transformer = loaded.transformer(dtype, device)?;
    Ok(Model {
        loaded,
        transformer,
    })
}

/// The two models SPaR trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Actor,
    Refiner,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Actor => "actor",
            Role::Refiner => "refiner",
        }
    }
}

/// The run: config, resolved paths, plugins.
struct Run {
    config: RunConfig,
    dir: PathBuf,
    base: PathBuf,
    device: Device,
    judge: JudgePlugin,
    verifiers: Option<Verifiers>,
    strategy: SearchPlugin,
    filters: Vec<(FilterPlugin, String)>,
    /// Verifiers for the held-out evaluation (the judge's when it has them).
    eval_verifiers: Option<Verifiers>,
}

impl Run {
    fn server(&self, role: Role) -> Option<&ServerConfig> {
        match role {
            Role::Actor => self.config.servers.actor.as_ref(),
            Role::Refiner => self.config.servers.refiner.as_ref(),
        }
    }

    /// The role's model on the embedded engine; `None` when a server generates for the role
    /// (after making sure it serves `checkpoint`, see [`Run::ensure_served`]).
    fn local_model(&self, role: Role, checkpoint: &Path) -> anyhow::Result<Option<Model>> {
        if self.server(role).is_some() {
            self.ensure_served(role, checkpoint)?;
            return Ok(None);
        }
        Ok(Some(load_model(
            checkpoint,
            &self.device,
            self.config.dtype.dtype(),
        )?))
    }

    /// A sampler for `role`: its server's, or the embedded engine on `model`.
    fn sampler<'m>(&self, role: Role, model: Option<&'m Model>) -> anyhow::Result<ChatSampler<'m>> {
        let batch_size = self.config.actor.batch_size;
        match (self.server(role), model) {
            (Some(server), _) => ChatSampler::on_server(server.clone(), batch_size),
            (None, Some(model)) => ChatSampler::new(
                &model.loaded,
                &model.transformer,
                self.device.clone(),
                batch_size,
            ),
            (None, None) => unreachable!("local_model loads a model for local roles"),
        }
    }

    /// A served role whose checkpoint changed (training made a new one): run its
    /// `reload_command` and wait for the server, once per checkpoint (recorded in the run
    /// directory, so a resumed run does not reload again). Without a reload command, warn that
    /// the server keeps generating with its own model.
    fn ensure_served(&self, role: Role, checkpoint: &Path) -> anyhow::Result<()> {
        let server = self.server(role).expect("called for served roles");
        let initial = self.initial_model(role);
        let marker = self.dir.join(format!("{}-served.txt", role.name()));
        let served = std::fs::read_to_string(&marker)
            .map(PathBuf::from)
            .unwrap_or(initial);
        if served == checkpoint {
            return Ok(());
        }
        let Some(command) = &server.reload_command else {
            tracing::warn!(
                "servers.{}: no reload_command, so {} keeps serving its model; the new checkpoint {} is not used for generation",
                role.name(),
                server.url,
                checkpoint.display()
            );
            return Ok(());
        };
        let line = command.replace("{model}", &checkpoint.display().to_string());
        eprintln!("servers.{}: reloading: {line}", role.name());
        // Relative paths in the command mean what they mean in the config: from its folder.
        let status = std::process::Command::new("sh")
            .args(["-c", &line])
            .current_dir(if self.base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &self.base
            })
            .status()
            .with_context(|| format!("servers.{}.reload_command: cannot start", role.name()))?;
        if !status.success() {
            bail!(
                "servers.{}.reload_command failed ({status}): {line}",
                role.name()
            );
        }
        OpenAiBackend::new(server.clone())?
            .wait_until_ready(std::time::Duration::from_secs_f64(server.timeout_s))?;
        crate::storage::write_atomic(&marker, checkpoint.display().to_string().as_bytes())
    }

    /// The checkpoint a role starts from (the refiner defaults to the actor's).
    fn initial_model(&self, role: Role) -> PathBuf {
        let models = &self.config.models;
        self.resolve(match role {
            Role::Actor => &models.actor,
            Role::Refiner => models.refiner.as_ref().unwrap_or(&models.actor),
        })
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn metric(
        &self,
        iteration: usize,
        stage: &str,
        seconds: f64,
        stats: Value,
    ) -> anyhow::Result<()> {
        let line =
            json!({"iteration": iteration, "stage": stage, "seconds": seconds, "stats": stats});
        tracing::info!(target: "run", "{line}");
        eprintln!("iter {iteration} {stage:<8} {seconds:>8.1} s  {stats}");
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("metrics.jsonl"))
            .with_context(|| format!("{}: cannot write metrics", self.dir.display()))?;
        writeln!(file, "{line}")?;
        Ok(())
    }

    fn judger<'a>(
        &'a self,
        sampler: Option<&'a ChatSampler<'a>>,
        salt: u64,
    ) -> anyhow::Result<Judger<'a>> {
        let j = &self.config.judge;
        let mut judger = Judger::new(
            j.mode,
            j.k,
            SampleSettings {
                temperature: j.temperature,
                top_p: j.top_p,
                top_k: 0,
                max_new_tokens: j.max_new_tokens,
            },
            self.config.seed ^ salt,
            sampler,
            &self.judge,
            self.verifiers.as_ref(),
        )?;
        judger.tie_resamples = j.tie_resamples;
        Ok(judger)
    }
}

/// Run (or continue) the SPaR loop described by `config_path`.
pub fn run(config_path: &Path, sets: &[String], force: bool) -> anyhow::Result<PathBuf> {
    let config = config::load(config_path, sets)?;
    let base = config_path.parent().map(PathBuf::from).unwrap_or_default();
    let host = PluginHost::new(Limits::default())?;
    let problems = config::validate(&config, &base, &host);
    if !problems.is_empty() {
        bail!("{}: {}", config_path.display(), problems.join("; "));
    }
    let dir = if config.run_dir.is_absolute() {
        config.run_dir.clone()
    } else {
        base.join(&config.run_dir)
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create the run directory", dir.display()))?;
    let resolved = toml::to_string(&config)?;
    let resolved_path = dir.join("config.toml");
    if let Ok(previous) = std::fs::read_to_string(&resolved_path)
        && previous != resolved
        && !force
    {
        let old: toml::Table = toml::from_str(&previous).unwrap_or_default();
        let new: toml::Table = toml::from_str(&resolved).unwrap_or_default();
        let mut differing: Vec<String> = new
            .keys()
            .chain(old.keys())
            .filter(|k| old.get(*k) != new.get(*k))
            .cloned()
            .collect();
        differing.sort();
        differing.dedup();
        bail!(
            "{}: this run directory was made by a different config (differs in: {}); use another run_dir or pass --force",
            dir.display(),
            differing.join(", ")
        );
    }
    crate::storage::write_atomic(&resolved_path, resolved.as_bytes())?;

    let find = |p: &Option<PathBuf>, name: &str| -> anyhow::Result<PathBuf> {
        match p {
            Some(p) => Ok(if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }),
            None => builtin::find(name),
        }
    };
    let judge = host.load(&find(&config.judge.plugin, "judge-spar")?)?;
    // Verifiers judge (verifier and hybrid modes) and repair (refine = repair or both).
    let verifiers = if config.judge.mode == super::judge::JudgeMode::Llm
        && !config.search.refine.uses_repair()
    {
        None
    } else {
        let paths: Vec<PathBuf> = if config.judge.verifiers.is_empty() {
            vec![builtin::find("verifier-ifeval")?]
        } else {
            config
                .judge
                .verifiers
                .iter()
                .map(|v| {
                    if v.is_absolute() {
                        v.clone()
                    } else {
                        base.join(v)
                    }
                })
                .collect()
        };
        Some(Verifiers::load(&host, &paths)?)
    };
    let strategy = host.load(&find(&config.search.plugin, "search-bfs")?)?;
    let mut filters = Vec::new();
    // No [[filters]]: none, as SPaR keeps every pair whose refinement passed the gate.
    let filter_paths: Vec<(PathBuf, String)> = config
        .filters
        .iter()
        .map(|f| {
            Ok((
                if f.plugin.is_absolute() {
                    f.plugin.clone()
                } else {
                    base.join(&f.plugin)
                },
                serde_json::to_string(&f.config)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    for (path, cfg) in filter_paths {
        filters.push((host.load(&path)?, cfg));
    }
    let device = crate::engine::device::parse(&config.device)?;
    let eval_verifiers = if config.prompts.eval.is_some() && verifiers.is_none() {
        Some(Verifiers::load(
            &host,
            &[builtin::find("verifier-ifeval")?],
        )?)
    } else {
        None
    };
    let run = Run {
        config,
        dir: dir.clone(),
        base,
        device,
        judge,
        verifiers,
        strategy,
        filters,
        eval_verifiers,
    };

    let mut actor = run.initial_model(Role::Actor);
    let mut refiner = run.initial_model(Role::Refiner);
    let baseline = evaluate(&run, 0, &actor, &run.dir.join("baseline-eval.jsonl"))?;
    for iteration in 1..=run.config.iterations {
        let (a, r) = iterate(&run, iteration, &actor, &refiner)?;
        actor = a;
        refiner = r;
        let eval_path = run.dir.join(format!("iter-{iteration}/eval.jsonl"));
        let after = evaluate(&run, iteration, &actor, &eval_path)?;
        print_summary(&run, iteration, baseline, after)?;
    }
    eprintln!(
        "done: the actor is {}, the refiner {}",
        actor.display(),
        refiner.display()
    );
    Ok(dir)
}

/// Held-out evaluation of `actor`: greedy answers to `prompts.eval`, checked strictly by the
/// verifiers; returns the share of prompts whose every constraint passes (None without an eval set).
fn evaluate(run: &Run, iteration: usize, actor: &Path, out: &Path) -> anyhow::Result<Option<f64>> {
    let Some(eval) = &run.config.prompts.eval else {
        return Ok(None);
    };
    let pass_rate = |records: &[Value]| {
        let passed = records.iter().filter(|r| r["pass"] == json!(true)).count();
        passed as f64 / records.len().max(1) as f64
    };
    if out.exists() {
        return Ok(Some(pass_rate(&read_jsonl::<Value>(out)?)));
    }
    let started = Instant::now();
    let prompts: Vec<Value> = read_jsonl(&run.resolve(eval))?;
    let model = run.local_model(Role::Actor, actor)?;
    let sampler = run.sampler(Role::Actor, model.as_ref())?;
    let jobs: Vec<(Vec<Message>, u64)> = prompts
        .iter()
        .map(|p| {
            (
                vec![Message::new(
                    "user",
                    p["prompt"].as_str().unwrap_or_default(),
                )],
                0,
            )
        })
        .collect();
    let greedy = SampleSettings {
        temperature: 0.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: run.config.actor.max_new_tokens,
    };
    let outputs = sampler.sample(&jobs, &greedy)?;
    let verifiers = run
        .verifiers
        .as_ref()
        .or(run.eval_verifiers.as_ref())
        .expect("loaded when there is an eval set");
    let mut sessions = verifiers.sessions();
    let mut records = Vec::with_capacity(prompts.len());
    let (mut instructions, mut followed) = (0usize, 0usize);
    let truncated = outputs.iter().filter(|o| o.truncated()).count();
    for (p, output) in prompts.iter().zip(outputs) {
        let sample: Sample = serde_json::from_value(
            json!({"id": p.get("key").or(p.get("id")).cloned().unwrap_or(Value::Null),
            "prompt": p["prompt"], "response": output.text, "finish_reason": output.finish_reason,
            "instruction_id_list": p.get("instruction_id_list"), "kwargs": p.get("kwargs")}),
        )?;
        let mut all = true;
        for c in sample.constraints()? {
            let ok = sessions
                .check(
                    &c.id,
                    &c.kwargs.to_string(),
                    &sample.prompt,
                    &sample.response,
                )?
                .strict;
            instructions += 1;
            followed += usize::from(ok);
            all &= ok;
        }
        records.push(
            json!({"id": sample.id, "prompt": sample.prompt, "response": sample.response,
            "finish_reason": sample.finish_reason, "pass": all}),
        );
    }
    write_jsonl(out, &records)?;
    let rate = pass_rate(&records);
    run.metric(iteration, "eval", started.elapsed().as_secs_f64(), json!({"model": actor.display().to_string(),
        "prompts": records.len(), "pass_rate": rate, "instruction_pass_rate": followed as f64 / instructions.max(1) as f64,
        "truncated": truncated}))?;
    Ok(Some(rate))
}

/// The end-of-iteration table: every stage of this iteration from `metrics.jsonl`.
fn print_summary(
    run: &Run,
    iteration: usize,
    baseline: Option<f64>,
    after: Option<f64>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(run.dir.join("metrics.jsonl")).unwrap_or_default();
    eprintln!("\niteration {iteration} summary");
    eprintln!("{:<8} {:>9}  key figures", "stage", "seconds");
    for line in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if line["iteration"] != json!(iteration) {
            continue;
        }
        let s = &line["stats"];
        let figures = match line["stage"].as_str().unwrap_or_default() {
            "samples" => format!(
                "{} samples, {:.0} tok/s, {} cut by the {}-token limit",
                s["samples"],
                s["tokens_per_second"].as_f64().unwrap_or(0.0),
                s["truncated"],
                s["max_new_tokens"]
            ),
            "judge" => format!(
                "pass rate {:.3}, {} negatives",
                s["pass_rate"].as_f64().unwrap_or(0.0),
                s["negatives"]
            ),
            "search" => match s.get("skipped") {
                Some(why) => why.to_string(),
                None => format!(
                    "{} trees, {} solved, children per round {}; {} cut negatives not searched",
                    s["negatives_searched"],
                    s["trees_solved"],
                    s["children_per_round"],
                    s["truncated_negatives_not_searched"]
                ),
            },
            "pairs" => format!(
                "{} {} pairs kept of {}, dropped {}; word similarity {} (independent pairs {})",
                s["pairs_kept"],
                s["source"].as_str().unwrap_or("tree"),
                s["pairs_built"],
                s["dropped"],
                fixed(&s["similarity_kept"]),
                fixed(&s["similarity_independent"])
            ),
            "dpo" | "rft" => match (s.get("skipped"), s.get("trainer")) {
                (Some(why), _) => why.to_string(),
                (None, Some(_)) => format!("external trainer: {}", s["command"]),
                (None, None) => format!("{} steps, last loss {}", s["steps"], s["last"]["loss"]),
            },
            "eval" => format!(
                "held-out pass rate {:.3}",
                s["pass_rate"].as_f64().unwrap_or(0.0)
            ),
            _ => String::new(),
        };
        eprintln!(
            "{:<8} {:>9.1}  {figures}",
            line["stage"].as_str().unwrap_or_default(),
            line["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    if let (Some(before), Some(after)) = (baseline, after) {
        eprintln!(
            "held-out pass rate (verifier-judged): {before:.3} before, {after:.3} after iteration {iteration}"
        );
    }
    Ok(())
}

/// A number with two decimals, or `-` when absent.
fn fixed(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{x:.2}"))
        .unwrap_or_else(|| "-".into())
}

/// Sample every job, a batch at a time, appending each finished batch's outputs to `partial`.
/// After a stop, the jobs already in `partial` are not sampled again: each job's seed is its own
/// and batches keep their composition, so the result equals an uninterrupted run's.
pub fn sample_resumably(
    sampler: &ChatSampler<'_>,
    jobs: &[(Vec<Message>, u64)],
    settings: &SampleSettings,
    partial: &Path,
) -> anyhow::Result<Vec<Generated>> {
    let (mut log, done) = PartialLog::open::<PartialSample>(partial, jobs.len())?;
    let mut done: Vec<Generated> = done
        .into_iter()
        .map(PartialSample::into_generated)
        .collect();
    if !done.is_empty() {
        tracing::info!(
            done = done.len(),
            total = jobs.len(),
            "resuming a sampling stage"
        );
    }
    let bar = progress::bar("samples", jobs.len(), done.len());
    for batch in jobs[done.len()..].chunks(sampler.batch_size.max(1)) {
        let outputs = sampler.sample(batch, settings)?;
        log.append(&outputs)?;
        bar.inc(outputs.len() as u64);
        done.extend(outputs);
        crate::failpoint::hit("samples-batch");
    }
    bar.finish_and_clear();
    log.finish();
    Ok(done)
}

/// A line of a sampling stage's partial log: an output, or a bare text from a log written
/// before finish reasons were kept (its finish reason is then unknown, and counted so).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum PartialSample {
    Output(Generated),
    Text(String),
}

impl PartialSample {
    fn into_generated(self) -> Generated {
        match self {
            PartialSample::Output(g) => g,
            PartialSample::Text(text) => Generated {
                text,
                finish_reason: None,
                tokens: None,
            },
        }
    }
}

/// Judge `samples` a fixed chunk at a time, appending each chunk's records to `partial`; after a
/// stop, the finished records are kept (and their judgments cached, as in an uninterrupted run).
fn judge_resumably(
    samples: Vec<Sample>,
    judger: &mut Judger<'_>,
    chunk: usize,
    partial: &Path,
) -> anyhow::Result<Vec<JudgedSample>> {
    let (mut log, mut done) = PartialLog::open::<JudgedSample>(partial, samples.len())?;
    for r in &done {
        judger.remember(&r.sample.prompt, &r.sample.response, r.judgment.clone());
    }
    let bar = progress::bar("judge", samples.len(), done.len());
    let rest: Vec<Sample> = samples.into_iter().skip(done.len()).collect();
    for part in rest.chunks(chunk.max(1)) {
        let (records, _) = steps::judge_samples(part.to_vec(), judger)?;
        log.append(&records)?;
        bar.inc(records.len() as u64);
        done.extend(records);
        crate::failpoint::hit("judge-batch");
    }
    bar.finish_and_clear();
    log.finish();
    Ok(done)
}

/// Train `start` on `data` into `out` (the stage is done when `out` holds a checkpoint); with no
/// data, record the skip once and keep `start`. Returns the model the next iteration starts from.
#[allow(clippy::too_many_arguments)]
fn training_stage(
    run: &Run,
    iteration: usize,
    dir: &Path,
    (stage, skip_reason): (&str, &str),
    start: &Path,
    data: &Path,
    out: &Path,
    objective: &Objective,
    train_cfg: &TrainConfig,
    external: Option<&ExternalTrainer>,
) -> anyhow::Result<PathBuf> {
    if out.join("config.json").exists() {
        return Ok(out.to_path_buf());
    }
    let text = std::fs::read_to_string(data)
        .with_context(|| format!("{}: cannot read", data.display()))?;
    if text.lines().all(|l| l.trim().is_empty()) {
        record_skip(run, iteration, dir, stage, skip_reason)?;
        return Ok(start.to_path_buf());
    }
    let started = Instant::now();
    if let Some(trainer) = external {
        let (pairs, examples): (Vec<PairRecord>, Vec<SftRecord>);
        let stage_data = match objective {
            Objective::Dpo { .. } => {
                pairs = read_jsonl(data)?;
                StageData::Pairs(&pairs)
            }
            Objective::Sft => {
                examples = read_jsonl(data)?;
                StageData::Sft(&examples)
            }
        };
        let settings = external_settings(objective, train_cfg);
        let command = train_external(trainer, stage, &stage_data, start, dir, out, &settings)?;
        run.metric(
            iteration,
            stage,
            started.elapsed().as_secs_f64(),
            json!({"trainer": "external", "command": command}),
        )?;
        return Ok(out.to_path_buf());
    }
    // A stop mid-training left a periodic checkpoint: continue from it.
    let last = out.join("checkpoint-last");
    let resume = last
        .join("trainer_state.json")
        .exists()
        .then_some(last.as_path());
    let report = train(start, data, out, objective, train_cfg, resume, &run.device)?;
    run.metric(
        iteration,
        stage,
        started.elapsed().as_secs_f64(),
        json!({"steps": report.steps, "data": report.data, "last": report.metrics.last(),
               "tokens_per_second": report.tokens_per_second}),
    )?;
    Ok(out.to_path_buf())
}

/// A stage's settings as the external trainer's command placeholders.
fn external_settings(objective: &Objective, cfg: &TrainConfig) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("lr", cfg.optimizer.lr.to_string()),
        ("epochs", cfg.epochs.to_string()),
        ("micro_batch", cfg.micro_batch.to_string()),
        ("grad_accum", cfg.grad_accum.to_string()),
        ("max_length", cfg.max_length.to_string()),
        ("warmup_ratio", cfg.warmup_ratio.to_string()),
        ("seed", cfg.seed.to_string()),
    ];
    if let Objective::Dpo {
        beta,
        sft_weight,
        loss_type,
    } = objective
    {
        settings.push(("beta", beta.to_string()));
        settings.push(("sft_weight", sft_weight.to_string()));
        settings.push((
            "loss_type",
            serde_json::to_value(loss_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ));
    }
    settings
}

/// Record a training stage that had no data, once: a marker file makes a rerun skip it silently.
fn record_skip(
    run: &Run,
    iteration: usize,
    dir: &Path,
    stage: &str,
    why: &str,
) -> anyhow::Result<()> {
    let marker = dir.join(format!("{stage}.skipped"));
    if !marker.exists() {
        run.metric(iteration, stage, 0.0, json!({ "skipped": why }))?;
        crate::storage::write_atomic(&marker, why.as_bytes())?;
    }
    Ok(())
}

/// A training stage's settings: (epochs, micro batch, accumulation, max length, save every),
/// warmup, schedule.
fn train_config(
    (epochs, micro_batch, grad_accum, max_length, save_every): (usize, usize, usize, usize, usize),
    warmup_ratio: f64,
    schedule: Schedule,
    lr: f64,
    seed: u64,
    precision: Precision,
) -> TrainConfig {
    TrainConfig {
        epochs,
        micro_batch,
        grad_accum,
        max_length,
        warmup_ratio,
        schedule,
        optimizer: AdamWConfig {
            lr,
            ..AdamWConfig::default()
        },
        seed,
        save_every,
        precision,
        ..TrainConfig::default()
    }
}

/// The search stage's settings; `pairs.source = "single"` makes it one greedy refinement per
/// failed sample (no tree).
fn search_settings(cfg: &RunConfig, iteration: usize) -> steps::SearchSettings {
    let s = &cfg.search;
    let single = cfg.pairs.source == PairSource::Single;
    steps::SearchSettings {
        params: if single {
            SearchParams {
                branch: 1,
                select: 1,
                max_depth: 1,
                pass_gate: s.pass_gate,
                budget: 1,
            }
        } else {
            SearchParams {
                branch: s.branch as u32,
                select: s.select as u32,
                max_depth: s.max_depth as u32,
                pass_gate: s.pass_gate,
                budget: s.budget as u32,
            }
        },
        refine: SampleSettings {
            temperature: if single { 0.0 } else { s.temperature },
            top_p: s.top_p,
            top_k: 0,
            max_new_tokens: s.max_new_tokens,
        },
        retries: s.retries,
        seed: cfg.seed ^ iteration as u64,
        search_truncated: s.search_truncated,
        refine_mode: s.refine,
        negative: s.negative,
    }
}

/// One iteration; returns the next actor and refiner checkpoints.
fn iterate(
    run: &Run,
    iteration: usize,
    actor: &Path,
    refiner: &Path,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = run.dir.join(format!("iter-{iteration}"));
    std::fs::create_dir_all(&dir)?;
    let cfg = &run.config;

    // 1. Actor samples.
    let samples_path = dir.join("samples.jsonl");
    if !samples_path.exists() {
        let started = Instant::now();
        let prompts_path = run.resolve(&cfg.prompts.train);
        let prompts: Vec<Value> = read_jsonl(&prompts_path)?;
        let model = run.local_model(Role::Actor, actor)?;
        let sampler = run.sampler(Role::Actor, model.as_ref())?;
        let mut jobs = Vec::new();
        let mut meta = Vec::new();
        for (i, p) in prompts.iter().enumerate() {
            let text = p.get("prompt").and_then(Value::as_str).with_context(|| {
                format!(
                    "{}:{}: needs a `prompt` string",
                    prompts_path.display(),
                    i + 1
                )
            })?;
            let id = p
                .get("id")
                .or_else(|| p.get("key"))
                .cloned()
                .unwrap_or(json!(i));
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
        run.metric(iteration, "samples", secs, stats)?;
    }

    // 2-4. Judge, search, pairs with the refiner.
    let judgments_path = dir.join("judgments.jsonl");
    let trees_path = dir.join("trees.jsonl");
    let sft_path = dir.join("refiner-sft.jsonl");
    let pairs_path = dir.join("pairs.jsonl");
    if !judgments_path.exists() || !trees_path.exists() || !sft_path.exists() {
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
            run.metric(iteration, "judge", started.elapsed().as_secs_f64(), stats)?;
        }
        if cfg.pairs.source != PairSource::Independent
            && (!trees_path.exists() || !sft_path.exists())
        {
            let started = Instant::now();
            let judged: Vec<JudgedSample> = read_jsonl(&judgments_path)?;
            let mut judger = run.judger(Some(&sampler), iteration as u64)?;
            let settings = search_settings(cfg, iteration);
            let journal = dir.join("search.journal.jsonl");
            let (trees, mut stats) = steps::search_negatives(
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
            let (examples, data_stats) = refiner_data(
                &trees,
                &judged,
                judger.judge_session(),
                &cfg.rft,
                cfg.seed ^ iteration as u64,
            )?;
            merge(&mut stats, data_stats);
            write_jsonl(&sft_path, &examples)?;
            write_jsonl(&trees_path, &trees)?;
            let _ = std::fs::remove_file(&journal);
            run.metric(iteration, "search", started.elapsed().as_secs_f64(), stats)?;
        }
    }
    if cfg.pairs.source == PairSource::Independent
        && judgments_path.exists()
        && !(trees_path.exists() && sft_path.exists())
    {
        // The baseline searches nothing: no trees, no refiner data.
        write_jsonl::<TreeRecord>(&trees_path, &[])?;
        write_jsonl::<SftRecord>(&sft_path, &[])?;
        run.metric(
            iteration,
            "search",
            0.0,
            json!({"skipped": "pairs.source = independent: no tree search"}),
        )?;
    }
    if !pairs_path.exists() {
        let started = Instant::now();
        let trees: Vec<TreeRecord> = read_jsonl(&trees_path)?;
        let judged: Vec<JudgedSample> = read_jsonl(&judgments_path)?;
        let (pairs, stats) = steps::make_pairs(
            &trees,
            Some(&judged),
            &run.filters,
            steps::PairSettings {
                source: cfg.pairs.source,
                max_pairs: cfg.pairs.max_pairs,
                seed: cfg.seed ^ iteration as u64,
            },
        )?;
        write_jsonl(&pairs_path, &pairs)?;
        run.metric(iteration, "pairs", started.elapsed().as_secs_f64(), stats)?;
    }

    // 5. DPO of the actor; 6. SFT (RFT) of the refiner.
    let d = &cfg.dpo;
    let next_actor = training_stage(
        run,
        iteration,
        &dir,
        ("dpo", "no pairs; the actor is unchanged"),
        actor,
        &pairs_path,
        &dir.join("actor"),
        &Objective::Dpo {
            beta: d.beta,
            sft_weight: d.sft_weight,
            loss_type: d.loss_type,
        },
        &train_config(
            (
                d.epochs,
                d.micro_batch,
                d.grad_accum,
                d.max_length,
                d.save_every,
            ),
            d.warmup_ratio,
            Schedule::Linear,
            d.lr,
            cfg.seed ^ iteration as u64,
            cfg.dtype,
        ),
        d.external
            .as_ref()
            .filter(|_| d.trainer == TrainerKind::External),
    )?;
    let s = &cfg.sft;
    let next_refiner = training_stage(
        run,
        iteration,
        &dir,
        ("rft", "no refiner examples; the refiner is unchanged"),
        refiner,
        &sft_path,
        &dir.join("refiner"),
        &Objective::Sft,
        &train_config(
            (
                s.epochs,
                s.micro_batch,
                s.grad_accum,
                s.max_length,
                s.save_every,
            ),
            s.warmup_ratio,
            Schedule::Constant,
            s.lr,
            cfg.seed ^ iteration as u64,
            cfg.dtype,
        ),
        s.external
            .as_ref()
            .filter(|_| s.trainer == TrainerKind::External),
    )?;
    Ok((next_actor, next_refiner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_log_from_before_finish_reasons_reads_as_unknown() {
        let old: PartialSample = serde_json::from_str("\"a text\"").unwrap();
        assert_eq!(
            old.into_generated(),
            Generated {
                text: "a text".into(),
                finish_reason: None,
                tokens: None
            }
        );
        let new: PartialSample =
            serde_json::from_str(r#"{"text": "b", "finish_reason": "length", "tokens": 4}"#)
                .unwrap();
        assert!(new.into_generated().truncated());
    }
}
