//! The `spar-host` command line.

mod bench;
mod check;
mod eval;
mod export;
pub mod generate;
mod generator;
mod pairs_show;
mod parity;
mod plugins;
mod prompts;
mod report;
mod run;
mod steps;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "spar-host",
    version,
    about = "SPaR self-play training with sandboxed WebAssembly plugins"
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect plugins: which world they implement and whether this host can run them.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Run SPaR's iterations from a config (continues a stopped run).
    Run(run::RunArgs),
    /// Make training prompts with verifiable constraints.
    #[command(subcommand)]
    Prompts(prompts::PromptsCommand),
    /// Validate a run config and every plugin it names.
    Check(check::CheckArgs),
    /// Sample completions for a file of prompts.
    Generate(generate::GenerateArgs),
    /// Judge sampled responses with the refiner (and/or verifier plugins).
    Judge(steps::JudgeCommand),
    /// Refine the failed responses by tree search.
    Search(steps::SearchCommand),
    /// Build preference pairs from searched trees and filter them.
    Pairs(steps::PairsCommand),
    /// Train the actor (DPO) or the refiner (SFT/RFT).
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Write one iteration's pairs and refiner examples for TRL, LLaMA-Factory or OpenRLHF.
    Export(export::ExportArgs),
    /// Draw a run (stages, curves, pairs as diffs, search trees) as one HTML page.
    Report(report::ReportArgs),
    /// Evaluate responses (IFEval) with verifier plugins.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Measure performance.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Parse the command line, run it, and turn any error into one line on stderr and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Err(message) = crate::engine::simd_level::Kernel::check_cap() {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Plugins(command) => plugins::run(command),
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Prompts(command) => prompts::run(command),
        Command::Generate(args) => generate::run(args),
        Command::Judge(command) => steps::judge(command),
        Command::Search(command) => steps::search_command(command),
        Command::Pairs(command) => steps::pairs_command(command),
        Command::Train(command) => train::run(command),
        Command::Export(args) => export::run(args),
        Command::Report(args) => report::run(args),
        Command::Eval(command) => eval::run(command),
        Command::Bench(command) => bench::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    /// Every command's arguments are consistent (unique names, valid defaults and relations):
    /// clap checks this only when a command is first parsed.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
