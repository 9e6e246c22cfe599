//! AdamW with f32 moments (whatever the parameter dtype), global gradient-norm clipping, and the
//! learning-rate schedules SPaR uses (linear decay after warmup; constant after warmup).

use std::collections::HashMap;

use candle_core::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 disables).
    pub max_grad_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
        }
    }
}

/// Learning rate at `step` (0-based) of `total`: linear warmup from zero, then linear decay to
/// zero or constant; HF's `get_linear_schedule_with_warmup` / `get_constant_schedule_with_warmup`
/// (whose first step has learning rate 0 when there is warmup).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Linear,
    Constant,
}

pub fn learning_rate(
    base: f64,
    schedule: Schedule,
    warmup: usize,
    total: usize,
    step: usize,
) -> f64 {
    if step < warmup {
        return base * step as f64 / warmup as f64;
    }
    match schedule {
        Schedule::Constant => base,
        Schedule::Linear => {
            let span = total.saturating_sub(warmup).max(1);
            base * (1.0 - (step - warmup) as f64 / span as f64).max(0.0)
        }
    }
}

/// The optimizer state: one pair of f32 moments per parameter, by name.
pub struct AdamW {
    pub config: AdamWConfig,
    pub step: usize,
    params: Vec<(String, Var)>,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
}

impl AdamW {
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> Result<AdamW> {
        let mut m = HashMap::new();
        let mut v = HashMap::new();
        for (name, var) in &params {
            m.insert(name.clone(), var.zeros_like()?.to_dtype(DType::F32)?);
            v.insert(name.clone(), var.zeros_like()?.to_dtype(DType::F32)?);
        }
        Ok(AdamW {
            config,
            step: 0,
            params,
            m,
            v,
        })
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Apply gradients `grads` (by name) at learning rate `lr`; returns the pre-clip global norm.
    pub fn step(&mut self, grads: &HashMap<String, Tensor>, lr: f64) -> Result<f64> {
        let mut norm_sq = 0f64;
        for g in grads.values() {
            norm_sq += g
                .to_dtype(DType::F32)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f32>()? as f64;
        }
        let norm = norm_sq.sqrt();
        let clip = if self.config.max_grad_norm > 0.0 && norm > self.config.max_grad_norm {
            self.config.max_grad_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let (b1, b2) = (self.config.beta1, self.config.beta2);
        let bias1 = 1.0 - b1.powi(self.step as i32);
        let bias2 = 1.0 - b2.powi(self.step as i32);
        let params = self.params.clone();
        for (name, var) in &params {
            let Some(g) = grads.get(name) else { continue };
            if matches!(var.device(), candle_core::Device::Cpu) && var.dtype() == DType::F32 {
                self.step_cpu(name, var, g, clip, lr, bias1, bias2)?;
                continue;
            }
            let g = (g.to_dtype(DType::F32)? * clip)?;
            let m = ((&self.m[name] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[name] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / bias1)? / ((&v / bias2)?.sqrt()? + self.config.eps)?)?;
            let theta = var.as_tensor().to_dtype(DType::F32)?;
            let theta = ((theta * (1.0 - lr * self.config.weight_decay))? - (update * lr)?)?;
            var.set(&theta.to_dtype(var.dtype())?)?;
            self.m.insert(name.clone(), m);
            self.v.insert(name.clone(), v);
        }
        Ok(norm)
    }

    /// The same update as a single fused pass over CPU memory (one read and one write of each
    /// array instead of a dozen temporary tensors), split across cores.
    #[allow(clippy::too_many_arguments)]
    fn step_cpu(
        &mut self,
        name: &str,
        var: &Var,
        g: &Tensor,
        clip: f64,
        lr: f64,
        bias1: f64,
        bias2: f64,
    ) -> Result<()> {
        use rayon::prelude::*;
        let shape = var.shape().clone();
        let mut theta: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
        let grad: Vec<f32> = g.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let mut m: Vec<f32> = self.m[name].flatten_all()?.to_vec1()?;
        let mut v: Vec<f32> = self.v[name].flatten_all()?.to_vec1()?;
        let c = &self.config;
        let (b1, b2, eps, decay) = (
            c.beta1 as f32,
            c.beta2 as f32,
            c.eps as f32,
            (1.0 - lr * c.weight_decay) as f32,
        );
        let (clip, lr, bias1, bias2) = (clip as f32, lr as f32, bias1 as f32, bias2 as f32);
        const CHUNK: usize = 1 << 16;
        theta
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(((theta, m), v), grad)| {
                for i in 0..theta.len() {
                    let g = grad[i] * clip;
                    m[i] = b1 * m[i] + (1.0 - b1) * g;
                    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                    let update = (m[i] / bias1) / ((v[i] / bias2).sqrt() + eps);
                    theta[i] = theta[i] * decay - lr * update;
                }
            });
        var.set(&Tensor::from_vec(theta, shape.clone(), var.device())?)?;
        self.m.insert(
            name.to_string(),
            Tensor::from_vec(m, shape.clone(), var.device())?,
        );
        self.v
            .insert(name.to_string(), Tensor::from_vec(v, shape, var.device())?);
        Ok(())
    }

    /// Moments as named tensors (`m.<name>`, `v.<name>`), for checkpoints.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (name, t) in &self.m {
            out.insert(format!("m.{name}"), t.clone());
        }
        for (name, t) in &self.v {
            out.insert(format!("v.{name}"), t.clone());
        }
        out
    }

    /// Restore moments saved by [`AdamW::state`] and the step count.
    pub fn load_state(
        &mut self,
        state: &HashMap<String, Tensor>,
        step: usize,
    ) -> anyhow::Result<()> {
        for (name, _) in &self.params {
            let m = state
                .get(&format!("m.{name}"))
                .ok_or_else(|| anyhow::anyhow!("optimizer state lacks m.{name}"))?;
            let v = state
                .get(&format!("v.{name}"))
                .ok_or_else(|| anyhow::anyhow!("optimizer state lacks v.{name}"))?;
            self.m.insert(name.clone(), m.clone());
            self.v.insert(name.clone(), v.clone());
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedules_match_hf_step_for_step() {
        // transformers' get_linear_schedule_with_warmup(num_warmup_steps=2,
        // num_training_steps=5): 0, 1/2, 1, 2/3, 1/3 of the base rate.
        let linear: Vec<f64> = (0..5)
            .map(|s| learning_rate(3.0, Schedule::Linear, 2, 5, s))
            .collect();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&linear, &[0.0, 1.5, 3.0, 2.0, 1.0]), "{linear:?}");
        let constant: Vec<f64> = (0..4)
            .map(|s| learning_rate(3.0, Schedule::Constant, 2, 4, s))
            .collect();
        assert!(close(&constant, &[0.0, 1.5, 3.0, 3.0]), "{constant:?}");
        assert_eq!(learning_rate(3.0, Schedule::Linear, 0, 2, 0), 3.0);
    }
}
