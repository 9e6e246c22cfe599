//! Reading CPU f32 memory in place: custom ops' inputs (fused attention, RMSNorm, SwiGLU, RoPE)
//! and, for AdamW, tensors.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

/// The f32 values of a contiguous CPU input of custom op `op`, in place.
pub fn f32_values<'s>(storage: &'s CpuStorage, layout: &Layout, op: &str) -> Result<&'s [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: f32 input expected");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input expected");
    };
    Ok(&data[start..end])
}

/// `f` of the values of a contiguous CPU f32 tensor, read in place; `None` for any other tensor.
pub fn with_f32_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(CpuStorage::F32(data)) => {
            let (start, end) = layout.contiguous_offsets()?;
            Some(f(&data[start..end]))
        }
        _ => None,
    }
}

/// `f` of the values of a contiguous CPU f32 tensor, written in place (through candle's in-place
/// op, which holds the tensor's storage for writing while `f` runs); `None` for any other tensor.
/// Every tensor sharing the storage sees the writes: the point, for a parameter a `Var` holds.
pub fn with_f32_values_mut<R>(t: &Tensor, f: impl FnOnce(&mut [f32]) -> R) -> Result<Option<R>> {
    if !t.device().is_cpu() || t.dtype() != candle_core::DType::F32 || !t.is_contiguous() {
        return Ok(None);
    }
    let access = InPlace {
        f: std::cell::RefCell::new(Some(f)),
        out: std::cell::RefCell::new(None),
    };
    t.inplace_op1(&access)?;
    Ok(access.out.into_inner())
}

struct InPlace<F, R> {
    f: std::cell::RefCell<Option<F>>,
    out: std::cell::RefCell<Option<R>>,
}

impl<F: FnOnce(&mut [f32]) -> R, R> candle_core::InplaceOp1 for InPlace<F, R> {
    fn name(&self) -> &'static str {
        "f32-values-in-place"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("in-place access: f32 storage expected");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("in-place access: contiguous tensor expected");
        };
        if let Some(f) = self.f.borrow_mut().take() {
            *self.out.borrow_mut() = Some(f(&mut data[start..end]));
        }
        Ok(())
    }
}
