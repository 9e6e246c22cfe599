//! `spar-host train dpo` and `spar-host train sft`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::engine::device::Precision;
use crate::train::dpo::LossType;
use crate::train::optim::{AdamWConfig, Schedule};
use crate::train::trainer::{Objective, TrainConfig, train};

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Direct preference optimisation of the actor on preference pairs.
    Dpo {
        #[arg(long)]
        model: PathBuf,
        /// Pairs: this project's / TRL's conversational format, TRL's plain strings, or
        /// LLaMA-Factory's messages/chosen/rejected.
        #[arg(long)]
        pairs: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 0.1)]
        beta: f64,
        /// Weight of the NLL term on the chosen response (SPaR: 0.1).
        #[arg(long, default_value_t = 0.1)]
        sft_weight: f64,
        #[arg(long, value_enum, default_value = "sigmoid")]
        loss_type: LossType,
        #[arg(long, default_value_t = 2e-7)]
        lr: f64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Supervised fine-tuning (the refiner's RFT) on conversations; loss on assistant turns.
    Sft {
        #[arg(long)]
        model: PathBuf,
        /// `{"messages": [...]}` per line.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 2e-6)]
        lr: f64,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Args)]
pub struct CommonArgs {
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    #[arg(long, default_value_t = 2)]
    micro_batch: usize,
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    #[arg(long, default_value_t = 2048)]
    max_length: usize,
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    /// `linear` decay after warmup (DPO default) or `constant`.
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save a resumable checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    save_every: usize,
    /// Stop after N steps (resume later with --resume OUTPUT/checkpoint-last).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Continue from a checkpoint written by an earlier run of the same command.
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Compute dtype (`bf16` on a GPU); weights and optimizer state stay f32.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
}

fn config(common: &CommonArgs, lr: f64, default_schedule: Schedule) -> TrainConfig {
    TrainConfig {
        epochs: common.epochs,
        micro_batch: common.micro_batch,
        grad_accum: common.grad_accum,
        max_length: common.max_length,
        warmup_ratio: common.warmup_ratio,
        schedule: common.schedule.unwrap_or(default_schedule),
        optimizer: AdamWConfig {
            lr,
            max_grad_norm: common.max_grad_norm,
            weight_decay: common.weight_decay,
            ..AdamWConfig::default()
        },
        seed: common.seed,
        save_every: common.save_every,
        max_steps: common.max_steps,
        precision: common.dtype,
        ..TrainConfig::default()
    }
}

pub fn run(command: TrainCommand) -> anyhow::Result<ExitCode> {
    let (model, data, output, objective, cfg, common) = match &command {
        TrainCommand::Dpo {
            model,
            pairs,
            output,
            beta,
            sft_weight,
            loss_type,
            lr,
            common,
        } => (
            model,
            pairs,
            output,
            Objective::Dpo {
                beta: *beta,
                sft_weight: *sft_weight,
                loss_type: *loss_type,
            },
            config(common, *lr, Schedule::Linear),
            common,
        ),
        TrainCommand::Sft {
            model,
            data,
            output,
            lr,
            common,
        } => (
            model,
            data,
            output,
            Objective::Sft,
            config(common, *lr, Schedule::Constant),
            common,
        ),
    };
    let device = crate::engine::device::parse(&common.device)?;
    let report = train(
        model,
        data,
        output,
        &objective,
        &cfg,
        common.resume.as_deref(),
        &device,
    )?;
    let last = report.metrics.last().cloned().unwrap_or_default();
    eprintln!(
        "stats train: {}",
        serde_json::json!({
            "steps": report.steps,
            "total_steps": report.total_steps,
            "data": report.data,
            "last": last,
            "tokens_per_second": report.tokens_per_second,
            "stopped_early": report.stopped_early,
        })
    );
    if report.stopped_early {
        eprintln!(
            "stopped at max-steps; resume with --resume {}",
            output.join("checkpoint-last").display()
        );
    } else {
        eprintln!("checkpoint written to {}", output.display());
    }
    Ok(ExitCode::SUCCESS)
}
