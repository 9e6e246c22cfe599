//! The run configuration (`spar-host run config.toml`): serde structs with the paper's defaults,
//! unknown keys rejected, `--set key=value` overrides, and one validation pass that reports every
//! problem with its key path.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use crate::backend::openai::ServerConfig;
pub use crate::engine::device::Precision;
pub use crate::train::external::ExternalTrainer;

use crate::plugins::{PluginHost, World};
use crate::train::dpo::LossType;
use crate::train::optim::{AdamWConfig, Schedule};
use crate::train::trainer::{Objective, TrainConfig};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Where every stage's output goes.
    pub run_dir: PathBuf,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "one")]
    pub iterations: usize,
    #[serde(default = "cpu")]
    pub device: String,
    /// `f32` or `bf16`: generation runs in it; training computes in it over f32 master weights.
    #[serde(default)]
    pub dtype: Precision,
    pub models: Models,
    pub prompts: Prompts,
    #[serde(default)]
    pub actor: ActorSampling,
    #[serde(default)]
    pub judge: JudgeConfig,
    #[serde(default)]
    pub search: SearchConfig,
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    #[serde(default)]
    pub pairs: PairsConfig,
    #[serde(default)]
    pub dpo: DpoConfig,
    #[serde(default)]
    pub sft: SftConfig,
    // Left out of the resolved config when default, so that run directories made before these
    // keys existed still resume.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rft: RftCaps,
    #[serde(default, skip_serializing_if = "is_default")]
    pub init: InitConfig,
    /// Roles whose generation runs on an OpenAI-compatible server instead of the embedded engine.
    #[serde(default)]
    pub servers: Servers,
}

/// `[servers.actor]`, `[servers.refiner]`: see [`ServerConfig`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Servers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<ServerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refiner: Option<ServerConfig>,
}

fn one() -> usize {
    1
}
fn cpu() -> String {
    "cpu".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Models {
    /// The actor's starting checkpoint (HF directory or GGUF file).
    pub actor: PathBuf,
    /// The refiner's starting checkpoint (default: the actor's).
    #[serde(default)]
    pub refiner: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// Training prompts: `{"key"|"id", "prompt", "instruction_id_list"?, "kwargs"?}` per line.
    pub train: PathBuf,
    /// Held-out prompts for the evaluation stage (optional).
    #[serde(default)]
    pub eval: Option<PathBuf>,
    /// Prompts per iteration: iteration i samples lines (i−1)·N+1 … i·N of `train`, so each
    /// iteration sees fresh prompts; 0: every iteration samples all of them.
    #[serde(default, skip_serializing_if = "is_default")]
    pub per_iteration: usize,
}

/// `[init]`: supervised fine-tuning before iteration 1, as SPaR starts from an actor and a
/// refiner fine-tuned on seed data. Each key is an SFT file (`{"messages": [...]}` per line)
/// trained with `[sft]`'s settings; a role without one starts from its model as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refiner: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorSampling {
    pub n: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub batch_size: usize,
}

impl Default for ActorSampling {
    fn default() -> Self {
        ActorSampling {
            n: 5,
            temperature: 0.9,
            top_p: 0.9,
            max_new_tokens: 2048,
            batch_size: 16,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeConfig {
    pub mode: JudgeMode,
    pub k: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    /// How often a split LLM vote (as many Yes as No) is judged again, all k afresh, before the
    /// response counts as a tie and is dropped (SPaR: 3).
    pub tie_resamples: usize,
    /// The judge plugin (default: the built-in judge-spar).
    pub plugin: Option<PathBuf>,
    /// Verifier plugins (default: the built-in verifier-ifeval).
    pub verifiers: Vec<PathBuf>,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            mode: JudgeMode::Llm,
            k: 5,
            temperature: 0.7,
            top_p: 1.0,
            // The authors' (a judgment cut before its verdict line counts as unparsed).
            max_new_tokens: 2048,
            tie_resamples: 3,
            plugin: None,
            verifiers: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// The strategy plugin (default: the built-in search-bfs).
    pub plugin: Option<PathBuf>,
    pub branch: i64,
    pub select: i64,
    pub max_depth: i64,
    pub pass_gate: f64,
    pub budget: i64,
    pub retries: u32,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    /// Also search failed samples that the token limit cut off (default: they are counted as
    /// `truncated` and left out, since they fail for the limit's sake, not the answer's).
    pub search_truncated: bool,
    /// How a node's children are made: `llm` (the refiner rewrites; the paper), `repair` (the
    /// verifiers' minimal fixes; one child per node, so use branch 1) or `both` (the first child
    /// is the repair, the others rewrites).
    pub refine: RefineMode,
    /// Which failed sample of a prompt is searched: `random` (SPaR) or `lowest` (valued).
    pub negative: NegativeChoice,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            plugin: None,
            branch: 3,
            select: 2,
            max_depth: 3,
            pass_gate: 0.5,
            budget: 30,
            retries: 3,
            temperature: 0.7,
            top_p: 1.0,
            max_new_tokens: 3072,
            search_truncated: false,
            refine: RefineMode::Llm,
            negative: NegativeChoice::Random,
        }
    }
}

/// Which failed sample of a prompt goes to search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NegativeChoice {
    /// One at random (drawn by the run's seed), as SPaR's code does.
    #[default]
    Random,
    /// The lowest-valued (first on ties).
    Lowest,
}

/// How the search makes a node's children.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RefineMode {
    /// The refiner rewrites the answer (the paper).
    #[default]
    Llm,
    /// The verifiers repair it: one child per node, when some failed constraint has a fix.
    Repair,
    /// The first child is the repair when there is one, the others the refiner's rewrites.
    Both,
}

impl RefineMode {
    pub fn uses_repair(self) -> bool {
        self != RefineMode::Llm
    }

    pub fn uses_llm(self) -> bool {
        self != RefineMode::Repair
    }
}

/// Where a response's value comes from (`[judge] mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JudgeMode {
    /// The refiner's k sampled verdicts (SPaR).
    Llm,
    /// The verifier plugins' constraint checks.
    Verifier,
    /// Both: the LLM's value when the verifiers pass, at most half of it otherwise.
    Hybrid,
}

/// `[pairs]`: where the preference pairs come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairsConfig {
    pub source: PairSource,
    /// Keep at most this many pairs after filtering, drawn by the run's seed (0: all); lets two
    /// sources train on the same number of pairs.
    pub max_pairs: usize,
}

/// Where preference pairs come from: the switch that tests SPaR's central claim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PairSource {
    /// SPaR: tree-search refinements of failed samples (chosen) against the originals.
    #[default]
    Tree,
    /// No tree search: one greedy refinement per failed sample (branch 1, depth 1, budget 1,
    /// temperature 0), paired the same way.
    Single,
    /// The baseline: a passing sample (chosen) and a failing sample (rejected) of the same
    /// prompt, each sampled independently by the actor; no search.
    Independent,
}

impl PairSource {
    pub fn name(self) -> &'static str {
        match self {
            PairSource::Tree => "tree",
            PairSource::Single => "single",
            PairSource::Independent => "independent",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    pub plugin: PathBuf,
    #[serde(default = "empty_table")]
    pub config: toml::Value,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn empty_table() -> toml::Value {
    toml::Value::Table(toml::Table::new())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpoConfig {
    pub beta: f64,
    pub sft_weight: f64,
    pub loss_type: LossType,
    pub lr: f64,
    pub epochs: usize,
    pub micro_batch: usize,
    pub grad_accum: usize,
    pub max_length: usize,
    pub warmup_ratio: f64,
    /// Optimizer steps between resumable checkpoints (weights and optimizer state), so a killed
    /// run resumes training mid-stage; 0: only the final checkpoint.
    pub save_every: usize,
    /// `builtin` (this host's trainer) or `external` (the `[dpo.external]` command).
    pub trainer: TrainerKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalTrainer>,
}

/// Who trains a stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainerKind {
    #[default]
    Builtin,
    External,
}

/// The fields `[dpo]` and `[sft]` share (separate structs, because serde cannot flatten a
/// shared one under `deny_unknown_fields`).
macro_rules! training_shape {
    ($section:expr) => {
        TrainingShape {
            epochs: $section.epochs,
            micro_batch: $section.micro_batch,
            grad_accum: $section.grad_accum,
            max_length: $section.max_length,
            warmup_ratio: $section.warmup_ratio,
            save_every: $section.save_every,
            lr: $section.lr,
        }
    };
}

/// A section's external trainer, when `trainer = "external"`.
macro_rules! external_trainer {
    ($section:expr) => {
        $section
            .external
            .as_ref()
            .filter(|_| $section.trainer == TrainerKind::External)
    };
}

impl DpoConfig {
    pub fn objective(&self) -> Objective {
        Objective::Dpo {
            beta: self.beta,
            sft_weight: self.sft_weight,
            loss_type: self.loss_type,
        }
    }

    /// The trainer's settings: linear decay after warmup, as LLaMA-Factory's DPO.
    pub fn train_config(&self, seed: u64, precision: Precision) -> TrainConfig {
        train_config(training_shape!(self), Schedule::Linear, seed, precision)
    }

    /// The external trainer, when this stage is handed to one.
    pub fn external_trainer(&self) -> Option<&ExternalTrainer> {
        external_trainer!(self)
    }
}

/// What `[dpo]` and `[sft]` share.
struct TrainingShape {
    epochs: usize,
    micro_batch: usize,
    grad_accum: usize,
    max_length: usize,
    warmup_ratio: f64,
    save_every: usize,
    lr: f64,
}

fn train_config(
    shape: TrainingShape,
    schedule: Schedule,
    seed: u64,
    precision: Precision,
) -> TrainConfig {
    TrainConfig {
        epochs: shape.epochs,
        micro_batch: shape.micro_batch,
        grad_accum: shape.grad_accum,
        max_length: shape.max_length,
        warmup_ratio: shape.warmup_ratio,
        schedule,
        optimizer: AdamWConfig {
            lr: shape.lr,
            ..AdamWConfig::default()
        },
        seed,
        save_every: shape.save_every,
        precision,
        ..TrainConfig::default()
    }
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig {
            beta: 0.1,
            sft_weight: 0.1,
            loss_type: LossType::Sigmoid,
            lr: 2e-7,
            epochs: 1,
            micro_batch: 2,
            grad_accum: 1,
            max_length: 2048,
            warmup_ratio: 0.1,
            save_every: 100,
            trainer: TrainerKind::Builtin,
            external: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    pub lr: f64,
    pub epochs: usize,
    pub micro_batch: usize,
    pub grad_accum: usize,
    pub max_length: usize,
    pub warmup_ratio: f64,
    /// As `dpo.save_every`.
    pub save_every: usize,
    /// As `dpo.trainer`, with `[sft.external]`.
    pub trainer: TrainerKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalTrainer>,
}

impl SftConfig {
    /// The trainer's settings: a constant rate after warmup, as the authors' SFT config.
    pub fn train_config(&self, seed: u64, precision: Precision) -> TrainConfig {
        train_config(training_shape!(self), Schedule::Constant, seed, precision)
    }

    /// As [`DpoConfig::external_trainer`].
    pub fn external_trainer(&self) -> Option<&ExternalTrainer> {
        external_trainer!(self)
    }
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            lr: 2e-6,
            epochs: 1,
            micro_batch: 2,
            grad_accum: 1,
            max_length: 2048,
            warmup_ratio: 0.1,
            save_every: 100,
            trainer: TrainerKind::Builtin,
            external: None,
        }
    }
}

/// `[rft]`: how many examples of each kind the refiner trains on (0: all); the authors' caps
/// (`src/process_data.py`). The kinds are described in `spar::refiner_data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RftCaps {
    pub max_refinements: usize,
    pub max_positive_critiques: usize,
    pub max_negative_critiques: usize,
    /// Split-vote judgments of actor samples whose majority said No.
    pub max_no_judgments: usize,
    /// Split-vote judgments of actor samples whose majority said Yes.
    pub max_yes_judgments: usize,
}

impl Default for RftCaps {
    fn default() -> Self {
        RftCaps {
            max_refinements: 4000,
            max_positive_critiques: 1500,
            max_negative_critiques: 1000,
            max_no_judgments: 500,
            max_yes_judgments: 2500,
        }
    }
}

/// Apply `key.path=value` overrides to a parsed TOML table; the value is TOML (`3`, `0.5`,
/// `"x"`, `[1, 2]`) or, failing that, a plain string.
pub fn apply_overrides(table: &mut toml::Table, sets: &[String]) -> anyhow::Result<()> {
    for set in sets {
        let (key, raw) = set
            .split_once('=')
            .with_context(|| format!("--set `{set}`: expected key=value"))?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|t| t.get("v").cloned())
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        let parts: Vec<&str> = key.trim().split('.').collect();
        let mut current = &mut *table;
        for part in &parts[..parts.len() - 1] {
            let entry = current
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = entry
                .as_table_mut()
                .with_context(|| format!("--set `{set}`: `{part}` is not a table"))?;
        }
        current.insert(parts[parts.len() - 1].to_string(), value);
    }
    Ok(())
}

/// Read `path`, apply overrides, and deserialize (unknown keys and wrong types are errors that
/// name the key).
pub fn load(path: &Path, sets: &[String]) -> anyhow::Result<RunConfig> {
    match load_reporting(path, sets)? {
        (Some(config), problems) if problems.is_empty() => Ok(config),
        (_, problems) => {
            let prefix = format!("{}: ", path.display());
            anyhow::bail!("{prefix}{}", problems.join(&format!("\n{prefix}")))
        }
    }
}

/// Parse a config, collecting what is wrong with its keys: every unknown key (serde stops at
/// the first, so each one it names is dropped and parsing retried), then at most one wrong
/// type or missing key. Returns the config when only unknown keys were wrong, so that
/// [`validate`] can report its values too. An unreadable or syntactically broken file is an
/// error.
pub fn load_reporting(
    path: &Path,
    sets: &[String],
) -> anyhow::Result<(Option<RunConfig>, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))?;
    apply_overrides(&mut table, sets)?;
    let mut problems = Vec::new();
    loop {
        match toml::Value::Table(table.clone()).try_into::<RunConfig>() {
            Ok(config) => return Ok((Some(config), problems)),
            Err(e) => {
                let message = one_line(&e.to_string());
                let dropped = unknown_key(&message)
                    .is_some_and(|(parent, name)| remove_key(&mut table, &parent, &name));
                problems.push(message);
                if !dropped || problems.len() >= 50 {
                    return Ok((None, problems));
                }
            }
        }
    }
}

/// `(parent path, key)` of serde's "unknown field `key`, expected … [in `parent`]".
fn unknown_key(message: &str) -> Option<(Vec<String>, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let parent = match rest.rsplit_once(" in `") {
        Some((_, path)) => path
            .trim_end_matches('`')
            .split('.')
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    Some((parent, name.to_string()))
}

/// Remove `name` from the table at `parent` (from every table of an array on the way).
fn remove_key(table: &mut toml::Table, parent: &[String], name: &str) -> bool {
    match parent.split_first() {
        None => table.remove(name).is_some(),
        Some((first, rest)) => match table.get_mut(first) {
            Some(toml::Value::Table(t)) => remove_key(t, rest, name),
            Some(toml::Value::Array(items)) => items
                .iter_mut()
                .filter_map(|v| v.as_table_mut())
                .fold(false, |removed, t| remove_key(t, rest, name) | removed),
            _ => false,
        },
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lines of a prompts file that are not JSON objects with a `prompt` string, as `FILE:LINE: why`
/// (at most five, then a count).
fn prompt_file_problems(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut more = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let why = match serde_json::from_str::<serde_json::Value>(line) {
            Err(e) => Some(format!("not JSON ({e})")),
            Ok(v) if !v.get("prompt").is_some_and(|p| p.is_string()) => {
                Some("no `prompt` string".to_string())
            }
            Ok(_) => None,
        };
        if let Some(why) = why {
            if problems.len() < 5 {
                problems.push(format!("{}:{}: {why}", path.display(), i + 1));
            } else {
                more += 1;
            }
        }
    }
    if more > 0 {
        problems.push(format!("{}: {more} more bad lines", path.display()));
    }
    problems
}

/// Every problem in a loaded config, each as `key.path: message`, relative paths resolved
/// against `base` (the config file's folder).
pub fn validate(config: &RunConfig, base: &Path, host: &PluginHost) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, key: &str, message: String| {
        if !ok {
            problems.push(format!("{key}: {message}"));
        }
    };
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    check(
        config.iterations >= 1,
        "iterations",
        "must be at least 1".into(),
    );
    check(
        config.device == "cpu" || config.device.starts_with("cuda"),
        "device",
        format!("unknown device `{}` (cpu, cuda or cuda:N)", config.device),
    );
    for (key, path) in [
        ("models.actor", Some(&config.models.actor)),
        ("models.refiner", config.models.refiner.as_ref()),
    ] {
        if let Some(path) = path {
            let p = resolve(path);
            check(p.exists(), key, format!("{} does not exist", p.display()));
        }
    }
    for (key, path) in [
        ("init.actor", config.init.actor.as_ref()),
        ("init.refiner", config.init.refiner.as_ref()),
    ] {
        if let Some(path) = path {
            let p = resolve(path);
            check(p.is_file(), key, format!("{} does not exist", p.display()));
        }
    }
    if config.prompts.per_iteration > 0 {
        let lines = std::fs::read_to_string(resolve(&config.prompts.train))
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0);
        let needed = config.prompts.per_iteration * config.iterations;
        check(
            lines >= needed,
            "prompts.per_iteration",
            format!(
                "{} iterations of {} fresh prompts need {needed} training prompts; prompts.train has {lines}",
                config.iterations, config.prompts.per_iteration
            ),
        );
    }
    for (key, path) in [
        ("prompts.train", Some(&config.prompts.train)),
        ("prompts.eval", config.prompts.eval.as_ref()),
    ] {
        if let Some(path) = path {
            let p = resolve(path);
            check(p.is_file(), key, format!("{} does not exist", p.display()));
            for problem in prompt_file_problems(&p) {
                check(false, key, problem);
            }
        }
    }
    let positive = |v: usize| v >= 1;
    let probability = |v: f64| (0.0..=1.0).contains(&v) && v > 0.0;
    check(
        positive(config.actor.n),
        "actor.n",
        "must be at least 1".into(),
    );
    check(
        config.actor.temperature >= 0.0,
        "actor.temperature",
        "must not be negative".into(),
    );
    check(
        probability(config.actor.top_p),
        "actor.top_p",
        "must be in (0, 1]".into(),
    );
    check(
        positive(config.actor.max_new_tokens),
        "actor.max_new_tokens",
        "must be at least 1".into(),
    );
    check(
        positive(config.actor.batch_size),
        "actor.batch_size",
        "must be at least 1".into(),
    );
    check(
        positive(config.judge.k),
        "judge.k",
        "must be at least 1".into(),
    );
    check(
        config.judge.temperature >= 0.0,
        "judge.temperature",
        "must not be negative".into(),
    );
    check(
        probability(config.judge.top_p),
        "judge.top_p",
        "must be in (0, 1]".into(),
    );
    check(
        config.search.branch >= 1,
        "search.branch",
        format!("must be at least 1, got {}", config.search.branch),
    );
    check(
        config.search.select >= 1,
        "search.select",
        format!("must be at least 1, got {}", config.search.select),
    );
    check(
        config.search.max_depth >= 1,
        "search.max_depth",
        format!("must be at least 1, got {}", config.search.max_depth),
    );
    check(
        config.search.budget >= 1,
        "search.budget",
        format!("must be at least 1, got {}", config.search.budget),
    );
    check(
        (0.0..1.0).contains(&config.search.pass_gate),
        "search.pass_gate",
        format!("must be in [0, 1), got {}", config.search.pass_gate),
    );
    check(
        probability(config.search.top_p),
        "search.top_p",
        "must be in (0, 1]".into(),
    );
    for (role, server) in [
        ("actor", &config.servers.actor),
        ("refiner", &config.servers.refiner),
    ] {
        if let Some(server) = server {
            check(
                server.url.starts_with("http://") || server.url.starts_with("https://"),
                &format!("servers.{role}.url"),
                format!("expected http://host:port/v1, got `{}`", server.url),
            );
            check(
                server.concurrency >= 1,
                &format!("servers.{role}.concurrency"),
                "must be at least 1".into(),
            );
            check(
                server.timeout_s > 0.0,
                &format!("servers.{role}.timeout_s"),
                "must be positive".into(),
            );
        }
    }
    for (stage, kind, external) in [
        ("dpo", config.dpo.trainer, &config.dpo.external),
        ("sft", config.sft.trainer, &config.sft.external),
    ] {
        check(
            kind != TrainerKind::External || external.is_some(),
            &format!("{stage}.trainer"),
            format!("`external` needs a [{stage}.external] table with `format` and `command`"),
        );
        if let Some(e) = external.as_ref().filter(|_| kind == TrainerKind::External) {
            let known = [
                "model",
                "data",
                "data_dir",
                "output",
                "beta",
                "sft_weight",
                "loss_type",
                "lr",
                "epochs",
                "micro_batch",
                "grad_accum",
                "max_length",
                "warmup_ratio",
                "seed",
            ];
            let vars: Vec<(&str, String)> = known.iter().map(|k| (*k, String::new())).collect();
            if let Err(e) = crate::train::external::render(&e.command, &vars) {
                check(false, &format!("{stage}.external.command"), e.to_string());
            }
        }
    }
    check(config.dpo.beta > 0.0, "dpo.beta", "must be positive".into());
    check(
        config.dpo.sft_weight >= 0.0,
        "dpo.sft_weight",
        "must not be negative".into(),
    );
    check(config.dpo.lr > 0.0, "dpo.lr", "must be positive".into());
    check(config.sft.lr > 0.0, "sft.lr", "must be positive".into());
    for (key, v) in [
        ("dpo.micro_batch", config.dpo.micro_batch),
        ("dpo.grad_accum", config.dpo.grad_accum),
        ("dpo.epochs", config.dpo.epochs),
        ("sft.micro_batch", config.sft.micro_batch),
        ("sft.grad_accum", config.sft.grad_accum),
        ("sft.epochs", config.sft.epochs),
    ] {
        check(positive(v), key, "must be at least 1".into());
    }
    // Plugins: each file must exist and implement the right world at a compatible version.
    let mut plugin = |key: String, path: Option<&PathBuf>, world: World| {
        let Some(path) = path else { return };
        let p = resolve(path);
        match host.inspect(&p) {
            Ok((manifest, _)) if manifest.world != world => problems.push(format!(
                "{key}: {} implements the `{}` world, but a `{world}` plugin is needed here",
                p.display(),
                manifest.world
            )),
            Ok(_) => {}
            Err(error) => problems.push(format!("{key}: {error}")),
        }
    };
    plugin(
        "judge.plugin".into(),
        config.judge.plugin.as_ref(),
        World::Judge,
    );
    for (i, v) in config.judge.verifiers.iter().enumerate() {
        plugin(format!("judge.verifiers[{i}]"), Some(v), World::Verifier);
    }
    plugin(
        "search.plugin".into(),
        config.search.plugin.as_ref(),
        World::SearchStrategy,
    );
    for (i, f) in config.filters.iter().enumerate() {
        plugin(
            format!("filters[{i}].plugin"),
            Some(&f.plugin),
            World::PairFilter,
        );
    }
    problems
}
