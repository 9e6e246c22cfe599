//! `spar-host prompts synth`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::plugins::verifiers::Verifiers;
use crate::plugins::{Limits, PluginHost, builtin};
use crate::spar::synth::{Drawable, synthesize};

#[derive(Subcommand)]
pub enum PromptsCommand {
    /// Training prompts: plain tasks plus 1-3 verifiable constraints each (IFEval format).
    Synth {
        /// Verifier plugins whose catalogues supply the constraints (default: verifier-ifeval);
        /// repeat to draw from several, e.g. verifier-ifeval and verifier-ifbench.
        #[arg(long = "verifier")]
        verifiers: Vec<PathBuf>,
        /// Plain tasks, one per line.
        #[arg(long)]
        tasks: PathBuf,
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        output: PathBuf,
        /// Also write this many further prompts (from tasks the training prompts do not use) as a
        /// held-out set for evaluation.
        #[arg(long, default_value_t = 0)]
        held_out: usize,
        #[arg(long)]
        held_out_output: Option<PathBuf>,
    },
}

pub fn run(command: PromptsCommand) -> anyhow::Result<ExitCode> {
    let PromptsCommand::Synth {
        verifiers,
        tasks,
        n,
        seed,
        output,
        held_out,
        held_out_output,
    } = command;
    let host = PluginHost::new(Limits::default())?;
    let loaded = Verifiers::load(&host, &builtin::verifiers_or_default(&verifiers)?)?;
    let text = std::fs::read_to_string(&tasks)
        .with_context(|| format!("{}: cannot read", tasks.display()))?;
    let mut all: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    // Held-out prompts come from tasks the training prompts never see.
    let split = if held_out > 0 { all.len() / 5 } else { 0 };
    let held_tasks: Vec<String> = all.split_off(all.len() - split);
    let catalogue: Vec<Drawable> = loaded
        .ids()
        .iter()
        .filter_map(|id| Drawable::new(id, loaded.args_schema(id).unwrap_or("{}")))
        .collect();
    let mut sessions = loaded.sessions();
    let train = synthesize(&all, &catalogue, &mut sessions, n, seed)?;
    crate::storage::write_jsonl(&output, &train)?;
    eprintln!(
        "{} training prompts from {} tasks -> {}",
        train.len(),
        all.len(),
        output.display()
    );
    if held_out > 0 {
        let path = held_out_output.context("--held-out needs --held-out-output")?;
        let held = synthesize(
            &held_tasks,
            &catalogue,
            &mut sessions,
            held_out,
            seed ^ 0xFEED,
        )?;
        crate::storage::write_jsonl(&path, &held)?;
        eprintln!(
            "{} held-out prompts from {} other tasks -> {}",
            held.len(),
            held_tasks.len(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
