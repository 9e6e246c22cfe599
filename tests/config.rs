//! `spar-host check`: a good config passes; each broken one gives its exact message, with the
//! key path, and every problem of a config is reported at once.

mod common;

use std::path::{Path, PathBuf};

use spar_host::engine::tiny::{self, TinySpec};

fn setup(name: &str) -> PathBuf {
    let dir = common::scratch(name);
    tiny::write_hf_dir(&dir.join("model"), &TinySpec::default()).unwrap();
    std::fs::write(
        dir.join("prompts.jsonl"),
        "{\"key\": 1, \"prompt\": \"Say hi.\"}\n",
    )
    .unwrap();
    dir
}

const GOOD: &str = r#"
run_dir = "runs/test"
seed = 3

[models]
actor = "model"

[prompts]
train = "prompts.jsonl"

[judge]
mode = "verifier"

[search]
branch = 2
"#;

fn check(dir: &Path, config: &str, sets: &[&str]) -> (i32, String) {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut command = common::spar_host();
    command.arg("check").arg(&path);
    for set in sets {
        command.args(["--set", set]);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.code().unwrap_or(-1),
        text.replace(&format!("{}/", dir.display()), ""),
    )
}

#[test]
fn a_good_config_passes() {
    let dir = setup("config-good");
    let (code, text) = check(&dir, GOOD, &[]);
    assert_eq!((code, text.trim()), (0, "config.toml: ok"));
}

#[test]
fn broken_configs_give_exact_messages() {
    let dir = setup("config-broken");
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            GOOD.replace("seed = 3", "seed = 3\nspeed = 4"),
            vec![],
            "config.toml: unknown field `speed`, expected one of `run_dir`, `seed`, `iterations`, `device`, `dtype`, `models`, `prompts`, `actor`, `judge`, `search`, `filters`, `pairs`, `dpo`, `sft`, `rft`, `init`, `servers`, `sandbox`",
        ),
        (
            GOOD.replace("seed = 3", "seed = \"three\""),
            vec![],
            "config.toml: invalid type: string \"three\", expected u64 in `seed`",
        ),
        (
            GOOD.replace("actor = \"model\"", "actor = \"missing-model\""),
            vec![],
            "config.toml: models.actor: missing-model does not exist",
        ),
        (
            GOOD.replace("train = \"prompts.jsonl\"", "train = \"nope.jsonl\""),
            vec![],
            "config.toml: prompts.train: nope.jsonl does not exist",
        ),
        (
            GOOD.replace("branch = 2", "branch = -1"),
            vec![],
            "config.toml: search.branch: must be at least 1, got -1",
        ),
        (
            GOOD.to_string(),
            vec!["search.pass_gate=1.5"],
            "config.toml: search.pass_gate: must be in [0, 1), got 1.5",
        ),
        (
            GOOD.replace("mode = \"verifier\"", "mode = \"oracle\""),
            vec![],
            "config.toml: unknown variant `oracle`, expected one of `llm`, `verifier`, `hybrid` in `judge.mode`",
        ),
        (
            GOOD.to_string(),
            vec!["judge.k=0"],
            "config.toml: judge.k: must be at least 1",
        ),
        (
            GOOD.to_string(),
            vec!["actor.top_p=0"],
            "config.toml: actor.top_p: must be in (0, 1]",
        ),
        (
            GOOD.to_string(),
            vec!["dpo.beta=-0.1"],
            "config.toml: dpo.beta: must be positive",
        ),
        (
            GOOD.to_string(),
            vec!["iterations=0"],
            "config.toml: iterations: must be at least 1",
        ),
        (
            GOOD.to_string(),
            vec!["device=tpu"],
            "config.toml: device: unknown device `tpu` (cpu, cuda or cuda:N)",
        ),
        (
            GOOD.to_string(),
            vec!["dpo.trainer=\"external\""],
            "config.toml: dpo.trainer: `external` needs a [dpo.external] table with `format` and `command`",
        ),
        (
            GOOD.to_string(),
            vec![
                "sft.trainer=\"external\"",
                "sft.external.format=\"trl\"",
                "sft.external.command=\"train {modle}\"",
            ],
            "config.toml: sft.external.command: unknown placeholder {modle} in the trainer command (known: model, data, data_dir, output, beta, sft_weight, loss_type, lr, epochs, micro_batch, grad_accum, max_length, warmup_ratio, seed)",
        ),
        (
            GOOD.to_string(),
            vec!["servers.refiner.url=\"localhost:8000\""],
            "config.toml: servers.refiner.url: expected http://host:port/v1, got `localhost:8000`",
        ),
    ];
    for (config, sets, expected) in cases {
        let (code, text) = check(&dir, &config, &sets);
        assert_eq!(code, 1, "{expected}: {text}");
        assert!(
            text.lines().any(|l| l == expected),
            "expected the line {expected:?}, got:\n{text}"
        );
        assert!(!text.contains("panicked"));
    }
}

#[test]
fn plugins_of_the_wrong_world_or_version_are_named_with_their_key() {
    let dir = setup("config-plugins");
    let verifier = common::plugin("verifier-ifeval");
    let future = common::fixture("future-contract");
    let config = format!(
        "{GOOD}plugin = \"{}\"\n\n[[filters]]\nplugin = \"{}\"\n",
        verifier.display(),
        future.display()
    );
    let (code, text) = check(&dir, &config, &[]);
    assert_eq!(code, 1);
    assert!(text.contains(&format!(
        "config.toml: search.plugin: {} implements the `verifier` world, but a `search-strategy` plugin is needed here",
        verifier.display()
    )), "{text}");
    assert!(text.contains(&format!(
        "config.toml: filters[0].plugin: {}: built against spar:plugins@0.2.0, but this host implements spar:plugins@0.1.0",
        future.display()
    )), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = setup("config-many");
    let (code, text) = check(
        &dir,
        GOOD,
        &["search.branch=0", "search.select=0", "judge.k=0"],
    );
    assert_eq!(code, 1);
    assert!(text.contains("search.branch: must be at least 1, got 0"));
    assert!(text.contains("search.select: must be at least 1, got 0"));
    assert!(text.contains("judge.k: must be at least 1"));
    assert!(text.contains("3 problems"), "{text}");
}

#[test]
fn the_shipped_configs_parse() {
    for name in ["demo.toml", "fidelity.toml", "paper-llama3-8b.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs")
            .join(name);
        let config =
            spar_host::config::load(&path, &[]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(config.iterations >= 1, "{name}");
    }
}

#[test]
fn malformed_prompt_lines_are_named_by_line() {
    let dir = setup("config-bad-prompts");
    std::fs::write(
        dir.join("prompts.jsonl"),
        "{\"prompt\": \"fine\"}\n{\"text\": \"no prompt key\"}\n\n{\"prompt\": \"cut\n",
    )
    .unwrap();
    let (code, text) = check(&dir, GOOD, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("prompts.train: prompts.jsonl:2: no `prompt` string"),
        "{text}"
    );
    assert!(
        text.contains("prompts.train: prompts.jsonl:4: not JSON (EOF while parsing a string"),
        "{text}"
    );
}

#[test]
fn every_unknown_key_and_every_bad_value_is_reported_at_once() {
    let dir = setup("config-all-at-once");
    let config = GOOD
        .replace("seed = 3", "seed = 3\nspeed = 4")
        .replace("branch = 2", "branch = -1\nbranches = 3")
        .replace("actor = \"model\"", "actor = \"missing-model\"");
    let (code, text) = check(&dir, &config, &[]);
    assert_eq!(code, 1, "{text}");
    for line in [
        "config.toml: unknown field `speed`",
        "config.toml: unknown field `branches`",
        "config.toml: models.actor: missing-model does not exist",
        "config.toml: search.branch: must be at least 1, got -1",
        "4 problems",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line:?} missing:\n{text}"
        );
    }
}

/// `configs/paper-llama3-8b.toml` is the authors' code's settings (docs/paper-fidelity.md).
#[test]
fn the_paper_config_has_the_authors_settings() {
    use spar_host::config::{JudgeMode, NegativeChoice, PairSource, RefineMode, RftCaps};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/paper-llama3-8b.toml");
    let c = spar_host::config::load(&path, &[]).unwrap();
    // Sampling and judging (src/infer.py, src/judge.py).
    assert_eq!(
        (c.actor.n, c.actor.temperature, c.actor.top_p),
        (5, 0.9, 0.9)
    );
    assert_eq!(c.actor.max_new_tokens, 2048);
    assert_eq!(c.judge.mode, JudgeMode::Llm);
    assert_eq!(
        c.judge.plugin, None,
        "the built-in judge-spar: the authors' prompts"
    );
    assert_eq!(
        (c.judge.k, c.judge.temperature, c.judge.top_p),
        (5, 0.7, 1.0)
    );
    assert_eq!((c.judge.max_new_tokens, c.judge.tie_resamples), (2048, 3));
    // Search (src/ToT/task.py, bfs.py).
    let s = &c.search;
    assert_eq!(
        (s.branch, s.select, s.max_depth, s.pass_gate),
        (3, 2, 3, 0.5)
    );
    assert_eq!(
        (s.temperature, s.top_p, s.max_new_tokens, s.retries),
        (0.7, 1.0, 3072, 3)
    );
    assert_eq!(
        (s.refine, s.negative),
        (RefineMode::Llm, NegativeChoice::Random)
    );
    assert_eq!(s.plugin, None, "the built-in search-bfs");
    // Pairs: every pair past the gate, no filter (src/process_data.py).
    assert_eq!(c.pairs.source, PairSource::Tree);
    assert_eq!(c.pairs.max_pairs, 0);
    assert!(c.filters.is_empty());
    assert_eq!(c.rft, RftCaps::default());
    assert_eq!(
        (
            c.rft.max_refinements,
            c.rft.max_positive_critiques,
            c.rft.max_negative_critiques
        ),
        (4000, 1500, 1000)
    );
    assert_eq!(
        (c.rft.max_no_judgments, c.rft.max_yes_judgments),
        (500, 2500)
    );
    // Training (src/configs/dpo.yaml, sft.yaml: 8 GPUs).
    let d = &c.dpo;
    assert_eq!((d.beta, d.sft_weight, d.lr, d.epochs), (0.1, 0.1, 2e-7, 1));
    assert_eq!(
        (d.micro_batch * d.grad_accum, d.max_length),
        (2 * 2 * 8, 2048)
    );
    let f = &c.sft;
    assert_eq!((f.lr, f.epochs, f.max_length), (2e-6, 5, 4096));
    assert_eq!(f.micro_batch * f.grad_accum, 2 * 4 * 8);
}

/// `check` calls what a run would call on each plugin it names, so a verifier that lists an id
/// twice is reported with its key before any work starts.
#[test]
fn check_probes_the_plugins_a_run_would_call() {
    let dir = setup("config-probe");
    let duplicate = common::fixture("duplicate-ids");
    let set = format!("judge.verifiers=[\"{}\"]", duplicate.display());
    let (code, text) = check(&dir, GOOD, &[&set]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "config.toml: judge.verifiers[0]: plugin `duplicate-ids` returned an error from `constraints`: lists instruction id `dup:twice` twice"
        ),
        "{text}"
    );
}

/// `[sandbox]` raises the plugins' limits for a run; bad values are named by key, and a config
/// without the section keeps the documented defaults.
#[test]
fn the_sandbox_limits_are_configurable_and_checked() {
    let dir = setup("config-sandbox");
    let config =
        format!("{GOOD}\n[sandbox]\ncall_timeout_ms = 0\nmemory_mib = 128\nstage_time_s = -1.0\n");
    let (code, text) = check(&dir, &config, &[]);
    assert_eq!(code, 1, "{text}");
    for line in [
        "config.toml: sandbox.call_timeout_ms: must be at least 1",
        "config.toml: sandbox.stage_time_s: must be a positive number of seconds, not -1",
        "2 problems",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line:?} missing:\n{text}"
        );
    }
    let raised = format!("{GOOD}\n[sandbox]\nstage_time_s = 3600.0\n");
    assert_eq!(check(&dir, &raised, &[]).0, 0);
    let defaults = spar_host::config::SandboxConfig::default().limits();
    assert_eq!(defaults, spar_host::plugins::Limits::default());
}

/// `[dpo.lora]` / `[sft.lora]` turn on LoRA; what the trainer cannot honour is named by key.
#[test]
fn lora_sections_are_read_and_checked() {
    let dir = setup("config-lora");
    let good = format!(
        "{GOOD}\n[dpo.lora]\nrank = 16\nalpha = 32.0\ntarget_modules = [\"q_proj\", \"v_proj\"]\n"
    );
    assert_eq!(
        check(&dir, &good, &[]).0,
        0,
        "{}",
        check(&dir, &good, &[]).1
    );
    let bad = format!(
        "{GOOD}\n[dpo.lora]\nrank = 8\ndropout = 0.05\n\n[sft.lora]\nrank = 4\nalpha = 0.0\ntarget_modules = [\"qproj\"]\n"
    );
    let (code, text) = check(&dir, &bad, &[]);
    assert_eq!(code, 1, "{text}");
    for line in [
        "config.toml: dpo.lora.dropout: LoRA dropout is not supported (training is deterministic and resumes exactly); set 0, not 0.05",
        "config.toml: sft.lora.alpha: must be positive, not 0",
        "config.toml: sft.lora.target_modules: unknown layer `qproj` (known: all-linear, q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)",
        "3 problems",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line:?} missing:\n{text}"
        );
    }
    let config: spar_host::config::RunConfig = toml::from_str(&good).unwrap();
    let settings = config.dpo.train_config(0, Default::default()).lora.unwrap();
    assert_eq!((settings.rank, settings.alpha), (16, 32.0));
    assert!(
        config
            .sft
            .train_config(0, Default::default())
            .lora
            .is_none()
    );
}

/// `dtype = "bf16"` on the CPU stores the generating models' weights in bf16 and trains in f32
/// (the CPU has no fast bf16 arithmetic here); on a GPU training computes in bf16.
#[test]
fn bf16_on_the_cpu_trains_in_f32() {
    use spar_host::config::Precision;
    let dir = setup("config-bf16");
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("dtype = \"bf16\"{GOOD}")).unwrap();
    let mut config = spar_host::config::load(&path, &[]).unwrap();
    assert_eq!(config.dtype, Precision::Bf16);
    assert_eq!(config.training_precision(), Precision::F32);
    config.device = "cuda".into();
    assert_eq!(config.training_precision(), Precision::Bf16);
}
