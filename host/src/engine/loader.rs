//! Loading a model from a Hugging Face directory: `config.json`, safetensors weights (one file or
//! sharded with an index), `tokenizer.json`, the chat template and `generation_config.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::chat_template::ChatTemplate;
use super::config::{ModelConfig, ids_of};
use super::model::Transformer;
use super::tokenizer::Tokenizer;

/// Sampling defaults from `generation_config.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationDefaults {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub eos_token_ids: Vec<u32>,
}

/// Everything needed to run a model.
pub struct LoadedModel {
    pub config: ModelConfig,
    pub weights: HashMap<String, Tensor>,
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
    pub generation: GenerationDefaults,
    pub source: PathBuf,
}

impl LoadedModel {
    /// Build the transformer on `device` in `dtype` from the loaded weights. bf16 on the CPU,
    /// which has no fast bf16 arithmetic, stores the weights in bf16 and computes in f32
    /// ([`Transformer::storing_weights_in_bf16`]).
    pub fn transformer(&self, dtype: DType, device: &Device) -> anyhow::Result<Transformer> {
        let bf16_storage = dtype == DType::BF16 && device.is_cpu();
        let build_dtype = if bf16_storage { DType::F32 } else { dtype };
        let vb = VarBuilder::from_tensors(self.weights.clone(), build_dtype, device);
        let model = Transformer::new(&self.config, vb).with_context(|| {
            format!(
                "{}: weights do not match config.json",
                self.source.display()
            )
        })?;
        if bf16_storage {
            return Ok(model.storing_weights_in_bf16()?);
        }
        Ok(model)
    }

    /// Token ids that end an assistant turn: the config's and generation config's EOS ids.
    pub fn stop_token_ids(&self) -> Vec<u32> {
        let mut ids = self.config.eos_token_ids();
        ids.extend(&self.generation.eos_token_ids);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// [`Self::stop_token_ids`] plus ChatML's end-of-turn token when the vocabulary has one
    /// (some GGUF files name `<|endoftext|>` as EOS while chats end with `<|im_end|>`).
    pub fn chat_stop_ids(&self) -> Vec<u32> {
        let mut ids = self.stop_token_ids();
        if let Some(id) = self.tokenizer.token_id("<|im_end|>")
            && !ids.contains(&id)
        {
            ids.push(id);
        }
        ids
    }
}

fn require(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!("{}: no {name} in this model directory", dir.display());
    }
    Ok(path)
}

/// Load a model from an HF directory or a GGUF file.
pub fn load(path: &Path) -> anyhow::Result<LoadedModel> {
    if path.is_dir() {
        load_hf_dir(path, true)
    } else if path.is_file() {
        super::gguf::load(path)
    } else {
        bail!("{}: no such model directory or file", path.display())
    }
}

/// Config, tokenizer, template and generation defaults without the weights (`weights` is
/// empty); an HF directory needs no weight files for this.
pub fn load_architecture(path: &Path) -> anyhow::Result<LoadedModel> {
    if path.is_dir() {
        load_hf_dir(path, false)
    } else {
        let mut loaded = load(path)?;
        loaded.weights.clear();
        Ok(loaded)
    }
}

fn load_hf_dir(dir: &Path, with_weights: bool) -> anyhow::Result<LoadedModel> {
    let config = ModelConfig::from_file(&require(dir, "config.json")?)?;
    let tokenizer = Tokenizer::from_file(&require(dir, "tokenizer.json")?)?;
    let weights = if with_weights {
        load_safetensors(dir)?
    } else {
        HashMap::new()
    };
    let tokenizer_config = read_json_if_present(&dir.join("tokenizer_config.json"))?;
    let token_text = |key: &str| -> String {
        match tokenizer_config.as_ref().and_then(|c| c.get(key)) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(o)) => o
                .get("content")
                .and_then(|c| c.as_str())
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    };
    let (bos, eos) = (token_text("bos_token"), token_text("eos_token"));
    let template = if dir.join("chat_template.jinja").is_file() {
        let path = dir.join("chat_template.jinja");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Some(ChatTemplate::new(
            &text,
            &path.display().to_string(),
            &bos,
            &eos,
        )?)
    } else {
        match tokenizer_config
            .as_ref()
            .and_then(|c| c.get("chat_template"))
        {
            Some(serde_json::Value::String(text)) => Some(ChatTemplate::new(
                text,
                &dir.join("tokenizer_config.json").display().to_string(),
                &bos,
                &eos,
            )?),
            Some(serde_json::Value::Array(named)) => {
                let default = named
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(|t| t.as_str());
                match default {
                    Some(text) => Some(ChatTemplate::new(
                        text,
                        &dir.join("tokenizer_config.json").display().to_string(),
                        &bos,
                        &eos,
                    )?),
                    None => None,
                }
            }
            _ => None,
        }
    };
    let generation = match read_json_if_present(&dir.join("generation_config.json"))? {
        Some(g) => GenerationDefaults {
            temperature: g.get("temperature").and_then(|v| v.as_f64()),
            top_p: g.get("top_p").and_then(|v| v.as_f64()),
            top_k: g.get("top_k").and_then(|v| v.as_u64()).map(|k| k as usize),
            eos_token_ids: ids_of(g.get("eos_token_id")),
        },
        None => GenerationDefaults::default(),
    };
    Ok(LoadedModel {
        config,
        weights,
        tokenizer,
        template,
        generation,
        source: dir.to_path_buf(),
    })
}

fn read_json_if_present(path: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{}: invalid JSON", path.display()))
}

/// `model.safetensors`, or every shard named in `model.safetensors.index.json`.
fn load_safetensors(dir: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    let single = dir.join("model.safetensors");
    let files: Vec<PathBuf> = if single.is_file() {
        vec![single]
    } else {
        let index_path = dir.join("model.safetensors.index.json");
        let Some(index) = read_json_if_present(&index_path)? else {
            bail!(
                "{}: no model.safetensors or model.safetensors.index.json in this model directory",
                dir.display()
            );
        };
        let map = index
            .get("weight_map")
            .and_then(|m| m.as_object())
            .with_context(|| format!("{}: no weight_map", index_path.display()))?;
        let mut shards: Vec<String> = map
            .values()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        shards.sort();
        shards.dedup();
        shards.into_iter().map(|s| dir.join(s)).collect()
    };
    let mut weights = HashMap::new();
    for file in files {
        let tensors = candle_core::safetensors::load(&file, &Device::Cpu)
            .with_context(|| format!("{}: cannot read safetensors", file.display()))?;
        weights.extend(tensors);
    }
    Ok(weights)
}
