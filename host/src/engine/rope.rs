//! Rotary position embeddings (HF's "rotate half" layout). On the CPU in f32 the rotation is one
//! op whose backward is the inverse rotation: spelled out (negate half, concatenate, two products
//! and a sum), autograd kept four more q-sized tensors per layer for q and k each.

use candle_core::{CpuStorage, CustomOp1, D, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::config::ModelConfig;
use super::cpu_slice::f32_values;

/// Rotary position embedding tables (HF's "rotate half" layout).
#[derive(Clone, Debug)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub fn new(cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<Self> {
        let dim = cfg.head_dim();
        let inv_freq: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| 1.0 / (cfg.rope_theta as f32).powf(i as f32 / dim as f32))
            .collect();
        let positions = cfg.max_position_embeddings;
        let inv_freq = Tensor::from_vec(inv_freq, (1, dim / 2), device)?;
        let t = Tensor::arange(0u32, positions as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((positions, 1))?;
        let freqs = t.broadcast_mul(&inv_freq)?;
        let freqs = Tensor::cat(&[&freqs, &freqs], D::Minus1)?;
        Ok(Rope {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
        })
    }

    /// Rotate `x` of shape [B, H, T, D] at `positions` [B, T].
    pub fn apply(&self, x: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let (b, heads, t, d) = x.dims4()?;
        let flat = positions.flatten_all()?;
        if x.device().is_cpu() && x.dtype() == DType::F32 && d % 2 == 0 {
            let table = |t: &Tensor| {
                t.index_select(&flat, 0)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1()
            };
            let op = Rotate {
                cos: table(&self.cos)?,
                sin: table(&self.sin)?,
                heads,
                positions: t,
                width: d,
            };
            return x.contiguous()?.apply_op1(op);
        }
        let cos = self.cos.index_select(&flat, 0)?.reshape((b, 1, t, d))?;
        let sin = self.sin.index_select(&flat, 0)?.reshape((b, 1, t, d))?;
        let (cos, sin) = (cos.to_dtype(x.dtype())?, sin.to_dtype(x.dtype())?);
        let half = d / 2;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
    }
}

/// The rotation of [B, H, T, D] rows by the cos and sin rows of their positions ([B·T, D] each).
struct Rotate {
    cos: Vec<f32>,
    sin: Vec<f32>,
    heads: usize,
    positions: usize,
    width: usize,
}

impl Rotate {
    /// `out = x ⊙ cos + rotate_half(x) ⊙ sin` or, `transposed`, its adjoint (the backward pass:
    /// `dx = g ⊙ cos + rotate_halfᵀ(g ⊙ sin)`).
    fn run(&self, x: &[f32], transposed: bool) -> Vec<f32> {
        let (d, half) = (self.width, self.width / 2);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .enumerate()
            .for_each(|(row, (out, x))| {
                // Rows are (batch, head, position); the tables are (batch, position).
                let batch = row / (self.heads * self.positions);
                let at = (batch * self.positions + row % self.positions) * d;
                let (cos, sin) = (&self.cos[at..at + d], &self.sin[at..at + d]);
                for i in 0..half {
                    if transposed {
                        out[i] = x[i] * cos[i] + x[i + half] * sin[i + half];
                        out[i + half] = x[i + half] * cos[i + half] - x[i] * sin[i];
                    } else {
                        out[i] = x[i] * cos[i] - x[i + half] * sin[i];
                        out[i + half] = x[i + half] * cos[i + half] + x[i] * sin[i + half];
                    }
                }
            });
        out
    }
}

impl CustomOp1 for Rotate {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_values(storage, layout, "rope")?;
        Ok((CpuStorage::F32(self.run(x, false)), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.detach().flatten_all()?.to_vec1::<f32>()?;
        Ok(Some(Tensor::from_vec(
            self.run(&grad, true),
            x.shape(),
            x.device(),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn the_fused_rotation_equals_the_composite_in_value_and_gradient() {
        let device = Device::Cpu;
        let cfg = crate::engine::tiny::config(&crate::engine::tiny::TinySpec::default());
        let rope = Rope::new(&cfg, DType::F32, &device).unwrap();
        let (b, h, t, d) = (2, 3, 5, cfg.head_dim());
        let n = b * h * t * d;
        let values = |seed: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 13 + seed) % 19) as f32 - 9.0) * 0.1)
                .collect()
        };
        let x = Var::from_vec(values(1), (b, h, t, d), &device).unwrap();
        let positions =
            Tensor::from_vec(vec![0u32, 1, 2, 3, 4, 7, 3, 9, 0, 2], (b, t), &device).unwrap();
        let fused = rope.apply(x.as_tensor(), &positions).unwrap();
        // The composite, as the non-CPU path computes it.
        let flat = positions.flatten_all().unwrap();
        let cos = rope
            .cos
            .index_select(&flat, 0)
            .unwrap()
            .reshape((b, 1, t, d))
            .unwrap();
        let sin = rope
            .sin
            .index_select(&flat, 0)
            .unwrap()
            .reshape((b, 1, t, d))
            .unwrap();
        let (x1, x2) = (
            x.narrow(3, 0, d / 2).unwrap(),
            x.narrow(3, d / 2, d / 2).unwrap(),
        );
        let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], 3).unwrap();
        let composite =
            (x.broadcast_mul(&cos).unwrap() + rotated.broadcast_mul(&sin).unwrap()).unwrap();
        let values_of = |y: &Tensor| y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = |a: Vec<f32>, r: Vec<f32>| {
            a.iter()
                .zip(&r)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max)
        };
        assert!(worst(values_of(&fused), values_of(&composite)) < 1e-6);
        let weights = Tensor::from_vec(values(5), (b, h, t, d), &device).unwrap();
        let grad = |y: &Tensor| {
            values_of(
                (y * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
                    .get(x.as_tensor())
                    .unwrap(),
            )
        };
        assert!(worst(grad(&fused), grad(&composite)) < 1e-6);
    }
}
