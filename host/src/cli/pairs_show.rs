//! `spar-host pairs show FILE`: preference pairs as word-level diffs from the rejected answer to
//! the chosen one, with the constraints each side keeps or breaks, so a user sees what DPO will
//! learn before it learns it. Colour on a terminal; `[-removed-]` / `{+added+}` otherwise.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use crate::plugins::verifiers::{VerifierSessions, Verifiers};
use crate::plugins::{Limits, PluginHost, builtin};
use crate::records::PairRecord;
use crate::spar::pairs::pair_texts;
use crate::spar::similarity::{DiffRun, word_diff, word_similarity};
use crate::storage::read_jsonl;

#[derive(Args)]
pub struct ShowCommand {
    /// A pairs.jsonl (this project's format, as `spar-host pairs` and `run` write it).
    file: PathBuf,
    /// Show at most this many pairs (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Verifier plugins for the constraints (default: the built-in verifier-ifeval).
    #[arg(long = "verifier")]
    verifiers: Vec<PathBuf>,
    /// Colour: auto (on a terminal), always or never.
    #[arg(long, value_enum, default_value = "auto")]
    color: Color,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

pub fn show_command(command: ShowCommand) -> anyhow::Result<ExitCode> {
    let pairs: Vec<PairRecord> = read_jsonl(&command.file)?;
    let colour = match command.color {
        Color::Auto => std::io::stdout().is_terminal(),
        Color::Always => true,
        Color::Never => false,
    };
    let with_constraints = pairs.iter().any(|p| p.constraint_args().is_some());
    let verifiers = if with_constraints {
        let host = PluginHost::new(Limits::default())?;
        let paths = builtin::verifiers_or_default(&command.verifiers)?;
        Some(Verifiers::load(&host, &paths)?)
    } else {
        None
    };
    let mut sessions = verifiers.as_ref().map(Verifiers::sessions);
    let shown = if command.limit == 0 {
        pairs.len()
    } else {
        command.limit.min(pairs.len())
    };
    let mut out = String::new();
    for (n, pair) in pairs.iter().take(shown).enumerate() {
        out.push_str(&render(
            pair,
            n + 1,
            pairs.len(),
            colour,
            sessions.as_mut(),
        )?);
    }
    print!("{out}");
    if shown < pairs.len() {
        println!(
            "({} more pairs in {})",
            pairs.len() - shown,
            command.file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn render(
    pair: &PairRecord,
    n: usize,
    total: usize,
    colour: bool,
    sessions: Option<&mut VerifierSessions<'_>>,
) -> anyhow::Result<String> {
    let (chosen, rejected) = pair_texts(pair);
    let prompt = pair.prompt.last().map(|m| m.content.as_str()).unwrap_or("");
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let source = pair
        .meta
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let mut out = format!(
        "{}\n",
        paint(
            "1",
            &format!(
                "pair {n}/{total}  id {}  source {source}  values {} vs {}  word similarity {:.2}",
                pair.id,
                pair.meta.get("chosen_value").unwrap_or(&Value::Null),
                pair.meta.get("rejected_value").unwrap_or(&Value::Null),
                word_similarity(chosen, rejected)
            )
        )
    );
    out.push_str(&format!("prompt: {}\n", prompt.trim()));
    if let (Some(list), Some(sessions)) = (pair.constraint_args(), sessions) {
        for (side, text) in [("chosen", chosen), ("rejected", rejected)] {
            let (kept, broken) = sessions.keeps_and_breaks(&list, prompt, text);
            out.push_str(&format!(
                "{side:<8} keeps: {}  breaks: {}\n",
                list_or_none(&kept),
                list_or_none(&broken)
            ));
        }
    }
    for key in ["chosen_finish_reason", "rejected_finish_reason"] {
        if pair.meta.get(key) == Some(&Value::String("length".into())) {
            out.push_str(&paint(
                "33",
                &format!("warning: {key} is length (cut off)\n"),
            ));
        }
    }
    out.push_str("diff (rejected -> chosen):\n");
    let mut line = String::new();
    for run in word_diff(rejected, chosen) {
        let piece = match run {
            DiffRun::Same(w) => w.join(" "),
            DiffRun::Removed(w) if colour => paint("31;9", &w.join(" ")),
            DiffRun::Added(w) if colour => paint("32", &w.join(" ")),
            DiffRun::Removed(w) => format!("[-{}-]", w.join(" ")),
            DiffRun::Added(w) => format!("{{+{}+}}", w.join(" ")),
        };
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    out.push_str(&textwrap(&line, 100));
    out.push_str("\n\n");
    Ok(out)
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// Break a long line at spaces near `width` visible characters (escape codes are not counted
/// exactly; the wrap is for reading, not layout).
fn textwrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut column = 0;
    for word in text.split(' ') {
        let visible = word.chars().filter(|c| !c.is_control()).count();
        if column > 0 && column + 1 + visible > width {
            out.push_str("\n  ");
            column = 2;
        } else if column > 0 {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += visible;
    }
    out
}
