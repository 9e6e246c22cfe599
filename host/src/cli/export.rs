//! `spar-host export`: one iteration's training data in a trainer's format, for users who run
//! the training step elsewhere (the formats are described in `train::export`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::records::{PairRecord, SftRecord};
use crate::storage::read_jsonl;
use crate::train::export::{self, Format, StageData};

#[derive(Args)]
pub struct ExportArgs {
    /// The run directory (`run_dir` of the config).
    #[arg(long)]
    run: PathBuf,
    /// The iteration (default: the latest one with pairs).
    #[arg(long)]
    iteration: Option<usize>,
    #[arg(long, value_enum)]
    format: Format,
    /// Where the files go.
    #[arg(long)]
    output: PathBuf,
}

/// The latest `iter-N` of `run` holding a `pairs.jsonl`.
fn latest_iteration(run: &Path) -> anyhow::Result<usize> {
    let entries =
        std::fs::read_dir(run).with_context(|| format!("{}: cannot read", run.display()))?;
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: usize = name.strip_prefix("iter-")?.parse().ok()?;
            e.path().join("pairs.jsonl").is_file().then_some(n)
        })
        .max()
        .with_context(|| format!("{}: no iteration with pairs.jsonl yet", run.display()))
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let iteration = match args.iteration {
        Some(n) => n,
        None => latest_iteration(&args.run)?,
    };
    let dir = args.run.join(format!("iter-{iteration}"));
    let pairs: Vec<PairRecord> = read_jsonl(&dir.join("pairs.jsonl"))?;
    let examples: Vec<SftRecord> = read_jsonl(&dir.join("refiner-sft.jsonl"))?;
    let pairs_file = export::write(args.format, &StageData::Pairs(&pairs), &args.output)?;
    let sft_file = export::write(args.format, &StageData::Sft(&examples), &args.output)?;
    eprintln!(
        "iteration {iteration}: {} pairs -> {}, {} refiner examples -> {}",
        pairs.len(),
        pairs_file.display(),
        examples.len(),
        sft_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
