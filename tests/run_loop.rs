//! `spar-host run` on a tiny random model: one iteration through every stage with real plugins
//! (verifier judging, so the signal is exact), then the same command again skips every stage.

mod common;

use std::path::Path;

use spar_host::engine::tiny::{self, TinySpec};

fn write_setup(dir: &Path) -> std::path::PathBuf {
    tiny::write_hf_dir(
        &dir.join("model"),
        &TinySpec {
            max_positions: 1024,
            ..TinySpec::default()
        },
    )
    .unwrap();
    let mut prompts = String::new();
    for (i, topic) in ["rain", "maps", "tea", "owls"].iter().enumerate() {
        prompts.push_str(
            &serde_json::json!({
                "key": i,
                "prompt": format!("Write about {topic} in at least five words."),
                "instruction_id_list": ["length_constraints:number_words"],
                "kwargs": [{"num_words": 5, "relation": "at least"}],
            })
            .to_string(),
        );
        prompts.push('\n');
    }
    std::fs::write(dir.join("prompts.jsonl"), &prompts).unwrap();
    std::fs::write(dir.join("heldout.jsonl"), &prompts).unwrap();
    let config = format!(
        r#"
run_dir = "run"
seed = 5

[models]
actor = "model"

[prompts]
train = "prompts.jsonl"
eval = "heldout.jsonl"

[actor]
n = 6
max_new_tokens = 16

[judge]
mode = "verifier"
plugin = "{judge}"

[search]
branch = 2
select = 1
max_depth = 2
budget = 6
retries = 1
max_new_tokens = 16

[[filters]]
plugin = "{dedup}"

[dpo]
lr = 1e-4
max_length = 512

[sft]
lr = 1e-4
max_length = 512
"#,
        judge = common::fixture("judge-raw").display(),
        dedup = common::plugin("filter-dedup").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn one_iteration_runs_every_stage_and_a_rerun_skips_them() {
    let dir = common::scratch("run-loop");
    let config = write_setup(&dir);
    let run = || {
        common::spar_host()
            .env("SPAR_PLUGIN_DIR", common::plugin_dir())
            .arg("run")
            .arg(&config)
            .output()
            .unwrap()
    };
    let output = run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let iter = dir.join("run/iter-1");
    for file in [
        "samples.jsonl",
        "judgments.jsonl",
        "trees.jsonl",
        "refiner-sft.jsonl",
        "pairs.jsonl",
    ] {
        assert!(iter.join(file).is_file(), "{file} missing\n{stderr}");
    }
    assert!(dir.join("run/config.toml").is_file());
    let samples = std::fs::read_to_string(iter.join("samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 24);
    let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    let stages: Vec<String> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["stage"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        stages,
        [
            "eval", "samples", "judge", "search", "pairs", "dpo", "rft", "eval"
        ],
        "{metrics}"
    );
    assert!(dir.join("run/baseline-eval.jsonl").is_file() && iter.join("eval.jsonl").is_file());
    assert!(
        stderr.contains("iteration 1 summary")
            && stderr.contains("held-out pass rate (verifier-judged): "),
        "{stderr}"
    );
    let pairs = std::fs::read_to_string(iter.join("pairs.jsonl")).unwrap();
    assert!(
        pairs.lines().count() >= 1,
        "the seeded run solves some trees\n{metrics}"
    );
    assert!(
        iter.join("actor/model.safetensors").is_file(),
        "pairs exist, so the actor was trained"
    );
    assert!(
        iter.join("refiner/model.safetensors").is_file(),
        "refiner examples exist, so the refiner was trained"
    );
    let before: Vec<u8> = std::fs::read(iter.join("pairs.jsonl")).unwrap();

    // The same command again: every stage's output exists, nothing reruns.
    let again = run();
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap(),
        metrics
    );
    assert_eq!(std::fs::read(iter.join("pairs.jsonl")).unwrap(), before);

    // A changed config refuses the existing run directory, naming what differs.
    let changed = common::spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .arg("run")
        .arg(&config)
        .args(["--set", "seed=6"])
        .output()
        .unwrap();
    assert_eq!(changed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(
        err.contains("was made by a different config (differs in: seed)"),
        "{err}"
    );
}

#[test]
fn an_interrupted_sampling_stage_resumes_at_item_granularity_with_identical_results() {
    let dir = common::scratch("run-resume");
    let config = write_setup(&dir);
    let run = || {
        let output = common::spar_host()
            .env("SPAR_PLUGIN_DIR", common::plugin_dir())
            .arg("run")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    run();
    let iter = dir.join("run/iter-1");
    let samples = std::fs::read_to_string(iter.join("samples.jsonl")).unwrap();
    let pairs = std::fs::read(iter.join("pairs.jsonl")).unwrap();
    let actor = std::fs::read(iter.join("actor/model.safetensors")).unwrap();

    // As if the process had been killed while sampling: 10 items done, the 11th half-written.
    std::fs::remove_dir_all(&iter).unwrap();
    std::fs::create_dir_all(&iter).unwrap();
    let mut partial = String::new();
    for line in samples.lines().take(10) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        partial.push_str(&serde_json::to_string(&record["response"]).unwrap());
        partial.push('\n');
    }
    partial.push_str("\"half a respon");
    std::fs::write(iter.join("samples.partial.jsonl"), partial).unwrap();
    run();
    assert_eq!(
        std::fs::read_to_string(iter.join("samples.jsonl")).unwrap(),
        samples
    );
    assert_eq!(
        std::fs::read(iter.join("pairs.jsonl")).unwrap(),
        pairs,
        "pairs.jsonl byte-identical"
    );
    assert_eq!(
        std::fs::read(iter.join("actor/model.safetensors")).unwrap(),
        actor,
        "same final actor weights"
    );
    assert!(!iter.join("samples.partial.jsonl").exists());
}
