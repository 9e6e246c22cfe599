//! Tiny random models for tests and examples: real checkpoints in every format the engine reads,
//! small enough to build in milliseconds, never downloaded.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::config::{Family, ModelConfig};
use super::sampling::Rng;
use super::tokenizer::{self, Tokenizer};

/// ChatML, as SmolLM2 and Qwen2 use it.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The special tokens of the tiny tokenizer, after the 256 byte symbols.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Shape of a tiny model.
#[derive(Clone, Debug)]
pub struct TinySpec {
    pub family: Family,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub max_positions: usize,
    pub tie_embeddings: bool,
    pub seed: u64,
}

impl Default for TinySpec {
    fn default() -> Self {
        TinySpec {
            family: Family::Llama,
            hidden: 32,
            intermediate: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            max_positions: 256,
            tie_embeddings: false,
            seed: 7,
        }
    }
}

/// The tiny tokenizer: byte-level BPE over the 256 bytes, no merges, plus ChatML specials.
pub fn tokenizer() -> anyhow::Result<Tokenizer> {
    let mut tokens = tokenizer::byte_symbols();
    tokens.extend(SPECIAL_TOKENS.iter().map(|s| s.to_string()));
    let specials: Vec<u32> = (256..256 + SPECIAL_TOKENS.len() as u32).collect();
    tokenizer::byte_level_bpe(&tokens, &[], &specials, false)
}

pub fn config(spec: &TinySpec) -> ModelConfig {
    let vocab = 256 + SPECIAL_TOKENS.len();
    let (model_type, architecture) = match spec.family {
        Family::Llama => ("llama", "LlamaForCausalLM"),
        Family::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
    };
    ModelConfig {
        architectures: vec![architecture.to_string()],
        model_type: model_type.to_string(),
        hidden_size: spec.hidden,
        intermediate_size: spec.intermediate,
        num_hidden_layers: spec.layers,
        num_attention_heads: spec.heads,
        num_key_value_heads: Some(spec.kv_heads),
        head_dim: None,
        vocab_size: vocab,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: spec.max_positions,
        tie_word_embeddings: spec.tie_embeddings,
        bos_token_id: Some(serde_json::json!(256)),
        eos_token_id: Some(serde_json::json!(258)),
        rope_scaling: None,
        hidden_act: "silu".to_string(),
        attention_bias: None,
    }
}

/// Random weights (normal, std 0.2; norms near 1), named as in HF checkpoints.
pub fn weights(cfg: &ModelConfig, seed: u64) -> anyhow::Result<HashMap<String, Tensor>> {
    weights_with_std(cfg, seed, 0.2)
}

/// Seeded random weights for any config: matrices with standard deviation `std` (biases half of
/// it), norms near 1.
pub fn weights_with_std(
    cfg: &ModelConfig,
    seed: u64,
    std: f32,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let mut rng = Rng::new(seed);
    let scale = std / 0.2;
    let mut normal = |shape: &[usize], mean: f32, std: f32| -> anyhow::Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let u1 = rng.uniform().max(1e-12);
                let u2 = rng.uniform();
                mean + std * ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
    };
    let (h, i, v, hd) = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.vocab_size,
        cfg.head_dim(),
    );
    let (q, kv) = (cfg.num_attention_heads * hd, cfg.kv_heads() * hd);
    let mut w = HashMap::new();
    w.insert(
        "model.embed_tokens.weight".into(),
        normal(&[v, h], 0.0, 0.2 * scale)?,
    );
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        w.insert(
            format!("{p}.input_layernorm.weight"),
            normal(&[h], 1.0, 0.05)?,
        );
        w.insert(
            format!("{p}.post_attention_layernorm.weight"),
            normal(&[h], 1.0, 0.05)?,
        );
        w.insert(
            format!("{p}.self_attn.q_proj.weight"),
            normal(&[q, h], 0.0, 0.2 * scale)?,
        );
        w.insert(
            format!("{p}.self_attn.k_proj.weight"),
            normal(&[kv, h], 0.0, 0.2 * scale)?,
        );
        w.insert(
            format!("{p}.self_attn.v_proj.weight"),
            normal(&[kv, h], 0.0, 0.2 * scale)?,
        );
        w.insert(
            format!("{p}.self_attn.o_proj.weight"),
            normal(&[h, q], 0.0, 0.2 * scale)?,
        );
        if cfg.qkv_bias() {
            w.insert(
                format!("{p}.self_attn.q_proj.bias"),
                normal(&[q], 0.0, 0.1 * scale)?,
            );
            w.insert(
                format!("{p}.self_attn.k_proj.bias"),
                normal(&[kv], 0.0, 0.1 * scale)?,
            );
            w.insert(
                format!("{p}.self_attn.v_proj.bias"),
                normal(&[kv], 0.0, 0.1 * scale)?,
            );
        }
        w.insert(
            format!("{p}.mlp.gate_proj.weight"),
            normal(&[i, h], 0.0, 0.2 * scale)?,
        );
        w.insert(
            format!("{p}.mlp.up_proj.weight"),
            normal(&[i, h], 0.0, 0.2 * scale)?,
        );
        w.insert(
            format!("{p}.mlp.down_proj.weight"),
            normal(&[h, i], 0.0, 0.2 * scale)?,
        );
    }
    w.insert("model.norm.weight".into(), normal(&[h], 1.0, 0.05)?);
    if !cfg.tie_word_embeddings {
        w.insert("lm_head.weight".into(), normal(&[v, h], 0.0, 0.2 * scale)?);
    }
    Ok(w)
}

/// Write a complete HF model directory: config, safetensors, tokenizer, template, generation
/// config.
pub fn write_hf_dir(dir: &Path, spec: &TinySpec) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cfg = config(spec);
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    let weights = weights(&cfg, spec.seed)?;
    super::weights::save_safetensors(&weights, &dir.join("model.safetensors"))?;
    tokenizer()?.save(&dir.join("tokenizer.json"))?;
    let tokenizer_config = serde_json::json!({
        "bos_token": "<|endoftext|>",
        "eos_token": "<|im_end|>",
        "chat_template": CHATML_TEMPLATE,
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tokenizer_config)?,
    )?;
    std::fs::write(
        dir.join("generation_config.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({"eos_token_id": [258], "do_sample": true, "temperature": 0.7, "top_p": 0.9}),
        )?,
    )?;
    Ok(())
}
