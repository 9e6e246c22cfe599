//! The training sections: `[dpo]` (the actor), `[sft]` (the refiner's RFT and `[init]`), and
//! `[rft]` (the refiner's data mix), each mapped to the trainer's settings.

use serde::{Deserialize, Serialize};

use super::{ExternalTrainer, Precision};
use crate::train::dpo::LossType;
use crate::train::lora::{LINEAR_MODULES, LoraSettings};
use crate::train::optim::{AdamWConfig, Schedule};
use crate::train::trainer::{Objective, TrainConfig};

/// `[dpo]`, and the same options on `train dpo` (one struct, one set of defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct DpoConfig {
    #[arg(long, default_value_t = DpoConfig::default().beta)]
    pub beta: f64,
    /// Weight of the NLL term on the chosen response (SPaR: 0.1).
    #[arg(long, default_value_t = DpoConfig::default().sft_weight)]
    pub sft_weight: f64,
    #[arg(long, value_enum, default_value_t = DpoConfig::default().loss_type)]
    pub loss_type: LossType,
    #[arg(long, default_value_t = DpoConfig::default().lr)]
    pub lr: f64,
    #[arg(long, default_value_t = DpoConfig::default().epochs)]
    pub epochs: usize,
    /// Pairs per forward pass.
    #[arg(long, default_value_t = DpoConfig::default().micro_batch)]
    pub micro_batch: usize,
    #[arg(long, default_value_t = DpoConfig::default().grad_accum)]
    pub grad_accum: usize,
    #[arg(long, default_value_t = DpoConfig::default().max_length)]
    pub max_length: usize,
    #[arg(long, default_value_t = DpoConfig::default().warmup_ratio)]
    pub warmup_ratio: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = DpoConfig::default().max_grad_norm)]
    #[serde(skip_serializing_if = "is_one")]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = DpoConfig::default().weight_decay)]
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// Optimizer steps between resumable checkpoints (weights and optimizer state), so a killed
    /// run resumes training mid-stage; 0: only the final checkpoint.
    #[arg(long, default_value_t = DpoConfig::default().save_every)]
    pub save_every: usize,
    /// LoRA adapters instead of full fine-tuning (`[dpo.lora]`; rank 0, the default: off).
    #[command(flatten)]
    #[serde(skip_serializing_if = "LoraConfig::is_off")]
    pub lora: LoraConfig,
    /// `builtin` (this host's trainer) or `external` (the `[dpo.external]` command).
    #[arg(skip)]
    pub trainer: TrainerKind,
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalTrainer>,
}

// Keys added after run directories existed are left out of the resolved config at their default,
// so those directories still resume.
fn is_one(v: &f64) -> bool {
    *v == 1.0
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
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
            max_grad_norm: $section.max_grad_norm,
            weight_decay: $section.weight_decay,
            lora: $section.lora.settings(),
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
    max_grad_norm: f64,
    weight_decay: f64,
    lora: Option<LoraSettings>,
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
            max_grad_norm: shape.max_grad_norm,
            weight_decay: shape.weight_decay,
            ..AdamWConfig::default()
        },
        seed,
        save_every: shape.save_every,
        precision,
        lora: shape.lora,
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
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            save_every: 100,
            lora: LoraConfig::default(),
            trainer: TrainerKind::Builtin,
            external: None,
        }
    }
}

/// `[sft]` (the refiner's RFT and `[init]`), and the same options on `train sft`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    #[arg(long, default_value_t = SftConfig::default().lr)]
    pub lr: f64,
    #[arg(long, default_value_t = SftConfig::default().epochs)]
    pub epochs: usize,
    /// Conversations per forward pass.
    #[arg(long, default_value_t = SftConfig::default().micro_batch)]
    pub micro_batch: usize,
    #[arg(long, default_value_t = SftConfig::default().grad_accum)]
    pub grad_accum: usize,
    #[arg(long, default_value_t = SftConfig::default().max_length)]
    pub max_length: usize,
    #[arg(long, default_value_t = SftConfig::default().warmup_ratio)]
    pub warmup_ratio: f64,
    /// As `dpo.max_grad_norm`.
    #[arg(long, default_value_t = SftConfig::default().max_grad_norm)]
    #[serde(skip_serializing_if = "is_one")]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = SftConfig::default().weight_decay)]
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// As `dpo.save_every`.
    #[arg(long, default_value_t = SftConfig::default().save_every)]
    pub save_every: usize,
    /// As `[dpo.lora]`.
    #[command(flatten)]
    #[serde(skip_serializing_if = "LoraConfig::is_off")]
    pub lora: LoraConfig,
    /// As `dpo.trainer`, with `[sft.external]`.
    #[arg(skip)]
    pub trainer: TrainerKind,
    #[arg(skip)]
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
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            save_every: 100,
            lora: LoraConfig::default(),
            trainer: TrainerKind::Builtin,
            external: None,
        }
    }
}

/// `[dpo.lora]`, `[sft.lora]` and `--lora-*`: train LoRA adapters (PEFT's) on the chosen
/// linear layers instead of every weight; the checkpoint is the merged model, with the adapter
/// in PEFT's format under `adapter/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    /// LoRA rank r (0: no LoRA, every weight is trained).
    #[arg(long = "lora-rank", default_value_t = 0)]
    pub rank: usize,
    /// LoRA alpha: the adapters' output is scaled by alpha / r.
    #[arg(long = "lora-alpha", default_value_t = LoraConfig::default().alpha)]
    pub alpha: f64,
    /// Dropout on the adapters' input; only 0 is supported (training stays deterministic).
    #[arg(long = "lora-dropout", default_value_t = 0.0)]
    pub dropout: f64,
    /// Layers to adapt: `all-linear` (every linear layer but the LM head) or names among
    /// q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
    #[arg(
        long = "lora-target-modules",
        value_delimiter = ',',
        default_value = "all-linear"
    )]
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 0,
            alpha: 16.0,
            dropout: 0.0,
            target_modules: vec!["all-linear".into()],
        }
    }
}

impl LoraConfig {
    fn is_off(&self) -> bool {
        *self == LoraConfig::default()
    }

    /// The trainer's LoRA, or `None` for full fine-tuning.
    pub fn settings(&self) -> Option<LoraSettings> {
        (self.rank > 0).then(|| LoraSettings {
            rank: self.rank,
            alpha: self.alpha,
            target_modules: self.target_modules.clone(),
        })
    }

    /// What is wrong with these settings: (field, problem) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.rank == 0 {
            return problems;
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            problems.push(("alpha", format!("must be positive, not {}", self.alpha)));
        }
        if self.dropout != 0.0 {
            problems.push((
                "dropout",
                format!(
                    "LoRA dropout is not supported (training is deterministic and resumes exactly); set 0, not {}",
                    self.dropout
                ),
            ));
        }
        if self.target_modules.is_empty() {
            problems.push(("target_modules", "names no layer".into()));
        }
        for module in &self.target_modules {
            if module != "all-linear" && !LINEAR_MODULES.contains(&module.as_str()) {
                problems.push((
                    "target_modules",
                    format!(
                        "unknown layer `{module}` (known: all-linear, {})",
                        LINEAR_MODULES.join(", ")
                    ),
                ));
            }
        }
        problems
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
