//! `spar-host generate`: sample completions for a file of prompts, through the same sampler as
//! every other step (a local model or a server), with a seed per (prompt, sample).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use crate::backend::local::LocalOptions;
use crate::backend::sampler::{SampleSettings, seed_of};
use crate::cli::generator::GeneratorArgs;
use crate::engine::chat_template::Message;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    generator: GeneratorArgs,
    /// JSONL: `{"prompt": "..."}` (a user turn) or `{"messages": [...]}`, optional `"id"`.
    #[arg(long)]
    prompts: PathBuf,
    /// JSONL output, one line per sample.
    #[arg(long)]
    output: PathBuf,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// 0 is greedy (default: the model's generation_config, else 1.0).
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long)]
    top_p: Option<f64>,
    /// 0 disables top-k.
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Root seed: sample `s` of prompt `p` always gets the same seed, whatever the batching or
    /// the backend.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Extra stop strings (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Feed prompts as raw text instead of through the chat template (a local model only).
    #[arg(long)]
    raw: bool,
}

/// The seed of sample `sample` of prompt `prompt`: the samplers' one seed rule over the place.
pub fn derive_seed(root: u64, prompt: usize, sample: usize) -> u64 {
    seed_of(
        root,
        &["generate", &prompt.to_string(), &sample.to_string()],
    )
}

fn read_prompts(path: &std::path::Path) -> anyhow::Result<Vec<(Value, Vec<Message>)>> {
    let mut count = 0usize;
    crate::storage::jsonl::read_with(path, |value, _| {
        let id = value.get("id").cloned().unwrap_or(Value::from(count));
        count += 1;
        if let Some(prompt) = value.get("prompt").and_then(Value::as_str) {
            Ok((id, vec![Message::new("user", prompt)]))
        } else if let Some(messages) = value.get("messages") {
            let messages: Vec<Message> = serde_json::from_value(messages.clone())
                .context("`messages` must be a list of {role, content}")?;
            Ok((id, messages))
        } else {
            bail!("needs a `prompt` string or a `messages` list")
        }
    })
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let generator = &args.generator;
    if generator.batch_size == 0 || args.n == 0 {
        bail!("--batch-size and --n must be at least 1");
    }
    if !generator.is_given() {
        bail!("generate needs --model or --server");
    }
    let loaded = generator.load()?;
    // Unset sampling settings come from the model's generation_config (a server applies its own).
    let defaults = loaded.as_ref().map(|l| l.model().generation.clone());
    let settings = SampleSettings {
        temperature: args
            .temperature
            .or(defaults.as_ref().and_then(|d| d.temperature))
            .unwrap_or(1.0),
        top_p: args
            .top_p
            .or(defaults.as_ref().and_then(|d| d.top_p))
            .unwrap_or(1.0),
        top_k: args
            .top_k
            .or(defaults.as_ref().and_then(|d| d.top_k))
            .unwrap_or(0),
        max_new_tokens: args.max_new_tokens,
    };
    let options = LocalOptions {
        raw: args.raw,
        stop_strings: args.stop.clone(),
        ignore_eos: false,
    };
    let sampler = generator
        .sampler_with(loaded.as_ref(), options)?
        .context("generate needs --model or --server")?;
    let prompts = read_prompts(&args.prompts)?;
    let mut jobs = Vec::new();
    let mut places = Vec::new();
    for (p, (_, messages)) in prompts.iter().enumerate() {
        for s in 0..args.n {
            jobs.push((messages.clone(), derive_seed(args.seed, p, s)));
            places.push((p, s));
        }
    }
    let progress = crate::progress::bar("generate", jobs.len(), 0);
    let started = Instant::now();
    let mut lines = String::new();
    // One batch per call, so the progress bar moves.
    let chunk = sampler.batch_size.max(1);
    for (batch, batch_places) in jobs.chunks(chunk).zip(places.chunks(chunk)) {
        let outputs = sampler.sample(batch, &settings)?;
        for ((p, s), output) in batch_places.iter().zip(&outputs) {
            let line = serde_json::json!({
                "id": prompts[*p].0,
                "sample": s,
                "text": output.text,
                "finish_reason": output.finish_reason,
                "completion_tokens": output.tokens,
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    crate::storage::write_atomic(&args.output, lines.as_bytes())?;
    let secs = started.elapsed().as_secs_f64();
    let tokens = sampler.tokens.get();
    eprintln!(
        "{} samples, {tokens} tokens in {secs:.1} s ({:.1} tok/s) on {} -> {}",
        jobs.len(),
        tokens as f64 / secs.max(1e-9),
        generator
            .server
            .clone()
            .or_else(|| generator.model.as_ref().map(|m| m.display().to_string()))
            .unwrap_or_default(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
