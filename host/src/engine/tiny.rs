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
    /// How strongly the model favours ending its answer (`<|im_end|>`) at every step; 0 (the
    /// default) leaves the weights purely random, so answers nearly always run to the token
    /// limit. Tests of what happens to complete answers need a model that stops.
    pub stop_weight: f32,
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
            stop_weight: 0.0,
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

/// A `stop_weight` under which most short sampled answers end before a 16-token limit, and
/// some do not (measured by this module's test).
pub const STOPPING: f32 = 1.5;

/// Give every token embedding a shared direction `u` and point `<|im_end|>`'s output row along
/// it: the residual stream then always carries `u`, so the end-of-turn logit is raised at every
/// position by about `weight` times the stream's normalised size.
fn favour_stopping(
    weights: &mut HashMap<String, Tensor>,
    cfg: &ModelConfig,
    weight: f32,
) -> anyhow::Result<()> {
    let h = cfg.hidden_size;
    let u = Tensor::from_vec(vec![1.0f32 / (h as f32).sqrt(); h], (1, h), &Device::Cpu)?;
    let embed = weights["model.embed_tokens.weight"].broadcast_add(&(&u * 2.0)?)?;
    weights.insert("model.embed_tokens.weight".into(), embed);
    let head_name = if cfg.tie_word_embeddings {
        anyhow::bail!("stop_weight needs an untied lm_head")
    } else {
        "lm_head.weight"
    };
    let head = &weights[head_name];
    let eos = 258;
    let rows = head.dim(0)?;
    let head = Tensor::cat(
        &[
            head.narrow(0, 0, eos)?,
            (&u * f64::from(weight))?,
            head.narrow(0, eos + 1, rows - eos - 1)?,
        ],
        0,
    )?;
    weights.insert(head_name.into(), head);
    Ok(())
}

/// Write a complete HF model directory: config, safetensors, tokenizer, template, generation
/// config.
pub fn write_hf_dir(dir: &Path, spec: &TinySpec) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cfg = config(spec);
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    let mut weights = weights(&cfg, spec.seed)?;
    if spec.stop_weight > 0.0 {
        favour_stopping(&mut weights, &cfg, spec.stop_weight)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::generate::{FinishReason, Request, generate};
    use crate::engine::sampling::SamplingParams;

    /// Of 32 sampled answers of at most 16 tokens, how many ended before the limit.
    fn stopped_early(stop_weight: f32) -> usize {
        let dir = std::env::temp_dir().join(format!(
            "spar-tiny-stop-{}-{stop_weight}",
            std::process::id()
        ));
        write_hf_dir(
            &dir,
            &TinySpec {
                stop_weight,
                ..TinySpec::default()
            },
        )
        .unwrap();
        let loaded = crate::engine::loader::load(&dir).unwrap();
        let model = loaded
            .transformer(candle_core::DType::F32, &Device::Cpu)
            .unwrap();
        let prompt = loaded.tokenizer.encode("Write about rain.").unwrap();
        let requests: Vec<Request> = (0..32)
            .map(|seed| Request {
                prompt_ids: prompt.clone(),
                sampling: SamplingParams {
                    temperature: 0.9,
                    top_p: 0.9,
                    top_k: 0,
                    seed,
                },
                max_new_tokens: 16,
                stop_token_ids: loaded.chat_stop_ids(),
                stop_strings: Vec::new(),
            })
            .collect();
        let done = generate(&model, &loaded.tokenizer, &requests, &Device::Cpu).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        done.iter()
            .filter(|c| c.finish_reason == FinishReason::Stop)
            .count()
    }

    #[test]
    fn a_stop_weight_makes_the_random_model_end_its_answers() {
        let (plain, stopping) = (stopped_early(0.0), stopped_early(STOPPING));
        eprintln!("stopped before 16 tokens: {plain}/32 plain, {stopping}/32 with {STOPPING}");
        assert!(plain <= 8, "{plain}");
        assert!((16..32).contains(&stopping), "{stopping}");
    }
}
