//! The transformer's linear layer (`x · Wᵀ + b`, HF layout), with an optional LoRA adapter.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::lora::Adapter;
use super::small_matmul;

/// A linear layer that takes the streaming kernel for decode-sized inputs when no gradient is
/// needed, and candle's differentiable matmul otherwise; an adapter adds its low-rank term.
#[derive(Clone, Debug)]
pub(super) struct Linear {
    inner: candle_nn::Linear,
    /// The module's name in the checkpoint (`model.layers.0.self_attn.q_proj`), which PEFT's
    /// adapter names and `target_modules` refer to.
    pub(super) name: String,
    pub(super) adapter: Option<Adapter>,
}

impl Linear {
    pub(super) fn new(weight: Tensor, bias: Option<Tensor>, name: String) -> Self {
        Linear {
            inner: candle_nn::Linear::new(weight, bias),
            name,
            adapter: None,
        }
    }

    /// [out, in]
    pub(super) fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.forward_base(x)?;
        match self.adapter.as_ref().map(|a| a.delta(x)).transpose()? {
            Some(Some(delta)) => y + delta,
            _ => Ok(y),
        }
    }

    fn forward_base(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.inner.weight();
        let bias = |y: Tensor| match self.inner.bias() {
            Some(b) => y.broadcast_add(&b.to_dtype(y.dtype())?),
            None => Ok(y),
        };
        // A frozen weight under a tracked input (LoRA training): no gradient for the weight. In
        // mixed precision the constant is cast to the compute dtype first.
        if !w.track_op() && x.track_op() && w.device().is_cpu() {
            let w = w.to_dtype(x.dtype())?;
            return bias(super::frozen_linear::frozen_linear(x, &w)?);
        }
        if w.dtype() != x.dtype() {
            // Mixed precision: f32 master weights, cast (differentiably) to the compute dtype.
            let w = w.to_dtype(x.dtype())?;
            return bias(x.broadcast_matmul(&w.t()?)?);
        }
        if small_matmul::applies(x, w) {
            return bias(small_matmul::matmul_t(x, w)?);
        }
        self.inner.forward(x)
    }
}

pub(super) fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    Ok(Linear::new(weight, bias, vb.prefix()))
}
