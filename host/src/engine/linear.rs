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

    /// Replace the weight (the same values in another dtype).
    pub(super) fn set_weight(&mut self, weight: Tensor) {
        self.inner = candle_nn::Linear::new(weight, self.inner.bias().cloned());
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Some(delta) = self
            .adapter
            .as_ref()
            .map(|a| a.delta(x))
            .transpose()?
            .flatten()
        else {
            return self.forward_base(x);
        };
        let w = self.inner.weight();
        if self.frozen_under_training(x) {
            // Base product and adapter term in one op: one tensor kept for the backward.
            let w = w.to_dtype(x.dtype())?;
            let y = super::linear_product::frozen_linear_plus(x, &w, &delta)?;
            return self.with_bias(y);
        }
        self.forward_base(x)? + delta
    }

    /// A frozen weight under a tracked input (LoRA training) on the CPU: the weight needs no
    /// gradient.
    fn frozen_under_training(&self, x: &Tensor) -> bool {
        let w = self.inner.weight();
        !w.track_op() && x.track_op() && w.device().is_cpu()
    }

    fn with_bias(&self, y: Tensor) -> Result<Tensor> {
        match self.inner.bias() {
            Some(b) => y.broadcast_add(&b.to_dtype(y.dtype())?),
            None => Ok(y),
        }
    }

    fn forward_base(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.inner.weight();
        let bias = |y: Tensor| self.with_bias(y);
        // A frozen weight under a tracked input (LoRA training): no gradient for the weight. In
        // mixed precision the constant is cast to the compute dtype first.
        if self.frozen_under_training(x) {
            let w = w.to_dtype(x.dtype())?;
            return bias(super::linear_product::frozen_linear(x, &w)?);
        }
        // Before the cast below: the decode kernels read bf16-stored weights as they are.
        if small_matmul::applies(x, w) {
            return bias(small_matmul::matmul_t(x, w)?);
        }
        if w.track_op() && w.device().is_cpu() && w.dtype() == x.dtype() {
            return bias(super::linear_product::trained_linear(x, w)?);
        }
        if w.dtype() != x.dtype() {
            // Mixed precision: f32 master weights cast (differentiably) to the compute dtype, or
            // bf16-stored weights widened for a prefill's GEMM.
            let w = w.to_dtype(x.dtype())?;
            return bias(x.broadcast_matmul(&w.t()?)?);
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
