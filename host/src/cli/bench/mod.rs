//! `spar-host bench`: rerunnable measurements.

mod dpo_step;

pub(super) use dpo_step::DpoStep;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::backend::local::LocalOptions;
use crate::backend::sampler::{ChatSampler, SampleSettings};
use crate::engine::chat_template::Message;
use crate::engine::device::Precision;
use crate::engine::loader;
use crate::plugins::{Limits, PluginHost, VerifierPlugin};

/// The peer benchmark's prompts (shared/bench/peers/peers_common.py), so figures compare.
const HAIKU: &str = "Write a haiku about the sea in lowercase letters only.";
const PROMPTS8: [&str; 8] = [
    "Write a haiku about the sea in lowercase letters only.",
    "Give three tips for learning to cook.",
    "Explain what a rainbow is to a child.",
    "List five fruits that are red.",
    "Write a short poem about autumn leaves.",
    "What is the capital of France? Answer in one sentence.",
    "Describe a cat in two sentences.",
    "Suggest a name for a friendly robot.",
];

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Generation speed, as the peer benchmark measures it: greedy decode at batch 1 and
    /// sampling (T 0.9, top-p 0.9) at batch 8, EOS masked so every run makes `new_tokens`.
    Generate {
        /// An HF model directory or a GGUF file (e.g. SmolLM2-135M-Instruct).
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 128)]
        new_tokens: usize,
        /// Timed runs per figure (after one warm-up); the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Batch sizes above 1 to measure with sampling (the peer's prompts, repeated).
        #[arg(long, value_delimiter = ',', default_value = "8")]
        batches: Vec<usize>,
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
    },
    /// One DPO step as the PyTorch peer measures it: a chosen/rejected pair of `seq` random
    /// tokens sharing a `prompt_len` prompt; reference forward, policy forward and backward, AdamW.
    Dpo {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 256)]
        seq: usize,
        #[arg(long, default_value_t = 64)]
        prompt_len: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Compute dtype; the weights and AdamW state stay f32.
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
        /// Train LoRA adapters of this rank (alpha 2 x rank) on every linear layer instead of
        /// every weight; the reference is the policy with its adapters off. 0: full DPO.
        #[arg(long, default_value_t = 0)]
        lora_rank: usize,
    },
    /// The same computations on the CPU (f32) and on `--device`: logits of a tiny random model
    /// and one DPO step (loss and updated weights), as max absolute differences in JSON.
    Parity {
        #[arg(long)]
        device: String,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
    },
    /// An HF model directory with the architecture, tokenizer and chat template of `--like` and
    /// seeded random weights (std 0.02): a stand-in for throughput measurements where the real
    /// weights cannot travel.
    MakeModel {
        #[arg(long)]
        like: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Next-token logits of a model for token ids, as JSON (for cross-checks with other
    /// frameworks: `scripts/check-transformers.sh`).
    Logits {
        #[arg(long)]
        model: PathBuf,
        /// Comma-separated token ids.
        #[arg(long, value_delimiter = ',')]
        ids: Vec<u32>,
    },
    /// Plugin-call overhead of a verifier: compile, instantiate and per-call cost of `check`.
    Plugin {
        /// A verifier plugin.
        file: PathBuf,
        /// Constraint id to check (default: the first the plugin lists).
        #[arg(long)]
        id: Option<String>,
        /// Constraint arguments as JSON.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Calls to time.
        #[arg(long, default_value_t = 200_000)]
        calls: u32,
        /// Fresh instances to time.
        #[arg(long, default_value_t = 2_000)]
        instances: u32,
    },
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Generate {
            model,
            new_tokens,
            runs,
            batches,
            device,
            dtype,
        } => bench_generate(
            &model,
            new_tokens,
            runs,
            &batches,
            &crate::engine::device::parse(&device)?,
            dtype,
        ),
        BenchCommand::Dpo {
            model,
            seq,
            prompt_len,
            runs,
            device,
            dtype,
            lora_rank,
        } => bench_dpo(
            &model,
            (seq, prompt_len, runs),
            &crate::engine::device::parse(&device)?,
            dtype,
            lora_rank,
        ),
        BenchCommand::Parity { device, dtype } => {
            super::parity::run(&crate::engine::device::parse(&device)?, dtype)
        }
        BenchCommand::MakeModel { like, output, seed } => {
            let loaded = loader::load_architecture(&like)?;
            let weights = crate::engine::tiny::weights_with_std(&loaded.config, seed, 0.02)?;
            crate::train::checkpoint::save_hf_dir(&output, &loaded, &weights, 4 << 30, &[])?;
            eprintln!(
                "{}: random weights (seed {seed}) in the shape of {}",
                output.display(),
                like.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Logits { model, ids } => {
            let device = candle_core::Device::Cpu;
            let loaded = loader::load(&model)?;
            let transformer = loaded.transformer(candle_core::DType::F32, &device)?;
            let t = ids.len();
            let input = candle_core::Tensor::new(ids.as_slice(), &device)?.unsqueeze(0)?;
            let positions = candle_core::Tensor::arange(0u32, t as u32, &device)?.unsqueeze(0)?;
            let mask = crate::engine::model::attention_mask(&[vec![true; t]], t, &device)?;
            let logits = transformer.forward(&input, &positions, &mask, None, false)?;
            let rows: Vec<Vec<f32>> = logits.squeeze(0)?.to_vec2()?;
            println!("{}", serde_json::json!({"ids": ids, "logits": rows}));
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Plugin {
            file,
            id,
            args,
            calls,
            instances,
        } => {
            let host = PluginHost::new(Limits::default())?;
            let started = Instant::now();
            let plugin: VerifierPlugin = host.load(&file)?;
            let load = started.elapsed();
            let id = match id {
                Some(id) => id,
                None => plugin
                    .session()
                    .constraints()?
                    .first()
                    .map(|c| c.id.clone())
                    .ok_or_else(|| {
                        anyhow::anyhow!("{}: lists no constraints; pass --id", file.display())
                    })?,
            };
            let prompt = "Write a haiku about rivers. Do not use any commas.";
            let response =
                "Water finds its way\nthrough stone and root and shadow\nto the patient sea";

            let started = Instant::now();
            for _ in 0..instances {
                plugin.session().instantiate()?;
            }
            let instantiate = started.elapsed() / instances.max(1);

            let mut session = plugin.session();
            session.check(&id, &args, prompt, response)?;
            let started = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(session.check(&id, &args, prompt, response)?);
            }
            let per_call = started.elapsed() / calls.max(1);

            println!("plugin        {} ({})", plugin.name(), file.display());
            println!(
                "load          {:.1} ms (read, inspect, compile, pre-instantiate, info)",
                ms(load)
            );
            println!(
                "instantiate   {:.1} us per fresh instance (mean of {instances})",
                us(instantiate)
            );
            println!(
                "check `{id}`  {} ns per call (mean of {calls}, {} + {} bytes of text)",
                per_call.as_nanos(),
                prompt.len(),
                response.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Generation through the sampler every step uses (template, tokenizer, batching), with the
/// end-of-turn tokens ignored so each run makes exactly the tokens asked for.
fn bench_generate(
    model_path: &std::path::Path,
    new_tokens: usize,
    runs: usize,
    batches: &[usize],
    device: &candle_core::Device,
    dtype: Precision,
) -> anyhow::Result<ExitCode> {
    let loaded = loader::load(model_path)?;
    let model = loaded.transformer(dtype.dtype(), device)?;
    let widest = batches.iter().copied().max().unwrap_or(1).max(1);
    let sampler = ChatSampler::local(
        &loaded,
        &model,
        device.clone(),
        widest,
        LocalOptions {
            ignore_eos: true,
            ..LocalOptions::default()
        },
    )?;
    let settings = |temperature: f64, top_p: f64, n: usize| SampleSettings {
        temperature,
        top_p,
        top_k: 0,
        max_new_tokens: n,
    };
    let time = |jobs: &[(Vec<Message>, u64)], settings: &SampleSettings| -> anyhow::Result<f64> {
        let started = Instant::now();
        let out = sampler.sample(jobs, settings)?;
        debug_assert!(
            out.iter()
                .all(|g| g.tokens == Some(settings.max_new_tokens))
        );
        Ok(started.elapsed().as_secs_f64())
    };
    let job = |text: &str, seed: u64| (vec![Message::new("user", text)], seed);

    let haiku = [job(HAIKU, 0)];
    let (one, full) = (settings(0.0, 1.0, 1), settings(0.0, 1.0, new_tokens));
    time(&haiku, &one)?;
    time(&haiku, &full)?;
    let mut decode1 = Vec::new();
    for _ in 0..runs {
        let t1 = time(&haiku, &one)?;
        let tn = time(&haiku, &full)?;
        decode1.push((new_tokens - 1) as f64 / (tn - t1));
    }
    let template = loaded.template.as_ref().expect("the sampler checked it");
    let haiku_tokens = loaded
        .tokenizer
        .encode(&template.render(&haiku[0].0, true)?)?
        .len();
    println!(
        "model         {} ({haiku_tokens} prompt tokens for batch 1), {dtype:?} on {device:?}",
        model_path.display(),
    );
    let (cpu, simd) = crate::engine::device::cpu_description();
    println!("cpu           {cpu}, matmul kernels {simd}");
    println!(
        "batch 1 greedy, decode tok/s (prefill excluded)      {:.1}",
        median(decode1.clone())
    );
    let mut figures = serde_json::json!({
        "cpu": cpu,
        "simd": simd,
        "gen1_decode_tok_s": median(decode1),
        "new_tokens": new_tokens,
        "runs": runs,
        "dtype": format!("{dtype:?}").to_lowercase(),
    });
    if dtype != Precision::F32 && device.is_cpu() {
        // Parity of bf16-stored weights: the batch-1 greedy answer against the f32 model's.
        let f32_model = loaded.transformer(candle_core::DType::F32, device)?;
        let reference = ChatSampler::local(
            &loaded,
            &f32_model,
            device.clone(),
            1,
            LocalOptions {
                ignore_eos: true,
                ..LocalOptions::default()
            },
        )?;
        let answer = |sampler: &ChatSampler| -> anyhow::Result<String> {
            Ok(sampler.sample(&haiku, &full)?.remove(0).text)
        };
        let (ours, theirs) = (answer(&sampler)?, answer(&reference)?);
        let same = ours
            .chars()
            .zip(theirs.chars())
            .take_while(|(a, b)| a == b)
            .count();
        println!(
            "batch 1 greedy answer against f32's: {} ({same} of {} characters in common)",
            if ours == theirs {
                "identical"
            } else {
                "differs"
            },
            theirs.chars().count(),
        );
        figures["greedy_identical_to_f32"] = serde_json::json!(ours == theirs);
        figures["greedy_common_prefix_chars"] = serde_json::json!(same);
    }

    for &b in batches.iter().filter(|&&b| b > 1) {
        // The peer's 8 prompts, repeated to fill the batch, each with its own seed.
        let jobs: Vec<_> = (0..b)
            .map(|i| job(PROMPTS8[i % PROMPTS8.len()], i as u64))
            .collect();
        let (first, all) = (settings(0.9, 0.9, 1), settings(0.9, 0.9, new_tokens));
        time(&jobs, &first)?;
        time(&jobs, &all)?;
        let (mut generated, mut decode) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t1 = time(&jobs, &first)?;
            let tn = time(&jobs, &all)?;
            generated.push((b * new_tokens) as f64 / tn);
            decode.push((b * (new_tokens - 1)) as f64 / (tn - t1));
        }
        println!(
            "batch {b} T=0.9 top-p 0.9, generated tok/s {:>14.1}",
            median(generated.clone())
        );
        println!(
            "batch {b} T=0.9 top-p 0.9, decode tok/s (excl. prefill) {:.1}",
            median(decode.clone())
        );
        figures[format!("gen{b}_generated_tok_s")] = serde_json::json!(median(generated));
        figures[format!("gen{b}_decode_tok_s")] = serde_json::json!(median(decode));
    }
    println!("{figures}");
    Ok(ExitCode::SUCCESS)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn bench_dpo(
    model_path: &std::path::Path,
    (seq, prompt_len, runs): (usize, usize, usize),
    device: &candle_core::Device,
    dtype: Precision,
    lora_rank: usize,
) -> anyhow::Result<ExitCode> {
    let lora = (lora_rank > 0).then(|| crate::train::lora::LoraSettings {
        rank: lora_rank,
        alpha: 2.0 * lora_rank as f64,
        target_modules: vec!["all-linear".into()],
    });
    let mut dpo = DpoStep::new(
        model_path,
        (seq, prompt_len),
        1e-6,
        device,
        dtype,
        lora.as_ref(),
    )?;
    let mut step = || dpo.run().map(|(phases, _)| phases);
    step()?;
    let mut phases = Vec::new();
    for _ in 0..runs {
        phases.push(step()?);
    }
    let med = |k: usize| median(phases.iter().map(|p| p[k]).collect());
    let total = med(4);
    let what = match lora_rank {
        0 => "full".to_string(),
        r => format!("LoRA rank {r} (all linear layers)"),
    };
    println!(
        "DPO step ({what}), 2 x {seq} tokens ({prompt_len}-token shared prompt), {dtype:?} compute on {device:?}, median of {runs}"
    );
    let (cpu, simd) = crate::engine::device::cpu_description();
    println!("cpu                 {cpu}, matmul kernels {simd}");
    println!("reference forward   {:.3} s", med(0));
    println!("policy forward      {:.3} s", med(1));
    println!("policy backward     {:.3} s", med(2));
    println!("AdamW               {:.3} s", med(3));
    println!(
        "step                {total:.3} s  ({:.1} policy tok/s)",
        (2 * seq) as f64 / total
    );
    println!("peak RSS            {:.0} MB", peak_rss_mb());
    println!(
        "{}",
        serde_json::json!({"cpu": cpu, "simd": simd, "lora_rank": lora_rank, "dpo_step_s": total, "dpo_tok_s": (2 * seq) as f64 / total, "peak_rss_mb": peak_rss_mb(),
                           "ref_fwd_s": med(0), "pol_fwd_s": med(1), "pol_bwd_s": med(2), "adamw_s": med(3)})
    );
    Ok(ExitCode::SUCCESS)
}
