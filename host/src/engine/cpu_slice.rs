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
