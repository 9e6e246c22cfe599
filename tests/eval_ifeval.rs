//! `spar-host eval ifeval` end to end through the real verifier plugins: the official result files
//! reproduced, several plugins at once, and every kind of bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{eval_files as files, plugin, scratch, spar_host};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/ifeval")
        .join(name)
}

fn eval(input: &Path, responses: &Path, output: &Path, verifiers: &[PathBuf]) -> Output {
    let mut command = spar_host();
    command.args(["eval", "ifeval", "--input"]).arg(input);
    command.arg("--responses").arg(responses);
    command.arg("--output").arg(output);
    for v in verifiers {
        command.arg("--verifier").arg(v);
    }
    command.output().expect("run spar-host")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Lines of a results file, without those of the two keys whose official labels are random.
fn deterministic_lines(path: &Path, inputs: &Path) -> Vec<String> {
    let skip: Vec<String> = std::fs::read_to_string(inputs)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"key\": 1122,") || l.contains("\"key\": 1129,"))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["prompt"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(skip.len(), 2);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            !skip.iter().any(|p| v["prompt"].as_str() == Some(p))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn reproduces_the_official_result_files_on_the_gpt4_responses() {
    let out = scratch("eval-official");
    let input = data("input_data.jsonl");
    let output = eval(
        &input,
        &data("input_response_data_gpt4_20231107_145030.jsonl"),
        &out,
        &[plugin("verifier-ifeval")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "prompt-level strict        0.7708  (417/541)",
        "instruction-level strict   0.8369  (698/834)",
        "prompt-level loose         0.7967  (431/541)",
        "instruction-level loose    0.8561  (714/834)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    assert!(stdout.contains("punctuation:no_comma"));
    for name in ["eval_results_strict.jsonl", "eval_results_loose.jsonl"] {
        let ours = deterministic_lines(&out.join(name), &input);
        let official = deterministic_lines(&data(name), &input);
        assert_eq!(ours.len(), 539);
        let same = ours.iter().zip(&official).filter(|(a, b)| a == b).count();
        assert_eq!(same, 539, "{name}: {same} of 539 lines byte-identical");
    }
}

#[test]
fn the_default_verifier_is_the_built_in_one() {
    let out = scratch("eval-default");
    let dir = scratch("eval-default-in");
    let input = dir.join("input.jsonl");
    std::fs::write(&input, "{\"key\": 1, \"prompt\": \"Say hi without commas\", \"instruction_id_list\": [\"punctuation:no_comma\"], \"kwargs\": [{}]}\n").unwrap();
    let responses = dir.join("responses.jsonl");
    std::fs::write(
        &responses,
        "{\"prompt\": \"Say hi without commas\", \"response\": \"Hi there\"}\n",
    )
    .unwrap();
    let output = spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .args(["eval", "ifeval", "--input"])
        .arg(&input)
        .arg("--responses")
        .arg(&responses)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(out.join("eval_results_strict.jsonl")).unwrap(),
        "{\"follow_all_instructions\": true, \"follow_instruction_list\": [true], \"instruction_id_list\": [\"punctuation:no_comma\"], \"prompt\": \"Say hi without commas\", \"response\": \"Hi there\"}\n"
    );
}

#[test]
fn several_verifiers_at_once_each_checks_its_own_ids() {
    let (input, responses, out) = files(
        "eval-two-plugins",
        "{\"key\": 7, \"prompt\": \"Poem\", \"instruction_id_list\": [\"acrostic:first_letters\", \"punctuation:no_comma\"], \"kwargs\": [{\"word\": \"sun\"}, {}]}\n",
        "{\"prompt\": \"Poem\", \"response\": \"Shining high\\nUp above\\nNever tired\"}\n",
    );
    let output = eval(
        &input,
        &responses,
        &out,
        &[plugin("verifier-ifeval"), plugin("verifier-acrostic")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let strict = std::fs::read_to_string(out.join("eval_results_strict.jsonl")).unwrap();
    assert!(
        strict.contains("\"follow_instruction_list\": [true, true]"),
        "{strict}"
    );
}

/// Bad input: exit 1 and one line that names the file, the line and the problem.
fn assert_fails(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(expected), "expected {expected:?} in {err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn an_unknown_instruction_id_is_a_clear_error() {
    let (input, responses, out) = files(
        "eval-unknown-id",
        "{\"key\": 3, \"prompt\": \"P\", \"instruction_id_list\": [\"acrostic:first_letters\"], \"kwargs\": [{\"word\": \"ab\"}]}\n",
        "{\"prompt\": \"P\", \"response\": \"R\"}\n",
    );
    let output = eval(&input, &responses, &out, &[plugin("verifier-ifeval")]);
    assert_fails(
        &output,
        &format!(
            "{}:1: instruction id `acrostic:first_letters` (key 3) is not known to any loaded verifier (loaded: verifier-ifeval (25 ids))",
            input.display()
        ),
    );
}

#[test]
fn a_verifier_listing_an_id_twice_is_refused_not_a_panic() {
    let (input, responses, out) = files(
        "eval-duplicate-ids",
        "{\"key\": 3, \"prompt\": \"P\", \"instruction_id_list\": [\"dup:twice\"], \"kwargs\": [{}]}\n",
        "{\"prompt\": \"P\", \"response\": \"R\"}\n",
    );
    let fixture = common::fixture("duplicate-ids");
    let output = eval(&input, &responses, &out, std::slice::from_ref(&fixture));
    assert_fails(
        &output,
        &format!(
            "plugin `duplicate-ids` ({}): constraints() lists instruction id `dup:twice` twice",
            fixture.display()
        ),
    );
}

#[test]
fn malformed_jsonl_names_the_line() {
    let (input, responses, out) = files(
        "eval-malformed",
        "{\"key\": 1, \"prompt\": \"P\", \"instruction_id_list\": [], \"kwargs\": []}\n\n{\"key\": 2, oops}\n",
        "{\"prompt\": \"P\", \"response\": \"R\"}\n",
    );
    let output = eval(&input, &responses, &out, &[plugin("verifier-ifeval")]);
    assert_fails(&output, &format!("{}:3: invalid JSON: ", input.display()));
}

#[test]
fn a_prompt_without_a_response_is_named() {
    let (input, responses, out) = files(
        "eval-missing-response",
        "{\"key\": 9, \"prompt\": \"Where is my answer?\", \"instruction_id_list\": [\"punctuation:no_comma\"], \"kwargs\": [{}]}\n",
        "{\"prompt\": \"Another prompt\", \"response\": \"R\"}\n",
    );
    let output = eval(&input, &responses, &out, &[plugin("verifier-ifeval")]);
    assert_fails(
        &output,
        &format!(
            "{}:1: prompt of key 9 has no response in {}: \"Where is my answer?\"",
            input.display(),
            responses.display()
        ),
    );
}

#[test]
fn kwargs_of_the_wrong_type_name_the_argument() {
    let (input, responses, out) = files(
        "eval-bad-kwargs",
        "{\"key\": 4, \"prompt\": \"P\", \"instruction_id_list\": [\"length_constraints:number_words\"], \"kwargs\": [{\"num_words\": \"many\", \"relation\": \"at least\"}]}\n",
        "{\"prompt\": \"P\", \"response\": \"R\"}\n",
    );
    let output = eval(&input, &responses, &out, &[plugin("verifier-ifeval")]);
    assert_fails(
        &output,
        &format!(
            "{}:1: key 4, instruction `length_constraints:number_words`: plugin `verifier-ifeval` returned an error from `check`: argument `num_words` must be an integer, got \"many\"",
            input.display()
        ),
    );
}

#[test]
fn non_utf8_input_names_the_line() {
    let dir = scratch("eval-non-utf8");
    let input = dir.join("input.jsonl");
    let mut bytes =
        b"{\"key\": 1, \"prompt\": \"P\", \"instruction_id_list\": [], \"kwargs\": []}\n".to_vec();
    bytes.extend_from_slice(b"{\"key\": 2, \"prompt\": \"\xff\xfe\"}\n");
    std::fs::write(&input, bytes).unwrap();
    let responses = dir.join("responses.jsonl");
    std::fs::write(&responses, "").unwrap();
    let output = eval(
        &input,
        &responses,
        &dir.join("out"),
        &[plugin("verifier-ifeval")],
    );
    assert_fails(&output, &format!("{}:2: not valid UTF-8", input.display()));
}

#[test]
fn a_ten_megabyte_response_gets_a_verdict_through_the_plugin() {
    let response = "All work and no play makes Jack a dull boy. ".repeat(230_000);
    let (input, responses, out) = files(
        "eval-huge",
        "{\"key\": 5, \"prompt\": \"P\", \"instruction_id_list\": [\"punctuation:no_comma\", \"length_constraints:number_words\"], \"kwargs\": [{}, {\"num_words\": 50, \"relation\": \"less than\"}]}\n",
        &format!("{{\"prompt\": \"P\", \"response\": \"{response}\"}}\n"),
    );
    // Counting 2.3 M words takes a few hundred ms of one call: more time per call than the
    // default second, so a loaded test machine does not turn the verdict into a time-out.
    let output = spar_host()
        .args(["eval", "ifeval", "--plugin-timeout-ms", "10000", "--input"])
        .arg(&input)
        .arg("--responses")
        .arg(&responses)
        .arg("--output")
        .arg(&out)
        .arg("--verifier")
        .arg(plugin("verifier-ifeval"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let strict = std::fs::read_to_string(out.join("eval_results_strict.jsonl")).unwrap();
    assert!(strict.starts_with(
        "{\"follow_all_instructions\": false, \"follow_instruction_list\": [true, false]"
    ));
}

#[test]
fn eval_with_a_model_generates_then_scores() {
    let dir = scratch("eval-model");
    let spec = spar_host::engine::tiny::TinySpec {
        max_positions: 2048,
        ..Default::default()
    };
    spar_host::engine::tiny::write_hf_dir(&dir.join("model"), &spec).unwrap();
    let output = spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .args([
            "eval",
            "ifeval",
            "--limit",
            "3",
            "--max-new-tokens",
            "8",
            "--input",
        ])
        .arg(data("input_data.jsonl"))
        .arg("--model")
        .arg(dir.join("model"))
        .arg("--output")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("prompt-level loose") && stdout.contains("/3)"),
        "{stdout}"
    );
    for name in [
        "input.jsonl",
        "responses.jsonl",
        "eval_results_strict.jsonl",
        "eval_results_loose.jsonl",
    ] {
        let text = std::fs::read_to_string(dir.join("out").join(name)).unwrap();
        assert_eq!(text.lines().count(), 3, "{name}");
    }
}

/// Repair on the 541 GPT-4 responses: every fix the plugin offers passes its own constraint, and
/// a composed repair (the search's child) never loses a constraint the response kept.
#[test]
fn repairs_on_the_gpt4_responses_pass_and_never_break_what_was_kept() {
    use spar_host::plugins::verifiers::Verifiers;
    use spar_host::plugins::{Limits, PluginHost};
    use spar_host::spar::judge::Constraint;
    use spar_host::spar::repair::repair_response;

    let host = PluginHost::new(Limits::default()).unwrap();
    let verifiers = Verifiers::load(&host, &[plugin("verifier-ifeval")]).unwrap();
    let mut sessions = verifiers.sessions();
    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(data(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let inputs = read("input_data.jsonl");
    let responses: std::collections::HashMap<String, String> =
        read("input_response_data_gpt4_20231107_145030.jsonl")
            .into_iter()
            .map(|r| {
                (
                    r["prompt"].as_str().unwrap().to_string(),
                    r["response"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let (mut failed, mut single_repairs, mut composed) = (0, 0, 0);
    for input in &inputs {
        let prompt = input["prompt"].as_str().unwrap();
        let response = &responses[prompt];
        let constraints: Vec<Constraint> = input["instruction_id_list"]
            .as_array()
            .unwrap()
            .iter()
            .zip(input["kwargs"].as_array().unwrap())
            .map(|(id, kwargs)| Constraint {
                id: id.as_str().unwrap().to_string(),
                kwargs: kwargs.clone(),
            })
            .collect();
        let check = |sessions: &mut spar_host::plugins::verifiers::VerifierSessions<'_>,
                     c: &Constraint,
                     text: &str| {
            sessions
                .check(&c.id, &c.kwargs.to_string(), prompt, text)
                .unwrap()
                .strict
        };
        let kept: Vec<&Constraint> = constraints
            .iter()
            .filter(|c| check(&mut sessions, c, response))
            .collect();
        for c in constraints.iter().filter(|c| !kept.contains(c)) {
            failed += 1;
            let args = c.kwargs.to_string();
            if let Some(fixed) = sessions.repair(&c.id, &args, prompt, response).unwrap() {
                single_repairs += 1;
                assert!(check(&mut sessions, c, &fixed), "{}: {fixed:?}", c.id);
            }
        }
        if let Some(fixed) = repair_response(&mut sessions, &constraints, prompt, response).unwrap()
        {
            composed += 1;
            for c in &kept {
                assert!(check(&mut sessions, c, &fixed), "lost {}: {fixed:?}", c.id);
            }
        }
    }
    eprintln!(
        "{failed} failed instructions, {single_repairs} repaired one by one, {composed} responses repaired"
    );
    assert!(failed > 0 && single_repairs > 0 && composed > 0);
}
