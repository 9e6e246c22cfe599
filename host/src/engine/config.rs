//! The model's `config.json`, as a serde view with Hugging Face's field names, and which family
//! of transformer it describes.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The transformer families this engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Llama 2/3.x, SmolLM2, TinyLlama: no attention biases.
    Llama,
    /// Qwen2 / Qwen2.5: biases on the q, k and v projections.
    Qwen2,
}

/// A decoder-only transformer's hyperparameters (HF `config.json` names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    pub model_type: String,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<serde_json::Value>,
    /// Llama 3.1+ rope scaling; present configs are refused rather than silently mis-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_bias: Option<bool>,
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_max_position_embeddings() -> usize {
    2048
}
fn default_hidden_act() -> String {
    "silu".to_string()
}

impl ModelConfig {
    /// Read and check `config.json`.
    pub fn from_file(path: &Path) -> anyhow::Result<ModelConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let config: ModelConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a model config", path.display()))?;
        config
            .validate()
            .with_context(|| format!("{}", path.display()))?;
        Ok(config)
    }

    /// The family, from `model_type`.
    pub fn family(&self) -> anyhow::Result<Family> {
        match self.model_type.as_str() {
            "llama" | "mistral" => Ok(Family::Llama),
            "qwen2" => Ok(Family::Qwen2),
            other => bail!(
                "unsupported architecture `{other}` (model_type); supported: llama (Llama 3.x, SmolLM2, TinyLlama), qwen2 (Qwen2, Qwen2.5)"
            ),
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.family()?;
        if self.hidden_act != "silu" {
            bail!("unsupported hidden_act `{}` (only silu)", self.hidden_act);
        }
        if let Some(scaling) = &self.rope_scaling
            && !scaling.is_null()
        {
            bail!("rope_scaling is not supported yet ({scaling})");
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size,
                self.num_attention_heads
            );
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            bail!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            );
        }
        Ok(())
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// Whether q/k/v projections carry biases.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    /// Token ids from `eos_token_id` (an integer or a list).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        ids_of(self.eos_token_id.as_ref())
    }
}

/// An id field that may be an integer or a list of integers.
pub fn ids_of(value: Option<&serde_json::Value>) -> Vec<u32> {
    match value {
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().map(|n| vec![n as u32]).unwrap_or_default()
        }
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_u64().map(|n| n as u32))
            .collect(),
        _ => Vec::new(),
    }
}
