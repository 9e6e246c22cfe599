//! The self-play steps end to end on a tiny random model: judge, search (swappable strategy),
//! pairs with filters, refiner data. Judging is by verifier plugins, so the signal is exact even
//! though the model is random.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use spar_host::engine::tiny::{self, TinySpec};
use spar_host::plugins::verifiers::Verifiers;
use spar_host::plugins::{Limits, PluginHost};

fn run(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut command = common::spar_host();
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    command.env("SPAR_PLUGIN_DIR", common::plugin_dir());
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stats(output: &Output, step: &str) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("stats {step}: ")))
        .unwrap_or_else(|| panic!("no stats line in {stderr}"));
    serde_json::from_str(line).unwrap()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Prompts whose constraint is "no commas", each with a response that has commas (a negative)
/// and one that has none.
fn samples(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for (i, topic) in ["rivers", "cats", "bread", "trains", "snow"]
        .iter()
        .enumerate()
    {
        for (j, response) in [
            format!("I like {topic}, truly, deeply."),
            format!("I like {topic}"),
        ]
        .iter()
        .enumerate()
        {
            text.push_str(
                &serde_json::json!({
                    "id": format!("p{i}-s{j}"),
                    "prompt": format!("Write about {topic} without any commas."),
                    "response": response,
                    "instruction_id_list": ["punctuation:no_comma"],
                    "kwargs": [{}],
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

/// The tiny tokenizer spends a token per byte: give the model room for the refinement prompts.
/// It also ends its answers: a refinement cut by the token limit is never chosen.
fn long_context() -> TinySpec {
    TinySpec {
        max_positions: 1024,
        stop_weight: tiny::STOPPING,
        ..TinySpec::default()
    }
}

fn pipeline(name: &str, strategy: &str) -> (PathBuf, serde_json::Value) {
    let dir = common::scratch(name);
    tiny::write_hf_dir(&dir.join("model"), &long_context()).unwrap();
    let samples = samples(&dir);
    let judge = run(
        &["judge", "--mode", "verifier"],
        &[
            ("--input", &samples),
            ("--output", &dir.join("judgments.jsonl")),
        ],
    );
    let judged = stats(&judge, "judge");
    assert_eq!(
        (
            judged["samples"].as_u64(),
            judged["negatives"].as_u64(),
            judged["passed"].as_u64()
        ),
        (Some(10), Some(5), Some(5))
    );
    // Hand-written samples say nothing about why they ended: unknown, counted, and searched.
    assert_eq!(judged["finish_unknown_samples"], 10, "{judged}");
    assert_eq!(judged["truncated_samples"], 0, "{judged}");

    let search = run(
        &[
            "search",
            "--mode",
            "verifier",
            "--branch",
            "2",
            "--select",
            "1",
            "--max-depth",
            "3",
            "--budget",
            "12",
            "--refine-max-new-tokens",
            "12",
            "--batch-size",
            "32",
        ],
        &[
            ("--input", &dir.join("judgments.jsonl")),
            ("--output", &dir.join("trees.jsonl")),
            ("--sft-output", &dir.join("refiner-sft.jsonl")),
            ("--model", &dir.join("model")),
            ("--judge-plugin", &common::fixture("judge-raw")),
            ("--strategy", &common::plugin(strategy)),
        ],
    );
    let searched = stats(&search, "search");
    run(
        &[
            "pairs",
            "--filter",
            "filter-dedup",
            "--filter",
            "filter-value-gap",
            "--filter",
            "filter-edit-distance",
            "--filter-config",
            "filter-edit-distance={\"max_distance\": 1.0}",
        ],
        &[
            ("--input", &dir.join("trees.jsonl")),
            ("--output", &dir.join("pairs.jsonl")),
        ],
    );
    (dir, searched)
}

fn check_outputs(dir: &Path, searched: &serde_json::Value) {
    assert_eq!(searched["negatives_searched"], 5, "{searched}");
    let rounds = searched["rounds"].as_u64().unwrap();
    assert!(rounds >= 1);
    // Batching across trees: the first round refines all five roots in one generation batch.
    let first_round = searched["children_per_round"][0].as_u64().unwrap();
    assert!(first_round >= 5, "{searched}");

    let trees = lines(&dir.join("trees.jsonl"));
    assert_eq!(trees.len(), 5);
    for tree in &trees {
        let nodes = tree["nodes"].as_array().unwrap();
        assert_eq!(nodes[0]["depth"], 0);
        assert!(nodes[0]["response"].as_str().unwrap().contains(','));
        for node in &nodes[1..] {
            let parent = node["parent"].as_u64().unwrap() as usize;
            assert_eq!(
                node["depth"].as_u64().unwrap(),
                nodes[parent]["depth"].as_u64().unwrap() + 1
            );
        }
    }
    let pairs = lines(&dir.join("pairs.jsonl"));
    assert!(!pairs.is_empty(), "some tree must be solved");
    let host = PluginHost::new(Limits::default()).unwrap();
    let verifiers = Verifiers::load(&host, &[common::plugin("verifier-ifeval")]).unwrap();
    let mut sessions = verifiers.sessions();
    for pair in &pairs {
        assert_eq!(pair["prompt"][0]["role"], "user");
        let prompt = pair["prompt"][0]["content"].as_str().unwrap();
        let chosen = pair["chosen"][0]["content"].as_str().unwrap();
        let rejected = pair["rejected"][0]["content"].as_str().unwrap();
        assert!(
            sessions
                .check("punctuation:no_comma", "{}", prompt, chosen)
                .unwrap()
                .strict,
            "chosen must pass: {chosen:?}"
        );
        assert!(
            !sessions
                .check("punctuation:no_comma", "{}", prompt, rejected)
                .unwrap()
                .strict,
            "rejected must fail"
        );
    }
    let sft = lines(&dir.join("refiner-sft.jsonl"));
    assert!(sft.iter().any(|e| e["meta"]["kind"] == "refinement"));
    for example in &sft {
        assert_eq!(
            example["messages"].as_array().unwrap().last().unwrap()["role"],
            "assistant"
        );
    }
}

#[test]
fn judge_search_and_pairs_run_end_to_end_with_bfs() {
    let (dir, searched) = pipeline("self-play-bfs", "search-bfs");
    check_outputs(&dir, &searched);
}

#[test]
fn independent_pairs_and_the_pair_diff_come_from_the_same_steps() {
    let (dir, _) = pipeline("self-play-independent", "search-bfs");
    // The baseline: the passing sample of each prompt over its failing one; no search needed.
    let pairs = run(
        &[
            "pairs",
            "--source",
            "independent",
            "--filter",
            "none",
            "--max-pairs",
            "3",
        ],
        &[
            ("--input", &dir.join("trees.jsonl")),
            ("--judgments", &dir.join("judgments.jsonl")),
            ("--output", &dir.join("independent.jsonl")),
        ],
    );
    let made = stats(&pairs, "pairs");
    assert_eq!(made["source"], "independent", "{made}");
    assert_eq!(made["pairs_built"], 5, "{made}");
    assert_eq!(made["pairs_kept"], 3, "capped: {made}");
    // "I like X" against "I like X, truly, deeply.": 3 edits over 5 words.
    let similarity = made["similarity_kept"].as_f64().unwrap();
    assert!((similarity - 0.4).abs() < 1e-9, "{made}");
    for pair in lines(&dir.join("independent.jsonl")) {
        let chosen = pair["chosen"][0]["content"].as_str().unwrap();
        let rejected = pair["rejected"][0]["content"].as_str().unwrap();
        assert!(!chosen.contains(',') && rejected.contains(','), "{pair}");
        assert_eq!(pair["meta"]["source"], "independent");
    }

    // The diff a user reads before training: plain text off a terminal.
    let file = dir.join("independent.jsonl");
    let shown = run(
        &["pairs", "show", file.to_str().unwrap(), "--limit", "1"],
        &[],
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("pair 1/3") && text.contains("source independent"),
        "{text}"
    );
    assert!(
        text.contains("chosen   keeps: punctuation:no_comma  breaks: none"),
        "{text}"
    );
    assert!(
        text.contains("rejected keeps: none  breaks: punctuation:no_comma"),
        "{text}"
    );
    assert!(text.contains(", truly, deeply.-] {+"), "{text}");
    assert!(text.contains("(2 more pairs in"), "{text}");
}

#[test]
fn verifier_repairs_make_children_that_differ_only_where_the_instruction_asked() {
    let (dir, _) = pipeline("self-play-repair", "search-bfs");
    let search = run(
        &[
            "search",
            "--mode",
            "verifier",
            "--refine",
            "repair",
            "--branch",
            "1",
            "--max-depth",
            "1",
        ],
        &[
            ("--input", &dir.join("judgments.jsonl")),
            ("--output", &dir.join("repaired-trees.jsonl")),
            ("--model", &dir.join("model")),
        ],
    );
    let searched = stats(&search, "search");
    assert_eq!(searched["refine"], "repair", "{searched}");
    assert_eq!(searched["repaired_children"], 5, "{searched}");
    assert_eq!(searched["trees_solved"], 5, "{searched}");
    for tree in lines(&dir.join("repaired-trees.jsonl")) {
        let nodes = tree["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2, "one repair per node: {tree}");
        assert_eq!(nodes[1]["repaired"], true);
        assert_eq!(nodes[1]["raw"], serde_json::Value::Null, "no refiner text");
        // "I like rivers, truly, deeply." -> the same words, no commas.
        assert_eq!(
            nodes[1]["response"].as_str().unwrap(),
            nodes[0]["response"].as_str().unwrap().replace(',', "")
        );
    }
    let pairs = run(
        // No --filter: none, as SPaR keeps every pair that passed the gate.
        &["pairs"],
        &[
            ("--input", &dir.join("repaired-trees.jsonl")),
            ("--output", &dir.join("repaired-pairs.jsonl")),
            ("--judgments", &dir.join("judgments.jsonl")),
        ],
    );
    let made = stats(&pairs, "pairs");
    assert_eq!(made["pairs_kept"], 5, "{made}");
    assert_eq!(
        made["dropped"],
        serde_json::json!({}),
        "no filter by default: {made}"
    );
    // Repaired pairs keep every word; the independent ones from the same samples do not.
    assert!(
        made["similarity_kept"].as_f64().unwrap()
            > made["similarity_independent"].as_f64().unwrap(),
        "{made}"
    );
    for pair in lines(&dir.join("repaired-pairs.jsonl")) {
        assert_eq!(pair["meta"]["chosen_repaired"], true);
    }
}

#[test]
fn swapping_the_strategy_is_a_path_change_only() {
    let (dir, searched) = pipeline("self-play-dfs", "search-dfs");
    check_outputs(&dir, &searched);
}

#[test]
fn an_llm_judge_that_never_gives_a_verdict_drops_every_response_without_failing() {
    let dir = common::scratch("self-play-llm");
    tiny::write_hf_dir(&dir.join("model"), &TinySpec::default()).unwrap();
    let samples = samples(&dir);
    let judge = run(
        &[
            "judge",
            "--mode",
            "llm",
            "--k",
            "3",
            "--judge-max-new-tokens",
            "8",
        ],
        &[
            ("--input", &samples),
            ("--output", &dir.join("judgments.jsonl")),
            ("--model", &dir.join("model")),
        ],
    );
    let judged = stats(&judge, "judge");
    assert_eq!(judged["ties_dropped"], 10, "{judged}");
    assert_eq!(judged["unparsed_verdicts"], 30);
    for record in lines(&dir.join("judgments.jsonl")) {
        assert_eq!(record["verdict"], serde_json::Value::Null);
        assert_eq!(record["votes"]["unparsed"], 3);
    }
}

#[test]
fn refinements_without_markers_count_as_failed_children() {
    let dir = common::scratch("self-play-markers");
    tiny::write_hf_dir(&dir.join("model"), &long_context()).unwrap();
    let samples = samples(&dir);
    run(
        &["judge", "--mode", "verifier"],
        &[
            ("--input", &samples),
            ("--output", &dir.join("judgments.jsonl")),
        ],
    );
    // The real SPaR judge: a random model never writes [[start]]...[[end]].
    let search = run(
        &[
            "search",
            "--mode",
            "verifier",
            "--branch",
            "2",
            "--max-depth",
            "2",
            "--retries",
            "1",
            "--refine-max-new-tokens",
            "8",
        ],
        &[
            ("--input", &dir.join("judgments.jsonl")),
            ("--output", &dir.join("trees.jsonl")),
            ("--model", &dir.join("model")),
        ],
    );
    let searched = stats(&search, "search");
    assert_eq!(searched["trees_solved"], 0, "{searched}");
    assert_eq!(
        searched["failed_children"], 10,
        "5 trees x 2 children, none parseable"
    );
    assert_eq!(
        searched["unparsed_refinements"], 20,
        "each failed child was retried once"
    );
    for tree in lines(&dir.join("trees.jsonl")) {
        assert_eq!(tree["solved"], false);
        assert!(tree["error"].is_null());
    }
}

#[test]
fn prompt_synthesis_is_seeded_valid_and_keeps_held_out_tasks_apart() {
    let dir = common::scratch("synth");
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/synth-tasks.txt");
    let synth = |out: &str, seed: &str| {
        run(
            &[
                "prompts",
                "synth",
                "--n",
                "30",
                "--seed",
                seed,
                "--held-out",
                "10",
            ],
            &[
                ("--tasks", &tasks),
                ("--output", &dir.join(out)),
                ("--held-out-output", &dir.join(format!("held-{out}"))),
            ],
        );
        (
            lines(&dir.join(out)),
            lines(&dir.join(format!("held-{out}"))),
        )
    };
    let shipped = std::fs::read_to_string(&tasks).unwrap();
    let unique: std::collections::HashSet<&str> =
        shipped.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(unique.len() >= 300, "a few hundred distinct tasks ship");
    let (a, held) = synth("a.jsonl", "4");
    let (b, _) = synth("b.jsonl", "4");
    let (c, _) = synth("c.jsonl", "5");
    assert_eq!(a, b, "same seed, same prompts");
    assert_ne!(a, c);
    assert_eq!((a.len(), held.len()), (30, 10));
    let host = PluginHost::new(Limits::default()).unwrap();
    let verifiers = Verifiers::load(&host, &[common::plugin("verifier-ifeval")]).unwrap();
    let mut sessions = verifiers.sessions();
    let task_of = |p: &serde_json::Value| {
        p["prompt"]
            .as_str()
            .unwrap()
            .split(". ")
            .next()
            .unwrap()
            .to_string()
    };
    for prompt in a.iter().chain(&held) {
        let ids = prompt["instruction_id_list"].as_array().unwrap();
        assert!((1..=3).contains(&ids.len()));
        for (id, kwargs) in ids.iter().zip(prompt["kwargs"].as_array().unwrap()) {
            let sentence = sessions
                .describe(id.as_str().unwrap(), &kwargs.to_string())
                .unwrap();
            assert!(
                prompt["prompt"].as_str().unwrap().contains(&sentence),
                "{prompt}"
            );
        }
    }
    for h in &held {
        assert!(
            a.iter().all(|t| task_of(t) != task_of(h)),
            "held-out task used in training: {h}"
        );
    }
}

/// A generation backend that answers from a script, in order.
struct ScriptedVotes(std::sync::Mutex<std::collections::VecDeque<String>>);

impl spar_host::backend::ChatBackend for ScriptedVotes {
    fn complete(
        &self,
        jobs: &[(Vec<spar_host::engine::chat_template::Message>, u64)],
        _settings: &spar_host::backend::sampler::SampleSettings,
    ) -> anyhow::Result<spar_host::backend::Completions> {
        let mut script = self.0.lock().unwrap();
        let outputs = jobs
            .iter()
            .map(|_| spar_host::backend::Generated {
                text: script.pop_front().expect("the script ran out"),
                finish_reason: Some(spar_host::backend::FinishReason::Stop),
                tokens: Some(1),
            })
            .collect();
        Ok(spar_host::backend::Completions {
            outputs,
            tokens: jobs.len(),
            passes: 1,
        })
    }
}

#[test]
fn a_split_llm_vote_is_judged_again_then_dropped() {
    use spar_host::spar::judge::{JudgeItem, JudgeMode, Judger};
    let verdict = |v: &str| {
        format!("Checked.\nFinal Judgement (if the Output accurately follows the Prompt): {v}")
    };
    // Item A splits four times (Yes/No/Yes/No/junk): judged, re-sampled 3 times, dropped.
    // Item B splits once, then No wins: its critique is a No critique.
    let split = [
        verdict("Yes"),
        verdict("No"),
        verdict("Yes"),
        verdict("No"),
        "junk".to_string(),
    ];
    let no_wins = [
        verdict("No"),
        verdict("No"),
        verdict("Yes"),
        "junk".into(),
        "junk".into(),
    ];
    let mut script: Vec<String> = Vec::new();
    script.extend(split.clone()); // round 0: A
    script.extend(split.clone()); // round 0: B
    for round in 1..=3 {
        script.extend(split.clone()); // A again
        if round == 1 {
            script.extend(no_wins.clone()); // B decided
        }
    }
    let sampler = spar_host::backend::sampler::ChatSampler::with_backend(
        Box::new(ScriptedVotes(std::sync::Mutex::new(script.into()))),
        64,
    );
    let judge_plugin = PluginHost::new(Limits::default())
        .unwrap()
        .load(&common::plugin("judge-spar"))
        .unwrap();
    let settings = spar_host::backend::sampler::SampleSettings {
        temperature: 0.7,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: 16,
    };
    let mut judger = Judger::new(
        JudgeMode::Llm,
        5,
        settings,
        1,
        Some(&sampler),
        &judge_plugin,
        None,
    )
    .unwrap();
    let item = |response: &str| JudgeItem {
        instruction: "Say hi.".into(),
        response: response.into(),
        constraints: Vec::new(),
    };
    let judged = judger.judge(&[item("A"), item("B")]).unwrap();
    assert_eq!(judged[0].verdict, None, "{:?}", judged[0]);
    assert_eq!((judged[0].votes.yes, judged[0].votes.no), (2, 2));
    assert_eq!(judged[0].critique, "", "a tie has no majority critique");
    assert_eq!(judged[1].verdict, Some(false), "{:?}", judged[1]);
    assert!(judged[1].critique.ends_with("No"), "{}", judged[1].critique);
    assert_eq!(judger.stats.tie_resamples, 4, "A three times, B once");
    assert_eq!(judger.stats.llm_samples, 30);
}

#[test]
fn a_solved_depth_two_tree_trains_one_refinement_and_each_critique_once() {
    use spar_host::backend::FinishReason;
    use spar_host::records::TreeRecord;
    use spar_host::spar::refiner_data::{RftCaps, mix, tree_examples};
    use spar_host::spar::search::{NodeRecord, Tree, Votes};
    let verdict = |v: &str| {
        format!("Checked.\nFinal Judgement (if the Output accurately follows the Prompt): {v}")
    };
    let node = |id: u32, parent: Option<u32>, value: f64, critique: String| NodeRecord {
        id,
        parent,
        depth: id,
        response: format!("answer {id}"),
        critique,
        value,
        valid: true,
        // Five LLM votes behind the value.
        votes: Votes {
            yes: (value * 5.0).round() as u32,
            no: 5 - (value * 5.0).round() as u32,
            unparsed: 0,
        },
        raw: if id > 0 {
            format!("raw {id}")
        } else {
            String::new()
        },
        finish_reason: Some(FinishReason::Stop),
        tokens: None,
        repaired: false,
    };
    let tree = TreeRecord {
        id: serde_json::json!("t"),
        prompt: "Say hi in French.".into(),
        instruction_id_list: None,
        kwargs: None,
        tree: Tree {
            nodes: vec![
                node(0, None, 0.4, format!("Root: {}", verdict("No"))),
                node(1, Some(0), 0.2, format!("First: {}", verdict("No"))),
                node(2, Some(1), 0.8, format!("Second: {}", verdict("Yes"))),
            ],
            chosen: Some(2),
            solved: true,
            error: None,
        },
    };
    let judge = PluginHost::new(Limits::default())
        .unwrap()
        .load(&common::plugin("judge-spar"))
        .unwrap();
    let candidates = tree_examples(&tree, &mut judge.session(), 1).unwrap();
    let offered: Vec<&str> = candidates.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        offered,
        ["refinement", "positive_critique", "negative_critique"]
    );
    // Verifier values (shares of constraints passed) have no votes: no critique is offered.
    let mut verified = tree.clone();
    for n in &mut verified.tree.nodes {
        n.votes = Votes::default();
    }
    let offered: Vec<&str> = tree_examples(&verified, &mut judge.session(), 1)
        .unwrap()
        .iter()
        .map(|(kind, _)| *kind)
        .collect();
    assert_eq!(offered, ["refinement"]);
    let (examples, counts) = mix(candidates, &RftCaps::default(), 1);
    assert_eq!(counts["negative_critique"]["duplicates_dropped"], 1);
    let kinds: Vec<(String, u64)> = examples
        .iter()
        .map(|e| {
            (
                e.meta["kind"].as_str().unwrap().to_string(),
                e.meta["node"].as_u64().unwrap(),
            )
        })
        .collect();
    // The final edge's refinement and the chosen node's split Yes. Node 1's split No opens with
    // the same judge prompt as the refinement, which already trains that critique: the authors'
    // dedup by first turn drops it. The root is an actor sample: its judgment comes from the
    // judge step's split votes, not from the tree.
    let mut kinds = kinds;
    kinds.sort();
    assert_eq!(
        kinds,
        [("positive_critique".into(), 2), ("refinement".into(), 2)]
    );
    let mut turns: Vec<&str> = examples
        .iter()
        .flat_map(|e| e.messages.iter().filter(|m| m.role == "assistant"))
        .map(|m| m.content.as_str())
        .collect();
    let all = turns.len();
    turns.sort();
    turns.dedup();
    assert_eq!(
        turns.len(),
        all,
        "an assistant turn is trained twice: {turns:?}"
    );
}

#[test]
fn actor_samples_train_the_refiner_only_when_their_votes_disagreed() {
    use spar_host::records::{JudgedSample, Sample};
    use spar_host::spar::judge::Judgment;
    use spar_host::spar::refiner_data::judgment_examples;
    use spar_host::spar::search::Votes;
    let judged = |id: &str, yes: u32, no: u32, verdict: Option<bool>| JudgedSample {
        sample: Sample {
            id: serde_json::json!(id),
            prompt: "Say hi.".into(),
            response: format!("response {id}"),
            finish_reason: None,
            tokens: None,
            instruction_id_list: None,
            kwargs: None,
        },
        judgment: Judgment {
            value: f64::from(yes) / f64::from((yes + no).max(1)),
            verdict,
            votes: Votes {
                yes,
                no,
                unparsed: 0,
            },
            critique: if verdict.is_some() {
                format!("critique {id}")
            } else {
                String::new()
            },
            fault: None,
        },
    };
    let samples = [
        judged("split-yes", 3, 2, Some(true)),
        judged("unanimous-yes", 5, 0, Some(true)),
        judged("split-no", 1, 4, Some(false)),
        judged("unanimous-no", 0, 5, Some(false)),
        judged("tie", 2, 2, None),
    ];
    let judge = PluginHost::new(Limits::default())
        .unwrap()
        .load(&common::plugin("judge-spar"))
        .unwrap();
    let examples = judgment_examples(&samples, &mut judge.session()).unwrap();
    let kinds: Vec<(&str, String)> = examples
        .iter()
        .map(|(kind, e)| (*kind, e.messages.last().unwrap().content.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("yes_judgment", "critique split-yes".to_string()),
            ("no_judgment", "critique split-no".to_string())
        ]
    );
    assert!(
        examples[0].1.messages[0]
            .content
            .contains("response split-yes")
    );
}

/// A tree whose pair a quality gate drops is named, so the run keeps its search output out of the
/// refiner's data too (a scaffold-leaking refinement must not teach the refiner either).
#[test]
fn pairs_a_filter_drops_are_named_so_their_trees_train_nothing() {
    use spar_host::backend::FinishReason;
    use spar_host::records::{NodeRecord, Tree, TreeRecord, Votes};
    use spar_host::spar::steps::{PairSettings, make_pairs_gated};
    let node = |id: u32, response: &str, value: f64| NodeRecord {
        id,
        parent: (id > 0).then_some(0),
        depth: u32::from(id > 0),
        response: response.into(),
        critique: String::new(),
        value,
        valid: true,
        votes: Votes::default(),
        raw: String::new(),
        finish_reason: Some(FinishReason::Stop),
        tokens: None,
        repaired: false,
    };
    let tree = |id: &str, chosen: &str| TreeRecord {
        id: serde_json::json!(id),
        prompt: "Write a note to a friend. End it with a P.S.".into(),
        instruction_id_list: None,
        kwargs: None,
        tree: Tree {
            nodes: vec![node(0, "Dear friend, hello.", 0.0), node(1, chosen, 1.0)],
            chosen: Some(1),
            solved: true,
            error: None,
        },
    };
    let trees = [
        tree("clean", "Dear friend, hello.\nP.S. See you soon."),
        tree(
            "leaky",
            "A first answer to this question is:\nDear friend, hello.\nP.S. See you soon.",
        ),
    ];
    let scaffold = PluginHost::new(Limits::default())
        .unwrap()
        .load(&common::plugin("filter-scaffold"))
        .unwrap();
    let (kept, stats, gated) = make_pairs_gated(
        &trees,
        None,
        &[(scaffold, "{}".to_string())],
        PairSettings {
            source: spar_host::config::PairSource::Tree,
            max_pairs: 0,
            seed: 0,
        },
    )
    .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, serde_json::json!("clean"));
    assert_eq!(gated, [serde_json::json!("leaky")]);
    assert_eq!(stats["dropped"]["filter-scaffold: scaffold"], 1, "{stats}");
}

/// A judge plugin that faults on one prompt (its judge prompt is refused: 1000 messages) ends
/// that prompt's tree with an error naming the plugin and the function; the search goes on and
/// the other tree is searched as usual.
#[test]
fn a_judge_fault_ends_its_tree_not_the_search() {
    let dir = common::scratch("self-play-judge-fault");
    tiny::write_hf_dir(&dir.join("model"), &long_context()).unwrap();
    let mut text = String::new();
    for (id, prompt) in ["many", "Write about cats without any commas."]
        .iter()
        .enumerate()
    {
        text.push_str(
            &serde_json::json!({
                "id": id,
                "prompt": prompt,
                "response": "I like cats, truly.",
                "instruction_id_list": ["punctuation:no_comma"],
                "kwargs": [{}],
            })
            .to_string(),
        );
        text.push('\n');
    }
    let samples = dir.join("samples.jsonl");
    std::fs::write(&samples, text).unwrap();
    run(
        &["judge", "--mode", "verifier"],
        &[
            ("--input", &samples),
            ("--output", &dir.join("judgments.jsonl")),
        ],
    );
    let search = run(
        &[
            "search",
            "--mode",
            "llm",
            "--k",
            "1",
            "--judge-max-new-tokens",
            "4",
            "--branch",
            "2",
            "--max-depth",
            "2",
            "--refine-max-new-tokens",
            "8",
        ],
        &[
            ("--input", &dir.join("judgments.jsonl")),
            ("--output", &dir.join("trees.jsonl")),
            ("--model", &dir.join("model")),
            ("--judge-plugin", &common::fixture("judge-flood")),
        ],
    );
    let searched = stats(&search, "search");
    assert_eq!(searched["tree_errors"], 1, "{searched}");
    let trees = lines(&dir.join("trees.jsonl"));
    let error = trees[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "plugin `judge-flood` returned an error from `judge-prompt`: returned 1000 messages of "
        ),
        "{error}"
    );
    assert_eq!(trees[0]["nodes"].as_array().unwrap().len(), 1);
    assert!(trees[1]["error"].is_null(), "{}", trees[1]);
    assert!(
        trees[1]["nodes"].as_array().unwrap().len() > 1,
        "{}",
        trees[1]
    );
}

/// In the judge step too, a plugin fault on one sample leaves only that sample unjudged: its
/// verdict is null and its record says why; the other samples are judged and the step succeeds.
#[test]
fn a_judge_fault_leaves_its_sample_unjudged_not_the_step() {
    let dir = common::scratch("self-play-judge-step-fault");
    tiny::write_hf_dir(&dir.join("model"), &long_context()).unwrap();
    let samples = dir.join("samples.jsonl");
    std::fs::write(
        &samples,
        "{\"id\": \"a\", \"prompt\": \"many\", \"response\": \"r\"}\n\
         {\"id\": \"b\", \"prompt\": \"Say hi.\", \"response\": \"hi\"}\n",
    )
    .unwrap();
    let judge = run(
        &[
            "judge",
            "--mode",
            "llm",
            "--k",
            "1",
            "--judge-max-new-tokens",
            "4",
        ],
        &[
            ("--input", &samples),
            ("--output", &dir.join("judgments.jsonl")),
            ("--model", &dir.join("model")),
            ("--judge-plugin", &common::fixture("judge-flood")),
        ],
    );
    let judged = stats(&judge, "judge");
    assert_eq!(judged["plugin_faults"], 1, "{judged}");
    assert_eq!(judged["samples"], 2, "{judged}");
    let records = lines(&dir.join("judgments.jsonl"));
    assert!(records[0]["verdict"].is_null());
    assert!(
        records[0]["fault"]
            .as_str()
            .unwrap()
            .starts_with("plugin `judge-flood` returned an error from `judge-prompt`: "),
        "{}",
        records[0]
    );
    assert!(records[1].get("fault").is_none(), "{}", records[1]);
}

#[test]
fn prompt_synthesis_draws_from_every_verifier_given_as_their_schemas_allow() {
    let dir = common::scratch("synth-two");
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/synth-tasks.txt");
    let (ifeval, ifbench) = (
        common::plugin("verifier-ifeval"),
        common::plugin("verifier-ifbench"),
    );
    run(
        &["prompts", "synth", "--n", "200", "--seed", "9"],
        &[
            ("--tasks", &tasks),
            ("--output", &dir.join("p.jsonl")),
            ("--verifier", &ifeval),
            ("--verifier", &ifbench),
        ],
    );
    let prompts = lines(&dir.join("p.jsonl"));
    let host = PluginHost::new(Limits::default()).unwrap();
    let verifiers = Verifiers::load(&host, &[ifeval, ifbench]).unwrap();
    let mut sessions = verifiers.sessions();
    let (mut from_ifeval, mut from_ifbench) = (0, 0);
    for prompt in &prompts {
        let ids: Vec<&str> = prompt["instruction_id_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap())
            .collect();
        for (id, kwargs) in ids.iter().zip(prompt["kwargs"].as_array().unwrap()) {
            // IFBench's ids have a family of their own (count:, words:, format:, ...).
            let ifbench_id = [
                "count:",
                "ratio:",
                "words:",
                "sentence:",
                "format:",
                "custom:",
                "repeat:",
            ]
            .iter()
            .any(|family| id.starts_with(family));
            from_ifbench += ifbench_id as usize;
            from_ifeval += !ifbench_id as usize;
            // The schemas keep whole-task instructions out, and what is drawn checks cleanly.
            assert!(
                !id.starts_with("custom:") && *id != "repeat:repeat_simple",
                "{prompt}"
            );
            sessions
                .check(id, &kwargs.to_string(), "", "An answer.")
                .unwrap_or_else(|e| panic!("{id} {kwargs}: {e}"));
        }
        // An instruction that fixes the whole answer stands alone.
        for alone in [
            "detectable_format:json_format",
            "repeat:repeat_change",
            "format:options",
        ] {
            assert!(!ids.contains(&alone) || ids.len() == 1, "{prompt}");
        }
        let cases = ids
            .iter()
            .filter(|id| id.starts_with("change_case:"))
            .count();
        assert!(cases <= 1, "{prompt}");
    }
    assert!(
        from_ifeval > 50 && from_ifbench > 50,
        "{from_ifeval} IFEval, {from_ifbench} IFBench constraints"
    );
}
