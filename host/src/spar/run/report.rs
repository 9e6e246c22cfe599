//! A run as one self-contained HTML page (`report.html`): per iteration the stage table, the
//! training curves, the held-out pass rate, every pair as a word diff with the constraints each
//! side keeps or breaks, and every search tree drawn with its values and chosen path. The data
//! goes into the page as JSON and the page's own script draws it a page of items at a time, so a
//! run of 10k pairs opens at once; no file or network is fetched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::plugins::verifiers::{VerifierSessions, Verifiers};
use crate::records::{PairRecord, TreeRecord};
use crate::spar::pairs::pair_texts;
use crate::spar::similarity::{DiffRun, word_diff, word_similarity};
use crate::storage::jsonl::read_jsonl;

const PAGE: &str = include_str!("report.html");

/// What a report holds, for the command's summary line.
#[derive(Debug, Default, PartialEq)]
pub struct ReportSummary {
    pub iterations: usize,
    pub pairs: usize,
    pub trees: usize,
}

/// Write the report of `run_dir` to `output`, checking each pair's constraints with
/// `verifiers` when given.
pub fn write_report(
    run_dir: &Path,
    verifiers: Option<&Verifiers>,
    output: &Path,
) -> anyhow::Result<ReportSummary> {
    let (data, summary) = collect(run_dir, verifiers)?;
    // Inside a <script> element nothing may read as its closing tag.
    let json = serde_json::to_string(&data)?
        .replace("</", "<\\/")
        .replace("<!--", "<\\!--");
    let page = PAGE.replace("/*REPORT_DATA*/", &json);
    crate::storage::write_atomic(output, page.as_bytes())?;
    Ok(summary)
}

fn collect(
    run_dir: &Path,
    verifiers: Option<&Verifiers>,
) -> anyhow::Result<(Value, ReportSummary)> {
    let metrics_path = run_dir.join("metrics.jsonl");
    let metrics: Vec<Value> = if metrics_path.exists() {
        read_jsonl(&metrics_path)?
    } else {
        Vec::new()
    };
    // A stage that ran again after a stop appears twice: its last line is its result.
    let mut stages: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for line in metrics {
        let iteration = line["iteration"].as_u64().unwrap_or(0);
        let list = stages.entry(iteration).or_default();
        match list.iter_mut().find(|s| s["stage"] == line["stage"]) {
            Some(existing) => *existing = line,
            None => list.push(line),
        }
    }
    let eval: Vec<Value> = stages
        .iter()
        .flat_map(|(i, list)| list.iter().map(move |s| (i, s)))
        .filter(|(_, s)| s["stage"] == "eval")
        .map(|(i, s)| json!({"iteration": i, "pass_rate": s["stats"]["pass_rate"]}))
        .collect();
    let mut sessions = verifiers.map(Verifiers::sessions);
    let mut summary = ReportSummary::default();
    let mut iterations = Vec::new();
    for (n, dir) in iteration_dirs(run_dir)? {
        let pairs: Vec<PairRecord> = read_if_present(&dir.join("pairs.jsonl"))?;
        let trees: Vec<TreeRecord> = read_if_present(&dir.join("trees.jsonl"))?;
        summary.pairs += pairs.len();
        summary.trees += trees.len();
        iterations.push(json!({
            "iteration": n,
            "stages": stages.get(&n).cloned().unwrap_or_default(),
            "dpo": read_if_present::<Value>(&dir.join("actor/metrics.jsonl"))?,
            "rft": read_if_present::<Value>(&dir.join("refiner/metrics.jsonl"))?,
            "pairs": pairs.iter().map(|p| pair_entry(p, sessions.as_mut())).collect::<Vec<_>>(),
            "trees": trees.iter().map(tree_entry).collect::<Vec<_>>(),
        }));
    }
    summary.iterations = iterations.len();
    let data = json!({
        "run_dir": run_dir.display().to_string(),
        "eval": eval,
        "iterations": iterations,
    });
    Ok((data, summary))
}

/// `iter-N` folders of the run, by N.
fn iteration_dirs(run_dir: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let entries = std::fs::read_dir(run_dir).map_err(|e| {
        anyhow::anyhow!("{}: cannot read the run directory: {e}", run_dir.display())
    })?;
    let mut dirs: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("iter-")?.parse().ok()?;
            e.path().is_dir().then(|| (n, e.path()))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn read_if_present<T: serde::de::DeserializeOwned + crate::storage::jsonl::Validate>(
    path: &Path,
) -> anyhow::Result<Vec<T>> {
    if path.exists() {
        read_jsonl(path)
    } else {
        Ok(Vec::new())
    }
}

fn pair_entry(pair: &PairRecord, sessions: Option<&mut VerifierSessions<'_>>) -> Value {
    let (chosen, rejected) = pair_texts(pair);
    let prompt = pair.prompt.last().map(|m| m.content.as_str()).unwrap_or("");
    let diff: Vec<Value> = word_diff(rejected, chosen)
        .into_iter()
        .map(|run| match run {
            DiffRun::Same(w) => json!(["=", w.join(" ")]),
            DiffRun::Removed(w) => json!(["-", w.join(" ")]),
            DiffRun::Added(w) => json!(["+", w.join(" ")]),
        })
        .collect();
    let warnings: Vec<String> = ["chosen_finish_reason", "rejected_finish_reason"]
        .iter()
        .filter(|key| pair.meta.get(**key) == Some(&Value::String("length".into())))
        .map(|key| format!("{key} is length: cut off by the token limit"))
        .collect();
    let constraints = match (pair.constraint_args(), sessions) {
        (Some(list), Some(sessions)) => {
            let mut sides = serde_json::Map::new();
            for (side, text) in [("chosen", chosen), ("rejected", rejected)] {
                let (keeps, breaks) = sessions.keeps_and_breaks(&list, prompt, text);
                sides.insert(side.into(), json!({"keeps": keeps, "breaks": breaks}));
            }
            Value::Object(sides)
        }
        _ => Value::Null,
    };
    json!({
        "id": pair.id,
        "prompt": prompt,
        "source": pair.meta.get("source").cloned().unwrap_or(Value::Null),
        "chosen_value": pair.meta.get("chosen_value").cloned().unwrap_or(Value::Null),
        "rejected_value": pair.meta.get("rejected_value").cloned().unwrap_or(Value::Null),
        "similarity": word_similarity(chosen, rejected),
        "diff": diff,
        "warnings": warnings,
        "constraints": constraints,
    })
}

fn tree_entry(tree: &TreeRecord) -> Value {
    let nodes: Vec<Value> = tree
        .tree
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "parent": n.parent,
                "depth": n.depth,
                "value": n.value,
                "valid": n.valid,
                "repaired": n.repaired,
                "text": n.response.chars().take(400).collect::<String>(),
            })
        })
        .collect();
    json!({
        "id": tree.id,
        "prompt": tree.prompt,
        "solved": tree.tree.solved,
        "chosen": tree.tree.chosen,
        "error": tree.tree.error,
        "nodes": nodes,
    })
}
