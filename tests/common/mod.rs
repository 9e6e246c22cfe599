//! Shared by the integration tests: plugins and fixtures built from source once per test binary.

#![allow(dead_code)]

pub mod stub_server;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Build every plugin and fixture (incrementally) and return the folder of fixtures.
fn built() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = spar_xtask::workspace_root();
        spar_xtask::build_plugins(&root, spar_xtask::Selection::All)
            .unwrap_or_else(|e| panic!("building plugins for the tests failed: {e}"));
        (
            spar_xtask::plugin_dir(&root),
            spar_xtask::fixture_dir(&root),
        )
    })
}

/// A test fixture component, e.g. `fixture("hostile")` for `tests/fixtures/hostile`.
pub fn fixture(name: &str) -> PathBuf {
    let path = built().1.join(format!("fixture-{name}.wasm"));
    assert!(path.exists(), "fixture {} was not built", path.display());
    path
}

/// A real plugin component from `plugins/`, by package name.
pub fn plugin(package: &str) -> PathBuf {
    let path = built().0.join(format!("{package}.wasm"));
    assert!(path.exists(), "plugin {} was not built", path.display());
    path
}

/// The folder real plugins are built into.
pub fn plugin_dir() -> PathBuf {
    built().0.clone()
}

/// The folder fixtures are built into.
pub fn fixture_dir() -> PathBuf {
    built().1.clone()
}

/// The spar-host binary under test.
pub fn spar_host() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spar-host"));
    command.env_remove("RUST_LOG");
    command
}

/// A scratch folder unique to this test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-host-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A tiny model (room for refinement prompts) in `dir/model` and four "at least five words"
/// prompts in `dir/prompts.jsonl`, the inputs of the `spar-host run` tests; returns the prompts.
pub fn tiny_run_inputs(dir: &std::path::Path) -> String {
    spar_host::engine::tiny::write_hf_dir(
        &dir.join("model"),
        &spar_host::engine::tiny::TinySpec {
            max_positions: 1024,
            // Answers that end: a text cut by the token limit is never searched or chosen.
            stop_weight: spar_host::engine::tiny::STOPPING,
            ..Default::default()
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
    prompts
}

/// Run `command`, asserting it succeeds (its stderr is the failure message).
pub fn succeed(command: &mut Command) -> std::process::Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Writes an eval's `input.jsonl` and `responses.jsonl` into a scratch folder; returns their
/// paths and the output folder's.
pub fn eval_files(name: &str, input: &str, responses: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    std::fs::write(dir.join("input.jsonl"), input).unwrap();
    std::fs::write(dir.join("responses.jsonl"), responses).unwrap();
    (
        dir.join("input.jsonl"),
        dir.join("responses.jsonl"),
        dir.join("out"),
    )
}
