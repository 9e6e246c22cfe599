//! The training stages of a run: DPO of the actor, RFT of the refiner, and the `[init]` SFT of
//! either role before iteration 1. A stage is done when its output holds a checkpoint; a stop
//! mid-training resumes from the last periodic checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::plan::{Role, Run};
use crate::config::ExternalTrainer;
use crate::records::{PairRecord, SftRecord};
use crate::storage::read_jsonl;
use crate::train::export::StageData;
use crate::train::external::train_external;
use crate::train::trainer::{Objective, TrainConfig, train};

/// One training stage: `start` trained on `data` into `out`.
struct Stage<'a> {
    /// The metrics' stage name.
    name: &'a str,
    /// Recorded when `data` is empty.
    skip_reason: &'a str,
    start: &'a Path,
    data: &'a Path,
    out: &'a Path,
    objective: Objective,
    config: TrainConfig,
    external: Option<&'a ExternalTrainer>,
}

/// DPO of the actor on an iteration's pairs; returns the next actor.
pub fn dpo(run: &Run, iteration: usize, dir: &Path, actor: &Path) -> anyhow::Result<PathBuf> {
    let d = &run.config.dpo;
    train_stage(
        run,
        iteration,
        dir,
        Stage {
            name: "dpo",
            skip_reason: "no pairs; the actor is unchanged",
            start: actor,
            data: &dir.join("pairs.jsonl"),
            out: &dir.join("actor"),
            objective: d.objective(),
            config: d.train_config(
                run.config.seed ^ iteration as u64,
                run.config.training_precision(),
            ),
            external: d.external_trainer(),
        },
    )
}

/// SFT (RFT) of the refiner on an iteration's refiner data; returns the next refiner.
pub fn rft(run: &Run, iteration: usize, dir: &Path, refiner: &Path) -> anyhow::Result<PathBuf> {
    sft(
        run,
        iteration,
        dir,
        ("rft", "no refiner examples; the refiner is unchanged"),
        refiner,
        &dir.join("refiner-sft.jsonl"),
        &dir.join("refiner"),
    )
}

/// `[init]`: SFT of each role that has seed data, before iteration 1 (metrics as iteration 0,
/// checkpoints in `init/`); returns the actor and refiner the first iteration starts from.
pub fn init(run: &Run, actor: PathBuf, refiner: PathBuf) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = run.dir.join("init");
    let start = |data: &Option<PathBuf>, model: PathBuf, role: Role| match data {
        None => Ok(model),
        Some(data) => {
            std::fs::create_dir_all(&dir)?;
            sft(
                run,
                0,
                &dir,
                (
                    &format!("init-{}", role.name()),
                    "the seed data is empty; the model is unchanged",
                ),
                &model,
                &run.resolve(data),
                &dir.join(role.name()),
            )
        }
    };
    let actor = start(&run.config.init.actor, actor, Role::Actor)?;
    let refiner = start(&run.config.init.refiner, refiner, Role::Refiner)?;
    Ok((actor, refiner))
}

fn sft(
    run: &Run,
    iteration: usize,
    dir: &Path,
    (name, skip_reason): (&str, &str),
    start: &Path,
    data: &Path,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let s = &run.config.sft;
    train_stage(
        run,
        iteration,
        dir,
        Stage {
            name,
            skip_reason,
            start,
            data,
            out,
            objective: Objective::Sft,
            config: s.train_config(
                run.config.seed ^ iteration as u64,
                run.config.training_precision(),
            ),
            external: s.external_trainer(),
        },
    )
}

/// Train `start` on `data` into `out` (the stage is done when `out` holds a checkpoint); with no
/// data, record the skip once and keep `start`. Returns the model the next stage starts from.
fn train_stage(run: &Run, iteration: usize, dir: &Path, s: Stage) -> anyhow::Result<PathBuf> {
    let Stage {
        name: stage,
        skip_reason,
        start,
        data,
        out,
        objective,
        config: train_cfg,
        external,
    } = s;
    let (objective, train_cfg) = (&objective, &train_cfg);
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
        run.metrics.record(
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
    run.metrics.record(
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
        run.metrics
            .record(iteration, stage, 0.0, json!({ "skipped": why }))?;
        crate::storage::write_atomic(&marker, why.as_bytes())?;
    }
    Ok(())
}
