//! The OpenAI-compatible server backend: `judge`, `search` and `spar-host run` generating on a
//! server over loopback HTTP, and its faults (error statuses, malformed answers, slowness, a
//! server that goes away mid-run and comes back). The server here is a small stand-in whose
//! answers are a function of the request; scripts/test-openai-server.sh runs the same paths
//! against llama.cpp's real server.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::stub_server::{Fault, StubServer};
use serde_json::{Value, json};

const MARKER: &str = "Final Judgement (if the Output accurately follows the Prompt):";

/// A judge that says Yes exactly when the judged answer has at least five words, and a refiner
/// that needs two tries: its first refinement is still too short, its refinement of that is
/// long enough (judge-direct's prompt shapes).
fn answer(request: &Value) -> String {
    let prompt = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    if prompt.contains(MARKER) {
        let judged = prompt
            .split_once("Answer:\n")
            .and_then(|(_, rest)| rest.split_once("\n\nDoes the answer follow"))
            .map(|(a, _)| a)
            .unwrap_or_default();
        let verdict = if judged.split_whitespace().count() >= 5 {
            "Yes"
        } else {
            "No"
        };
        format!("The length rule is what matters here.\n{MARKER} {verdict}")
    } else {
        let seed = request["seed"].as_u64().unwrap_or(0);
        if prompt.contains("was:\nStill short") {
            format!("Rain falls softly on the quiet town number {}.", seed % 7)
        } else {
            format!("Still short {}", seed % 3)
        }
    }
}

fn samples(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for (i, topic) in ["rain", "maps", "tea"].iter().enumerate() {
        for (j, response) in ["Short.", "Far too short"].iter().enumerate() {
            text.push_str(
                &json!({
                    "id": format!("p{i}-s{j}"),
                    "prompt": format!("Write about {topic} in at least five words."),
                    "response": response,
                    "instruction_id_list": ["length_constraints:number_words"],
                    "kwargs": [{"num_words": 5, "relation": "at least"}],
                })
                .to_string(),
            );
            text.push('\n');
        }
    }
    let path = dir.join("samples.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn spar_host(args: &[&str]) -> Output {
    common::spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .args(args)
        .output()
        .unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// LLM judging with judge-direct's prompts, 3 votes.
fn llm_judge_flags(judge_plugin: &Path) -> [&str; 6] {
    [
        "--mode",
        "llm",
        "--k",
        "3",
        "--judge-plugin",
        path(judge_plugin),
    ]
}

/// `judge` on `samples` through `server`, LLM mode, k = 3; extra flags appended.
fn judge_on(server: &str, dir: &Path, extra: &[&str]) -> Output {
    let samples = samples(dir);
    let judge_plugin = common::plugin("judge-direct");
    let out = dir.join("judgments.jsonl");
    let mut args = vec!["judge", "--server", server, "--server-model", "stub-model"];
    args.extend(llm_judge_flags(&judge_plugin));
    args.extend(["--input", path(&samples), "--output", path(&out)]);
    args.extend_from_slice(extra);
    spar_host(&args)
}

#[test]
fn judge_search_and_pairs_run_unchanged_on_a_server() {
    let dir = common::scratch("server-steps");
    let server = StubServer::start(answer);
    let judged = judge_on(&server.url, &dir, &[]);
    assert!(
        judged.status.success(),
        "{}",
        String::from_utf8_lossy(&judged.stderr)
    );
    let judgments = lines(&dir.join("judgments.jsonl"));
    assert_eq!(judgments.len(), 6);
    for j in &judgments {
        assert_eq!(j["verdict"], false, "{j}");
        assert_eq!(j["votes"]["no"], 3, "k = 3 votes from the server");
    }
    let requests = server.chat_requests();
    assert_eq!(requests.len(), 18, "6 responses x 3 votes");
    for r in &requests {
        assert_eq!(r["model"], "stub-model");
        assert_eq!(r["n"], 1);
        // The judge's default, the same on the CLI as in the config (the authors' 2048).
        assert_eq!(r["max_tokens"], 2048);
    }
    let mut seeds: Vec<u64> = requests
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    seeds.sort_unstable();
    seeds.dedup();
    assert_eq!(seeds.len(), 18, "every vote has its own seed");

    let judge_plugin = common::plugin("judge-direct");
    let trees = dir.join("trees.jsonl");
    let judgments = dir.join("judgments.jsonl");
    let mut args = vec!["search", "--server", &server.url];
    args.extend(llm_judge_flags(&judge_plugin));
    args.extend(["--input", path(&judgments), "--output", path(&trees)]);
    let searched = spar_host(&args);
    let stderr = String::from_utf8_lossy(&searched.stderr);
    assert!(searched.status.success(), "{stderr}");
    let trees_read = lines(&trees);
    assert_eq!(trees_read.len(), 3, "one negative per prompt is searched");
    assert!(
        trees_read.iter().all(|t| t["solved"] == true),
        "every tree solved"
    );
    let pairs = dir.join("pairs.jsonl");
    // Two-step refinements differ a lot from the original: no edit-distance limit here.
    let paired = spar_host(&[
        "pairs",
        "--input",
        path(&trees),
        "--output",
        path(&pairs),
        "--filter",
        "filter-dedup",
        "--filter",
        "filter-value-gap",
        "--filter",
        "filter-edit-distance",
        "--filter-config",
        "filter-edit-distance={\"max_distance\":1.0}",
    ]);
    assert!(
        paired.status.success(),
        "{}",
        String::from_utf8_lossy(&paired.stderr)
    );
    let pairs = lines(&pairs);
    assert_eq!(pairs.len(), 3);
    assert!(
        pairs[0]["chosen"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("Rain falls softly")
    );
}

#[test]
fn error_statuses_are_retried_then_succeed() {
    let dir = common::scratch("server-retry");
    let server = StubServer::start(answer);
    server.push_faults([Fault::Status(500), Fault::Status(503), Fault::Status(429)]);
    let output = judge_on(&server.url, &dir, &["--server-concurrency", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        server.chat_requests().len(),
        18 + 3,
        "three failed attempts were retried"
    );
}

#[test]
fn malformed_answers_are_retried_then_a_clear_error_names_the_job() {
    let dir = common::scratch("server-malformed");
    let server = StubServer::start(answer);
    server.push_faults(vec![Fault::Malformed; 3]);
    let output = judge_on(
        &server.url,
        &dir,
        &["--server-concurrency", "1", "--server-retries", "2"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("server {}: job 1 of 18", server.url))
            && stderr.contains("unreadable answer")
            && stderr.contains("after 3 attempts"),
        "{stderr}"
    );
    assert!(
        !dir.join("judgments.jsonl").exists(),
        "nothing written as complete"
    );
}

#[test]
fn a_client_error_is_not_retried() {
    let dir = common::scratch("server-400");
    let server = StubServer::start(answer);
    server.push_faults([Fault::Status(400)]);
    let output = judge_on(&server.url, &dir, &["--server-concurrency", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 400") && stderr.contains("after 1 attempt"),
        "{stderr}"
    );
}

#[test]
fn a_slow_server_hits_the_timeout() {
    let dir = common::scratch("server-slow");
    let server = StubServer::start(answer);
    server.push_faults([Fault::Slow(Duration::from_secs(3))]);
    let started = std::time::Instant::now();
    let output = judge_on(
        &server.url,
        &dir,
        &[
            "--server-concurrency",
            "1",
            "--server-timeout",
            "0.3",
            "--server-retries",
            "0",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no answer within the 0.3 s timeout"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout was honoured"
    );
}

#[test]
fn a_server_that_is_gone_is_a_clear_error() {
    let dir = common::scratch("server-gone");
    let server = StubServer::start(answer);
    let url = server.url.clone();
    server.stop();
    let output = judge_on(&url, &dir, &["--server-retries", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("server {url}: job")) && stderr.contains("after 2 attempts"),
        "{stderr}"
    );
}

fn run_config(dir: &Path, port: u16) -> PathBuf {
    common::tiny_run_inputs(dir);
    let config = format!(
        r#"
run_dir = "run"
seed = 3

[models]
actor = "model"

[prompts]
train = "prompts.jsonl"

[actor]
n = 3
max_new_tokens = 12
batch_size = 4

[judge]
mode = "llm"
k = 2
plugin = "{judge}"

[search]
branch = 2
select = 1
max_depth = 2
budget = 6

[[filters]]
plugin = "{dedup}"

[dpo]
lr = 1e-4
max_length = 512

[sft]
lr = 1e-4
max_length = 512

[servers.refiner]
url = "http://127.0.0.1:{port}/v1"
model = "stub-model"
concurrency = 4
retries = 1
backoff_s = 0.05
"#,
        judge = common::plugin("judge-direct").display(),
        dedup = common::plugin("filter-dedup").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn a_run_whose_refiner_server_dies_fails_naming_the_job_and_resumes_when_it_is_back() {
    let dir = common::scratch("server-run");
    let server = StubServer::start(answer);
    let config = run_config(&dir, server.port);
    let run = || spar_host(&["run", path(&config)]);
    let clean = run();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let iter = dir.join("run/iter-1");
    let expected: Vec<Vec<u8>> = ["judgments.jsonl", "trees.jsonl", "pairs.jsonl"]
        .iter()
        .map(|f| std::fs::read(iter.join(f)).unwrap())
        .collect();
    assert!(
        !lines(&iter.join("pairs.jsonl")).is_empty(),
        "the served refiner solved trees"
    );
    let total = server.chat_requests().len();
    std::fs::remove_dir_all(dir.join("run")).unwrap();

    // The server answers all but the last few requests of the run, then stops answering.
    server.push_faults(
        std::iter::repeat_n(Fault::Slow(Duration::ZERO), total - 2)
            .chain(std::iter::repeat_n(Fault::HangUp, 1000)),
    );
    let broken = run();
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("server {}: job", server.url)) && stderr.contains("failed"),
        "{stderr}"
    );
    assert!(
        iter.join("judgments.jsonl").exists() && !iter.join("trees.jsonl").exists(),
        "it died in the search, after its first round"
    );
    assert_eq!(
        std::fs::read_to_string(iter.join("search.journal.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );

    // The server is restarted on the same address; the same command finishes the run.
    let port = server.port;
    server.stop();
    let _back = StubServer::start_on(port, answer);
    let resumed = run();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    for (file, want) in ["judgments.jsonl", "trees.jsonl", "pairs.jsonl"]
        .iter()
        .zip(expected)
    {
        assert!(
            std::fs::read(iter.join(file)).unwrap() == want,
            "{file} differs"
        );
    }
}

/// Keeps the length rule, breaks the comma rule.
fn half_right(_: &Value) -> String {
    "Rain falls, softly, on the quiet town.".to_string()
}

#[test]
fn with_verifier_judging_only_an_answer_keeping_every_constraint_solves_a_tree() {
    let dir = common::scratch("server-verifier-gate");
    let samples = dir.join("judged.jsonl");
    std::fs::write(
        &samples,
        json!({
            "id": "p0-s0",
            "prompt": "Write about rain in at least five words, without commas.",
            "response": "Short, yes.",
            "instruction_id_list": ["length_constraints:number_words", "punctuation:no_comma"],
            "kwargs": [{"num_words": 5, "relation": "at least"}, {}],
            "value": 0.0,
            "verdict": false,
            "critique": "too short, has commas",
            "votes": {"yes": 0, "no": 0, "unparsed": 0},
        })
        .to_string()
            + "\n",
    )
    .unwrap();
    let server = StubServer::start(half_right);
    let trees = dir.join("trees.jsonl");
    let judge_plugin = common::plugin("judge-direct");
    let output = spar_host(&[
        "search",
        "--server",
        &server.url,
        "--mode",
        "verifier",
        "--judge-plugin",
        path(&judge_plugin),
        "--gate",
        "0.3",
        "--max-depth",
        "1",
        "--input",
        path(&samples),
        "--output",
        path(&trees),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = &lines(&trees)[0];
    assert_eq!(
        tree["nodes"][1]["value"], 0.5,
        "one of two constraints kept"
    );
    assert_eq!(
        tree["solved"], false,
        "0.5 is above the 0.3 gate, but a constraint is broken"
    );
}

/// Actor answers are too short; refinements (judge-direct's rewrite prompt) are long enough.
fn short_actor(request: &Value) -> String {
    let prompt = request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    if prompt.contains("A first answer to this was") {
        "Rain falls softly on the quiet town tonight.".to_string()
    } else {
        "Too short.".to_string()
    }
}

#[test]
fn a_served_actor_is_reloaded_with_each_new_checkpoint_once() {
    let dir = common::scratch("server-reload");
    common::tiny_run_inputs(&dir);
    std::fs::copy(dir.join("prompts.jsonl"), dir.join("heldout.jsonl")).unwrap();
    let server = StubServer::start(short_actor);
    let config = format!(
        r#"
run_dir = "run"
seed = 2
[models]
actor = "model"
[prompts]
train = "prompts.jsonl"
eval = "heldout.jsonl"
[actor]
n = 1
max_new_tokens = 8
[judge]
mode = "verifier"
plugin = "{judge}"
[search]
max_depth = 1
budget = 3
[[filters]]
plugin = "{dedup}"
[dpo]
lr = 1e-4
max_length = 512
[sft]
lr = 1e-4
max_length = 512
[servers.actor]
url = "{url}"
reload_command = "echo {{model}} >> reloads.txt"
[servers.refiner]
url = "{url}"
"#,
        judge = common::plugin("judge-direct").display(),
        dedup = common::plugin("filter-dedup").display(),
        url = server.url,
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let run = || spar_host(&["run", path.to_str().unwrap()]);
    let first = run();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(
        !lines(&dir.join("run/iter-1/pairs.jsonl")).is_empty(),
        "the served refiner fixed the served actor's answers"
    );
    // DPO made a new actor; the held-out evaluation after it must use it, so the server reloads.
    let reloads = std::fs::read_to_string(dir.join("reloads.txt")).unwrap();
    let actor = dir.join("run/iter-1/actor");
    assert_eq!(
        reloads.trim(),
        std::path::absolute(&actor).unwrap().to_str().unwrap(),
        "{stderr}"
    );
    assert!(stderr.contains("servers.actor: reloading"), "{stderr}");
    // Run again: everything is done, and the server is not reloaded a second time.
    let again = run();
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join("reloads.txt")).unwrap(),
        reloads
    );
}

/// `eval ifeval --server`: the held-out answers come from the server through the same sampler
/// as every other step (greedy: temperature 0), then the verifiers score them.
#[test]
fn eval_ifeval_generates_its_answers_on_a_server() {
    fn no_commas(_: &Value) -> String {
        "Hi there friend".to_string()
    }
    let server = StubServer::start(no_commas);
    let dir = common::scratch("server-eval");
    let input = dir.join("input.jsonl");
    let line = |key: u32, prompt: &str| {
        json!({"key": key, "prompt": prompt, "instruction_id_list": ["punctuation:no_comma"],
               "kwargs": [{}]})
        .to_string()
    };
    std::fs::write(
        &input,
        format!(
            "{}\n{}\n{}\n",
            line(1, "Say hi."),
            line(2, "Greet me."),
            line(3, "Wave.")
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let output = common::spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .args([
            "eval",
            "ifeval",
            "--limit",
            "2",
            "--server",
            &server.url,
            "--input",
        ])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = server.chat_requests();
    assert_eq!(requests.len(), 2, "--limit 2");
    assert!(requests.iter().all(|r| r["temperature"] == 0.0));
    let strict = std::fs::read_to_string(out.join("eval_results_strict.jsonl")).unwrap();
    assert_eq!(strict.lines().count(), 2);
    assert!(
        strict.contains("\"response\": \"Hi there friend\""),
        "{strict}"
    );
    assert!(
        strict.contains("\"follow_all_instructions\": true"),
        "{strict}"
    );
}

/// `generate --server`: every sample through the shared sampler, seeded as a local run seeds it.
#[test]
fn generate_samples_on_a_server_with_the_local_seed_rule() {
    fn echo_seed(request: &Value) -> String {
        format!("seed {}", request["seed"])
    }
    let server = StubServer::start(echo_seed);
    let dir = common::scratch("server-generate");
    let prompts = dir.join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\": \"Say hi.\"}\n{\"id\": \"b\", \"prompt\": \"Wave.\"}\n",
    )
    .unwrap();
    let output = dir.join("out.jsonl");
    let run = common::spar_host()
        .args([
            "generate",
            "--server",
            &server.url,
            "--n",
            "2",
            "--seed",
            "7",
            "--prompts",
        ])
        .arg(&prompts)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        let (p, s) = (
            usize::from(line["id"] == "b"),
            line["sample"].as_u64().unwrap() as usize,
        );
        // The backend sends the seed's low 31 bits, which every server accepts.
        let seed = spar_host::cli::generate::derive_seed(7, p, s) & 0x7fff_ffff;
        assert_eq!(line["text"], format!("seed {seed}"), "{line}");
    }
    assert_eq!(server.chat_requests().len(), 4);
}
