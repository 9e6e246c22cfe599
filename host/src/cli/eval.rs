//! `spar-host eval ifeval` and `spar-host eval ifbench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;

use super::generator::GeneratorArgs;
use crate::eval::benchmark::{self, Benchmark, Unsupported};
use crate::plugins::{Limits, PluginHost, builtin};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Score responses on IFEval with verifier plugins; writes the official result files.
    Ifeval(EvalArgs),
    /// Score responses on IFBench with verifier plugins; writes IFBench's result files. Prompts
    /// without a response count as failed, as in IFBench's `run_eval.py`.
    Ifbench(EvalArgs),
}

/// What `eval ifeval` and `eval ifbench` take.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Prompts in the benchmark's input format (`input_data.jsonl`, `IFBench_test.jsonl`).
    #[arg(long)]
    input: PathBuf,
    /// Responses, one `{"prompt", "response"}` object per line.
    #[arg(
        long,
        required_unless_present_any = ["model", "server"],
        conflicts_with_all = ["model", "server"]
    )]
    responses: Option<PathBuf>,
    /// Generate the responses first, greedily, with `--model` (HF directory or GGUF) or on
    /// `--server`.
    #[command(flatten)]
    generator: GeneratorArgs,
    /// With --model or --server: only the first N prompts.
    #[arg(long)]
    limit: Option<usize>,
    /// With --model or --server: most new tokens per response.
    #[arg(long, default_value_t = 1024)]
    max_new_tokens: usize,
    /// Folder for eval_results_strict.jsonl and eval_results_loose.jsonl.
    #[arg(long)]
    output: PathBuf,
    /// Verifier plugins (default: the benchmark's built-in one, verifier-ifeval or
    /// verifier-ifbench). Repeat to load several.
    #[arg(long = "verifier")]
    verifiers: Vec<PathBuf>,
    /// Score instructions that no loaded verifier knows (e.g. IFBench's `words:start_verb`,
    /// which needs a POS tagger) as not followed, and count them in the report, instead of
    /// refusing to evaluate.
    #[arg(long)]
    unsupported_as_failed: bool,
    /// Time limit per plugin call, in milliseconds (default: the sandbox's, as every command).
    #[arg(long, default_value_t = Limits::default().call_timeout.as_millis() as u64)]
    plugin_timeout_ms: u64,
    /// Memory limit per plugin instance, in MiB (default: the sandbox's).
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    plugin_memory_mib: usize,
    /// Time all of one plugin's calls may take together, in seconds (default: the
    /// sandbox's per-stage budget).
    #[arg(long, default_value_t = Limits::default().stage_time.as_secs_f64())]
    plugin_stage_time_s: f64,
}

pub fn run(command: EvalCommand) -> anyhow::Result<ExitCode> {
    let (benchmark, args) = match command {
        EvalCommand::Ifeval(args) => (Benchmark::IfEval, args),
        EvalCommand::Ifbench(args) => (Benchmark::IfBench, args),
    };
    let verifiers = if args.verifiers.is_empty() {
        vec![builtin::find(benchmark.builtin_verifier())?]
    } else {
        args.verifiers.clone()
    };
    let stage_time = std::time::Duration::try_from_secs_f64(args.plugin_stage_time_s)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--plugin-stage-time-s must be a positive number of seconds, not {}",
                args.plugin_stage_time_s
            )
        })?;
    let host = PluginHost::new(Limits {
        call_timeout: std::time::Duration::from_millis(args.plugin_timeout_ms),
        memory_bytes: args.plugin_memory_mib << 20,
        stage_time,
        ..Limits::default()
    })?;
    let started = Instant::now();
    let (input, responses) = match (&args.responses, args.generator.is_given()) {
        (Some(responses), _) => (args.input.clone(), responses.clone()),
        (None, true) => generate_responses(
            &args.input,
            &args.generator,
            &args.output,
            args.limit,
            args.max_new_tokens,
        )?,
        (None, false) => unreachable!("clap requires one of them"),
    };
    let unsupported = if args.unsupported_as_failed {
        Unsupported::ScoreAsFailed
    } else {
        Unsupported::Refuse
    };
    let summary = benchmark::run(
        benchmark,
        &host,
        &input,
        &responses,
        &args.output,
        &verifiers,
        unsupported,
    )?;
    print!("{}", summary.render());
    println!(
        "\nwrote {} and {} in {:.2} s",
        args.output.join("eval_results_strict.jsonl").display(),
        args.output.join("eval_results_loose.jsonl").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Greedy responses of the generator to the (first `limit`) prompts of `input`, written to
/// `OUTPUT/responses.jsonl` with the prompts used in `OUTPUT/input.jsonl`.
fn generate_responses(
    input: &std::path::Path,
    generator: &GeneratorArgs,
    output: &std::path::Path,
    limit: Option<usize>,
    max_new_tokens: usize,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    use crate::backend::sampler::SampleSettings;
    use crate::engine::chat_template::Message;
    let mut inputs = benchmark::read_inputs(input)?;
    if let Some(n) = limit {
        inputs.truncate(n);
    }
    std::fs::create_dir_all(output)?;
    let text = std::fs::read_to_string(input)?;
    let kept: String = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(inputs.len())
        .map(|l| format!("{l}\n"))
        .collect();
    let input_path = output.join("input.jsonl");
    crate::storage::write_atomic(&input_path, kept.as_bytes())?;
    let loaded = generator.load()?;
    let sampler = generator
        .sampler(loaded.as_ref())?
        .expect("--model or --server was given");
    let jobs: Vec<(Vec<Message>, u64)> = inputs
        .iter()
        .map(|i| (vec![Message::new("user", i.prompt.clone())], 0))
        .collect();
    let settings = SampleSettings {
        temperature: 0.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens,
    };
    let outputs = sampler.sample(&jobs, &settings)?;
    let truncated = outputs.iter().filter(|o| o.truncated()).count();
    let texts: Vec<String> = outputs.into_iter().map(|o| o.text).collect();
    let lines: String = inputs
        .iter()
        .zip(&texts)
        .map(|(i, t)| {
            format!(
                "{}\n",
                serde_json::json!({"prompt": i.prompt, "response": t})
            )
        })
        .collect();
    let responses_path = output.join("responses.jsonl");
    crate::storage::write_atomic(&responses_path, lines.as_bytes())?;
    eprintln!(
        "generated {} responses ({} tokens); {truncated} cut by the {max_new_tokens}-token limit",
        texts.len(),
        sampler.tokens.get()
    );
    Ok((input_path, responses_path))
}
