//! The model a training run starts from, and what it trains: every weight as an f32 variable,
//! or (LoRA) frozen weights with trainable adapters; and what its checkpoints hold.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use super::checkpoint::CheckpointContents;
use super::lora::{self, LoraSettings};
use crate::engine::device::Precision;
use crate::engine::loader::{self, LoadedModel};
use crate::engine::model::Transformer;

/// The starting model: weights as trainable f32 variables, or (LoRA) frozen weights with
/// trainable adapters.
pub struct Trainable {
    pub loaded: LoadedModel,
    pub varmap: VarMap,
    pub model: Transformer,
    /// What is trained: every weight, or the adapters (named as in PEFT's adapter file).
    pub params: Vec<(String, Var)>,
    pub lora: Option<LoraSettings>,
}

pub fn trainable(model_path: &Path, device: &Device) -> anyhow::Result<Trainable> {
    let loaded = loader::load(model_path)?;
    let varmap = VarMap::new();
    let mut params = Vec::new();
    {
        let mut data = varmap.data().lock().expect("unpoisoned");
        let mut names: Vec<&String> = loaded.weights.keys().collect();
        names.sort();
        for name in names {
            let var = Var::from_tensor(
                &loaded.weights[name]
                    .to_dtype(DType::F32)?
                    .to_device(device)?,
            )?;
            data.insert(name.clone(), var.clone());
            params.push((name.clone(), var));
        }
    }
    let model = Transformer::new(
        &loaded.config,
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )
    .with_context(|| format!("{}: weights do not match the config", model_path.display()))?;
    Ok(Trainable {
        loaded,
        varmap,
        model,
        params,
        lora: None,
    })
}

/// The starting model with its weights frozen (f32 constants) and fresh LoRA adapters on the
/// targeted layers, seeded by `seed`: only the adapters are trainable.
pub fn trainable_lora(
    model_path: &Path,
    device: &Device,
    settings: &LoraSettings,
    seed: u64,
) -> anyhow::Result<Trainable> {
    let loaded = loader::load(model_path)?;
    let frozen: HashMap<String, Tensor> = loaded
        .weights
        .iter()
        .map(|(n, w)| Ok((n.clone(), w.to_dtype(DType::F32)?.to_device(device)?)))
        .collect::<anyhow::Result<_>>()?;
    let mut model = Transformer::new(
        &loaded.config,
        VarBuilder::from_tensors(frozen, DType::F32, device),
    )
    .with_context(|| format!("{}: weights do not match the config", model_path.display()))?;
    let params = lora::attach(&mut model, settings, seed, device)?;
    Ok(Trainable {
        loaded,
        varmap: VarMap::new(),
        model,
        params,
        lora: Some(settings.clone()),
    })
}

impl Trainable {
    /// Forward and backward in `precision` over the f32 master weights.
    pub fn computing_in(mut self, precision: Precision) -> Self {
        if precision != Precision::F32 {
            self.model = self.model.with_compute_dtype(precision.dtype());
        }
        self
    }
}

impl Trainable {
    /// What a checkpoint of this model holds: the HF weights (with LoRA, the base merged with
    /// the adapters) and, with LoRA, the adapter in PEFT's format under `adapter/`.
    pub fn checkpoint_contents(&mut self, base_model: &Path) -> anyhow::Result<CheckpointContents> {
        let Some(settings) = &self.lora else {
            let weights = self
                .params
                .iter()
                .map(|(n, v)| Ok((n.clone(), v.as_tensor().detach().to_device(&Device::Cpu)?)))
                .collect::<anyhow::Result<_>>()?;
            return Ok(CheckpointContents {
                weights,
                files: Vec::new(),
            });
        };
        let files = lora::adapter_files(&self.params, settings, base_model)?
            .into_iter()
            .map(|(name, bytes)| (format!("adapter/{name}"), bytes))
            .collect();
        let weights = lora::merged_weights(&self.loaded.weights, &mut self.model)?;
        Ok(CheckpointContents { weights, files })
    }
}
