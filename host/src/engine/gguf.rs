//! GGUF files (llama.cpp's format): weights dequantised to f32 with llama.cpp's Q/K row
//! permutation undone, the config from the metadata, and the tokenizer and chat template built
//! from the metadata. Also a writer, used to make test checkpoints in this format.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, bail};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::chat_template::ChatTemplate;
use super::config::ModelConfig;
use super::loader::{GenerationDefaults, LoadedModel};
use super::tokenizer::{self, Tokenizer};

/// GGUF tensor names and their HF counterparts: whole names, then per-layer modules.
const TOP_LEVEL: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];
const LAYER_MODULES: [(&str, &str); 9] = [
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
];

/// Map a tensor name between the formats: `to_hf` turns `blk.N.attn_q.weight` into
/// `model.layers.N.self_attn.q_proj.weight`, otherwise the reverse.
fn rename(name: &str, to_hf: bool) -> Option<String> {
    let pick = |(g, h): (&'static str, &'static str)| if to_hf { (g, h) } else { (h, g) };
    if let Some((_, to)) = TOP_LEVEL
        .into_iter()
        .map(pick)
        .find(|(from, _)| *from == name)
    {
        return Some(to.to_string());
    }
    let (prefix, out_prefix) = if to_hf {
        ("blk.", "model.layers.")
    } else {
        ("model.layers.", "blk.")
    };
    let (layer, part) = name.strip_prefix(prefix)?.split_once('.')?;
    let (module, kind) = part.rsplit_once('.')?;
    let (_, to) = LAYER_MODULES
        .into_iter()
        .map(pick)
        .find(|(from, _)| *from == module)?;
    Some(format!("{out_prefix}{layer}.{to}.{kind}"))
}

fn hf_name(gguf: &str) -> Option<String> {
    rename(gguf, true)
}

fn gguf_name(hf: &str) -> Option<String> {
    rename(hf, false)
}

/// llama.cpp stores Q and K rows interleaved per head for its rope kernel; HF layout groups the
/// two halves. `reverse` goes back to HF.
fn permute_qk(w: &Tensor, heads: usize, reverse: bool) -> candle_core::Result<Tensor> {
    let dims = w.dims().to_vec();
    let out = dims[0];
    let rest: usize = dims[1..].iter().product();
    let half = out / heads / 2;
    let w = w.reshape((out, rest))?;
    let permuted = if reverse {
        w.reshape((heads, half, 2, rest))?.transpose(1, 2)?
    } else {
        w.reshape((heads, 2, half, rest))?.transpose(1, 2)?
    };
    permuted.contiguous()?.reshape(dims)
}

fn meta<'c>(content: &'c Content, key: &str) -> anyhow::Result<&'c Value> {
    content
        .metadata
        .get(key)
        .with_context(|| format!("metadata key `{key}` is missing"))
}

fn meta_usize(content: &Content, key: &str) -> anyhow::Result<usize> {
    let v = meta(content, key)?;
    Ok(v.to_u64()
        .or_else(|_| v.to_u32().map(u64::from))
        .or_else(|_| v.to_i32().map(|x| x as u64))
        .with_context(|| format!("metadata key `{key}` is not an integer"))? as usize)
}

fn meta_f64(content: &Content, key: &str) -> Option<f64> {
    let v = content.metadata.get(key)?;
    v.to_f32().map(f64::from).or_else(|_| v.to_f64()).ok()
}

fn meta_strings(content: &Content, key: &str) -> anyhow::Result<Vec<String>> {
    meta(content, key)?
        .to_vec()
        .with_context(|| format!("metadata key `{key}` is not a list"))?
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .with_context(|| format!("metadata key `{key}` holds a non-string"))
        })
        .collect()
}

/// Load a GGUF file.
pub fn load(path: &Path) -> anyhow::Result<LoadedModel> {
    let at = || format!("{}", path.display());
    let file = File::open(path).with_context(|| format!("{}: cannot open", at()))?;
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader)
        .map_err(|e| anyhow::anyhow!("{}: not a readable GGUF file: {e}", at()))?;
    let arch = meta(&content, "general.architecture")
        .and_then(|v| {
            v.to_string()
                .cloned()
                .context("general.architecture is not a string")
        })
        .with_context(at)?;
    let model_type = match arch.as_str() {
        "llama" => "llama",
        "qwen2" => "qwen2",
        other => bail!(
            "{}: unsupported architecture `{other}` (general.architecture); supported: llama, qwen2",
            at()
        ),
    };
    let key = |k: &str| format!("{arch}.{k}");
    let tokens = meta_strings(&content, "tokenizer.ggml.tokens").with_context(at)?;
    let heads = meta_usize(&content, &key("attention.head_count")).with_context(at)?;
    let kv_heads = meta_usize(&content, &key("attention.head_count_kv")).unwrap_or(heads);
    let tied = !content.tensor_infos.contains_key("output.weight");
    let config = ModelConfig {
        architectures: vec![],
        model_type: model_type.to_string(),
        hidden_size: meta_usize(&content, &key("embedding_length")).with_context(at)?,
        intermediate_size: meta_usize(&content, &key("feed_forward_length")).with_context(at)?,
        num_hidden_layers: meta_usize(&content, &key("block_count")).with_context(at)?,
        num_attention_heads: heads,
        num_key_value_heads: Some(kv_heads),
        head_dim: None,
        vocab_size: tokens.len(),
        rms_norm_eps: meta_f64(&content, &key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
        rope_theta: meta_f64(&content, &key("rope.freq_base")).unwrap_or(10_000.0),
        max_position_embeddings: meta_usize(&content, &key("context_length")).unwrap_or(2048),
        tie_word_embeddings: tied,
        bos_token_id: meta_usize(&content, "tokenizer.ggml.bos_token_id")
            .ok()
            .map(|v| serde_json::json!(v)),
        eos_token_id: meta_usize(&content, "tokenizer.ggml.eos_token_id")
            .ok()
            .map(|v| serde_json::json!(v)),
        rope_scaling: None,
        hidden_act: "silu".to_string(),
        attention_bias: None,
    };
    config.validate().with_context(at)?;

    let mut weights = HashMap::new();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let Some(hf) = hf_name(name) else {
            tracing::debug!(tensor = %name, "skipping GGUF tensor the model does not use");
            continue;
        };
        let q = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(|e| anyhow::anyhow!("{}: tensor {name}: {e}", at()))?;
        let mut w = q.dequantize(&Device::Cpu).map_err(|e| {
            anyhow::anyhow!("{}: cannot dequantise {name} ({:?}): {e}", at(), q.dtype())
        })?;
        if arch == "llama" {
            if name.contains(".attn_q.") {
                w = permute_qk(&w, heads, true)?;
            } else if name.contains(".attn_k.") {
                w = permute_qk(&w, kv_heads, true)?;
            }
        }
        weights.insert(hf, w);
    }

    let tokenizer = gguf_tokenizer(&content, &tokens).with_context(at)?;
    let template = match content.metadata.get("tokenizer.chat_template") {
        Some(Value::String(text)) => {
            let token = |k: &str| {
                meta_usize(&content, k)
                    .ok()
                    .and_then(|id| tokens.get(id).cloned())
                    .unwrap_or_default()
            };
            Some(ChatTemplate::new(
                text,
                &format!("{} (tokenizer.chat_template)", at()),
                &token("tokenizer.ggml.bos_token_id"),
                &token("tokenizer.ggml.eos_token_id"),
            )?)
        }
        _ => None,
    };
    Ok(LoadedModel {
        config,
        weights,
        tokenizer,
        template,
        generation: GenerationDefaults::default(),
        source: path.to_path_buf(),
    })
}

/// The byte-level BPE tokenizer stored in the metadata (`tokenizer.ggml.model = gpt2`).
fn gguf_tokenizer(content: &Content, tokens: &[String]) -> anyhow::Result<Tokenizer> {
    let text = |key: &str| {
        content
            .metadata
            .get(key)
            .and_then(|v| v.to_string().ok())
            .cloned()
    };
    let model =
        text("tokenizer.ggml.model").context("metadata key `tokenizer.ggml.model` is missing")?;
    let merges = match content.metadata.get("tokenizer.ggml.merges") {
        Some(_) => meta_strings(content, "tokenizer.ggml.merges")?,
        None => Vec::new(),
    };
    let token_types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(types)) => types.iter().map(|t| t.to_i32().unwrap_or(1)).collect(),
        _ => Vec::new(),
    };
    let pre = text("tokenizer.ggml.pre").unwrap_or_else(|| "default".to_string());
    tokenizer_from_parts(&model, &pre, tokens, &merges, &token_types)
}

/// A tokenizer from GGUF tokenizer metadata: `tokenizer.ggml.model`, `.pre`, `.tokens`,
/// `.merges` (`"a b"` strings) and `.token_type` (3 = control, a special token).
pub fn tokenizer_from_parts(
    model: &str,
    pre: &str,
    tokens: &[String],
    merges: &[String],
    token_types: &[i32],
) -> anyhow::Result<Tokenizer> {
    if model != "gpt2" {
        bail!(
            "unsupported tokenizer model `{model}` (tokenizer.ggml.model); supported: gpt2 (byte-level BPE)"
        );
    }
    let merges: Vec<(String, String)> = merges
        .iter()
        .filter_map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let special: Vec<u32> = token_types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == 3)
        .map(|(i, _)| i as u32)
        .collect();
    let split_digits = match pre {
        "smollm" => true,
        "default" | "gpt2" => false,
        other => bail!(
            "unsupported pre-tokenizer `{other}` (tokenizer.ggml.pre); supported: smollm, gpt2, default"
        ),
    };
    tokenizer::byte_level_bpe(tokens, &merges, &special, split_digits)
}

/// Write `weights` (HF names) as a GGUF file with f32 tensors, the llama.cpp Q/K layout, and the
/// tokenizer and chat template in the metadata. Used to make test checkpoints in this format.
pub fn write_f32(
    path: &Path,
    config: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    tokenizer: &Tokenizer,
    special_ids: &[u32],
    chat_template: Option<&str>,
) -> anyhow::Result<()> {
    let arch = config.model_type.clone();
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.clone())),
        (
            format!("{arch}.embedding_length"),
            Value::U32(config.hidden_size as u32),
        ),
        (
            format!("{arch}.feed_forward_length"),
            Value::U32(config.intermediate_size as u32),
        ),
        (
            format!("{arch}.block_count"),
            Value::U32(config.num_hidden_layers as u32),
        ),
        (
            format!("{arch}.attention.head_count"),
            Value::U32(config.num_attention_heads as u32),
        ),
        (
            format!("{arch}.attention.head_count_kv"),
            Value::U32(config.kv_heads() as u32),
        ),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(config.rms_norm_eps as f32),
        ),
        (
            format!("{arch}.rope.freq_base"),
            Value::F32(config.rope_theta as f32),
        ),
        (
            format!("{arch}.context_length"),
            Value::U32(config.max_position_embeddings as u32),
        ),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("default".into())),
    ];
    let vocab = tokenizer.inner().get_vocab(true);
    let mut tokens = vec![String::new(); vocab.len()];
    for (token, id) in vocab {
        tokens[id as usize] = token;
    }
    let types: Vec<Value> = (0..tokens.len() as u32)
        .map(|id| Value::I32(if special_ids.contains(&id) { 3 } else { 1 }))
        .collect();
    metadata.push((
        "tokenizer.ggml.tokens".into(),
        Value::Array(tokens.into_iter().map(Value::String).collect()),
    ));
    metadata.push(("tokenizer.ggml.token_type".into(), Value::Array(types)));
    if let Some(id) = super::config::ids_of(config.bos_token_id.as_ref()).first() {
        metadata.push(("tokenizer.ggml.bos_token_id".into(), Value::U32(*id)));
    }
    if let Some(id) = config.eos_token_ids().first() {
        metadata.push(("tokenizer.ggml.eos_token_id".into(), Value::U32(*id)));
    }
    if let Some(template) = chat_template {
        metadata.push((
            "tokenizer.chat_template".into(),
            Value::String(template.into()),
        ));
    }
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    for name in names {
        let gguf = gguf_name(name).with_context(|| format!("no GGUF name for tensor {name}"))?;
        let mut w = weights[name].clone();
        if arch == "llama" {
            if gguf.contains(".attn_q.") {
                w = permute_qk(&w, config.num_attention_heads, false)?;
            } else if gguf.contains(".attn_k.") {
                w = permute_qk(&w, config.kv_heads(), false)?;
            }
        }
        tensors.push((gguf, QTensor::quantize(&w, GgmlDType::F32)?));
    }
    let metadata_refs: Vec<(&str, &Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file =
        File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
    candle_core::quantized::gguf_file::write(&mut file, &metadata_refs, &tensor_refs)
        .with_context(|| format!("{}: cannot write GGUF", path.display()))?;
    Ok(())
}
