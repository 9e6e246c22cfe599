//! RMS normalisation as one op with a backward pass (candle-nn's fused one has none). By its
//! formula in tensor ops, autograd keeps x², the normalised rows and the product: three
//! [tokens × hidden] tensors per norm, two norms per layer. This op keeps its input and weight and
//! recomputes each row's scale in the backward pass.

use candle_core::{CpuStorage, CustomOp2, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::f32_values;

/// `x / sqrt(mean(x², last dim) + eps) * weight`. On the CPU in f32 one op; elsewhere the formula
/// in tensor ops (in f32, then back to x's dtype).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(variance + eps)?.sqrt()?)?;
        return normed
            .to_dtype(dtype)?
            .broadcast_mul(&weight.to_dtype(dtype)?);
    }
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, RmsNorm { eps: eps as f32 })
}

struct RmsNorm {
    eps: f32,
}

impl RmsNorm {
    /// 1 / sqrt(mean(row²) + eps), accumulated in f64 as the row can be long.
    fn inverse_rms(&self, row: &[f32]) -> f32 {
        let sum: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        1.0 / ((sum / row.len() as f64) as f32 + self.eps).sqrt()
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, weight) = (
            f32_values(s1, l1, "rms-norm")?,
            f32_values(s2, l2, "rms-norm")?,
        );
        let width = weight.len();
        if l1.shape().dims().last() != Some(&width) {
            candle_core::bail!("rms-norm: weight of {width} for rows of {:?}", l1.shape());
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(width)
            .zip(x.par_chunks(width))
            .for_each(|(out, row)| {
                let r = self.inverse_rms(row);
                for ((o, &v), &w) in out.iter_mut().zip(row).zip(weight) {
                    *o = v * r * w;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let values = |t: &Tensor| t.detach().flatten_all()?.to_vec1::<f32>();
        let (xs, w, d) = (values(x)?, values(weight)?, values(grad)?);
        let width = w.len();
        let mut grad_x = vec![0f32; xs.len()];
        // dx = r (d ⊙ w) − x r³ mean((d ⊙ w) ⊙ x); dw = Σ_rows d ⊙ x r, summed per thread.
        let grad_w = grad_x
            .par_chunks_mut(width)
            .zip(xs.par_chunks(width).zip(d.par_chunks(width)))
            .fold(
                || vec![0f64; width],
                |mut grad_w, (dx, (row, d))| {
                    let r = self.inverse_rms(row);
                    let dot: f64 = row
                        .iter()
                        .zip(d)
                        .zip(&w)
                        .map(|((&v, &g), &w)| f64::from(g * w) * f64::from(v))
                        .sum();
                    let correction = (dot / width as f64) as f32 * r * r * r;
                    for i in 0..width {
                        dx[i] = r * d[i] * w[i] - row[i] * correction;
                        grad_w[i] += f64::from(d[i] * row[i] * r);
                    }
                    grad_w
                },
            )
            .reduce(
                || vec![0f64; width],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        let grad_w: Vec<f32> = grad_w.into_iter().map(|v| v as f32).collect();
        Ok((
            Some(Tensor::from_vec(grad_x, x.shape(), x.device())?),
            Some(Tensor::from_vec(grad_w, weight.shape(), weight.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_fused_op_equals_the_formula_in_value_and_gradients() {
        let device = Device::Cpu;
        let (rows, width) = (37, 24);
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 29 + seed) % 31) as f32 - 15.0) * 0.1)
                .collect()
        };
        let x = Var::from_vec(values(rows * width, 1), (1, rows, width), &device).unwrap();
        let w = Var::from_vec(values(width, 5), width, &device).unwrap();
        let weights = Tensor::from_vec(values(rows * width, 9), (1, rows, width), &device).unwrap();
        let fused = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        let variance = x
            .as_tensor()
            .sqr()
            .unwrap()
            .mean_keepdim(D::Minus1)
            .unwrap();
        let formula = x
            .as_tensor()
            .broadcast_div(&(variance + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(w.as_tensor())
            .unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = |a: Vec<f32>, b: Vec<f32>| {
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
                .fold(0f32, f32::max)
        };
        assert!(worst(flat(&fused), flat(&formula)) < 1e-6);
        let grads = |y: &Tensor| {
            let g = (y * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            (
                flat(g.get(x.as_tensor()).unwrap()),
                flat(g.get(w.as_tensor()).unwrap()),
            )
        };
        let ((fx, fw), (cx, cw)) = (grads(&fused), grads(&formula));
        assert!(worst(fx, cx) < 1e-5);
        assert!(worst(fw, cw) < 1e-5);
    }
}
