//! Checkpoints as Hugging Face directories that this engine and `transformers` both load:
//! `config.json`, `generation_config.json`, tokenizer files, the chat template, and
//! `model.safetensors` (`{"format": "pt"}`), sharded with an index above a size threshold.
//! Written into a temporary folder and renamed into place, so a crash never leaves half a
//! checkpoint that looks complete.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::Tensor;
use serde_json::json;

use super::optim::AdamW;
use super::trainer::{TrainConfig, TrainerState};
use crate::engine::config::{Family, ModelConfig};
use crate::engine::loader::LoadedModel;
use crate::engine::weights::save_safetensors;

/// Save `weights` with `model`'s config, tokenizer and template into `dir`.
pub fn save_hf_dir(
    dir: &Path,
    model: &LoadedModel,
    weights: &HashMap<String, Tensor>,
    shard_bytes: usize,
    extra_files: &[(&str, Vec<u8>)],
) -> anyhow::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("{}: cannot create", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let written = write_hf_files(&tmp, model, weights, shard_bytes, extra_files)
        .with_context(|| format!("{}: cannot write the checkpoint", dir.display()));
    if written.is_err() {
        // Nothing half-written stays behind.
        let _ = std::fs::remove_dir_all(&tmp);
        return written;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("{}: cannot replace", dir.display()))?;
    }
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("{}: cannot move checkpoint into place", dir.display()))?;
    Ok(())
}

/// Every file of an HF checkpoint directory, into `tmp`.
fn write_hf_files(
    tmp: &Path,
    model: &LoadedModel,
    weights: &HashMap<String, Tensor>,
    shard_bytes: usize,
    extra_files: &[(&str, Vec<u8>)],
) -> anyhow::Result<()> {
    let mut config: ModelConfig = model.config.clone();
    if config.architectures.is_empty() {
        config.architectures = vec![match config.family()? {
            Family::Llama => "LlamaForCausalLM".to_string(),
            Family::Qwen2 => "Qwen2ForCausalLM".to_string(),
        }];
    }
    let mut config_json = serde_json::to_value(&config)?;
    config_json["torch_dtype"] = json!("float32");
    if config.family()? == Family::Llama {
        config_json["attention_bias"] = json!(config.qkv_bias());
    }
    std::fs::write(
        tmp.join("config.json"),
        serde_json::to_string_pretty(&config_json)?,
    )?;

    let mut generation = serde_json::Map::new();
    let eos = model.stop_token_ids();
    if !eos.is_empty() {
        generation.insert("eos_token_id".into(), json!(eos));
    }
    if let Some(bos) = crate::engine::config::ids_of(config.bos_token_id.as_ref()).first() {
        generation.insert("bos_token_id".into(), json!(bos));
    }
    for (key, value) in [
        ("temperature", model.generation.temperature),
        ("top_p", model.generation.top_p),
    ] {
        if let Some(v) = value {
            generation.insert(key.into(), json!(v));
            // transformers (5.x) refuses to save a config with sampling settings but greedy
            // decoding, so a checkpoint trained further by it could not be saved.
            generation.insert("do_sample".into(), json!(true));
        }
    }
    std::fs::write(
        tmp.join("generation_config.json"),
        serde_json::to_string_pretty(&generation)?,
    )?;

    model.tokenizer.save(&tmp.join("tokenizer.json"))?;
    let mut tokenizer_config = serde_json::Map::new();
    if let Some(template) = &model.template {
        let (bos, eos) = template.special_tokens();
        tokenizer_config.insert("bos_token".into(), json!(bos));
        tokenizer_config.insert("eos_token".into(), json!(eos));
        tokenizer_config.insert("chat_template".into(), json!(template.source()));
        std::fs::write(tmp.join("chat_template.jinja"), template.source())?;
    }
    std::fs::write(
        tmp.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tokenizer_config)?,
    )?;

    let mut names: Vec<&String> = weights
        .keys()
        .filter(|n| !(config.tie_word_embeddings && n.as_str() == "lm_head.weight"))
        .collect();
    names.sort();
    let size = |n: &String| weights[n].elem_count() * weights[n].dtype().size_in_bytes();
    let total: usize = names.iter().map(|n| size(n)).sum();
    if total <= shard_bytes {
        let all: HashMap<String, Tensor> = names
            .iter()
            .map(|n| ((*n).clone(), weights[*n].clone()))
            .collect();
        save_safetensors(&all, &tmp.join("model.safetensors"))?;
    } else {
        let mut shards: Vec<Vec<&String>> = vec![Vec::new()];
        let mut current = 0;
        for n in names {
            if current + size(n) > shard_bytes && !shards.last().expect("non-empty").is_empty() {
                shards.push(Vec::new());
                current = 0;
            }
            current += size(n);
            shards.last_mut().expect("non-empty").push(n);
        }
        let count = shards.len();
        let mut map = serde_json::Map::new();
        for (i, shard) in shards.iter().enumerate() {
            let file = format!("model-{:05}-of-{count:05}.safetensors", i + 1);
            let part: HashMap<String, Tensor> = shard
                .iter()
                .map(|n| ((*n).clone(), weights[*n].clone()))
                .collect();
            save_safetensors(&part, &tmp.join(&file))?;
            for n in shard {
                map.insert((*n).clone(), json!(file));
            }
        }
        let index = json!({"metadata": {"total_size": total}, "weight_map": map});
        std::fs::write(
            tmp.join("model.safetensors.index.json"),
            serde_json::to_string_pretty(&index)?,
        )?;
    }
    for (file, bytes) in extra_files {
        let path = tmp.join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, bytes)?;
    }
    Ok(())
}

/// What a checkpoint of a model holds besides its config and tokenizer.
pub struct CheckpointContents {
    /// The HF weights by name.
    pub weights: HashMap<String, Tensor>,
    /// Files beside them (path in the folder, bytes), e.g. a LoRA adapter under `adapter/`.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A resumable checkpoint: `contents` (the HF weights and any adapter files), the trainer's
/// `(step, total steps, start fingerprint)`, the optimizer's state and the metrics so far.
pub(super) fn save_checkpoint(
    dir: &Path,
    model: &LoadedModel,
    CheckpointContents { weights, mut files }: CheckpointContents,
    optimizer: &AdamW,
    (step, total_steps, fingerprint): (usize, usize, &str),
    metrics: &[serde_json::Value],
    cfg: &TrainConfig,
) -> anyhow::Result<()> {
    let state = TrainerState {
        step,
        total_steps,
        fingerprint: fingerprint.to_string(),
    };
    let mut optimizer_state: Vec<(String, Tensor)> = optimizer.state().into_iter().collect();
    optimizer_state.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = safetensors::serialize(optimizer_state.iter().map(|(n, t)| (n.as_str(), t)), None)?;
    let metrics_text: String = metrics.iter().map(|m| format!("{m}\n")).collect();
    files.push((
        "trainer_state.json".into(),
        serde_json::to_vec_pretty(&state)?,
    ));
    files.push(("optimizer.safetensors".into(), bytes));
    files.push(("metrics.jsonl".into(), metrics_text.into_bytes()));
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    save_hf_dir(dir, model, &weights, cfg.shard_bytes, &files)
}
