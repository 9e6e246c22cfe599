//! `x · Wᵀ` for a frozen weight (LoRA's base) as one op whose backward gives only `x`'s
//! gradient. Candle's matmul backward computes both operands' gradients, so a frozen weight
//! would still cost a weight-sized gradient (per batch row, as candle broadcasts it) and a third
//! of the backward's work on every step, for a gradient nobody reads.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};

/// `x · wᵀ` with `x` [.., in] (tracked) and `w` [out, in] (a constant), on the CPU.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op1(FrozenLinear { weight: w.clone() })
}

struct FrozenLinear {
    weight: Tensor,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (out_dim, in_dim) = self.weight.dims2()?;
        let dims = layout.shape().dims();
        let rows = layout.shape().elem_count() / in_dim.max(1);
        let (w_storage, w_layout) = self.weight.storage_and_layout();
        let Storage::Cpu(w) = &*w_storage else {
            candle_core::bail!("frozen-linear: the weight must be on the CPU");
        };
        // One [rows, in] · [in, out] product: x flattened, w read transposed.
        let x_layout = Layout::new(
            Shape::from((rows, in_dim)),
            vec![in_dim, 1],
            layout.start_offset(),
        );
        let wt_layout = w_layout.transpose(0, 1)?;
        let out = storage.matmul(w, (1, rows, out_dim, in_dim), &x_layout, &wt_layout)?;
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("x has a last dimension") = out_dim;
        Ok((out, Shape::from(shape)))
    }

    fn bwd(&self, _x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.broadcast_matmul(&self.weight)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Same output and the same input gradient as candle's matmul, and no weight gradient.
    #[test]
    fn matches_the_matmul_and_its_input_gradient() {
        let device = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 3), &device).unwrap();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 4, 3), &device).unwrap()).unwrap();
        let ours = frozen_linear(x.as_tensor(), &w).unwrap();
        let theirs = x.as_tensor().broadcast_matmul(&w.t().unwrap()).unwrap();
        let diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar()
                .unwrap()
        };
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
}
