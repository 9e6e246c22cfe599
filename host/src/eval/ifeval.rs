//! `spar-host eval ifeval`: the official IFEval evaluation, with verifier plugins as the checkers.
//! Reads the official input and response formats, matches responses to prompts by prompt text (as
//! the official checker does), and writes `eval_results_strict.jsonl` / `eval_results_loose.jsonl`
//! in the official format, byte for byte.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use super::python_json;
use crate::plugins::PluginHost;
use crate::plugins::verifiers::Verifiers;

/// One IFEval prompt with its instructions.
#[derive(Clone, Debug)]
pub struct Input {
    pub key: i64,
    pub prompt: String,
    pub instruction_ids: Vec<String>,
    /// One JSON object per instruction.
    pub kwargs: Vec<String>,
    /// Where it came from, for errors.
    pub line: usize,
}

use crate::storage::jsonl::read_with as read_jsonl;

fn field<'v>(value: &'v Value, name: &str) -> anyhow::Result<&'v Value> {
    value
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("missing field `{name}`"))
}

fn string_field(value: &Value, name: &str) -> anyhow::Result<String> {
    field(value, name)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("field `{name}` must be a string"))
}

/// The official `input_data.jsonl` format.
pub fn read_inputs(path: &Path) -> anyhow::Result<Vec<Input>> {
    read_jsonl(path, |value, line| {
        let key = field(&value, "key")?
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("field `key` must be an integer"))?;
        let ids = field(&value, "instruction_id_list")?
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("field `instruction_id_list` must be a list"))?
            .iter()
            .map(|id| {
                id.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow::anyhow!("`instruction_id_list` must hold strings"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let kwargs = field(&value, "kwargs")?
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("field `kwargs` must be a list"))?;
        if kwargs.len() != ids.len() {
            bail!(
                "`kwargs` has {} entries but `instruction_id_list` has {}",
                kwargs.len(),
                ids.len()
            );
        }
        let kwargs = kwargs
            .iter()
            .map(|k| {
                if k.is_object() {
                    Ok(k.to_string())
                } else {
                    Err(anyhow::anyhow!(
                        "every `kwargs` entry must be an object, got {k}"
                    ))
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Input {
            key,
            prompt: string_field(&value, "prompt")?,
            instruction_ids: ids,
            kwargs,
            line,
        })
    })
}

/// The official responses format: `{"prompt", "response"}` per line; a later line for the same
/// prompt wins, as in the official checker.
pub fn read_responses(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let pairs = read_jsonl(path, |value, _| {
        Ok((
            string_field(&value, "prompt")?,
            string_field(&value, "response")?,
        ))
    })?;
    Ok(pairs.into_iter().collect())
}

/// The labels of one prompt.
pub struct Outcome {
    pub strict: Vec<bool>,
    pub loose: Vec<bool>,
}

/// Check every instruction of every input against its response.
pub fn evaluate(
    input_path: &Path,
    inputs: &[Input],
    responses_path: &Path,
    responses: &HashMap<String, String>,
    verifiers: &Verifiers,
) -> anyhow::Result<Vec<Outcome>> {
    // Refuse unknown ids and missing responses before checking anything.
    for input in inputs {
        for id in &input.instruction_ids {
            if !verifiers.knows(id) {
                bail!(
                    "{}:{}: instruction id `{id}` (key {}) is not known to any loaded verifier (loaded: {})",
                    input_path.display(),
                    input.line,
                    input.key,
                    verifiers.describe_loaded()
                );
            }
        }
        if !responses.contains_key(&input.prompt) {
            let preview: String = input.prompt.chars().take(80).collect();
            bail!(
                "{}:{}: prompt of key {} has no response in {}: {preview:?}",
                input_path.display(),
                input.line,
                input.key,
                responses_path.display()
            );
        }
    }
    // Prompts are independent: check them on every core, each thread with its own instances.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, inputs.len().max(1));
    let chunk = inputs.len().div_ceil(threads).max(1);
    let results: Vec<anyhow::Result<Vec<Outcome>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = inputs
            .chunks(chunk)
            .map(|part| scope.spawn(|| check_all(input_path, part, responses, verifiers)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("evaluation thread panicked"))
            .collect()
    });
    let mut outcomes = Vec::with_capacity(inputs.len());
    for part in results {
        outcomes.extend(part?);
    }
    Ok(outcomes)
}

/// Check `inputs` in order on this thread.
fn check_all(
    input_path: &Path,
    inputs: &[Input],
    responses: &HashMap<String, String>,
    verifiers: &Verifiers,
) -> anyhow::Result<Vec<Outcome>> {
    let mut sessions = verifiers.sessions();
    let mut outcomes = Vec::with_capacity(inputs.len());
    for input in inputs {
        let response = &responses[&input.prompt];
        let mut outcome = Outcome {
            strict: Vec::new(),
            loose: Vec::new(),
        };
        for (id, kwargs) in input.instruction_ids.iter().zip(&input.kwargs) {
            let result = sessions
                .check(id, kwargs, &input.prompt, response)
                .with_context(|| {
                    format!(
                        "{}:{}: key {}, instruction `{id}`",
                        input_path.display(),
                        input.line,
                        input.key
                    )
                })?;
            outcome.strict.push(result.strict);
            outcome.loose.push(result.loose);
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// One line of the official output.
fn result_line(input: &Input, response: &str, follow: &[bool]) -> String {
    let all = follow.iter().all(|b| *b);
    format!(
        "{{\"follow_all_instructions\": {}, \"follow_instruction_list\": {}, \"instruction_id_list\": {}, \"prompt\": {}, \"response\": {}}}\n",
        python_json::boolean(all),
        python_json::list(follow, |b| python_json::boolean(*b).to_string()),
        python_json::list(&input.instruction_ids, |s| python_json::string(s)),
        python_json::string(&input.prompt),
        python_json::string(response),
    )
}

/// Write both result files atomically (temp file, then rename).
pub fn write_results(
    dir: &Path,
    inputs: &[Input],
    responses: &HashMap<String, String>,
    outcomes: &[Outcome],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    for (name, strict) in [
        ("eval_results_strict.jsonl", true),
        ("eval_results_loose.jsonl", false),
    ] {
        let mut text = String::new();
        for (input, outcome) in inputs.iter().zip(outcomes) {
            let follow = if strict {
                &outcome.strict
            } else {
                &outcome.loose
            };
            text.push_str(&result_line(input, &responses[&input.prompt], follow));
        }
        crate::storage::write_atomic(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// The four accuracies and a per-instruction-id breakdown.
#[derive(Debug, Default)]
pub struct Summary {
    pub prompts: usize,
    pub instructions: usize,
    pub prompt_strict: usize,
    pub prompt_loose: usize,
    pub instruction_strict: usize,
    pub instruction_loose: usize,
    /// id -> (count, strict passes, loose passes)
    pub per_id: BTreeMap<String, (usize, usize, usize)>,
}

impl Summary {
    pub fn new(inputs: &[Input], outcomes: &[Outcome]) -> Summary {
        let mut s = Summary::default();
        for (input, outcome) in inputs.iter().zip(outcomes) {
            s.prompts += 1;
            s.prompt_strict += outcome.strict.iter().all(|b| *b) as usize;
            s.prompt_loose += outcome.loose.iter().all(|b| *b) as usize;
            for (i, id) in input.instruction_ids.iter().enumerate() {
                s.instructions += 1;
                s.instruction_strict += outcome.strict[i] as usize;
                s.instruction_loose += outcome.loose[i] as usize;
                let entry = s.per_id.entry(id.clone()).or_default();
                entry.0 += 1;
                entry.1 += outcome.strict[i] as usize;
                entry.2 += outcome.loose[i] as usize;
            }
        }
        s
    }

    fn ratio(n: usize, d: usize) -> f64 {
        if d == 0 { 0.0 } else { n as f64 / d as f64 }
    }

    /// The report `eval ifeval` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, label: &str, n: usize, d: usize| {
            out.push_str(&format!(
                "{label:<26} {:.4}  ({n}/{d})\n",
                Self::ratio(n, d)
            ));
        };
        line(
            &mut out,
            "prompt-level strict",
            self.prompt_strict,
            self.prompts,
        );
        line(
            &mut out,
            "instruction-level strict",
            self.instruction_strict,
            self.instructions,
        );
        line(
            &mut out,
            "prompt-level loose",
            self.prompt_loose,
            self.prompts,
        );
        line(
            &mut out,
            "instruction-level loose",
            self.instruction_loose,
            self.instructions,
        );
        out.push_str(&format!(
            "\n{:<46} {:>5} {:>8} {:>8}\n",
            "instruction id", "n", "strict", "loose"
        ));
        for (id, (n, strict, loose)) in &self.per_id {
            out.push_str(&format!(
                "{id:<46} {n:>5} {:>8.4} {:>8.4}\n",
                Self::ratio(*strict, *n),
                Self::ratio(*loose, *n)
            ));
        }
        out
    }
}

/// Everything `spar-host eval ifeval` does; returns the summary.
pub fn run(
    host: &PluginHost,
    input_path: &Path,
    responses_path: &Path,
    output: &Path,
    verifier_paths: &[PathBuf],
) -> anyhow::Result<Summary> {
    let inputs = read_inputs(input_path)?;
    let responses = read_responses(responses_path)?;
    let verifiers = Verifiers::load(host, verifier_paths)?;
    let outcomes = evaluate(input_path, &inputs, responses_path, &responses, &verifiers)?;
    write_results(output, &inputs, &responses, &outcomes)?;
    Ok(Summary::new(&inputs, &outcomes))
}
