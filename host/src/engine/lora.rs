//! LoRA adapters on the transformer's linear layers (Hu et al. 2021, in PEFT's layout): a layer
//! with weight `W` [out, in] computes `x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ` with `A` [r, in] and `B` [out, r].
//! Training updates only `A` and `B`; with the adapters switched off the model is exactly its
//! base, which is how DPO's reference is computed without a second model in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Result, Tensor};

/// One layer's adapter.
#[derive(Clone, Debug)]
pub struct Adapter {
    /// [r, in]
    pub a: Tensor,
    /// [out, r]
    pub b: Tensor,
    /// α / r.
    pub scale: f64,
    on: AdapterSwitch,
}

impl Adapter {
    /// What the adapter adds to the layer's output for input `x` [.., in], or `None` while the
    /// adapters are off.
    pub fn delta(&self, x: &Tensor) -> Result<Option<Tensor>> {
        if !self.on.is_on() {
            return Ok(None);
        }
        // Mixed precision: f32 adapters, cast (differentiably) to the compute dtype.
        let a = self.a.to_dtype(x.dtype())?;
        let b = self.b.to_dtype(x.dtype())?;
        // Scaled while low-rank: one small tensor instead of an output-sized one.
        let low = (x.broadcast_matmul(&a.t()?)? * self.scale)?;
        Ok(Some(low.broadcast_matmul(&b.t()?)?))
    }

    /// `scale · B·A` [out, in]: what merging adds to the layer's weight.
    pub fn merged_delta(&self) -> Result<Tensor> {
        self.b.matmul(&self.a)? * self.scale
    }
}

/// Switches every adapter of one model on or off at once (shared by its adapters).
#[derive(Clone, Debug)]
pub struct AdapterSwitch(Arc<AtomicBool>);

impl Default for AdapterSwitch {
    fn default() -> Self {
        AdapterSwitch(Arc::new(AtomicBool::new(true)))
    }
}

impl AdapterSwitch {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// An adapter of `a` [r, in] and `b` [out, r] scaled by `scale`, under this switch.
    pub fn adapter(&self, a: Tensor, b: Tensor, scale: f64) -> Adapter {
        Adapter {
            a,
            b,
            scale,
            on: self.clone(),
        }
    }
}
