//! `spar-host eval ifeval`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;

use crate::eval::ifeval;
use crate::plugins::{Limits, PluginHost, builtin};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Score responses on IFEval with verifier plugins; writes the official result files.
    Ifeval {
        /// Prompts in the official `input_data.jsonl` format.
        #[arg(long)]
        input: PathBuf,
        /// Responses, one `{"prompt", "response"}` object per line.
        #[arg(long)]
        responses: PathBuf,
        /// Folder for eval_results_strict.jsonl and eval_results_loose.jsonl.
        #[arg(long)]
        output: PathBuf,
        /// Verifier plugins (default: the built-in verifier-ifeval). Repeat to load several.
        #[arg(long = "verifier")]
        verifiers: Vec<PathBuf>,
        /// Time limit per plugin call, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        plugin_timeout_ms: u64,
        /// Memory limit per plugin instance, in MiB.
        #[arg(long, default_value_t = 1024)]
        plugin_memory_mib: usize,
    },
}

pub fn run(command: EvalCommand) -> anyhow::Result<ExitCode> {
    match command {
        EvalCommand::Ifeval {
            input,
            responses,
            output,
            mut verifiers,
            plugin_timeout_ms,
            plugin_memory_mib,
        } => {
            if verifiers.is_empty() {
                verifiers.push(builtin::find("verifier-ifeval")?);
            }
            let host = PluginHost::new(Limits {
                call_timeout: std::time::Duration::from_millis(plugin_timeout_ms),
                memory_bytes: plugin_memory_mib << 20,
                ..Limits::default()
            })?;
            let started = Instant::now();
            let summary = ifeval::run(&host, &input, &responses, &output, &verifiers)?;
            print!("{}", summary.render());
            println!(
                "\nwrote {} and {} in {:.2} s",
                output.join("eval_results_strict.jsonl").display(),
                output.join("eval_results_loose.jsonl").display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
