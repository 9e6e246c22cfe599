//! `spar-host check config.toml`: validate a run config and every plugin it names, reporting all
//! problems at once.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config;
use crate::plugins::PluginHost;

#[derive(Args)]
pub struct CheckArgs {
    config: PathBuf,
    /// Override a key: `--set search.branch=2` (repeatable).
    #[arg(long = "set")]
    sets: Vec<String>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let (config, mut problems) = config::load_reporting(&args.config, &args.sets)?;
    if let Some(config) = config {
        let base = args.config.parent().map(PathBuf::from).unwrap_or_default();
        let host = PluginHost::new(config.sandbox.limits())?;
        problems.extend(config::validate(&config, &base, &host));
    }
    if problems.is_empty() {
        println!("{}: ok", args.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        eprintln!("{}: {problem}", args.config.display());
    }
    eprintln!(
        "{} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::FAILURE)
}
