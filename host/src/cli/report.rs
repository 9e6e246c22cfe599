//! `spar-host report RUN_DIR`: the run as one self-contained HTML page.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::plugins::verifiers::Verifiers;
use crate::plugins::{Limits, PluginHost, builtin};
use crate::spar::run::report::write_report;

#[derive(Args)]
pub struct ReportArgs {
    /// A run directory (`run_dir` of a config).
    run_dir: PathBuf,
    /// Where the page goes (default: RUN_DIR/report.html).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Verifier plugins for the pairs' constraints (default: the built-in verifier-ifeval).
    #[arg(long = "verifier")]
    verifiers: Vec<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let host = PluginHost::new(Limits::default())?;
    let verifiers = Verifiers::load(&host, &builtin::verifiers_or_default(&args.verifiers)?)?;
    let output = args
        .output
        .unwrap_or_else(|| args.run_dir.join("report.html"));
    let summary = write_report(&args.run_dir, Some(&verifiers), &output)?;
    eprintln!(
        "{}: {} iteration(s), {} pairs, {} trees",
        output.display(),
        summary.iterations,
        summary.pairs,
        summary.trees
    );
    Ok(ExitCode::SUCCESS)
}
