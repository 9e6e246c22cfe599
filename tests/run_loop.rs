//! `spar-host run` on a tiny random model: one iteration through every stage with real plugins
//! (verifier judging, so the signal is exact), then the same command again skips every stage.

mod common;

use std::path::Path;
use std::process::Command;

fn write_setup(dir: &Path) -> std::path::PathBuf {
    let prompts = common::tiny_run_inputs(dir);
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
max_new_tokens = 32
batch_size = 4

[judge]
mode = "verifier"
plugin = "{judge}"

[search]
branch = 2
select = 1
max_depth = 2
budget = 6
retries = 1
max_new_tokens = 32

[[filters]]
plugin = "{dedup}"

[dpo]
lr = 1e-4
max_length = 512
micro_batch = 1
epochs = 3
save_every = 1

[sft]
lr = 1e-4
max_length = 512
save_every = 1
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
    // Each iteration ends by drawing the run: the page carries every pair and tree as data.
    let page = std::fs::read_to_string(dir.join("run/report.html")).unwrap();
    let data = report_data(&page);
    assert_eq!(
        data["iterations"][0]["pairs"].as_array().unwrap().len(),
        pairs.lines().count()
    );
    let trees = std::fs::read_to_string(iter.join("trees.jsonl")).unwrap();
    assert_eq!(
        data["iterations"][0]["trees"].as_array().unwrap().len(),
        trees.lines().count()
    );
    assert_eq!(
        data["eval"].as_array().unwrap().len(),
        2,
        "baseline and iteration 1"
    );
    assert!(
        !page.contains("<link") && !page.contains("src=\""),
        "self-contained"
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

/// Run the config once; returns the process output.
/// The JSON a report page draws from.
fn report_data(page: &str) -> serde_json::Value {
    let start = "<script id=\"report-data\" type=\"application/json\">";
    let json = &page[page.find(start).expect("a data element") + start.len()..];
    let json = &json[..json.find("</script>").expect("the data element ends")];
    serde_json::from_str(&json.replace("<\\/", "</")).unwrap()
}

fn run_once(config: &Path, crash_at: Option<&str>) -> std::process::Output {
    let mut command = common::spar_host();
    command
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .arg("run")
        .arg(config);
    if let Some(point) = crash_at {
        command.env("SPAR_CRASH_AT", point);
    }
    command.output().unwrap()
}

/// The files an iteration's results are judged by.
fn results(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let iter = dir.join("run/iter-1");
    [
        "samples.jsonl",
        "judgments.jsonl",
        "trees.jsonl",
        "refiner-sft.jsonl",
        "pairs.jsonl",
        "actor/model.safetensors",
        "refiner/model.safetensors",
        "eval.jsonl",
    ]
    .iter()
    .map(|f| {
        let bytes = std::fs::read(iter.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        (f.to_string(), bytes)
    })
    .collect()
}

/// Run once without interruption, keep its results, and clear the run directory for the test.
fn uninterrupted_results(dir: &Path, config: &Path) -> Vec<(String, Vec<u8>)> {
    let clean = run_once(config, None);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let expected = results(dir);
    std::fs::remove_dir_all(dir.join("run")).unwrap();
    expected
}

fn assert_same(expected: &[(String, Vec<u8>)], got: &[(String, Vec<u8>)]) {
    for ((file, want), (_, have)) in expected.iter().zip(got) {
        assert!(want == have, "{file} differs from the uninterrupted run's");
    }
}

#[test]
fn a_run_killed_in_every_stage_resumes_to_the_uninterrupted_results() {
    let dir = common::scratch("run-crash");
    let config = write_setup(&dir);
    let expected = uninterrupted_results(&dir, &config);

    // The process dies (abort: nothing flushed, no destructors) in the middle of each stage in
    // turn: after the 2nd sampling batch, the 1st judging chunk, the 2nd search round, the 2nd
    // DPO step. Each rerun must pick up what the dead one finished.
    let iter = dir.join("run/iter-1");
    for (point, left_behind) in [
        ("samples-batch:2", "samples.partial.jsonl"),
        ("judge-batch:1", "judgments.partial.jsonl"),
        ("search-round:2", "search.journal.jsonl"),
        ("train-step:2", "actor/checkpoint-last/trainer_state.json"),
    ] {
        let output = run_once(&config, Some(point));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{point}: the run should have died\n{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "SPAR_CRASH_AT: crashing at {}",
                point.replace(':', " #")
            )),
            "{point}: {stderr}"
        );
        assert!(
            iter.join(left_behind).is_file(),
            "{point}: {left_behind} should hold the finished part"
        );
        let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap_or_default();
        let stage = point.split('-').next().unwrap();
        assert!(
            !metrics.contains(&format!(
                "\"stage\":\"{}\"",
                if stage == "train" { "dpo" } else { stage }
            )),
            "{point}: the killed stage must not be recorded as done\n{metrics}"
        );
    }
    assert!(
        !iter.join("actor/config.json").exists(),
        "DPO was killed before finishing"
    );
    let resumed = run_once(&config, None);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert_same(&expected, &results(&dir));
    // Why each text stopped survives the kills: every sample and every tree node says it.
    let samples = std::fs::read_to_string(iter.join("samples.jsonl")).unwrap();
    for line in samples.lines() {
        let sample: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            sample["finish_reason"] == "stop" || sample["finish_reason"] == "length",
            "{line}"
        );
    }
    let trees = std::fs::read_to_string(iter.join("trees.jsonl")).unwrap();
    for line in trees.lines() {
        let tree: serde_json::Value = serde_json::from_str(line).unwrap();
        for node in tree["nodes"].as_array().unwrap() {
            assert!(node["finish_reason"].is_string(), "{node}");
        }
    }
    let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    let search: serde_json::Value = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|m| m["stage"] == "search")
        .unwrap();
    assert!(
        search["stats"]["rounds_replayed_from_journal"].as_u64() >= Some(1),
        "the search resumed from its journal\n{metrics}"
    );
    for leftover in [
        "samples.partial.jsonl",
        "judgments.partial.jsonl",
        "search.journal.jsonl",
    ] {
        assert!(
            !iter.join(leftover).exists(),
            "{leftover} is removed once its stage is done"
        );
    }
}

#[test]
fn a_run_killed_by_sigkill_during_search_resumes_to_the_uninterrupted_results() {
    let dir = common::scratch("run-sigkill");
    let config = write_setup(&dir);
    let expected = uninterrupted_results(&dir, &config);

    // A real SIGKILL from outside, as soon as the search has journalled its first round.
    let journal = dir.join("run/iter-1/search.journal.jsonl");
    let mut child = common::spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .arg("run")
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let killed = loop {
        if std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0) {
            child.kill().unwrap();
            child.wait().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    assert!(
        killed,
        "the search ended before the kill: nothing was tested"
    );
    assert!(!dir.join("run/iter-1/trees.jsonl").exists());
    let resumed = run_once(&config, None);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_same(&expected, &results(&dir));
}

#[test]
fn a_full_disk_fails_with_the_file_named_and_nothing_half_written_counts_as_done() {
    let dir = common::scratch("run-full-disk");
    let config = write_setup(&dir);
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    // A real full disk: the run directory is a 128 KiB tmpfs in a private mount namespace
    // (`unshare -rm` works unprivileged), enough for the data stages but not for a checkpoint.
    // Then the space comes back and the same command runs again.
    let script = r#"
        set -u
        mount -t tmpfs -o size=128k tmpfs "$RUN" || exit 99
        "$BIN" run "$CONFIG"; echo "first exit $?"
        echo "--- files"; find "$RUN" | sort; echo "--- end"
        mount -o remount,size=64m "$RUN"
        "$BIN" run "$CONFIG" >/dev/null 2>&1; echo "second exit $?"
        test -f "$RUN/iter-1/actor/config.json" && echo "actor trained"
    "#;
    // A machine that allows no mount namespace at all cannot run this test: say so loudly.
    let Some(flags) = ["-rm", "-m"].into_iter().find(|f| {
        Command::new("unshare")
            .args([*f, "true"])
            .status()
            .is_ok_and(|s| s.success())
    }) else {
        eprintln!("SKIPPED: `unshare` cannot make a mount namespace here, so no tmpfs can fill up");
        return;
    };
    let output = Command::new("unshare")
        .args([flags, "sh", "-c", script])
        .env("RUN", &run_dir)
        .env("BIN", env!("CARGO_BIN_EXE_spar-host"))
        .env("CONFIG", &config)
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .env("SPAR_CACHE_DIR", dir.join("cache"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the namespace or mount failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("first exit 1"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("cannot write"),
        "the error names what could not be written and why\n{stderr}"
    );
    let files = stdout
        .split("--- files")
        .nth(1)
        .and_then(|s| s.split("--- end").next())
        .unwrap_or_default();
    assert!(
        files.contains("iter-1/pairs.jsonl"),
        "stages before the failure completed\n{files}"
    );
    assert!(
        !files.contains("actor/config.json"),
        "no checkpoint counts as done\n{files}"
    );
    assert!(
        !files.contains(".tmp"),
        "temporary files were left behind\n{files}"
    );
    assert!(
        stdout.contains("second exit 0") && stdout.contains("actor trained"),
        "{stdout}"
    );
}

#[test]
fn an_unwritable_run_directory_is_a_clear_error() {
    let dir = common::scratch("run-unwritable");
    let config = write_setup(&dir);
    std::fs::write(dir.join("occupied"), "a file, not a folder").unwrap();
    let output = common::spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .arg("run")
        .arg(&config)
        .args(["--set", "run_dir=\"occupied/run\""])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("occupied/run: cannot create the run directory"),
        "{stderr}"
    );
}

/// Checks what an external trainer is handed, then "trains" by copying the starting weights.
const STAND_IN_TRAINER: &str = r#"
set -eu
model=$1 data=$2 out=$3 beta=$4 lr=$5 loss=$6
test -f "$model/config.json"
test "$beta" = 0.1 && test "$lr" = 0.0001 && test "$loss" = sigmoid
# TRL's conversational preference columns, one pair per line, nothing else.
grep -q '"prompt":\[' "$data" && grep -q '"chosen":\[' "$data" && grep -q '"rejected":\[' "$data"
! grep -q '"meta"' "$data"
echo "training on $(wc -l < "$data") pairs"
mkdir -p "$out"
cp "$model/config.json" "$model/model.safetensors" "$out/"
"#;

#[test]
fn dpo_can_be_handed_to_an_external_trainer() {
    let dir = common::scratch("run-external");
    let config = write_setup(&dir);
    let script = dir.join("stand-in-trainer.sh");
    std::fs::write(&script, STAND_IN_TRAINER).unwrap();
    let run = |command: &str| {
        common::spar_host()
            .env("SPAR_PLUGIN_DIR", common::plugin_dir())
            .arg("run")
            .arg(&config)
            .args([
                "--force",
                "--set",
                "dpo.trainer=\"external\"",
                "--set",
                "dpo.external.format=\"trl\"",
                "--set",
                &format!("dpo.external.command=\"{command}\""),
            ])
            .output()
            .unwrap()
    };
    let iter = dir.join("run/iter-1");

    // A trainer that fails: the run stops, naming the stage and showing the trainer's output.
    let failed = run("echo out of memory >&2; exit 3");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("dpo: the external trainer failed (exit status: 3)")
            && stderr.contains("out of memory"),
        "{stderr}"
    );
    assert!(!iter.join("actor").exists());

    // One that exits 0 without a checkpoint.
    let empty = run("true");
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(stderr.contains("left no usable checkpoint"), "{stderr}");

    let ok = run(&format!(
        "sh {} {{model}} {{data}} {{output}} {{beta}} {{lr}} {{loss_type}}",
        script.display()
    ));
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    let log = std::fs::read_to_string(iter.join("dpo-trainer.log")).unwrap();
    let pairs = std::fs::read_to_string(iter.join("pairs.jsonl")).unwrap();
    assert_eq!(
        log.trim(),
        format!("training on {} pairs", pairs.lines().count())
    );
    assert!(iter.join("actor/config.json").is_file());
    assert!(
        iter.join("actor/tokenizer.json").is_file(),
        "the tokenizer comes from the starting model"
    );
    let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"trainer\":\"external\""), "{metrics}");
}

#[test]
fn export_writes_an_iteration_for_each_trainer() {
    let dir = common::scratch("run-export");
    let config = write_setup(&dir);
    let output = run_once(&config, None);
    assert!(output.status.success());
    for (format, file) in [
        ("trl", "pairs.jsonl"),
        ("llama-factory", "dataset_info.json"),
        ("openrlhf", "sft.jsonl"),
    ] {
        let out = dir.join(format!("export-{format}"));
        common::succeed(
            common::spar_host()
                .args(["export", "--format", format, "--run"])
                .arg(dir.join("run"))
                .arg("--output")
                .arg(&out),
        );
        assert!(out.join(file).is_file(), "{format}: {file}");
    }
}

#[test]
fn init_fine_tunes_each_role_first_and_each_iteration_samples_fresh_prompts() {
    let dir = common::scratch("run-init");
    let config = write_setup(&dir);
    let seed = |name: &str, answer: &str| {
        let line = serde_json::json!({"messages": [
            {"role": "user", "content": "Write about snow in at least five words."},
            {"role": "assistant", "content": answer},
        ]});
        std::fs::write(dir.join(name), format!("{line}\n{line}\n")).unwrap();
    };
    seed("seed-actor.jsonl", "Snow falls softly on quiet hills.");
    seed("seed-refiner.jsonl", "Checked.\nFinal Judgement: Yes");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "eval = \"heldout.jsonl\"",
        "eval = \"heldout.jsonl\"\nper_iteration = 2",
    ) + "\n[init]\nactor = \"seed-actor.jsonl\"\nrefiner = \"seed-refiner.jsonl\"\n";
    std::fs::write(&config, text).unwrap();
    let output = common::spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .arg("run")
        .arg(&config)
        .args(["--set", "iterations=2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    let stages: Vec<String> = metrics
        .lines()
        .take(4)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["stage"].to_string())
        .collect();
    assert_eq!(
        stages,
        [
            "\"eval\"",
            "\"init-actor\"",
            "\"init-refiner\"",
            "\"samples\""
        ],
        "{metrics}"
    );
    for role in ["actor", "refiner"] {
        assert!(
            dir.join(format!("run/init/{role}/model.safetensors"))
                .is_file(),
            "{role}"
        );
    }
    // Iteration 1 samples prompts 1-2 (keys 0, 1), iteration 2 prompts 3-4 (keys 2, 3).
    for (iteration, keys) in [(1, ["0", "1"]), (2, ["2", "3"])] {
        let samples =
            std::fs::read_to_string(dir.join(format!("run/iter-{iteration}/samples.jsonl")))
                .unwrap();
        let mut seen: Vec<String> = samples
            .lines()
            .map(|l| {
                let id = serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                id.split('-').next().unwrap().to_string()
            })
            .collect();
        seen.dedup();
        assert_eq!(seen, keys, "iteration {iteration}");
    }
    // Three iterations of two fresh prompts need six: the config check says so before any work.
    let short = common::spar_host()
        .env("SPAR_PLUGIN_DIR", common::plugin_dir())
        .arg("check")
        .arg(&config)
        .args(["--set", "iterations=3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&short.stderr);
    assert!(
        err.contains("prompts.per_iteration: 3 iterations of 2 fresh prompts need 6 training prompts; prompts.train has 4"),
        "{err}"
    );
}
