//! The spar-host binary: `--version`, `plugins list|check`, logging, and one-line errors with a
//! non-zero exit code for every kind of bad input.

mod common;

use std::process::Output;

use common::{fixture, spar_host};

fn run(args: &[&str]) -> Output {
    spar_host().args(args).output().expect("run spar-host")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Bad input: exit code 1 and exactly one line on stderr, which is `expected`.
fn assert_one_line_error(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert_eq!(err.trim_end(), expected);
    assert!(!err.contains("panicked"));
}

#[test]
fn version_is_printed() {
    let output = run(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("spar-host {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_reports_world_versions_exports_and_verdict() {
    let path = fixture("hostile");
    let output = run(&["plugins", "check", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let expected = format!(
        "{}\n  world:    verifier\n  contract: spar:plugins@0.1.0 (this host: 0.1.0)\n  plugin:   hostile 0.1.0 - Misbehaves on request\n  imports:  spar:plugins/host@0.1.0, spar:plugins/types@0.1.0\n  exports:  info, constraints, describe, check\n  probe:    0 instruction ids\n  verdict:  ok, this host can run it\n",
        path.display()
    );
    assert_eq!(out, expected);
}

#[test]
fn check_says_which_verifiers_offer_repair() {
    let repairing = common::plugin("verifier-ifeval");
    let output = run(&["plugins", "check", repairing.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("  exports:  info, constraints, describe, check, repair\n")
            && out.contains("  repair:   offered (exports spar:plugins/repair-api)\n"),
        "{out}"
    );
    // A verifier built without repair is still a verifier, and says nothing about repair.
    let plain = common::plugin("verifier-acrostic");
    let output = run(&["plugins", "check", plain.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains("repair"), "{}", stdout(&output));
}

#[test]
fn check_with_a_world_refuses_another_world() {
    let path = fixture("conformance");
    let output = run(&[
        "plugins",
        "check",
        "--world",
        "verifier",
        path.to_str().unwrap(),
    ]);
    assert_one_line_error(
        &output,
        &format!(
            "error: {}: implements the `conformance` world, but a `verifier` plugin is needed here",
            path.display()
        ),
    );
}

#[test]
fn check_refuses_a_missing_file() {
    let output = run(&["plugins", "check", "no/such/plugin.wasm"]);
    assert_one_line_error(
        &output,
        "error: no/such/plugin.wasm: cannot read plugin: No such file or directory (os error 2)",
    );
}

#[test]
fn check_refuses_a_wrong_version() {
    let path = fixture("future-contract");
    let output = run(&["plugins", "check", path.to_str().unwrap()]);
    assert_one_line_error(
        &output,
        &format!(
            "error: {}: built against spar:plugins@0.2.0, but this host implements spar:plugins@0.1.0: rebuild the plugin against spar:plugins@0.1.0 (or upgrade spar-host)",
            path.display()
        ),
    );
}

#[test]
fn check_refuses_corrupted_bytes() {
    let dir = common::scratch("cli-corrupt");
    let mut bytes = std::fs::read(fixture("hostile")).unwrap();
    // Damage the middle of the component: the header still says "component".
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b = 0xff;
    }
    let path = dir.join("corrupt.wasm");
    std::fs::write(&path, &bytes).unwrap();
    let output = run(&["plugins", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: {}: ", path.display())),
        "{err}"
    );
}

#[test]
fn check_of_several_files_reports_each_and_fails_if_any_fails() {
    let good = fixture("hostile");
    let bad = fixture("future-contract");
    let output = run(&[
        "plugins",
        "check",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("verdict:  ok"));
    assert!(stderr(&output).contains("built against spar:plugins@0.2.0"));
}

#[test]
fn list_shows_every_component_with_its_verdict() {
    let output = run(&["plugins", "list", common::fixture_dir().to_str().unwrap()]);
    // Two fixtures are refused on purpose, so the listing reports failure.
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("fixture-hostile.wasm"),
        "fixture-hostile.wasm verifier hostile 0.1.0 contract 0.1.0 ok"
    );
    assert_eq!(
        line("fixture-conformance.wasm"),
        "fixture-conformance.wasm conformance conformance 0.1.0 contract 0.1.0 ok"
    );
    assert!(line("fixture-future-contract.wasm").contains("refused: "));
    assert!(line("fixture-forbidden-import.wasm").contains("refused: "));
}

#[test]
fn list_of_a_missing_directory_is_an_error() {
    let output = run(&["plugins", "list", "no/such/dir"]);
    assert_one_line_error(
        &output,
        "error: no/such/dir: cannot read directory: No such file or directory (os error 2)",
    );
}

#[test]
fn verbose_flag_and_rust_log_turn_on_logs() {
    let path = fixture("hostile");
    let quiet = run(&["plugins", "check", path.to_str().unwrap()]);
    assert!(!stderr(&quiet).contains("loaded plugin"));
    let verbose = run(&["-vv", "plugins", "check", path.to_str().unwrap()]);
    assert!(
        stderr(&verbose).contains("loaded plugin"),
        "{}",
        stderr(&verbose)
    );
    let env = spar_host()
        .env("RUST_LOG", "spar_host=debug")
        .args(["plugins", "check", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(stderr(&env).contains("loaded plugin"));
}

#[test]
fn bench_measures_a_verifier_call() {
    let path = fixture("hostile");
    let output = run(&[
        "bench",
        "plugin",
        path.to_str().unwrap(),
        "--id",
        "ok",
        "--calls",
        "100",
        "--instances",
        "10",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("instantiate") && out.contains("ns per call"),
        "{out}"
    );
}

/// `bench parity` is the GPU check's correctness step; on the CPU it must find no difference in
/// f32 and only bf16-sized ones in bf16.
#[test]
fn bench_parity_is_exact_on_the_cpu_and_close_in_bf16() {
    let parity = |dtype: &str| -> serde_json::Value {
        let output = common::succeed(
            common::spar_host().args(["bench", "parity", "--device", "cpu", "--dtype", dtype]),
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let exact = parity("f32");
    assert_eq!(exact["logits_max_abs_diff"], 0.0, "{exact}");
    assert_eq!(exact["dpo_updated_weights_max_abs_diff"], 0.0, "{exact}");
    assert_eq!(exact["greedy_tokens_agreeing"], 32, "{exact}");
    let bf16 = parity("bf16");
    let diff = bf16["logits_max_abs_diff"].as_f64().unwrap();
    let scale = bf16["logits_max_abs"].as_f64().unwrap();
    assert!(diff > 0.0 && diff < 0.1 * scale, "{bf16}");
    // AdamW's first step moves every weight by about lr, whatever the gradient's size.
    assert!(
        bf16["dpo_updated_weights_max_abs_diff"].as_f64().unwrap() <= 2.0 * 1e-3 + 1e-6,
        "{bf16}"
    );
}

/// `SPAR_MAX_SIMD` caps the host's own kernels (parity holds on the capped path, and the report
/// names it); a value that names no level is a one-line error naming the variable.
#[test]
fn the_simd_cap_is_reported_and_a_bad_one_is_an_error() {
    let output = common::succeed(
        common::spar_host()
            .env("SPAR_MAX_SIMD", "portable")
            .args(["bench", "parity", "--device", "cpu", "--dtype", "f32"]),
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["simd"].as_str().unwrap().starts_with("portable"),
        "{report}"
    );
    assert_eq!(report["logits_max_abs_diff"], 0.0, "{report}");
    let bad = spar_host()
        .env("SPAR_MAX_SIMD", "sse9")
        .args(["plugins", "list", "."])
        .output()
        .unwrap();
    assert_one_line_error(
        &bad,
        "error: SPAR_MAX_SIMD=\"sse9\" is not a SIMD level: use avx512, avx2 or portable",
    );
}

#[test]
fn a_malformed_trees_file_is_an_error_naming_its_line_not_a_panic() {
    let dir = common::scratch("cli-bad-trees");
    let good = r#"{"id":"a","prompt":"p","nodes":[{"id":0,"parent":null,"depth":0,"response":"r","critique":"","value":0.0,"valid":true,"votes":{"yes":0,"no":1,"unparsed":0}}],"chosen":0,"solved":false,"error":null}"#;
    // Node 1 names a parent that comes after it: the links point nowhere.
    let bad = r#"{"id":"b","prompt":"p","nodes":[{"id":0,"parent":null,"depth":0,"response":"r","critique":"","value":0.0,"valid":true,"votes":{"yes":0,"no":1,"unparsed":0}},{"id":1,"parent":5,"depth":1,"response":"s","critique":"","value":1.0,"valid":true,"votes":{"yes":1,"no":0,"unparsed":0}}],"chosen":1,"solved":true,"error":null}"#;
    let trees = dir.join("trees.jsonl");
    std::fs::write(&trees, format!("{good}\n{bad}\n")).unwrap();
    let output = run(&[
        "pairs",
        "--input",
        trees.to_str().unwrap(),
        "--output",
        dir.join("pairs.jsonl").to_str().unwrap(),
    ]);
    assert_one_line_error(
        &output,
        &format!(
            "error: {}:2: not a valid record: tree \"b\": node 1's parent 5 is not an earlier node",
            trees.display()
        ),
    );
}

/// Every command's plugins run under the sandbox limits the README documents.
#[test]
fn the_documented_sandbox_limits_are_every_commands_defaults() {
    let limits = spar_host::plugins::Limits::default();
    assert_eq!(limits.memory_bytes, 64 << 20);
    assert_eq!(limits.call_timeout, std::time::Duration::from_secs(1));
    assert_eq!(limits.table_elements, 100_000);
    let help = stdout(&run(&["eval", "ifeval", "--help"]));
    assert!(
        help.contains("[default: 1000]") && help.contains("[default: 64]"),
        "{help}"
    );
}

/// `plugins check` calls the discovery functions a run would call, so a plugin that lists an
/// instruction id twice fails here, not mid-run.
#[test]
fn plugins_check_probes_what_a_run_would_call() {
    let duplicate = fixture("duplicate-ids");
    assert_one_line_error(
        &run(&["plugins", "check", duplicate.to_str().unwrap()]),
        "error: plugin `duplicate-ids` returned an error from `constraints`: lists instruction id `dup:twice` twice",
    );
    let flood = fixture("judge-flood");
    let output = run(&["plugins", "check", flood.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("  probe:    prompts and parsers answer within bounds\n"),
        "{}",
        stdout(&output)
    );
    let verifier = common::plugin("verifier-ifeval");
    let output = run(&["plugins", "check", verifier.to_str().unwrap()]);
    assert!(
        stdout(&output).contains("  probe:    25 instruction ids\n"),
        "{}",
        stdout(&output)
    );
}
