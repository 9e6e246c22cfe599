//! The training loop shared by DPO and SFT: deterministic data order from the seed, micro-batches
//! padded to their longest sequence, gradient accumulation, AdamW with warmup and decay, clipping,
//! periodic checkpoints with optimizer state for `--resume`, and a final HF checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::checkpoint::{save_checkpoint, save_hf_dir};
use super::data::{self, DataReport, PairSequences, Sequence};
use super::dpo::{DpoMetrics, LossType};
use super::lora::{self, LoraSettings};
use super::optim::{AdamW, AdamWConfig, Schedule, learning_rate};
use super::reference::{fingerprint, reference_cache_dir, reference_logps};
use super::step::{grads_by_name, pair_loss, sequence_loss};
pub use super::trainable::{Trainable, trainable, trainable_lora};
use crate::engine::device::Precision;
use crate::engine::loader;
use crate::engine::sampling::Rng;

/// What is optimised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Objective {
    Dpo {
        beta: f64,
        sft_weight: f64,
        loss_type: LossType,
    },
    Sft,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Examples per forward pass (pairs for DPO).
    pub micro_batch: usize,
    pub grad_accum: usize,
    pub max_length: usize,
    pub warmup_ratio: f64,
    pub schedule: Schedule,
    pub optimizer: AdamWConfig,
    pub seed: u64,
    /// Save a resumable checkpoint every this many steps (0: only at the end).
    pub save_every: usize,
    /// Stop after this many optimizer steps (the run can be resumed to finish).
    pub max_steps: Option<usize>,
    /// Shard safetensors files above this many bytes.
    pub shard_bytes: usize,
    /// Compute dtype of forward and backward (weights and optimizer state stay f32).
    #[serde(default)]
    pub precision: Precision,
    /// Train LoRA adapters instead of every weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSettings>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            micro_batch: 2,
            grad_accum: 1,
            max_length: 2048,
            warmup_ratio: 0.1,
            schedule: Schedule::Linear,
            optimizer: AdamWConfig::default(),
            seed: 0,
            save_every: 0,
            max_steps: None,
            shard_bytes: 4 << 30,
            precision: Precision::F32,
            lora: None,
        }
    }
}

/// The outcome of a training run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub data: DataReport,
    pub steps: usize,
    pub total_steps: usize,
    pub metrics: Vec<serde_json::Value>,
    pub tokens_per_second: f64,
    /// Whether training stopped early at `max_steps` (resume to finish).
    pub stopped_early: bool,
}

#[derive(Serialize, Deserialize)]
pub(super) struct TrainerState {
    pub(super) step: usize,
    pub(super) total_steps: usize,
    pub(super) fingerprint: String,
}

enum Examples {
    Pairs(Vec<PairSequences>, Vec<(f32, f32)>),
    Sequences(Vec<Sequence>),
}

impl Examples {
    fn len(&self) -> usize {
        match self {
            Examples::Pairs(p, _) => p.len(),
            Examples::Sequences(s) => s.len(),
        }
    }
}

/// The order of examples in `epoch`: a seeded Fisher-Yates shuffle.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed ^ (epoch as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

fn add_grads(
    total: &mut HashMap<String, Tensor>,
    more: HashMap<String, Tensor>,
) -> candle_core::Result<()> {
    for (name, g) in more {
        let Some(sum) = total.get_mut(&name) else {
            total.insert(name, g);
            continue;
        };
        // In place where both are CPU f32 (the micro-batch's gradient is read where it lies);
        // a tensor sum elsewhere.
        let added = crate::engine::cpu_slice::with_f32_values_mut(sum, |sum| {
            crate::engine::cpu_slice::with_f32_values(&g, |g| {
                use rayon::prelude::*;
                if g.len() == sum.len() {
                    sum.par_iter_mut()
                        .zip(g.par_iter())
                        .for_each(|(s, g)| *s += g);
                    true
                } else {
                    false
                }
            })
        })?;
        if added != Some(Some(true)) {
            *sum = (&*sum + g)?;
        }
    }
    Ok(())
}

/// Train `model_path` on `data_path` into `output` (an HF checkpoint directory when done).
/// `resume`: a checkpoint written by an earlier run of the same command (`output/checkpoint-last`).
pub fn train(
    model_path: &Path,
    data_path: &Path,
    output: &Path,
    objective: &Objective,
    cfg: &TrainConfig,
    resume: Option<&Path>,
    device: &Device,
) -> anyhow::Result<TrainReport> {
    if cfg.micro_batch == 0 || cfg.grad_accum == 0 || cfg.epochs == 0 {
        bail!("micro_batch, grad_accum and epochs must be at least 1");
    }
    let mut t = match &cfg.lora {
        Some(settings) => trainable_lora(model_path, device, settings, cfg.seed)?,
        None => trainable(model_path, device)?,
    }
    .computing_in(cfg.precision);
    let template = t.loaded.template.as_ref().with_context(|| {
        format!(
            "{}: the model has no chat template to format training data",
            model_path.display()
        )
    })?;
    let data_bytes = std::fs::read(data_path)
        .with_context(|| format!("{}: cannot read", data_path.display()))?;
    let settings = serde_json::to_vec(&(
        objective,
        cfg.max_length,
        template.source(),
        cfg.precision,
        &cfg.lora,
    ))?;
    let start_fingerprint = fingerprint(&t, &[&data_bytes, &settings])?;
    let (examples, report) = match objective {
        Objective::Dpo { .. } => {
            let pairs = data::read_preferences(data_path)?;
            let (seqs, report) =
                data::tokenize_preferences(&pairs, template, &t.loaded.tokenizer, cfg.max_length)?;
            (Examples::Pairs(seqs, Vec::new()), report)
        }
        Objective::Sft => {
            let conversations = data::read_conversations(data_path)?;
            let (seqs, report) = data::tokenize_conversations(
                &conversations,
                template,
                &t.loaded.tokenizer,
                cfg.max_length,
            )?;
            (Examples::Sequences(seqs), report)
        }
    };
    if examples.len() == 0 {
        bail!(
            "{}: no usable training examples ({:?})",
            data_path.display(),
            report.skipped
        );
    }
    let examples = match examples {
        Examples::Pairs(pairs, _) => {
            let reference = reference_logps(
                &t,
                &pairs,
                cfg,
                &reference_cache_dir(),
                &start_fingerprint,
                device,
            )?;
            Examples::Pairs(pairs, reference)
        }
        other => other,
    };
    let per_step = cfg.micro_batch * cfg.grad_accum;
    let steps_per_epoch = examples.len().div_ceil(per_step);
    let total_steps = steps_per_epoch * cfg.epochs;
    let warmup = (cfg.warmup_ratio * total_steps as f64).ceil() as usize;
    let mut optimizer = AdamW::new(t.params.clone(), cfg.optimizer.clone())?;
    let mut metrics_log: Vec<serde_json::Value> = Vec::new();
    let checkpoint_dir = output.join("checkpoint-last");

    let mut start = 0;
    if let Some(dir) = resume {
        let state: TrainerState = serde_json::from_str(
            &std::fs::read_to_string(dir.join("trainer_state.json")).with_context(|| {
                format!("{}: no trainer_state.json to resume from", dir.display())
            })?,
        )?;
        if state.fingerprint != start_fingerprint || state.total_steps != total_steps {
            bail!(
                "{}: checkpoint is from a different model, data or settings; cannot resume",
                dir.display()
            );
        }
        if t.lora.is_some() {
            lora::load_adapter(&dir.join("adapter"), &t.params, device)?;
        } else {
            let resumed = loader::load(dir)?;
            for (name, var) in &t.params {
                let w = resumed
                    .weights
                    .get(name)
                    .with_context(|| format!("{}: checkpoint lacks {name}", dir.display()))?;
                var.set(&w.to_dtype(DType::F32)?.to_device(device)?)?;
            }
        }
        let state_tensors =
            candle_core::safetensors::load(dir.join("optimizer.safetensors"), device)
                .with_context(|| format!("{}: cannot read optimizer.safetensors", dir.display()))?;
        optimizer.load_state(&state_tensors, state.step)?;
        if let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) {
            metrics_log = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
        }
        start = state.step;
        tracing::info!(step = start, "resuming training");
    }

    let end = cfg.max_steps.map_or(total_steps, |m| m.min(total_steps));
    let started = Instant::now();
    let mut tokens = 0usize;
    let bar = crate::progress::bar("train", end, start);
    for step in start..end {
        let epoch = step / steps_per_epoch;
        let order = epoch_order(examples.len(), cfg.seed, epoch);
        let offset = (step % steps_per_epoch) * per_step;
        let indices: Vec<usize> = order[offset..(offset + per_step).min(order.len())].to_vec();
        let micro: Vec<&[usize]> = indices.chunks(cfg.micro_batch).collect();
        let mut grads: HashMap<String, Tensor> = HashMap::new();
        let mut step_metrics = DpoMetrics {
            step: step + 1,
            ..DpoMetrics::default()
        };
        let mut loss_sum = 0f64;
        let mut sft_nll = 0f64;
        for part in &micro {
            let weight = part.len() as f64 / indices.len() as f64;
            let loss = match &examples {
                Examples::Pairs(pairs, reference) => {
                    let batch: Vec<(&Sequence, &Sequence)> = part
                        .iter()
                        .map(|&i| (&pairs[i].chosen, &pairs[i].rejected))
                        .collect();
                    tokens += batch
                        .iter()
                        .map(|(c, r)| c.ids.len() + r.ids.len())
                        .sum::<usize>();
                    let references: Vec<(f32, f32)> = part.iter().map(|&i| reference[i]).collect();
                    let Objective::Dpo {
                        beta,
                        sft_weight,
                        loss_type,
                    } = objective
                    else {
                        unreachable!()
                    };
                    let out = pair_loss(
                        &t.model,
                        &batch,
                        &references,
                        (*beta, *sft_weight, *loss_type),
                        device,
                    )?;
                    let n = part.len();
                    let mean =
                        |v: &[f32]| v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
                    let (c, r) = (&out.rewards_chosen, &out.rewards_rejected);
                    step_metrics.rewards_chosen += weight * mean(c);
                    step_metrics.rewards_rejected += weight * mean(r);
                    step_metrics.rewards_accuracies +=
                        weight * c.iter().zip(r).filter(|(a, b)| a > b).count() as f64 / n as f64;
                    step_metrics.logps_chosen += weight * mean(&out.logps_chosen);
                    step_metrics.logps_rejected += weight * mean(&out.logps_rejected);
                    step_metrics.logits_chosen += weight * out.logits_chosen;
                    step_metrics.logits_rejected += weight * out.logits_rejected;
                    sft_nll += weight * out.nll_chosen;
                    out.loss
                }
                Examples::Sequences(seqs) => {
                    let batch: Vec<&Sequence> = part.iter().map(|&i| &seqs[i]).collect();
                    tokens += batch.iter().map(|s| s.ids.len()).sum::<usize>();
                    sequence_loss(&t.model, &batch, device)?
                }
            };
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                bail!(
                    "non-finite loss ({value}) at step {}: stopping (check the learning rate and the data)",
                    step + 1
                );
            }
            loss_sum += weight * value;
            let scaled = (loss * weight)?;
            add_grads(&mut grads, grads_by_name(&t.params, &scaled.backward()?))?;
        }
        let lr = learning_rate(cfg.optimizer.lr, cfg.schedule, warmup, total_steps, step);
        let grad_norm = optimizer.step(&grads, lr)?;
        if !grad_norm.is_finite() {
            bail!("non-finite gradient norm at step {}: stopping", step + 1);
        }
        step_metrics.loss = loss_sum;
        step_metrics.grad_norm = grad_norm;
        step_metrics.learning_rate = lr;
        step_metrics.rewards_margins = step_metrics.rewards_chosen - step_metrics.rewards_rejected;
        step_metrics.tokens_per_second = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let mut line = serde_json::to_value(&step_metrics)?;
        if matches!(objective, Objective::Sft) {
            line = json!({"step": step + 1, "loss": loss_sum, "grad_norm": grad_norm, "learning_rate": lr,
                          "tokens_per_second": step_metrics.tokens_per_second});
        } else {
            line["nll/chosen"] = json!(sft_nll);
        }
        tracing::info!(target: "train", "{line}");
        metrics_log.push(line);
        let done = step + 1;
        if cfg.save_every > 0 && done % cfg.save_every == 0 && done < end {
            let state = (done, total_steps, start_fingerprint.as_str());
            let contents = t.checkpoint_contents(model_path)?;
            save_checkpoint(
                &checkpoint_dir,
                &t.loaded,
                contents,
                &optimizer,
                state,
                &metrics_log,
                cfg,
            )?;
        }
        bar.inc(1);
        bar.set_message(format!("loss {loss_sum:.4}"));
        crate::failpoint::hit("train-step");
    }
    bar.finish_and_clear();
    let metrics_text: String = metrics_log.iter().map(|m| format!("{m}\n")).collect();
    let stopped_early = end < total_steps;
    let contents = t.checkpoint_contents(model_path)?;
    if stopped_early {
        let state = (end, total_steps, start_fingerprint.as_str());
        save_checkpoint(
            &checkpoint_dir,
            &t.loaded,
            contents,
            &optimizer,
            state,
            &metrics_log,
            cfg,
        )?;
    } else {
        let (weights, mut files) = (contents.weights, contents.files);
        files.push(("metrics.jsonl".into(), metrics_text.into_bytes()));
        files.push((
            "data_report.json".into(),
            serde_json::to_vec_pretty(&report)?,
        ));
        let files: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        save_hf_dir(output, &t.loaded, &weights, cfg.shard_bytes, &files)?;
    }
    Ok(TrainReport {
        data: report,
        steps: end - start,
        total_steps,
        metrics: metrics_log,
        tokens_per_second: tokens as f64 / started.elapsed().as_secs_f64().max(1e-9),
        stopped_early,
    })
}
