//! Training on tiny random models: the DPO objective against an independent formula, gradients
//! against finite differences, learning a fixed set of pairs, checkpoints, and exact resume.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use spar_host::engine::loader;
use spar_host::engine::tiny::{self, TinySpec};
use spar_host::train::data::Sequence;
use spar_host::train::dpo::{LossType, dpo_loss};
use spar_host::train::logprobs::sequence_logps;
use spar_host::train::optim::{AdamWConfig, Schedule};
use spar_host::train::trainer::{Objective, TrainConfig, train, trainable};

fn sigmoid_loss_by_hand(pc: f64, pr: f64, rc: f64, rr: f64, beta: f64) -> f64 {
    let z = beta * ((pc - pr) - (rc - rr));
    (1.0 + (-z).exp()).ln()
}

#[test]
fn dpo_loss_rewards_and_margins_match_the_formula() {
    let device = Device::Cpu;
    let t = |v: &[f32]| Tensor::new(v, &device).unwrap();
    let (pc, pr, rc, rr) = (
        [-10.0f32, -3.5, -40.0],
        [-12.0f32, -3.0, -39.0],
        [-11.0f32, -3.2, -41.0],
        [-11.5f32, -3.1, -38.0],
    );
    let tokens = [5.0f32, 2.0, 20.0];
    let rejected_tokens = [4.0f32, 3.0, 10.0];
    let beta = 0.1;
    for (loss_type, sft_weight) in [
        (LossType::Sigmoid, 0.0),
        (LossType::Sigmoid, 0.1),
        (LossType::Ipo, 0.0),
        (LossType::Hinge, 0.0),
    ] {
        let out = dpo_loss(
            &t(&pc),
            &t(&pr),
            &t(&rc),
            &t(&rr),
            &t(&tokens),
            &t(&rejected_tokens),
            beta,
            sft_weight,
            loss_type,
        )
        .unwrap();
        let mut expected = 0.0;
        // IPO compares per-token means (TRL, LLaMA-Factory); the others summed log-probs.
        let (nc, nr): (Vec<f64>, Vec<f64>) = if loss_type == LossType::Ipo {
            (
                tokens.iter().map(|&n| n as f64).collect(),
                rejected_tokens.iter().map(|&n| n as f64).collect(),
            )
        } else {
            (vec![1.0; 3], vec![1.0; 3])
        };
        for i in 0..3 {
            let (a, b) = (pc[i] as f64 / nc[i], pr[i] as f64 / nr[i]);
            let (c, d) = (rc[i] as f64 / nc[i], rr[i] as f64 / nr[i]);
            let delta = (a - b) - (c - d);
            expected += match loss_type {
                LossType::Sigmoid => sigmoid_loss_by_hand(a, b, c, d, beta),
                LossType::Ipo => (delta - 1.0 / (2.0 * beta)).powi(2),
                LossType::Hinge => (1.0 - beta * delta).max(0.0),
            } / 3.0;
            expected += sft_weight * (-pc[i] as f64 / tokens[i] as f64) / 3.0;
        }
        let loss = out.loss.to_scalar::<f32>().unwrap() as f64;
        assert!(
            (loss - expected).abs() < 1e-5,
            "{loss_type:?}: {loss} vs {expected}"
        );
        let chosen: Vec<f32> = out.chosen_rewards.to_vec1().unwrap();
        let rejected: Vec<f32> = out.rejected_rewards.to_vec1().unwrap();
        for i in 0..3 {
            let want_c = beta * (pc[i] - rc[i]) as f64 / nc[i];
            let want_r = beta * (pr[i] - rr[i]) as f64 / nr[i];
            assert!((chosen[i] as f64 - want_c).abs() < 1e-5);
            assert!((rejected[i] as f64 - want_r).abs() < 1e-5);
        }
    }
    // The issue's worked example: pc=-100, pr=-120, rc=-110, rr=-115, 50/60 tokens.
    let out = dpo_loss(
        &t(&[-100.0]),
        &t(&[-120.0]),
        &t(&[-110.0]),
        &t(&[-115.0]),
        &t(&[50.0]),
        &t(&[60.0]),
        beta,
        0.0,
        LossType::Ipo,
    )
    .unwrap();
    let delta = (-100.0 / 50.0 - -120.0 / 60.0) - (-110.0 / 50.0 - -115.0 / 60.0);
    let expected: f64 = (delta - 1.0 / (2.0 * beta)).powi(2);
    let loss = out.loss.to_scalar::<f32>().unwrap() as f64;
    assert!((loss - expected).abs() < 1e-4, "{loss} vs {expected}");
    // Stable for huge margins: no overflow to inf or NaN.
    let out = dpo_loss(
        &t(&[0.0]),
        &t(&[-1e6]),
        &t(&[0.0]),
        &t(&[0.0]),
        &t(&[1.0]),
        &t(&[1.0]),
        0.1,
        0.0,
        LossType::Sigmoid,
    )
    .unwrap();
    assert_eq!(out.loss.to_scalar::<f32>().unwrap(), 0.0);
    let out = dpo_loss(
        &t(&[-1e6]),
        &t(&[0.0]),
        &t(&[0.0]),
        &t(&[0.0]),
        &t(&[1.0]),
        &t(&[1.0]),
        0.1,
        0.0,
        LossType::Sigmoid,
    )
    .unwrap();
    assert!((out.loss.to_scalar::<f32>().unwrap() - 1e5).abs() < 1.0);
}

fn model_dir(name: &str) -> PathBuf {
    let dir = common::scratch(name).join("model");
    tiny::write_hf_dir(
        &dir,
        &TinySpec {
            max_positions: 512,
            ..TinySpec::default()
        },
    )
    .unwrap();
    dir
}

/// TRL's `logits/chosen`: the logits' mean over the vocabulary, summed over the trained
/// positions (position t predicts token t+1), recomputed here from one plain forward pass.
#[test]
fn logit_sums_are_the_mean_logit_over_the_trained_positions() {
    use spar_host::engine::model::MASKED;
    let dir = model_dir("train-logits");
    let device = Device::Cpu;
    let t = trainable(&dir, &device).unwrap();
    let seq = Sequence {
        ids: "abcdefgh".bytes().map(u32::from).collect(),
        trained: vec![false, false, false, true, true, true, true, true],
    };
    let short = Sequence {
        ids: "abc".bytes().map(u32::from).collect(),
        trained: vec![false, true, true],
    };
    let n = seq.ids.len();
    let input = Tensor::new(seq.ids.as_slice(), &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let positions = Tensor::arange(0u32, n as u32, &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mask: Vec<f32> = (0..n)
        .flat_map(|i| (0..n).map(move |j| if j <= i { 0.0 } else { MASKED }))
        .collect();
    let mask = Tensor::from_vec(mask, (1, 1, n, n), &device).unwrap();
    let logits = t
        .model
        .forward(&input, &positions, &mask, None, false)
        .unwrap();
    let means: Vec<f32> = logits
        .mean(2)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let expected: f32 = (0..n - 1)
        .filter(|&t| seq.trained[t + 1])
        .map(|t| means[t])
        .sum();
    // Batched with a shorter, padded sequence: the padding adds nothing.
    let got = sequence_logps(&t.model, &[&seq, &short], &device).unwrap();
    assert_eq!(got.counts, [5, 2]);
    assert!(
        (got.logit_sums[0] - expected).abs() < 1e-4 * expected.abs().max(1.0),
        "{} vs {expected}",
        got.logit_sums[0]
    );
}

#[test]
fn gradients_agree_with_finite_differences() {
    let dir = model_dir("train-fd");
    let device = Device::Cpu;
    let t = trainable(&dir, &device).unwrap();
    let seq = Sequence {
        ids: "abcdefgh".bytes().map(u32::from).collect(),
        trained: vec![false, false, false, true, true, true, true, true],
    };
    let loss = |t: &spar_host::train::trainer::Trainable| -> Tensor {
        sequence_logps(&t.model, &[&seq], &device)
            .unwrap()
            .sums
            .sum_all()
            .unwrap()
    };
    let grads = loss(&t).backward().unwrap();
    let eps = 1e-2f32;
    let mut checked = 0;
    for (name, var) in t
        .params
        .iter()
        .filter(|(n, _)| n.contains("layers.0") || n.contains("lm_head") || n.contains("embed"))
    {
        let grad = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let original = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // The coordinate with the largest gradient: a clear signal for a central difference.
        let i = (0..grad.len())
            .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
            .unwrap();
        let shape = var.as_tensor().shape().clone();
        let eval_at = |delta: f32| -> f64 {
            let mut w = original.clone();
            w[i] += delta;
            var.set(&Tensor::from_vec(w, shape.clone(), &device).unwrap())
                .unwrap();
            loss(&t).to_scalar::<f32>().unwrap() as f64
        };
        let numeric = (eval_at(eps) - eval_at(-eps)) / (2.0 * eps as f64);
        var.set(&Tensor::from_vec(original.clone(), shape.clone(), &device).unwrap())
            .unwrap();
        let analytic = grad[i] as f64;
        let rel = (numeric - analytic).abs() / analytic.abs().max(1e-3);
        assert!(
            rel < 0.05,
            "{name}[{i}]: finite difference {numeric} vs autograd {analytic}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked} tensors");
}

fn pairs_file(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("pairs.jsonl");
    let mut text = String::new();
    for i in 0..n {
        text.push_str(
            &serde_json::json!({
                "id": i,
                "prompt": [{"role": "user", "content": format!("Say the word number {i}.")}],
                "chosen": [{"role": "assistant", "content": format!("yes {i}")}],
                "rejected": [{"role": "assistant", "content": format!("NO, {i}!")}],
            })
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn dpo_config(steps: usize) -> TrainConfig {
    TrainConfig {
        epochs: steps,
        micro_batch: 2,
        grad_accum: 2,
        max_length: 128,
        warmup_ratio: 0.0,
        schedule: Schedule::Constant,
        optimizer: AdamWConfig {
            lr: 5e-3,
            ..AdamWConfig::default()
        },
        seed: 11,
        ..TrainConfig::default()
    }
}

const DPO: Objective = Objective::Dpo {
    beta: 0.1,
    sft_weight: 0.1,
    loss_type: LossType::Sigmoid,
};

#[test]
fn every_parameter_changes_after_one_step() {
    let dir = model_dir("train-one-step");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 4);
    let out = root.join("out");
    train(&dir, &pairs, &out, &DPO, &dpo_config(1), None, &Device::Cpu).unwrap();
    let before = loader::load(&dir).unwrap();
    let after = loader::load(&out).unwrap();
    assert_eq!(before.weights.len(), after.weights.len());
    for (name, w) in &before.weights {
        let diff: f32 = (w - &after.weights[name])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff > 0.0, "{name} did not change");
    }
}

#[test]
fn fifty_steps_learn_the_pairs_and_the_sft_term_lowers_the_chosen_nll() {
    let dir = model_dir("train-fifty");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 4);
    let out = root.join("out");
    let report = train(
        &dir,
        &pairs,
        &out,
        &DPO,
        &dpo_config(50),
        None,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(report.total_steps, 50);
    let first = &report.metrics[0];
    let last = report.metrics.last().unwrap();
    assert_eq!(last["rewards/accuracies"], 1.0, "{last}");
    assert!(last["loss"].as_f64().unwrap() < 0.3, "{last}");
    assert!(
        (first["loss"].as_f64().unwrap() - (0.693 + 0.1 * first["nll/chosen"].as_f64().unwrap()))
            .abs()
            < 1e-3,
        "{first}"
    );
    assert!(
        last["nll/chosen"].as_f64().unwrap() < first["nll/chosen"].as_f64().unwrap(),
        "{first} -> {last}"
    );
    assert!(last["rewards/margins"].as_f64().unwrap() > 0.0);
    for key in [
        "rewards/chosen",
        "rewards/rejected",
        "logps/chosen",
        "logps/rejected",
        "logits/chosen",
        "logits/rejected",
        "grad_norm",
        "learning_rate",
    ] {
        assert!(last[key].is_number(), "{key} missing");
    }
}

#[test]
fn a_saved_checkpoint_loads_with_identical_logits() {
    let dir = model_dir("train-save");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 4);
    let out = root.join("out");
    train(&dir, &pairs, &out, &DPO, &dpo_config(2), None, &Device::Cpu).unwrap();
    for file in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "model.safetensors",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(metadata.metadata().as_ref().unwrap()["format"], "pt");
    // The same weights through the file and straight from the trainer's variables.
    let loaded = loader::load(&out).unwrap();
    let trained = trainable(&out, &Device::Cpu).unwrap();
    let in_memory: std::collections::HashMap<String, Tensor> = trained
        .params
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
        .collect();
    let direct = spar_host::engine::model::Transformer::new(
        &loaded.config,
        candle_nn::VarBuilder::from_tensors(in_memory, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let seq = Sequence {
        ids: vec![1, 2, 3, 4, 5],
        trained: vec![true; 5],
    };
    let a = sequence_logps(
        &loaded.transformer(DType::F32, &Device::Cpu).unwrap(),
        &[&seq],
        &Device::Cpu,
    )
    .unwrap()
    .sums;
    let b = sequence_logps(&direct, &[&seq], &Device::Cpu).unwrap().sums;
    assert_eq!(a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
}

#[test]
fn resuming_after_a_stop_gives_the_same_final_weights() {
    let dir = model_dir("train-resume");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 6);
    let straight = root.join("straight");
    train(
        &dir,
        &pairs,
        &straight,
        &DPO,
        &dpo_config(4),
        None,
        &Device::Cpu,
    )
    .unwrap();
    let interrupted = root.join("interrupted");
    let mut first = dpo_config(4);
    first.max_steps = Some(5);
    first.save_every = 2;
    let report = train(&dir, &pairs, &interrupted, &DPO, &first, None, &Device::Cpu).unwrap();
    assert!(report.stopped_early);
    let resumed = train(
        &dir,
        &pairs,
        &interrupted,
        &DPO,
        &dpo_config(4),
        Some(&interrupted.join("checkpoint-last")),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(resumed.steps, resumed.total_steps - 5);
    let a = loader::load(&straight).unwrap();
    let b = loader::load(&interrupted).unwrap();
    for (name, w) in &a.weights {
        let diff: f32 = (w - &b.weights[name])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(diff, 0.0, "{name} differs after resume");
    }
}

#[test]
fn sft_lowers_the_loss_on_assistant_turns() {
    let dir = model_dir("train-sft");
    let root = dir.parent().unwrap();
    let data = root.join("sft.jsonl");
    std::fs::write(
        &data,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Judge this.\"}, {\"role\": \"assistant\", \"content\": \"It fails. No\"}, {\"role\": \"user\", \"content\": \"Refine it.\"}, {\"role\": \"assistant\", \"content\": \"[[start]]fixed[[end]]\"}]}\n",
    )
    .unwrap();
    let mut cfg = dpo_config(20);
    cfg.micro_batch = 2;
    cfg.grad_accum = 1;
    let report = train(
        &dir,
        &data,
        &root.join("out"),
        &Objective::Sft,
        &cfg,
        None,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(report.data.kept, 2, "one sequence per assistant turn");
    let first = report.metrics[0]["loss"].as_f64().unwrap();
    let last = report.metrics.last().unwrap()["loss"].as_f64().unwrap();
    assert!(last < first * 0.5, "{first} -> {last}");
}

#[test]
fn bad_pairs_are_errors_or_counted_skips() {
    let dir = model_dir("train-bad");
    let root = dir.parent().unwrap();
    let bad = root.join("bad.jsonl");
    std::fs::write(&bad, "{\"prompt\": [{\"role\": \"system\", \"content\": \"x\"}], \"chosen\": \"a\", \"rejected\": \"b\"}\n").unwrap();
    let error = format!(
        "{:#}",
        train(
            &dir,
            &bad,
            &root.join("o1"),
            &DPO,
            &dpo_config(1),
            None,
            &Device::Cpu
        )
        .unwrap_err()
    );
    assert_eq!(
        error,
        format!("{}:1: the prompt has no user turn", bad.display())
    );

    let mixed = root.join("mixed.jsonl");
    let long = "x".repeat(400);
    std::fs::write(
        &mixed,
        format!(
            "{{\"prompt\": \"hi\", \"chosen\": \"a\", \"rejected\": \"b\"}}\n\
             {{\"prompt\": \"hi\", \"chosen\": \"\", \"rejected\": \"b\"}}\n\
             {{\"prompt\": \"hi\", \"chosen\": \"same\", \"rejected\": \"same\"}}\n\
             {{\"prompt\": \"{long}\", \"chosen\": \"a\", \"rejected\": \"b\"}}\n\
             {{\"messages\": [{{\"role\": \"user\", \"content\": \"q\"}}], \"chosen\": {{\"role\": \"assistant\", \"content\": \"a {long}\"}}, \"rejected\": {{\"role\": \"assistant\", \"content\": \"b\"}}}}\n"
        ),
    )
    .unwrap();
    let report = train(
        &dir,
        &mixed,
        &root.join("o2"),
        &DPO,
        &dpo_config(1),
        None,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(report.data.examples, 5);
    assert_eq!(report.data.kept, 2);
    assert_eq!(report.data.truncated, 1);
    assert_eq!(report.data.skipped["empty chosen or rejected"], 1);
    assert_eq!(report.data.skipped["chosen equals rejected"], 1);
    assert_eq!(report.data.skipped["prompt longer than max_length"], 1);
}

#[test]
fn a_checkpoint_with_a_missing_shard_is_named() {
    let dir = model_dir("train-shards");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 2);
    let out = root.join("out");
    let mut cfg = dpo_config(1);
    cfg.shard_bytes = 30_000;
    train(&dir, &pairs, &out, &DPO, &cfg, None, &Device::Cpu).unwrap();
    assert!(out.join("model.safetensors.index.json").is_file());
    loader::load(&out).unwrap();
    let shard = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("model-00001-of-")
        })
        .unwrap();
    std::fs::remove_file(&shard).unwrap();
    let error = format!("{:#}", loader::load(&out).err().unwrap());
    assert!(
        error.starts_with(&format!("{}: cannot read safetensors", shard.display())),
        "{error}"
    );
}

#[test]
fn a_non_finite_loss_stops_training_with_the_step_number() {
    let dir = model_dir("train-nan");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 4);
    let mut cfg = dpo_config(20);
    cfg.optimizer = AdamWConfig {
        lr: 1e30,
        max_grad_norm: 0.0,
        ..AdamWConfig::default()
    };
    let error = train(
        &dir,
        &pairs,
        &root.join("out"),
        &DPO,
        &cfg,
        None,
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(error.starts_with("non-finite"), "{error}");
    assert!(error.contains("at step "), "{error}");
    assert!(
        !root.join("out").join("model.safetensors").exists(),
        "nothing half-trained is written as complete"
    );
}

#[test]
fn bf16_compute_over_f32_master_weights_learns_the_pairs_and_saves_f32() {
    use spar_host::engine::device::Precision;
    let dir = model_dir("train-bf16");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 4);
    let out = root.join("out");
    let cfg = TrainConfig {
        precision: Precision::Bf16,
        ..dpo_config(30)
    };
    let report = train(&dir, &pairs, &out, &DPO, &cfg, None, &Device::Cpu).unwrap();
    let (first, last) = (&report.metrics[0], report.metrics.last().unwrap());
    // bf16 keeps ~3 significant digits: the first loss is still ln 2 + the SFT term, roughly.
    assert!(
        (first["loss"].as_f64().unwrap() - (0.693 + 0.1 * first["nll/chosen"].as_f64().unwrap()))
            .abs()
            < 0.05,
        "{first}"
    );
    assert_eq!(last["rewards/accuracies"], 1.0, "{last}");
    assert!(
        last["loss"].as_f64().unwrap() < first["loss"].as_f64().unwrap(),
        "{first} -> {last}"
    );
    let saved = loader::load(&out).unwrap();
    assert!(
        saved
            .weights
            .values()
            .all(|w| w.dtype() == candle_core::DType::F32),
        "master weights are saved in f32"
    );
}

#[test]
fn bf16_compute_changes_the_numbers_only_at_bf16_precision() {
    let dir = model_dir("train-bf16-logps");
    let t = trainable(&dir, &Device::Cpu).unwrap();
    let seq = Sequence {
        ids: (3..40).collect(),
        trained: (3..40).map(|i| i >= 10).collect(),
    };
    let f32_sums: Vec<f32> = sequence_logps(&t.model, &[&seq], &Device::Cpu)
        .unwrap()
        .sums
        .to_vec1()
        .unwrap();
    let bf16 = t.model.clone().with_compute_dtype(DType::BF16);
    let bf16_sums: Vec<f32> = sequence_logps(&bf16, &[&seq], &Device::Cpu)
        .unwrap()
        .sums
        .to_vec1()
        .unwrap();
    let diff = (f32_sums[0] - bf16_sums[0]).abs();
    assert!(diff > 0.0, "bf16 compute must actually run in bf16");
    assert!(
        diff < 0.02 * f32_sums[0].abs(),
        "{f32_sums:?} vs {bf16_sums:?}"
    );
}

/// The largest absolute difference between two tensors of the same shape.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn lora(rank: usize, targets: &[&str]) -> spar_host::train::lora::LoraSettings {
    spar_host::train::lora::LoraSettings {
        rank,
        alpha: 2.0 * rank as f64,
        target_modules: targets.iter().map(|t| t.to_string()).collect(),
    }
}

/// With its adapters switched off a LoRA model is its frozen base, bit for bit (this is DPO's
/// reference); fresh adapters (B = 0) change nothing but rounding (a tracked input takes
/// another matmul kernel); trained ones do.
#[test]
fn lora_adapters_off_give_the_base_model_exactly() {
    use spar_host::train::trainer::trainable_lora;
    let dir = model_dir("train-lora-off");
    let device = Device::Cpu;
    let base = loader::load(&dir)
        .unwrap()
        .transformer(DType::F32, &device)
        .unwrap();
    let seqs = [
        Sequence {
            ids: "abcdefgh".bytes().map(u32::from).collect(),
            trained: vec![false, false, true, true, true, true, true, true],
        },
        Sequence {
            ids: "xyz".bytes().map(u32::from).collect(),
            trained: vec![false, true, true],
        },
    ];
    let logps = |m: &spar_host::engine::model::Transformer| -> Vec<f32> {
        sequence_logps(m, &[&seqs[0], &seqs[1]], &device)
            .unwrap()
            .sums
            .to_vec1()
            .unwrap()
    };
    let fresh = trainable_lora(&dir, &device, &lora(4, &["all-linear"]), 3).unwrap();
    for (f, b) in logps(&fresh.model).iter().zip(logps(&base)) {
        assert!((f - b).abs() <= 1e-5 * b.abs(), "{f} vs {b}");
    }
    // 7 linear layers per block, an A and a B each; the LM head is not adapted.
    let blocks = fresh.loaded.config.num_hidden_layers;
    assert_eq!(fresh.params.len(), 7 * 2 * blocks);
    assert!(
        fresh
            .params
            .iter()
            .all(|(n, _)| n.starts_with("base_model.model.model.layers."))
    );

    let t = trainable_lora(&dir, &device, &lora(4, &["all-linear"]), 3).unwrap();
    for (name, var) in &t.params {
        if name.ends_with("lora_B.weight") {
            var.set(&(var.as_tensor().ones_like().unwrap() * 0.05).unwrap())
                .unwrap();
        }
    }
    let on = logps(&t.model);
    assert_ne!(on, logps(&base));
    t.model.set_adapters_enabled(false);
    assert_eq!(logps(&t.model), logps(&base));
    t.model.set_adapters_enabled(true);
    assert_eq!(logps(&t.model), on);
}

/// LoRA DPO learns the pairs while only the adapters train; the checkpoint is the merged model
/// (base + B·A·α/r on the adapted layers, every other weight the base's, bit for bit) with the
/// adapter in PEFT's format beside it.
#[test]
fn lora_dpo_learns_the_pairs_and_saves_the_merged_model_and_the_adapter() {
    let dir = model_dir("train-lora-dpo");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 4);
    let out = root.join("out");
    let mut cfg = dpo_config(40);
    cfg.optimizer.lr = 2e-2;
    cfg.lora = Some(lora(4, &["q_proj", "v_proj", "down_proj"]));
    let report = train(&dir, &pairs, &out, &DPO, &cfg, None, &Device::Cpu).unwrap();
    let (first, last) = (&report.metrics[0], report.metrics.last().unwrap());
    assert!(
        (first["loss"].as_f64().unwrap() - (0.693 + 0.1 * first["nll/chosen"].as_f64().unwrap()))
            .abs()
            < 1e-3,
        "the adapters start at zero: {first}"
    );
    assert_eq!(last["rewards/accuracies"], 1.0, "{last}");
    assert!(last["rewards/margins"].as_f64().unwrap() > 0.5, "{last}");

    let base = loader::load(&dir).unwrap();
    let merged = loader::load(&out).unwrap();
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["down_proj", "q_proj", "v_proj"])
    );
    let adapter =
        candle_core::safetensors::load(out.join("adapter/adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    let blocks = base.config.num_hidden_layers;
    assert_eq!(adapter.len(), 3 * 2 * blocks);
    for (name, w) in &base.weights {
        let module = name.strip_suffix(".weight").unwrap_or(name);
        let expected = match adapter.get(&format!("base_model.model.{module}.lora_A.weight")) {
            Some(a) => {
                let b = &adapter[&format!("base_model.model.{module}.lora_B.weight")];
                (w + (b.matmul(a).unwrap() * 2.0).unwrap()).unwrap()
            }
            None => w.clone(),
        };
        let diff = max_abs_diff(&expected, &merged.weights[name]);
        if adapter.contains_key(&format!("base_model.model.{module}.lora_A.weight")) {
            assert!(diff < 1e-6, "{name}: merged differs by {diff}");
            let moved = max_abs_diff(w, &merged.weights[name]);
            assert!(moved > 0.0, "{name} did not change");
        } else {
            assert_eq!(diff, 0.0, "{name} is not adapted and must stay the base's");
        }
    }
}

#[test]
fn lora_resuming_after_a_stop_gives_the_same_adapter_and_model() {
    let dir = model_dir("train-lora-resume");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 6);
    let mut cfg = dpo_config(4);
    cfg.lora = Some(lora(2, &["all-linear"]));
    let straight = root.join("straight");
    train(&dir, &pairs, &straight, &DPO, &cfg, None, &Device::Cpu).unwrap();
    let interrupted = root.join("interrupted");
    let mut first = cfg.clone();
    first.max_steps = Some(5);
    first.save_every = 2;
    assert!(
        train(&dir, &pairs, &interrupted, &DPO, &first, None, &Device::Cpu)
            .unwrap()
            .stopped_early
    );
    train(
        &dir,
        &pairs,
        &interrupted,
        &DPO,
        &cfg,
        Some(&interrupted.join("checkpoint-last")),
        &Device::Cpu,
    )
    .unwrap();
    for file in ["adapter/adapter_model.safetensors", "model.safetensors"] {
        assert_eq!(
            std::fs::read(straight.join(file)).unwrap(),
            std::fs::read(interrupted.join(file)).unwrap(),
            "{file} differs after resume"
        );
    }
}

/// LoRA under bf16 compute: the frozen base and the f32 adapters are cast to bf16 for the
/// forward pass, gradients reach the f32 adapters, and the pairs are learnt.
#[test]
fn lora_with_bf16_compute_learns_the_pairs() {
    let dir = model_dir("train-lora-bf16");
    let root = dir.parent().unwrap();
    let pairs = pairs_file(root, 4);
    let out = root.join("out");
    let mut cfg = dpo_config(40);
    cfg.optimizer.lr = 2e-2;
    cfg.precision = spar_host::engine::device::Precision::Bf16;
    cfg.lora = Some(lora(4, &["all-linear"]));
    let report = train(&dir, &pairs, &out, &DPO, &cfg, None, &Device::Cpu).unwrap();
    let (first, last) = (&report.metrics[0], report.metrics.last().unwrap());
    assert_eq!(last["rewards/accuracies"], 1.0, "{last}");
    assert!(
        last["loss"].as_f64().unwrap() < first["loss"].as_f64().unwrap(),
        "{first} -> {last}"
    );
    let adapter =
        candle_core::safetensors::load(out.join("adapter/adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    assert!(adapter.values().all(|w| w.dtype() == DType::F32));
}
