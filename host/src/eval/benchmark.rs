//! `spar-host eval ifeval|ifbench`: a benchmark's own evaluation, with verifier plugins as the
//! checkers. IFEval and IFBench share their formats (IFBench's `run_eval.py` is IFEval's, with
//! string keys); they differ only where [`Benchmark`] says. Reads the input and response
//! formats, matches responses to prompts by prompt text (as the reference checkers do), and
//! writes `eval_results_strict.jsonl` / `eval_results_loose.jsonl` in their format, byte for byte.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use super::python_json;
use crate::plugins::PluginHost;
use crate::plugins::verifiers::Verifiers;

/// The benchmarks `eval` knows, and where their reference evaluations differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Benchmark {
    IfEval,
    IfBench,
}

impl Benchmark {
    /// The verifier plugin built from this repository that checks its instruction ids.
    pub fn builtin_verifier(self) -> &'static str {
        match self {
            Benchmark::IfEval => "verifier-ifeval",
            Benchmark::IfBench => "verifier-ifbench",
        }
    }

    /// IFBench's `run_eval.py` also finds a response under the stripped prompt and scores a
    /// prompt without a response as failed; IFEval's checker requires every response.
    fn lenient_responses(self) -> bool {
        self == Benchmark::IfBench
    }
}

/// One benchmark prompt with its instructions.
#[derive(Clone, Debug)]
pub struct Input {
    /// IFEval's keys are integers, IFBench's strings; both are shown as written.
    pub key: String,
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

/// The input format (`input_data.jsonl`, `IFBench_test.jsonl`).
pub fn read_inputs(path: &Path) -> anyhow::Result<Vec<Input>> {
    read_jsonl(path, |value, line| {
        let key = match field(&value, "key")? {
            Value::Number(n) if n.is_i64() => n.to_string(),
            Value::String(s) => s.clone(),
            other => bail!("field `key` must be an integer or a string, got {other}"),
        };
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

/// The responses format: `{"prompt", "response"}` per line; a later line for the same prompt
/// wins, as in the reference checkers.
pub fn read_responses(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    read_jsonl(path, |value, _| {
        Ok((
            string_field(&value, "prompt")?,
            string_field(&value, "response")?,
        ))
    })
}

/// Responses by prompt, as the benchmark's reference looks them up.
pub struct Responses {
    by_prompt: HashMap<String, String>,
    lenient: bool,
}

impl Responses {
    pub fn new(benchmark: Benchmark, pairs: Vec<(String, String)>) -> Responses {
        let lenient = benchmark.lenient_responses();
        let mut by_prompt = HashMap::new();
        for (prompt, response) in pairs {
            // IFBench's `read_prompt_to_response_dict`: the stripped prompt finds it too.
            let stripped = prompt.trim();
            if lenient && stripped != prompt {
                by_prompt.insert(stripped.to_string(), response.clone());
            }
            by_prompt.insert(prompt, response);
        }
        Responses { by_prompt, lenient }
    }

    /// The response to `prompt`, if there is one.
    pub fn get(&self, prompt: &str) -> Option<&str> {
        self.by_prompt
            .get(prompt)
            .or_else(|| {
                self.lenient
                    .then(|| self.by_prompt.get(prompt.trim()))
                    .flatten()
            })
            .map(String::as_str)
    }
}

/// The labels of one prompt.
pub struct Outcome {
    pub strict: Vec<bool>,
    pub loose: Vec<bool>,
    /// No response: IFBench scores every instruction of the prompt as not followed.
    pub missing_response: bool,
    /// Instructions no loaded verifier knows, scored as not followed (`--unsupported-as-failed`).
    pub unchecked: Vec<String>,
}

/// What to do with an instruction id no loaded verifier knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// Stop before checking anything, naming the id.
    Refuse,
    /// Score it as not followed and count it in the report.
    ScoreAsFailed,
}

/// Check every instruction of every input against its response.
pub fn evaluate(
    benchmark: Benchmark,
    input_path: &Path,
    inputs: &[Input],
    responses_path: &Path,
    responses: &Responses,
    verifiers: &Verifiers,
    unsupported: Unsupported,
) -> anyhow::Result<Vec<Outcome>> {
    // Refuse unknown ids and missing responses before checking anything.
    for input in inputs {
        for id in &input.instruction_ids {
            if !verifiers.knows(id) && unsupported == Unsupported::Refuse {
                bail!(
                    "{}:{}: instruction id `{id}` (key {}) is not known to any loaded verifier (loaded: {}); \
                     pass --unsupported-as-failed to score such instructions as not followed",
                    input_path.display(),
                    input.line,
                    input.key,
                    verifiers.describe_loaded()
                );
            }
        }
        if responses.get(&input.prompt).is_none() && !benchmark.lenient_responses() {
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
    responses: &Responses,
    verifiers: &Verifiers,
) -> anyhow::Result<Vec<Outcome>> {
    let mut sessions = verifiers.sessions();
    let mut outcomes = Vec::with_capacity(inputs.len());
    for input in inputs {
        let n = input.instruction_ids.len();
        let Some(response) = responses.get(&input.prompt) else {
            outcomes.push(Outcome {
                strict: vec![false; n],
                loose: vec![false; n],
                missing_response: true,
                unchecked: Vec::new(),
            });
            continue;
        };
        let mut outcome = Outcome {
            strict: Vec::with_capacity(n),
            loose: Vec::with_capacity(n),
            missing_response: false,
            unchecked: Vec::new(),
        };
        for (id, kwargs) in input.instruction_ids.iter().zip(&input.kwargs) {
            if !verifiers.knows(id) {
                outcome.strict.push(false);
                outcome.loose.push(false);
                outcome.unchecked.push(id.clone());
                continue;
            }
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
    responses: &Responses,
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
            // A prompt without a response is written with an empty one, as IFBench does.
            let response = responses.get(&input.prompt).unwrap_or("");
            text.push_str(&result_line(input, response, follow));
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
    /// Prompts without a response, scored as failed.
    pub missing_responses: usize,
    /// id -> instructions no loaded verifier could check, scored as failed.
    pub unchecked: BTreeMap<String, usize>,
}

impl Summary {
    pub fn new(inputs: &[Input], outcomes: &[Outcome]) -> Summary {
        let mut s = Summary::default();
        for (input, outcome) in inputs.iter().zip(outcomes) {
            s.prompts += 1;
            s.missing_responses += outcome.missing_response as usize;
            for id in &outcome.unchecked {
                *s.unchecked.entry(id.clone()).or_default() += 1;
            }
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

    /// The report `eval` prints.
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
        if self.missing_responses > 0 {
            out.push_str(&format!(
                "{} prompts had no response and count as failed (as IFBench scores them)\n",
                self.missing_responses
            ));
        }
        for (id, n) in &self.unchecked {
            out.push_str(&format!(
                "{n} instructions `{id}` could not be checked by the loaded verifiers and count as not followed\n"
            ));
        }
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

/// Everything `spar-host eval ifeval|ifbench` does; returns the summary.
pub fn run(
    benchmark: Benchmark,
    host: &PluginHost,
    input_path: &Path,
    responses_path: &Path,
    output: &Path,
    verifier_paths: &[PathBuf],
    unsupported: Unsupported,
) -> anyhow::Result<Summary> {
    let inputs = read_inputs(input_path)?;
    let responses = Responses::new(benchmark, read_responses(responses_path)?);
    let verifiers = Verifiers::load(host, verifier_paths)?;
    let outcomes = evaluate(
        benchmark,
        input_path,
        &inputs,
        responses_path,
        &responses,
        &verifiers,
        unsupported,
    )?;
    write_results(output, &inputs, &responses, &outcomes)?;
    Ok(Summary::new(&inputs, &outcomes))
}
