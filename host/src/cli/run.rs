//! `spar-host run config.toml`: the SPaR loop, with a table of each iteration's stages.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use crate::spar::run::IterationDone;
use crate::storage::MetricsLog;

#[derive(Args)]
pub struct RunArgs {
    config: PathBuf,
    /// Override a key: `--set actor.n=2` (repeatable).
    #[arg(long = "set")]
    sets: Vec<String>,
    /// Reuse a run directory made by a different config.
    #[arg(long)]
    force: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let dir = crate::spar::run::run(&args.config, &args.sets, args.force, &mut print_summary)?;
    println!(
        "results in {} (metrics.jsonl; iter-N/ holds each stage's output and checkpoints)",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The end-of-iteration table: every stage of this iteration from `metrics.jsonl`.
fn print_summary(done: IterationDone) -> anyhow::Result<()> {
    let IterationDone {
        run_dir,
        iteration,
        baseline,
        after,
    } = done;
    let text = std::fs::read_to_string(MetricsLog::new(run_dir).path()).unwrap_or_default();
    eprintln!("\niteration {iteration} summary");
    eprintln!("{:<8} {:>9}  key figures", "stage", "seconds");
    for line in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if line["iteration"] != json!(iteration) {
            continue;
        }
        let s = &line["stats"];
        let figures = match line["stage"].as_str().unwrap_or_default() {
            "samples" => format!(
                "{} samples, {:.0} tok/s, {} cut by the {}-token limit",
                s["samples"],
                s["tokens_per_second"].as_f64().unwrap_or(0.0),
                s["truncated"],
                s["max_new_tokens"]
            ),
            "judge" => format!(
                "pass rate {:.3}, {} negatives",
                s["pass_rate"].as_f64().unwrap_or(0.0),
                s["negatives"]
            ),
            "search" => match s.get("skipped") {
                Some(why) => why.to_string(),
                None => format!(
                    "{} trees, {} solved, children per round {}; {} cut negatives not searched",
                    s["negatives_searched"],
                    s["trees_solved"],
                    s["children_per_round"],
                    s["truncated_negatives_not_searched"]
                ),
            },
            "pairs" => format!(
                "{} {} pairs kept of {}, dropped {}; word similarity {} (independent pairs {})",
                s["pairs_kept"],
                s["source"].as_str().unwrap_or("tree"),
                s["pairs_built"],
                s["dropped"],
                fixed(&s["similarity_kept"]),
                fixed(&s["similarity_independent"])
            ),
            "dpo" | "rft" => match (s.get("skipped"), s.get("trainer")) {
                (Some(why), _) => why.to_string(),
                (None, Some(_)) => format!("external trainer: {}", s["command"]),
                (None, None) => format!("{} steps, last loss {}", s["steps"], s["last"]["loss"]),
            },
            "eval" => format!(
                "held-out pass rate {:.3}",
                s["pass_rate"].as_f64().unwrap_or(0.0)
            ),
            _ => String::new(),
        };
        eprintln!(
            "{:<8} {:>9.1}  {figures}",
            line["stage"].as_str().unwrap_or_default(),
            line["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    if let (Some(before), Some(after)) = (baseline, after) {
        eprintln!(
            "held-out pass rate (verifier-judged): {before:.3} before, {after:.3} after iteration {iteration}"
        );
    }
    Ok(())
}

/// A number with two decimals, or `-` when absent.
fn fixed(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{x:.2}"))
        .unwrap_or_else(|| "-".into())
}
