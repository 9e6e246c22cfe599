//! AdamW with f32 moments (whatever the parameter dtype), global gradient-norm clipping, and the
//! learning-rate schedules SPaR uses (linear decay after warmup; constant after warmup).

use std::collections::HashMap;

use candle_core::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::engine::cpu_slice::{with_f32_values, with_f32_values_mut};

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

/// One parameter's first and second moments, in f32 on its device.
struct Moments {
    m: Tensor,
    v: Tensor,
}

fn on_host(var: &Var) -> bool {
    matches!(var.device(), candle_core::Device::Cpu) && var.dtype() == DType::F32
}

/// The optimizer state: one pair of f32 moments per parameter, by name.
pub struct AdamW {
    pub config: AdamWConfig,
    pub step: usize,
    params: Vec<(String, Var)>,
    moments: HashMap<String, Moments>,
}

impl AdamW {
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> Result<AdamW> {
        let mut moments = HashMap::new();
        for (name, var) in &params {
            let state = Moments {
                m: var.zeros_like()?.to_dtype(DType::F32)?,
                v: var.zeros_like()?.to_dtype(DType::F32)?,
            };
            moments.insert(name.clone(), state);
        }
        Ok(AdamW {
            config,
            step: 0,
            params,
            moments,
        })
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Apply gradients `grads` (by name) at learning rate `lr`; returns the pre-clip global norm.
    pub fn step(&mut self, grads: &HashMap<String, Tensor>, lr: f64) -> Result<f64> {
        use rayon::prelude::*;
        let mut norm_sq = 0f64;
        for g in grads.values() {
            let host = with_f32_values(g, |data| {
                data.par_chunks(1 << 16)
                    .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
                    .sum::<f64>()
            });
            norm_sq += match host {
                Some(sum) => sum,
                None => g
                    .to_dtype(DType::F32)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f32>()? as f64,
            };
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
        let hyper = Hyper {
            b1,
            b2,
            eps: self.config.eps,
            decay: 1.0 - lr * self.config.weight_decay,
            clip,
            lr,
            bias1,
            bias2,
        };
        for (name, var) in &self.params {
            let Some(g) = grads.get(name) else { continue };
            let Moments { m, v } = self
                .moments
                .get_mut(name)
                .expect("moments for every parameter");
            if on_host(var) && g.shape() == var.shape() {
                step_host(var, g, m, v, &hyper)?;
                continue;
            }
            let g = (g.to_dtype(DType::F32)? * clip)?;
            *m = ((&*m * b1)? + (&g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&*m / bias1)? / ((&*v / bias2)?.sqrt()? + hyper.eps)?)?;
            let theta = var.as_tensor().to_dtype(DType::F32)?;
            let theta = ((theta * hyper.decay)? - (update * lr)?)?;
            var.set(&theta.to_dtype(var.dtype())?)?;
        }
        Ok(norm)
    }

    /// Moments as named tensors (`m.<name>`, `v.<name>`), for checkpoints.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (name, Moments { m, v }) in &self.moments {
            out.insert(format!("m.{name}"), m.clone());
            out.insert(format!("v.{name}"), v.clone());
        }
        out
    }

    /// Restore moments saved by [`AdamW::state`] and the step count.
    pub fn load_state(
        &mut self,
        state: &HashMap<String, Tensor>,
        step: usize,
    ) -> anyhow::Result<()> {
        for (name, var) in &self.params {
            let m = state
                .get(&format!("m.{name}"))
                .ok_or_else(|| anyhow::anyhow!("optimizer state lacks m.{name}"))?;
            let v = state
                .get(&format!("v.{name}"))
                .ok_or_else(|| anyhow::anyhow!("optimizer state lacks v.{name}"))?;
            for (key, t) in [("m", m), ("v", v)] {
                if t.shape() != var.shape() {
                    anyhow::bail!(
                        "optimizer state {key}.{name} has shape {:?}, the parameter {:?}",
                        t.shape(),
                        var.shape()
                    );
                }
            }
            // Copies of their own: AdamW updates the moments in place.
            let owned_f32 = |t: &Tensor| t.to_dtype(DType::F32)?.copy();
            let moments = Moments {
                m: owned_f32(m)?,
                v: owned_f32(v)?,
            };
            self.moments.insert(name.clone(), moments);
        }
        self.step = step;
        Ok(())
    }
}

/// One step's settings, in the order AdamW uses them.
struct Hyper {
    b1: f64,
    b2: f64,
    eps: f64,
    /// 1 − lr · weight decay.
    decay: f64,
    clip: f64,
    lr: f64,
    bias1: f64,
    bias2: f64,
}

/// The update of a CPU f32 parameter as one pass over its memory, split across cores: the
/// gradient is read and the parameter and its moments are updated in place, so a step allocates
/// nothing and touches each of the four weight-sized arrays once.
fn step_host(var: &Var, g: &Tensor, m: &Tensor, v: &Tensor, h: &Hyper) -> Result<()> {
    use rayon::prelude::*;
    let (b1, b2, eps, decay) = (h.b1 as f32, h.b2 as f32, h.eps as f32, h.decay as f32);
    let (clip, lr, bias1, bias2) = (h.clip as f32, h.lr as f32, h.bias1 as f32, h.bias2 as f32);
    let g = g.to_dtype(DType::F32)?.contiguous()?;
    const CHUNK: usize = 1 << 16;
    let update = |theta: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32]| {
        let n = theta.len();
        if m.len() != n || v.len() != n || grad.len() != n {
            candle_core::bail!("AdamW: parameter, gradient and moments differ in size");
        }
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
                    let step = (m[i] / bias1) / ((v[i] / bias2).sqrt() + eps);
                    theta[i] = theta[i] * decay - lr * step;
                }
            });
        Ok(())
    };
    let done = with_f32_values_mut(m, |m| {
        with_f32_values_mut(v, |v| {
            with_f32_values_mut(var.as_tensor(), |theta| {
                with_f32_values(&g, |grad| update(theta, m, v, grad))
            })
        })
    })?;
    match done {
        Some(Ok(Some(Ok(Some(Some(result)))))) => result,
        Some(Err(e)) | Some(Ok(Some(Err(e)))) => Err(e),
        _ => candle_core::bail!(
            "AdamW: CPU f32 contiguous parameter, gradient and moments of one shape expected"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass CPU update (f32 parameters) against the tensor formula (taken by f64
    /// parameters): same parameters and moments after clipped steps with weight decay.
    #[test]
    fn the_host_update_equals_the_tensor_formula() {
        let device = candle_core::Device::Cpu;
        let n = 70_000; // more than one chunk
        let start: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
        let config = AdamWConfig {
            lr: 1e-2,
            weight_decay: 0.1,
            max_grad_norm: 0.5,
            ..AdamWConfig::default()
        };
        let f32_var = Var::from_vec(start.clone(), n, &device).unwrap();
        let f64_var = Var::from_tensor(&f32_var.to_dtype(DType::F64).unwrap()).unwrap();
        let mut host = AdamW::new(vec![("w".into(), f32_var.clone())], config.clone()).unwrap();
        let mut formula = AdamW::new(vec![("w".into(), f64_var.clone())], config).unwrap();
        for step in 0..3 {
            let grad: Vec<f32> = (0..n)
                .map(|i| ((i * 7 + step) % 11) as f32 * 0.003 - 0.015)
                .collect();
            let grad = Tensor::from_vec(grad, n, &device).unwrap();
            let norm_host = host
                .step(&HashMap::from([("w".to_string(), grad.clone())]), 1e-2)
                .unwrap();
            let grad64 = grad.to_dtype(DType::F64).unwrap();
            let norm_formula = formula
                .step(&HashMap::from([("w".to_string(), grad64)]), 1e-2)
                .unwrap();
            // The tensor path sums the squares in f32, the host path in f64.
            assert!((norm_host - norm_formula).abs() < 1e-5 * norm_formula.max(1.0));
        }
        let values = |t: &Tensor| t.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
        let worst = |a: Vec<f32>, b: Vec<f32>| {
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        assert!(worst(values(f32_var.as_tensor()), values(f64_var.as_tensor())) < 1e-6);
        let (hs, fs) = (host.state(), formula.state());
        for key in ["m.w", "v.w"] {
            assert!(worst(values(&hs[key]), values(&fs[key])) < 1e-7, "{key}");
        }
        assert!(
            worst(values(f32_var.as_tensor()), start) > 1e-3,
            "the parameters moved"
        );
    }

    /// Saved moments of the wrong shape are refused by name, not updated out of bounds; saved
    /// ones of the right shape are copied, so the update never writes into the caller's state.
    #[test]
    fn loading_moments_checks_their_shape_and_copies_them() {
        let device = candle_core::Device::Cpu;
        let var = Var::from_vec(vec![1f32; 6], (2, 3), &device).unwrap();
        let mut optimizer =
            AdamW::new(vec![("w".into(), var.clone())], AdamWConfig::default()).unwrap();
        let zeros = |shape: (usize, usize)| Tensor::zeros(shape, DType::F32, &device).unwrap();
        let wrong = HashMap::from([
            ("m.w".to_string(), zeros((3, 2))),
            ("v.w".to_string(), zeros((2, 3))),
        ]);
        let err = optimizer.load_state(&wrong, 1).unwrap_err().to_string();
        assert!(err.contains("m.w") && err.contains("shape"), "{err}");
        let saved = HashMap::from([
            ("m.w".to_string(), zeros((2, 3))),
            ("v.w".to_string(), zeros((2, 3))),
        ]);
        optimizer.load_state(&saved, 1).unwrap();
        let grad = Tensor::ones((2, 3), DType::F32, &device).unwrap();
        optimizer
            .step(&HashMap::from([("w".to_string(), grad)]), 1e-2)
            .unwrap();
        let untouched = saved["m.w"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(untouched.iter().all(|&x| x == 0.0), "{untouched:?}");
        let moved = optimizer.state()["m.w"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(moved.iter().all(|&x| x > 0.0), "{moved:?}");
    }

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
