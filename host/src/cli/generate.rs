//! `spar-host generate`: sample completions for a file of prompts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::DType;
use clap::Args;
use serde_json::Value;

use crate::engine::chat_template::Message;
use crate::engine::generate::{Request, generate};
use crate::engine::loader::{self, LoadedModel};
use crate::engine::sampling::SamplingParams;

#[derive(Args)]
pub struct GenerateArgs {
    /// An HF model directory or a GGUF file.
    #[arg(long, required_unless_present = "server", conflicts_with = "server")]
    model: Option<PathBuf>,
    /// Generate on an OpenAI-compatible server instead (e.g. http://127.0.0.1:8080/v1), through
    /// the same sampler as every other step, with the same per-sample seeds. Chat prompts only.
    #[arg(long, conflicts_with = "raw")]
    server: Option<String>,
    /// The model name sent to the server.
    #[arg(long, default_value = "default")]
    server_model: String,
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
    /// Root seed: sample `s` of prompt `p` always gets the same seed, whatever the batching.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Extra stop strings (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Feed prompts as raw text instead of through the chat template.
    #[arg(long)]
    raw: bool,
    /// `cpu`, or `cuda[:N]` in a CUDA build.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// A request's seed from the root seed and its place (prompt, sample): SplitMix64 of the three.
pub fn derive_seed(root: u64, prompt: usize, sample: usize) -> u64 {
    let mut rng = crate::engine::sampling::Rng::new(
        root ^ (prompt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (sample as u64) << 48,
    );
    rng.next_u64()
}

struct Prompt {
    id: Value,
    messages: Vec<Message>,
    raw: Option<String>,
}

fn read_prompts(path: &std::path::Path) -> anyhow::Result<Vec<Prompt>> {
    let mut count = 0usize;
    crate::storage::jsonl::read_with(path, |value, _| {
        let id = value.get("id").cloned().unwrap_or(Value::from(count));
        count += 1;
        if let Some(prompt) = value.get("prompt").and_then(Value::as_str) {
            Ok(Prompt {
                id,
                messages: vec![Message::new("user", prompt)],
                raw: Some(prompt.to_string()),
            })
        } else if let Some(messages) = value.get("messages") {
            let messages: Vec<Message> = serde_json::from_value(messages.clone())
                .context("`messages` must be a list of {role, content}")?;
            Ok(Prompt {
                id,
                messages,
                raw: None,
            })
        } else {
            bail!("needs a `prompt` string or a `messages` list")
        }
    })
}

fn prompt_ids(model: &LoadedModel, prompt: &Prompt, raw: bool) -> anyhow::Result<Vec<u32>> {
    if raw {
        let text = prompt.raw.clone().unwrap_or_else(|| {
            prompt
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        });
        return model.tokenizer.encode(&text);
    }
    let template = model.template.as_ref().with_context(|| {
        format!(
            "{}: the model has no chat template; pass --raw to feed prompts as text",
            model.source.display()
        )
    })?;
    model
        .tokenizer
        .encode(&template.render(&prompt.messages, true)?)
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    if args.batch_size == 0 || args.n == 0 {
        bail!("--batch-size and --n must be at least 1");
    }
    let Some(model_path) = &args.model else {
        return run_on_server(&args);
    };
    let device = crate::engine::device::parse(&args.device)?;
    let loaded = loader::load(model_path)?;
    let model = loaded.transformer(DType::F32, &device)?;
    let prompts = read_prompts(&args.prompts)?;
    let sampling = |seed| SamplingParams {
        temperature: args
            .temperature
            .or(loaded.generation.temperature)
            .unwrap_or(1.0),
        top_p: args.top_p.or(loaded.generation.top_p).unwrap_or(1.0),
        top_k: args.top_k.or(loaded.generation.top_k).unwrap_or(0),
        seed,
    };
    let stop_ids = loaded.chat_stop_ids();
    let mut work = Vec::new();
    for (p, prompt) in prompts.iter().enumerate() {
        let ids = prompt_ids(&loaded, prompt, args.raw)
            .with_context(|| format!("{}: prompt {}", args.prompts.display(), prompt.id))?;
        for s in 0..args.n {
            work.push((
                p,
                s,
                Request {
                    prompt_ids: ids.clone(),
                    sampling: sampling(derive_seed(args.seed, p, s)),
                    max_new_tokens: args.max_new_tokens,
                    stop_token_ids: stop_ids.clone(),
                    stop_strings: args.stop.clone(),
                },
            ));
        }
    }
    let progress = crate::progress::bar("generate", work.len(), 0);
    let started = Instant::now();
    let mut lines = String::new();
    let mut tokens = 0usize;
    for (b, batch) in work.chunks(args.batch_size).enumerate() {
        let requests: Vec<Request> = batch.iter().map(|(_, _, r)| r.clone()).collect();
        let completions = generate(&model, &loaded.tokenizer, &requests, &device)?;
        for ((p, s, request), completion) in batch.iter().zip(&completions) {
            tokens += completion.token_ids.len();
            let line = serde_json::json!({
                "id": prompts[*p].id,
                "sample": s,
                "text": completion.text,
                "finish_reason": completion.finish_reason,
                "prompt_tokens": request.prompt_ids.len(),
                "completion_tokens": completion.token_ids.len(),
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        progress.inc(batch.len() as u64);
        tracing::debug!(
            batch = b + 1,
            done = (b * args.batch_size + batch.len()).min(work.len()),
            total = work.len(),
            "generated"
        );
    }
    progress.finish_and_clear();
    crate::storage::write_atomic(&args.output, lines.as_bytes())?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} samples, {tokens} tokens in {secs:.1} s ({:.1} tok/s) -> {}",
        work.len(),
        tokens as f64 / secs.max(1e-9),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `generate --server`: the prompts' samples from a server, one line each as with a local model
/// (without `prompt_tokens`, which a chat server does not report).
fn run_on_server(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    use crate::backend::openai::ServerConfig;
    use crate::backend::sampler::{ChatSampler, SampleSettings};
    let url = args
        .server
        .clone()
        .expect("clap requires --model or --server");
    let sampler = ChatSampler::on_server(
        ServerConfig {
            url,
            model: args.server_model.clone(),
            stop: args.stop.clone(),
            ..ServerConfig::default()
        },
        args.batch_size,
    )?;
    let prompts = read_prompts(&args.prompts)?;
    let mut jobs = Vec::new();
    let mut places = Vec::new();
    for (p, prompt) in prompts.iter().enumerate() {
        for s in 0..args.n {
            jobs.push((prompt.messages.clone(), derive_seed(args.seed, p, s)));
            places.push((p, s));
        }
    }
    let settings = SampleSettings {
        temperature: args.temperature.unwrap_or(1.0),
        top_p: args.top_p.unwrap_or(1.0),
        top_k: args.top_k.unwrap_or(0),
        max_new_tokens: args.max_new_tokens,
    };
    let started = Instant::now();
    let outputs = sampler.sample(&jobs, &settings)?;
    let mut lines = String::new();
    for ((p, s), output) in places.iter().zip(&outputs) {
        let line = serde_json::json!({
            "id": prompts[*p].id,
            "sample": s,
            "text": output.text,
            "finish_reason": output.finish_reason,
            "completion_tokens": output.tokens,
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    crate::storage::write_atomic(&args.output, lines.as_bytes())?;
    eprintln!(
        "{} samples, {} tokens in {:.1} s on {} -> {}",
        outputs.len(),
        sampler.tokens.get(),
        started.elapsed().as_secs_f64(),
        args.server.as_deref().unwrap_or_default(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
