//! `spar-host bench parity`: does a device compute what the CPU computes? On a tiny random
//! model: the logits of one sequence, greedy generation, and one DPO step (its loss and every
//! updated weight), on the CPU in f32 and on `--device` in `--dtype`, reported as differences.

use std::process::ExitCode;

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use super::bench::DpoStep;
use crate::engine::device::Precision;
use crate::engine::generate::{Request, generate};
use crate::engine::loader;
use crate::engine::model::attention_mask;
use crate::engine::sampling::SamplingParams;
use crate::engine::tiny::{self, TinySpec};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> anyhow::Result<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

pub fn run(device: &Device, dtype: Precision) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("spar-parity-{}", std::process::id()));
    let model_dir = dir.join("model");
    tiny::write_hf_dir(
        &model_dir,
        &TinySpec {
            hidden: 64,
            intermediate: 128,
            layers: 2,
            max_positions: 512,
            ..TinySpec::default()
        },
    )?;
    let loaded = loader::load(&model_dir)?;
    let cpu = Device::Cpu;

    // Logits of one 64-token sequence.
    let ids: Vec<u32> = (3..67).collect();
    let logits = |device: &Device, dtype: DType| -> anyhow::Result<Tensor> {
        let model = loaded.transformer(dtype, device)?;
        let t = ids.len();
        let input = Tensor::new(ids.as_slice(), device)?.unsqueeze(0)?;
        let positions = Tensor::arange(0u32, t as u32, device)?.unsqueeze(0)?;
        let mask = attention_mask(&[vec![true; t]], t, device)?;
        Ok(model
            .forward(&input, &positions, &mask, None, false)?
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?)
    };
    let reference = logits(&cpu, DType::F32)?;
    let on_device = logits(device, dtype.dtype())?;
    let logit_diff = max_abs_diff(&reference, &on_device)?;
    let logit_scale = reference.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;

    // Greedy generation: how many of 32 tokens agree before the first difference.
    let greedy = |device: &Device, dtype: DType| -> anyhow::Result<Vec<u32>> {
        let model = loaded.transformer(dtype, device)?;
        let request = Request {
            prompt_ids: ids[..16].to_vec(),
            sampling: SamplingParams {
                temperature: 0.0,
                ..SamplingParams::default()
            },
            max_new_tokens: 32,
            stop_token_ids: Vec::new(),
            stop_strings: Vec::new(),
        };
        Ok(generate(&model, &loaded.tokenizer, &[request], device)?[0]
            .token_ids
            .clone())
    };
    let (a, b) = (greedy(&cpu, DType::F32)?, greedy(device, dtype.dtype())?);
    let agreeing = a.iter().zip(&b).take_while(|(x, y)| x == y).count();

    // One DPO step from the same weights on the same pair.
    let step =
        |device: &Device, dtype: Precision| -> anyhow::Result<(f32, Vec<(String, Tensor)>)> {
            let mut dpo = DpoStep::new(&model_dir, (128, 32), 1e-3, device, dtype, None)?;
            let (_, loss) = dpo.run()?;
            Ok((loss, dpo.weights()?))
        };
    let (cpu_loss, cpu_weights) = step(&cpu, Precision::F32)?;
    let (dev_loss, dev_weights) = step(device, dtype)?;
    let mut weight_diff = 0f32;
    for ((name, w), (_, v)) in cpu_weights.iter().zip(&dev_weights) {
        let d = max_abs_diff(w, v)?;
        tracing::debug!(%name, d, "weight difference after one step");
        weight_diff = weight_diff.max(d);
    }
    let _ = std::fs::remove_dir_all(&dir);

    let (cpu_model, simd) = crate::engine::device::cpu_description();
    let report = json!({
        "device": format!("{device:?}"),
        "cpu": cpu_model,
        "simd": simd,
        "dtype": format!("{dtype:?}").to_lowercase(),
        "logits_max_abs_diff": logit_diff,
        "logits_max_abs": logit_scale,
        "greedy_tokens_agreeing": agreeing,
        "greedy_tokens": a.len(),
        "dpo_loss_cpu": cpu_loss,
        "dpo_loss_device": dev_loss,
        "dpo_updated_weights_max_abs_diff": weight_diff,
        "dpo_lr": 1e-3,
    });
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
