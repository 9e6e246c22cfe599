//! The DPO reference: the starting model's summed log-probs of every chosen and rejected
//! response, computed once and cached on disk by data and model fingerprint, so the reference
//! model never has to stay in memory next to the policy.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use sha2::{Digest, Sha256};

use super::data::{PairSequences, Sequence};
use super::logprobs::sequence_logps;
use super::trainer::{TrainConfig, Trainable};

/// SHA-256 over the starting model's bytes (for reference-cache keys and resume checks): its
/// trainable parameters and, with LoRA, the frozen weights they adapt.
pub(super) fn fingerprint(t: &Trainable, extra: &[&[u8]]) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    let mut hash = |name: &str, tensor: &candle_core::Tensor| -> anyhow::Result<()> {
        hasher.update(name.as_bytes());
        let values: Vec<f32> = tensor.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
        for v in values {
            hasher.update(v.to_le_bytes());
        }
        Ok(())
    };
    for (name, var) in &t.params {
        hash(name, var.as_tensor())?;
    }
    if t.lora.is_some() {
        let mut names: Vec<&String> = t.loaded.weights.keys().collect();
        names.sort();
        for name in names {
            hash(name, &t.loaded.weights[name])?;
        }
    }
    for e in extra {
        hasher.update(e);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where reference log-probs are cached: `$SPAR_CACHE_DIR` (or `~/.cache/spar-host`)/reference.
pub(super) fn reference_cache_dir() -> PathBuf {
    std::env::var_os("SPAR_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("spar-host")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("spar-host"))
        })
        .unwrap_or_else(|| PathBuf::from(".spar-cache"))
        .join("reference")
}

/// Summed log-probs of chosen and rejected under the starting model, cached on disk by data and
/// model fingerprint so the reference model never has to stay in memory.
pub(super) fn reference_logps(
    t: &Trainable,
    pairs: &[PairSequences],
    cfg: &TrainConfig,
    cache_dir: &Path,
    key: &str,
    device: &Device,
) -> anyhow::Result<Vec<(f32, f32)>> {
    let path = cache_dir.join(format!("reference-logps-{}.json", &key[..16]));
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(values) = serde_json::from_str::<Vec<(f32, f32)>>(&text)
        && values.len() == pairs.len()
    {
        tracing::info!(path = %path.display(), "reference log-probs from cache");
        return Ok(values);
    }
    // The reference is the starting model: with LoRA, the same model with its adapters off.
    t.model.set_adapters_enabled(false);
    let computed = reference_sums(t, pairs, cfg, device);
    t.model.set_adapters_enabled(true);
    let out = computed?;
    std::fs::create_dir_all(cache_dir)?;
    crate::storage::write_atomic(&path, serde_json::to_string(&out)?.as_bytes())?;
    Ok(out)
}

fn reference_sums(
    t: &Trainable,
    pairs: &[PairSequences],
    cfg: &TrainConfig,
    device: &Device,
) -> anyhow::Result<Vec<(f32, f32)>> {
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(cfg.micro_batch.max(1)) {
        let batch: Vec<&Sequence> = chunk
            .iter()
            .flat_map(|p| [&p.chosen, &p.rejected])
            .collect();
        let sums = sequence_logps(&t.model, &batch, device)?.sums;
        let sums: Vec<f32> = sums.detach().to_vec1()?;
        out.extend(sums.chunks(2).map(|c| (c[0], c[1])));
    }
    Ok(out)
}
