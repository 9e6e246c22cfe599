//! One validation pass over a loaded config that reports every problem with its key path.

use std::path::{Path, PathBuf};

use super::{RunConfig, TrainerKind};
use crate::plugins::{PluginHost, World};

/// Lines of a prompts file that are not JSON objects with a `prompt` string, as `FILE:LINE: why`
/// (at most five, then a count).
fn prompt_file_problems(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut more = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let why = match serde_json::from_str::<serde_json::Value>(line) {
            Err(e) => Some(format!("not JSON ({e})")),
            Ok(v) if !v.get("prompt").is_some_and(|p| p.is_string()) => {
                Some("no `prompt` string".to_string())
            }
            Ok(_) => None,
        };
        if let Some(why) = why {
            if problems.len() < 5 {
                problems.push(format!("{}:{}: {why}", path.display(), i + 1));
            } else {
                more += 1;
            }
        }
    }
    if more > 0 {
        problems.push(format!("{}: {more} more bad lines", path.display()));
    }
    problems
}

/// Every problem in a loaded config, each as `key.path: message`, relative paths resolved
/// against `base` (the config file's folder).
pub fn validate(config: &RunConfig, base: &Path, host: &PluginHost) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, key: &str, message: String| {
        if !ok {
            problems.push(format!("{key}: {message}"));
        }
    };
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    check(
        config.iterations >= 1,
        "iterations",
        "must be at least 1".into(),
    );
    let sandbox = &config.sandbox;
    check(
        sandbox.call_timeout_ms >= 1,
        "sandbox.call_timeout_ms",
        "must be at least 1".into(),
    );
    check(
        sandbox.memory_mib >= 1,
        "sandbox.memory_mib",
        "must be at least 1".into(),
    );
    check(
        sandbox.stage_time_s.is_finite() && sandbox.stage_time_s > 0.0,
        "sandbox.stage_time_s",
        format!(
            "must be a positive number of seconds, not {}",
            sandbox.stage_time_s
        ),
    );
    check(
        config.device == "cpu" || config.device.starts_with("cuda"),
        "device",
        format!("unknown device `{}` (cpu, cuda or cuda:N)", config.device),
    );
    for (key, path) in [
        ("models.actor", Some(&config.models.actor)),
        ("models.refiner", config.models.refiner.as_ref()),
    ] {
        if let Some(path) = path {
            let p = resolve(path);
            check(p.exists(), key, format!("{} does not exist", p.display()));
        }
    }
    for (key, path) in [
        ("init.actor", config.init.actor.as_ref()),
        ("init.refiner", config.init.refiner.as_ref()),
    ] {
        if let Some(path) = path {
            let p = resolve(path);
            check(p.is_file(), key, format!("{} does not exist", p.display()));
        }
    }
    if config.prompts.per_iteration > 0 {
        let lines = std::fs::read_to_string(resolve(&config.prompts.train))
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0);
        let needed = config.prompts.per_iteration * config.iterations;
        check(
            lines >= needed,
            "prompts.per_iteration",
            format!(
                "{} iterations of {} fresh prompts need {needed} training prompts; prompts.train has {lines}",
                config.iterations, config.prompts.per_iteration
            ),
        );
    }
    for (key, path) in [
        ("prompts.train", Some(&config.prompts.train)),
        ("prompts.eval", config.prompts.eval.as_ref()),
    ] {
        if let Some(path) = path {
            let p = resolve(path);
            check(p.is_file(), key, format!("{} does not exist", p.display()));
            for problem in prompt_file_problems(&p) {
                check(false, key, problem);
            }
        }
    }
    let positive = |v: usize| v >= 1;
    let probability = |v: f64| (0.0..=1.0).contains(&v) && v > 0.0;
    check(
        positive(config.actor.n),
        "actor.n",
        "must be at least 1".into(),
    );
    check(
        config.actor.temperature >= 0.0,
        "actor.temperature",
        "must not be negative".into(),
    );
    check(
        probability(config.actor.top_p),
        "actor.top_p",
        "must be in (0, 1]".into(),
    );
    check(
        positive(config.actor.max_new_tokens),
        "actor.max_new_tokens",
        "must be at least 1".into(),
    );
    check(
        positive(config.actor.batch_size),
        "actor.batch_size",
        "must be at least 1".into(),
    );
    check(
        positive(config.judge.k),
        "judge.k",
        "must be at least 1".into(),
    );
    check(
        config.judge.temperature >= 0.0,
        "judge.temperature",
        "must not be negative".into(),
    );
    check(
        probability(config.judge.top_p),
        "judge.top_p",
        "must be in (0, 1]".into(),
    );
    check(
        config.search.branch >= 1,
        "search.branch",
        format!("must be at least 1, got {}", config.search.branch),
    );
    check(
        config.search.select >= 1,
        "search.select",
        format!("must be at least 1, got {}", config.search.select),
    );
    check(
        config.search.max_depth >= 1,
        "search.max_depth",
        format!("must be at least 1, got {}", config.search.max_depth),
    );
    check(
        config.search.budget >= 1,
        "search.budget",
        format!("must be at least 1, got {}", config.search.budget),
    );
    check(
        (0.0..1.0).contains(&config.search.pass_gate),
        "search.pass_gate",
        format!("must be in [0, 1), got {}", config.search.pass_gate),
    );
    check(
        probability(config.search.top_p),
        "search.top_p",
        "must be in (0, 1]".into(),
    );
    for (role, server) in [
        ("actor", &config.servers.actor),
        ("refiner", &config.servers.refiner),
    ] {
        if let Some(server) = server {
            check(
                server.url.starts_with("http://") || server.url.starts_with("https://"),
                &format!("servers.{role}.url"),
                format!("expected http://host:port/v1, got `{}`", server.url),
            );
            check(
                server.concurrency >= 1,
                &format!("servers.{role}.concurrency"),
                "must be at least 1".into(),
            );
            check(
                server.timeout_s > 0.0,
                &format!("servers.{role}.timeout_s"),
                "must be positive".into(),
            );
        }
    }
    for (stage, kind, external) in [
        ("dpo", config.dpo.trainer, &config.dpo.external),
        ("sft", config.sft.trainer, &config.sft.external),
    ] {
        check(
            kind != TrainerKind::External || external.is_some(),
            &format!("{stage}.trainer"),
            format!("`external` needs a [{stage}.external] table with `format` and `command`"),
        );
        if let Some(e) = external.as_ref().filter(|_| kind == TrainerKind::External) {
            let known = [
                "model",
                "data",
                "data_dir",
                "output",
                "beta",
                "sft_weight",
                "loss_type",
                "lr",
                "epochs",
                "micro_batch",
                "grad_accum",
                "max_length",
                "warmup_ratio",
                "seed",
            ];
            let vars: Vec<(&str, String)> = known.iter().map(|k| (*k, String::new())).collect();
            if let Err(e) = crate::train::external::render(&e.command, &vars) {
                check(false, &format!("{stage}.external.command"), e.to_string());
            }
        }
    }
    check(config.dpo.beta > 0.0, "dpo.beta", "must be positive".into());
    check(
        config.dpo.sft_weight >= 0.0,
        "dpo.sft_weight",
        "must not be negative".into(),
    );
    check(config.dpo.lr > 0.0, "dpo.lr", "must be positive".into());
    check(config.sft.lr > 0.0, "sft.lr", "must be positive".into());
    for (key, v) in [
        ("dpo.micro_batch", config.dpo.micro_batch),
        ("dpo.grad_accum", config.dpo.grad_accum),
        ("dpo.epochs", config.dpo.epochs),
        ("sft.micro_batch", config.sft.micro_batch),
        ("sft.grad_accum", config.sft.grad_accum),
        ("sft.epochs", config.sft.epochs),
    ] {
        check(positive(v), key, "must be at least 1".into());
    }
    for (section, lora) in [("dpo", &config.dpo.lora), ("sft", &config.sft.lora)] {
        for (field, problem) in lora.problems() {
            problems.push(format!("{section}.lora.{field}: {problem}"));
        }
    }
    // Plugins: each file must exist and implement the right world at a compatible version.
    let mut plugin = |key: String, path: Option<&PathBuf>, world: World| {
        let Some(path) = path else { return };
        let p = resolve(path);
        match host.inspect(&p) {
            Ok((manifest, _)) if manifest.world != world => problems.push(format!(
                "{key}: {} implements the `{}` world, but a `{world}` plugin is needed here",
                p.display(),
                manifest.world
            )),
            // Call what a run would call, so a plugin that would fail mid-run fails here.
            Ok(_) => {
                if let Err(error) = host
                    .load_any(&p)
                    .and_then(|plugin| crate::plugins::probe::probe(&plugin))
                {
                    problems.push(format!("{key}: {error}"));
                }
            }
            Err(error) => problems.push(format!("{key}: {error}")),
        }
    };
    plugin(
        "judge.plugin".into(),
        config.judge.plugin.as_ref(),
        World::Judge,
    );
    for (i, v) in config.judge.verifiers.iter().enumerate() {
        plugin(format!("judge.verifiers[{i}]"), Some(v), World::Verifier);
    }
    plugin(
        "search.plugin".into(),
        config.search.plugin.as_ref(),
        World::SearchStrategy,
    );
    for (i, f) in config.filters.iter().enumerate() {
        plugin(
            format!("filters[{i}].plugin"),
            Some(&f.plugin),
            World::PairFilter,
        );
    }
    problems
}
