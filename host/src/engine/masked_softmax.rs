//! Attention's softmax(scale · scores + mask) as one op. Training keeps what each op's backward
//! needs; spelled out as tensor ops (scale, add the mask, the softmax's max, difference, exp and
//! sum) that is six [batch × heads × queries × keys] tensors per layer, which made a DPO step on
//! 2 × 1024 tokens need more than 24 GB for a 135M model. This op keeps its input and its output,
//! and its backward needs only the output: d scores = scale · p ⊙ (g − Σ g ⊙ p).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, D, Layout, Result, Shape, Tensor};

/// `softmax(scores · scale + mask)` over the last dimension. `scores` is [B, H, R, K] f32 where
/// the R query rows are `repeat` groups of the mask's T rows (grouped-query attention); `mask` is
/// [B, 1, T, K], additive. On the CPU one fused op; elsewhere the composite of tensor ops.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, h, rows, keys) = scores.dims4()?;
    let (_, _, t, _) = mask.dims4()?;
    if !scores.device().is_cpu() || scores.dtype() != candle_core::DType::F32 {
        let mask = if rows == t {
            mask.clone()
        } else {
            mask.unsqueeze(2)?
                .broadcast_as((b, 1, rows / t, t, keys))?
                .reshape((b, 1, rows, keys))?
        };
        return candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(&mask)?, D::Minus1);
    }
    let op = MaskedSoftmax {
        mask: Arc::new(mask.flatten_all()?.to_vec1::<f32>()?),
        scale: scale as f32,
        heads: h,
        rows,
        mask_rows: t,
        keys,
    };
    scores.contiguous()?.apply_op1_arc(Arc::new(Box::new(op)))
}

struct MaskedSoftmax {
    mask: Arc<Vec<f32>>,
    scale: f32,
    heads: usize,
    rows: usize,
    mask_rows: usize,
    keys: usize,
}

impl CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("masked-softmax: f32 scores expected");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("masked-softmax: contiguous scores expected");
        };
        let data = &data[start..end];
        let k = self.keys;
        let mut out = vec![0f32; data.len()];
        // Rows are independent: spread them over the cores.
        use rayon::prelude::*;
        out.par_chunks_exact_mut(k)
            .zip(data.par_chunks_exact(k))
            .enumerate()
            .for_each(|(g, (dst, row))| {
                let batch = g / (self.heads * self.rows);
                let query = (g % self.rows) % self.mask_rows;
                let mask = &self.mask[(batch * self.mask_rows + query) * k..][..k];
                let mut max = f32::NEG_INFINITY;
                for ((d, &s), &m) in dst.iter_mut().zip(row).zip(mask) {
                    *d = s * self.scale + m;
                    max = max.max(*d);
                }
                let mut sum = 0f32;
                for d in dst.iter_mut() {
                    *d = (*d - max).exp();
                    sum += *d;
                }
                let inv = 1.0 / sum;
                for d in dst.iter_mut() {
                    *d *= inv;
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dot = (grad_res * res)?.sum_keepdim(D::Minus1)?;
        let grad = (res * grad_res.broadcast_sub(&dot)?)?;
        Ok(Some((grad * f64::from(self.scale))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The composite path is the reference: same values, same gradient, with grouped rows.
    #[test]
    fn the_fused_op_equals_the_composite_in_value_and_gradient() {
        let device = Device::Cpu;
        let (b, h, t, k) = (2, 2, 3, 4);
        let repeat = 2;
        let values: Vec<f32> = (0..b * h * repeat * t * k)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.3)
            .collect();
        let scores = Var::from_vec(values, (b, h, repeat * t, k), &device).unwrap();
        let mask: Vec<f32> = (0..b * t * k)
            .map(|i| if i % 5 == 3 { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, t, k), &device).unwrap();
        let weights = Tensor::from_vec(
            (0..b * h * repeat * t * k)
                .map(|i| (i % 7) as f32 - 3.0)
                .collect::<Vec<_>>(),
            (b, h, repeat * t, k),
            &device,
        )
        .unwrap();
        let fused = masked_softmax(scores.as_tensor(), &mask, 0.5).unwrap();
        let broadcast = mask
            .unsqueeze(2)
            .unwrap()
            .broadcast_as((b, 1, repeat, t, k))
            .unwrap()
            .reshape((b, 1, repeat * t, k))
            .unwrap();
        let composite = candle_nn::ops::softmax(
            &(scores.as_tensor() * 0.5)
                .unwrap()
                .broadcast_add(&broadcast)
                .unwrap(),
            D::Minus1,
        )
        .unwrap();
        let flat = |x: &Tensor| x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, r) in flat(&fused).iter().zip(flat(&composite)) {
            assert!((a - r).abs() < 1e-6, "{a} vs {r}");
        }
        let grad = |y: &Tensor| {
            let loss = (y * &weights).unwrap().sum_all().unwrap();
            flat(loss.backward().unwrap().get(scores.as_tensor()).unwrap())
        };
        for (a, r) in grad(&fused).iter().zip(grad(&composite)) {
            assert!((a - r).abs() < 1e-5, "{a} vs {r}");
        }
    }
}
