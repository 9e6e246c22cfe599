//! Handing a training stage to an established trainer (TRL with accelerate/DeepSpeed,
//! LLaMA-Factory, OpenRLHF) when the model outgrows the built-in trainer: the stage's data is
//! written in the trainer's format, a command rendered from the config's template runs, its exit
//! status is checked, and the HF checkpoint it produced becomes the stage's output.
//!
//! Placeholders in `command`: `{model}` (the starting HF checkpoint), `{data}` (the data file),
//! `{data_dir}`, `{output}` (where the trainer must save the checkpoint), and the stage's
//! settings `{beta}`, `{sft_weight}`, `{loss_type}` (DPO only), `{lr}`, `{epochs}`,
//! `{micro_batch}`, `{grad_accum}`, `{max_length}`, `{warmup_ratio}`, `{seed}`. The mapping to
//! each trainer's flags is in docs/external-trainers.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::export::{self, Format, StageData};

/// `[dpo.external]` / `[sft.external]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalTrainer {
    /// The data format the trainer reads.
    pub format: Format,
    /// The shell command (run with `sh -c` in the iteration's directory).
    pub command: String,
}

/// Replace every `{name}` in `template` by its value; an unknown placeholder is an error.
pub fn render(template: &str, vars: &[(&str, String)]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            bail!("unclosed `{{` in the trainer command: {template}");
        };
        let name = &after[..end];
        let value = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .with_context(|| {
                let known: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown placeholder {{{name}}} in the trainer command (known: {})",
                    known.join(", ")
                )
            })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Run `trainer` on `data` from `model` and leave its checkpoint in `output`; returns the command
/// line it ran. `stage` names the files kept in `workdir` (`{stage}-data/`,
/// `{stage}-command.txt`, `{stage}-trainer.log`).
pub fn train_external(
    trainer: &ExternalTrainer,
    stage: &str,
    data: &StageData<'_>,
    model: &Path,
    workdir: &Path,
    output: &Path,
    settings: &[(&str, String)],
) -> anyhow::Result<String> {
    if !model.is_dir() {
        bail!(
            "{}: external trainers start from an HF checkpoint directory, not a single file",
            model.display()
        );
    }
    let data_dir = workdir.join(format!("{stage}-data"));
    let data_file = export::write(trainer.format, data, &data_dir)?;
    // The trainer writes into a temporary folder; only a checked checkpoint takes `output`'s name.
    let staging = workdir.join(format!(".{stage}-external-output"));
    let _ = std::fs::remove_dir_all(&staging);
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut vars: Vec<(&str, String)> = vec![
        ("model", absolute(model).display().to_string()),
        ("data", absolute(&data_file).display().to_string()),
        ("data_dir", absolute(&data_dir).display().to_string()),
        ("output", absolute(&staging).display().to_string()),
    ];
    vars.extend(settings.iter().cloned());
    let line = render(&trainer.command, &vars)?;
    crate::storage::write_atomic(
        &workdir.join(format!("{stage}-command.txt")),
        format!("{line}\n").as_bytes(),
    )?;
    let log_path = workdir.join(format!("{stage}-trainer.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("{}: cannot write", log_path.display()))?;
    eprintln!("{stage}: external trainer: {line}");
    let status = Command::new("sh")
        .args(["-c", &line])
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("{stage}: cannot start the trainer command"))?;
    if !status.success() {
        bail!(
            "{stage}: the external trainer failed ({status}); its output is in {}:\n{}",
            log_path.display(),
            tail(&log_path, 20)
        );
    }
    check_checkpoint(&staging).with_context(|| {
        format!(
            "{stage}: the external trainer exited 0 but left no usable checkpoint at {{output}} (log: {})",
            log_path.display()
        )
    })?;
    // Trainers do not always save the tokenizer or the chat template: take the starting model's.
    for file in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
    ] {
        let (from, to) = (model.join(file), staging.join(file));
        if from.exists() && !to.exists() {
            std::fs::copy(&from, &to).with_context(|| format!("{}: cannot copy", to.display()))?;
        }
    }
    if output.exists() {
        std::fs::remove_dir_all(output)
            .with_context(|| format!("{}: cannot replace", output.display()))?;
    }
    std::fs::rename(&staging, output).with_context(|| {
        format!(
            "{}: cannot move the checkpoint into place",
            output.display()
        )
    })?;
    Ok(line)
}

/// An HF checkpoint: a `config.json` with a `model_type`, and safetensors weights.
fn check_checkpoint(dir: &Path) -> anyhow::Result<()> {
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("{}: missing", config.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", config.display()))?;
    if value.get("model_type").is_none() {
        bail!("{}: no model_type", config.display());
    }
    let weights: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    if weights.is_empty() {
        bail!("{}: no *.safetensors weights", dir.display());
    }
    Ok(())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_unknown_ones_named() {
        let vars = [("model", "/m".to_string()), ("beta", "0.1".to_string())];
        assert_eq!(
            render("train --model {model} --beta {beta}", &vars).unwrap(),
            "train --model /m --beta 0.1"
        );
        let err = render("train {lr}", &vars).unwrap_err().to_string();
        assert!(
            err.contains("unknown placeholder {lr}") && err.contains("model, beta"),
            "{err}"
        );
        assert!(render("train {model", &vars).is_err());
    }
}
