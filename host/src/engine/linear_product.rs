//! The linear layer's product `x · Wᵀ` for training on the CPU, as ops whose backward gives
//! exactly the gradients needed, each in one GEMM over all the batch's rows:
//! - a trained weight ([`trained_linear`]): candle's matmul of a [B, T, in] input broadcasts the
//!   weight per batch row, so its backward made a [B, in, out] gradient, summed it over B and
//!   transposed it, each a pass over weight-sized memory; here the weight's gradient is one
//!   [out, in] product, in the weight's own layout;
//! - a frozen weight (LoRA's base, [`frozen_linear`]): only `x`'s (and `d`'s) gradient. Candle's
//!   backward would compute the weight's too, a third of the backward's work, for a gradient
//!   nobody reads. Adding the adapter's term `d` inside the op keeps one output-sized tensor per
//!   layer for the backward instead of three (the base output, the term and their sum).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Storage, Tensor};

/// `x · wᵀ` with `x` [.., in] (tracked) and `w` [out, in] (a constant), on the CPU.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op1(FrozenLinear { weight: w.clone() })
}

/// `x · wᵀ + d`, with `d` shaped like the product (an adapter's term).
pub fn frozen_linear_plus(x: &Tensor, w: &Tensor, d: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&d.contiguous()?, FrozenLinear { weight: w.clone() })
}

struct FrozenLinear {
    weight: Tensor,
}

/// `x · wᵀ` with `x` [.., in] and `w` [out, in] both differentiable, on the CPU, same dtype.
pub fn trained_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, TrainedLinear)
}

struct TrainedLinear;

impl CustomOp2 for TrainedLinear {
    fn name(&self) -> &'static str {
        "trained-linear"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        product(x, x_layout, w, w_layout)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (out_dim, in_dim) = w.dims2()?;
        let rows = x.elem_count() / in_dim.max(1);
        let grad = grad.detach().contiguous()?.reshape((rows, out_dim))?;
        let grad_x = grad.matmul(&w.detach())?.reshape(x.shape())?;
        let grad_w = grad.t()?.matmul(&x.detach().reshape((rows, in_dim))?)?;
        Ok((Some(grad_x), Some(grad_w)))
    }
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        self.product(storage, layout)
    }

    fn bwd(&self, _x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.broadcast_matmul(&self.weight)?))
    }
}

impl CustomOp2 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear-plus"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        d: &CpuStorage,
        d_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (mut out, shape) = self.product(x, x_layout)?;
        if d_layout.shape() != &shape {
            candle_core::bail!(
                "frozen-linear-plus: the term has shape {:?}, not {shape:?}",
                d_layout.shape()
            );
        }
        let Some((start, end)) = d_layout.contiguous_offsets() else {
            candle_core::bail!("frozen-linear-plus: a contiguous term expected");
        };
        match (&mut out, d) {
            (CpuStorage::F32(o), CpuStorage::F32(d)) => {
                o.iter_mut().zip(&d[start..end]).for_each(|(o, d)| *o += d)
            }
            (CpuStorage::BF16(o), CpuStorage::BF16(d)) => {
                o.iter_mut().zip(&d[start..end]).for_each(|(o, d)| *o += *d)
            }
            (CpuStorage::F16(o), CpuStorage::F16(d)) => {
                o.iter_mut().zip(&d[start..end]).for_each(|(o, d)| *o += *d)
            }
            _ => candle_core::bail!(
                "frozen-linear-plus: the term's dtype differs from the product's"
            ),
        }
        Ok((out, shape))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _d: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((
            Some(grad.broadcast_matmul(&self.weight)?),
            Some(grad.clone()),
        ))
    }
}

impl FrozenLinear {
    /// `x · wᵀ` on the CPU.
    fn product(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (w_storage, w_layout) = self.weight.storage_and_layout();
        let Storage::Cpu(w) = &*w_storage else {
            candle_core::bail!("frozen-linear: the weight must be on the CPU");
        };
        product(storage, layout, w, w_layout)
    }
}

/// `x · wᵀ` for `x` [.., in] and `w` [out, in] on the CPU: one [rows, in] · [in, out] product,
/// `x` flattened and `w` read transposed.
fn product(
    x: &CpuStorage,
    x_layout: &Layout,
    w: &CpuStorage,
    w_layout: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let (out_dim, in_dim) = w_layout.shape().dims2()?;
    let dims = x_layout.shape().dims();
    let rows = x_layout.shape().elem_count() / in_dim.max(1);
    let flat = Layout::new(
        Shape::from((rows, in_dim)),
        vec![in_dim, 1],
        x_layout.start_offset(),
    );
    let out = x.matmul(
        w,
        (1, rows, out_dim, in_dim),
        &flat,
        &w_layout.transpose(0, 1)?,
    )?;
    let mut shape = dims.to_vec();
    *shape.last_mut().expect("x has a last dimension") = out_dim;
    Ok((out, Shape::from(shape)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::engine::test_support::max_abs_diff as diff;

    /// Same output and the same input gradient as candle's matmul, and no weight gradient.
    #[test]
    fn matches_the_matmul_and_its_input_gradient() {
        let device = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 3), &device).unwrap();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 4, 3), &device).unwrap()).unwrap();
        let ours = frozen_linear(x.as_tensor(), &w).unwrap();
        let theirs = x.as_tensor().broadcast_matmul(&w.t().unwrap()).unwrap();
        assert!(diff(&ours, &theirs) < 1e-5);
        let weights = Tensor::randn(0f32, 1.0, (2, 4, 5), &device).unwrap();
        let g_ours = (&ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_theirs = (&theirs * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (a, b) = (
            g_ours.get(x.as_tensor()).unwrap(),
            g_theirs.get(x.as_tensor()).unwrap(),
        );
        assert!(diff(a, b) < 1e-5);
        assert!(
            g_ours.get(&w).is_none(),
            "no gradient for the frozen weight"
        );
    }

    /// Same output and the same gradients of both operands as candle's broadcast matmul.
    #[test]
    fn the_trained_product_matches_the_matmul_and_both_gradients() {
        let device = Device::Cpu;
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 3), &device).unwrap()).unwrap();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 4, 3), &device).unwrap()).unwrap();
        let ours = trained_linear(x.as_tensor(), w.as_tensor()).unwrap();
        let theirs = x
            .as_tensor()
            .broadcast_matmul(&w.as_tensor().t().unwrap())
            .unwrap();
        assert!(diff(&ours, &theirs) < 1e-5);
        let weights = Tensor::randn(0f32, 1.0, (2, 4, 5), &device).unwrap();
        let grads = |y: &Tensor| {
            (y * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        };
        let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
        for v in [&x, &w] {
            let (a, b) = (g_ours.get(v.as_tensor()), g_theirs.get(v.as_tensor()));
            assert!(diff(a.unwrap(), b.unwrap()) < 1e-5);
        }
    }
}
