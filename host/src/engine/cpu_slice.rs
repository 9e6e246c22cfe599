//! The one way the CPU custom ops (fused attention, RMSNorm, SwiGLU) read their inputs.

use candle_core::{CpuStorage, Layout, Result};

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
