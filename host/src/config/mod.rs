//! The run configuration (`spar-host run config.toml`): serde structs with the paper's defaults,
//! unknown keys rejected, `--set key=value` overrides, and one validation pass that reports every
//! problem with its key path.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::backend::openai::ServerConfig;
pub use crate::engine::device::Precision;
pub use crate::train::external::ExternalTrainer;

mod load;
mod training;
mod validate;

pub use load::{apply_overrides, load, load_reporting};
pub use training::{DpoConfig, LoraConfig, RftCaps, SftConfig, TrainerKind};
pub use validate::validate;

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
    /// On the CPU, which has no fast bf16 arithmetic, bf16 stores the generating models' weights
    /// in bf16 (computing in f32) and training stays f32 ([`RunConfig::training_precision`]).
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
    /// The plugins' limits, where a run needs more than the defaults.
    #[serde(default, skip_serializing_if = "is_default")]
    pub sandbox: SandboxConfig,
}

/// `[sandbox]`: the limits every plugin runs under (README, "The sandbox"). The defaults are
/// the sandbox's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Longest one call may run, in milliseconds.
    pub call_timeout_ms: u64,
    /// Most linear memory one instance may hold, in MiB.
    pub memory_mib: usize,
    /// Most time all of one plugin's calls may take together in one stage, in seconds.
    pub stage_time_s: f64,
}

impl RunConfig {
    /// The precision training computes in: `dtype`, except f32 on the CPU.
    pub fn training_precision(&self) -> Precision {
        if self.device == "cpu" {
            Precision::F32
        } else {
            self.dtype
        }
    }
}

impl SandboxConfig {
    /// The sandbox limits these settings ask for. Values that validation refuses (zero, not a
    /// number) fall back to the defaults here, so that they are reported rather than panic.
    pub fn limits(&self) -> crate::plugins::Limits {
        let defaults = crate::plugins::Limits::default();
        crate::plugins::Limits {
            call_timeout: match self.call_timeout_ms {
                0 => defaults.call_timeout,
                ms => std::time::Duration::from_millis(ms),
            },
            memory_bytes: match self.memory_mib {
                0 => defaults.memory_bytes,
                mib => mib.saturating_mul(1 << 20),
            },
            stage_time: std::time::Duration::try_from_secs_f64(self.stage_time_s)
                .ok()
                .filter(|t| !t.is_zero())
                .unwrap_or(defaults.stage_time),
            ..defaults
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            call_timeout_ms: 1000,
            memory_mib: 64,
            stage_time_s: 300.0,
        }
    }
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

/// `[judge]`, and the same options on the `judge` and `search` commands (one struct, one set of
/// defaults: the paper's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeConfig {
    /// `llm` (the paper), `verifier` (the constraints' verifier plugins) or `hybrid` (both must
    /// pass).
    #[arg(long, value_enum, default_value_t = JudgeConfig::default().mode)]
    pub mode: JudgeMode,
    /// Judgments sampled per response.
    #[arg(long, default_value_t = JudgeConfig::default().k)]
    pub k: usize,
    /// Sampling temperature of a judgment.
    #[arg(id = "judge_temperature", long = "judge-temperature", default_value_t = JudgeConfig::default().temperature)]
    pub temperature: f64,
    #[arg(id = "judge_top_p", long = "judge-top-p", default_value_t = JudgeConfig::default().top_p)]
    pub top_p: f64,
    /// Most tokens of one judgment.
    #[arg(
        id = "judge_max_new_tokens",
        long = "judge-max-new-tokens",
        default_value_t = JudgeConfig::default().max_new_tokens
    )]
    pub max_new_tokens: usize,
    /// How often a split LLM vote (as many Yes as No) is judged again, all k afresh, before the
    /// response counts as a tie and is dropped (SPaR: 3).
    #[arg(long, default_value_t = JudgeConfig::default().tie_resamples)]
    pub tie_resamples: usize,
    /// The judge plugin (default: the built-in judge-spar).
    #[arg(id = "judge_plugin", long = "judge-plugin")]
    pub plugin: Option<PathBuf>,
    /// Verifier plugins (default: the built-in verifier-ifeval).
    #[arg(long = "verifier")]
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

/// `[search]`, and the same options on the `search` command (one struct, one set of defaults:
/// the paper's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// The strategy plugin (default: the built-in search-bfs).
    #[arg(id = "strategy", long = "strategy")]
    pub plugin: Option<PathBuf>,
    /// Children per expanded node.
    #[arg(long, default_value_t = SearchConfig::default().branch)]
    pub branch: i64,
    /// Nodes kept per level (BFS).
    #[arg(long, default_value_t = SearchConfig::default().select)]
    pub select: i64,
    #[arg(long, default_value_t = SearchConfig::default().max_depth)]
    pub max_depth: i64,
    /// A node passes when its value is strictly above this.
    #[arg(long = "gate", default_value_t = SearchConfig::default().pass_gate)]
    pub pass_gate: f64,
    /// Most refinements one tree may generate.
    #[arg(long, default_value_t = SearchConfig::default().budget)]
    pub budget: i64,
    /// Re-samples of an unparseable refinement before it counts as failed.
    #[arg(long, default_value_t = SearchConfig::default().retries)]
    pub retries: u32,
    /// Sampling temperature of a refinement.
    #[arg(id = "refine_temperature", long = "refine-temperature", default_value_t = SearchConfig::default().temperature)]
    pub temperature: f64,
    #[arg(id = "refine_top_p", long = "refine-top-p", default_value_t = SearchConfig::default().top_p)]
    pub top_p: f64,
    /// Most tokens of one refinement.
    #[arg(
        id = "refine_max_new_tokens",
        long = "refine-max-new-tokens",
        default_value_t = SearchConfig::default().max_new_tokens
    )]
    pub max_new_tokens: usize,
    /// Also search failed samples that the token limit cut off (default: they are counted as
    /// `truncated` and left out, since they fail for the limit's sake, not the answer's).
    #[arg(long)]
    pub search_truncated: bool,
    /// How a node's children are made: `llm` (the refiner rewrites; the paper), `repair` (the
    /// verifiers' minimal fixes; one child per node, so use branch 1) or `both` (the first child
    /// is the repair, the others rewrites).
    #[arg(long, value_enum, default_value_t = SearchConfig::default().refine)]
    pub refine: RefineMode,
    /// Which failed sample of a prompt is searched: `random` (SPaR) or `lowest` (valued).
    #[arg(long, value_enum, default_value_t = SearchConfig::default().negative)]
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
