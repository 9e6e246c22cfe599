//! LoRA training: which layers get adapters, how they start, their names in PEFT's adapter
//! format, merging them into the base weights, and the adapter files PEFT loads
//! (`adapter_config.json`, `adapter_model.safetensors`). Only the adapters are trained and held in
//! the optimizer; the reference is the same model with its adapters switched off.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::model::Transformer;
use crate::engine::sampling::Rng;

/// What to adapt and how (the trainer's side of `[dpo.lora]` / `[sft.lora]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraSettings {
    pub rank: usize,
    pub alpha: f64,
    /// Layer names (`q_proj`, `down_proj`...) or `all-linear`: every linear layer but the LM
    /// head, as PEFT means it.
    pub target_modules: Vec<String>,
}

/// The linear layers a LoRA can target, by their last name component.
pub const LINEAR_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

impl LoraSettings {
    /// α / r.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Whether the layer called `name` gets an adapter.
    fn targets(&self, name: &str) -> bool {
        let module = name.rsplit('.').next().unwrap_or(name);
        LINEAR_MODULES.contains(&module)
            && self
                .target_modules
                .iter()
                .any(|t| t == "all-linear" || t == module)
    }
}

/// PEFT's tensor name for a layer's `A` or `B` in a saved adapter.
pub fn peft_name(layer: &str, which: char) -> String {
    format!("base_model.model.{layer}.lora_{which}.weight")
}

/// Put fresh adapters on `model`'s targeted layers: `A` uniform in ±1/√in from `seed` (PEFT's
/// Kaiming-uniform initialisation), `B` zero, so the model starts exactly at its base. Returns the
/// trainable variables, named as in PEFT's adapter file, in a fixed order.
pub fn attach(
    model: &mut Transformer,
    settings: &LoraSettings,
    seed: u64,
    device: &Device,
) -> anyhow::Result<Vec<(String, Var)>> {
    anyhow::ensure!(settings.rank > 0, "a LoRA needs a rank of at least 1");
    let mut rng = Rng::new(seed ^ 0x4C6F_5241);
    let mut params = Vec::new();
    let mut adapters = HashMap::new();
    for (layer, (out_dim, in_dim)) in model.linear_layers() {
        if !settings.targets(&layer) {
            continue;
        }
        let bound = 1.0 / (in_dim as f64).sqrt();
        let a: Vec<f32> = (0..settings.rank * in_dim)
            .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
            .collect();
        let a = Var::from_tensor(&Tensor::from_vec(a, (settings.rank, in_dim), device)?)?;
        let b = Var::zeros((out_dim, settings.rank), DType::F32, device)?;
        adapters.insert(
            layer.clone(),
            (a.as_tensor().clone(), b.as_tensor().clone()),
        );
        params.push((peft_name(&layer, 'A'), a));
        params.push((peft_name(&layer, 'B'), b));
    }
    anyhow::ensure!(
        !params.is_empty(),
        "no linear layer matches the LoRA's target modules {:?} (known: all-linear, {})",
        settings.target_modules,
        LINEAR_MODULES.join(", ")
    );
    params.sort_by(|x, y| x.0.cmp(&y.0));
    model.attach_adapters(adapters, settings.scale())?;
    Ok(params)
}

/// The merged checkpoint's weights: the base's, plus `scale · B·A` on every adapted layer.
pub fn merged_weights(
    base: &HashMap<String, Tensor>,
    model: &mut Transformer,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let mut weights: HashMap<String, Tensor> = base
        .iter()
        .map(|(n, w)| Ok((n.clone(), w.to_dtype(DType::F32)?)))
        .collect::<anyhow::Result<_>>()?;
    for (name, delta) in model.adapter_deltas()? {
        let w = weights
            .get_mut(&name)
            .with_context(|| format!("the base has no {name} to merge an adapter into"))?;
        *w = (&*w + delta.to_device(&Device::Cpu)?)?;
    }
    Ok(weights)
}

/// The adapter in PEFT's format: `adapter_config.json` and `adapter_model.safetensors`, as
/// (file name, bytes) for a checkpoint folder.
pub fn adapter_files(
    params: &[(String, Var)],
    settings: &LoraSettings,
    base_model: &Path,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut modules: Vec<&str> = params
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".lora_A.weight"))
        .filter_map(|n| n.rsplit('.').next())
        .collect();
    modules.sort_unstable();
    modules.dedup();
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model.display().to_string(),
        "r": settings.rank,
        "lora_alpha": settings.alpha,
        "lora_dropout": 0.0,
        "target_modules": modules,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
    });
    let tensors: Vec<(String, Tensor)> = params
        .iter()
        .map(|(n, v)| {
            Ok((
                n.clone(),
                v.as_tensor().to_device(&Device::Cpu)?.contiguous()?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let weights =
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))?;
    Ok(vec![
        (
            "adapter_config.json".into(),
            serde_json::to_vec_pretty(&config)?,
        ),
        ("adapter_model.safetensors".into(), weights),
    ])
}

/// Set `params` from the adapter saved in `dir` (a checkpoint to resume).
pub fn load_adapter(dir: &Path, params: &[(String, Var)], device: &Device) -> anyhow::Result<()> {
    let path = dir.join("adapter_model.safetensors");
    let saved = candle_core::safetensors::load(&path, device)
        .with_context(|| format!("{}: cannot read the adapter", path.display()))?;
    for (name, var) in params {
        let w = saved
            .get(name)
            .with_context(|| format!("{}: lacks {name}", path.display()))?;
        var.set(&w.to_dtype(DType::F32)?)?;
    }
    Ok(())
}
