//! `spar-host train dpo` and `spar-host train sft`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::{DpoConfig, SftConfig};
use crate::engine::device::Precision;
use crate::train::optim::Schedule;
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
        /// The `[dpo]` options of a run config, with the same defaults.
        #[command(flatten)]
        dpo: DpoConfig,
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
        /// The `[sft]` options of a run config, with the same defaults.
        #[command(flatten)]
        sft: SftConfig,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// What a single training command adds to a run config's section.
#[derive(Args)]
pub struct CommonArgs {
    /// `linear` decay after warmup (the DPO default) or `constant` (the SFT default).
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
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

impl CommonArgs {
    fn apply(&self, mut cfg: TrainConfig) -> TrainConfig {
        if let Some(schedule) = self.schedule {
            cfg.schedule = schedule;
        }
        cfg.max_steps = self.max_steps;
        cfg
    }
}

pub fn run(command: TrainCommand) -> anyhow::Result<ExitCode> {
    let (model, data, output, objective, cfg, common) = match &command {
        TrainCommand::Dpo {
            model,
            pairs,
            output,
            dpo,
            common,
        } => (
            model,
            pairs,
            output,
            dpo.objective(),
            common.apply(dpo.train_config(common.seed, common.dtype)),
            common,
        ),
        TrainCommand::Sft {
            model,
            data,
            output,
            sft,
            common,
        } => (
            model,
            data,
            output,
            Objective::Sft,
            common.apply(sft.train_config(common.seed, common.dtype)),
            common,
        ),
    };
    let lora = match &command {
        TrainCommand::Dpo { dpo, .. } => &dpo.lora,
        TrainCommand::Sft { sft, .. } => &sft.lora,
    };
    if let Some((field, problem)) = lora.problems().first() {
        anyhow::bail!("--lora-{}: {problem}", field.replace('_', "-"));
    }
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
