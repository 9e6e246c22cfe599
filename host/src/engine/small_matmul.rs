//! `x · Wᵀ` for a handful of rows (decode steps: one row per sequence), reading every weight
//! exactly once. A general GEMM packs the weight matrix first, which for a few rows costs more than
//! the multiply; here each weight row is streamed once against all input rows, the work split
//! across cores by output column. Used only for inference on f32 CPU tensors that carry no
//! gradient; results equal the GEMM's up to floating-point summation order.

use candle_core::{DType, Device, Result, Storage, Tensor};
use rayon::prelude::*;

/// Rows up to which the streaming kernel beats the GEMM.
pub const MAX_ROWS: usize = 16;

/// Whether `x · wᵀ` should take the streaming path.
pub fn applies(x: &Tensor, w: &Tensor) -> bool {
    let rows = x.elem_count() / x.dims().last().copied().unwrap_or(1).max(1);
    rows <= MAX_ROWS
        && !w.track_op()
        && !x.track_op()
        && w.dtype() == DType::F32
        && x.dtype() == DType::F32
        && matches!(w.device(), Device::Cpu)
        && w.rank() == 2
        && w.is_contiguous()
}

/// `x · wᵀ` where `x` is [..., K] and `w` is [N, K]; returns [..., N].
pub fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (n, k) = w.dims2()?;
    let mut out_dims = x.dims().to_vec();
    let m = x.elem_count() / k;
    *out_dims.last_mut().expect("rank >= 1") = n;
    let xs: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let (storage, layout) = w.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("small_matmul needs a CPU tensor");
    };
    let weights = &cpu.as_slice::<f32>()?[layout.start_offset()..layout.start_offset() + n * k];
    // Output column blocks per task; each task writes its block transposed ([n, m]).
    const BLOCK: usize = 256;
    let mut transposed = vec![0f32; n * m];
    transposed
        .par_chunks_mut(BLOCK * m)
        .enumerate()
        .for_each(|(block, out)| {
            let first = block * BLOCK;
            for (j, out_row) in out.chunks_mut(m).enumerate() {
                let w_row = &weights[(first + j) * k..(first + j + 1) * k];
                dots(&xs, m, k, w_row, out_row);
            }
        });
    let mut data = vec![0f32; m * n];
    for (j, col) in transposed.chunks(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            data[i * n + j] = *v;
        }
    }
    Tensor::from_vec(data, out_dims, &Device::Cpu)
}

/// `out[i] = xs[i] · w_row` for the `m` rows of `xs`.
fn dots(xs: &[f32], m: usize, k: usize, w_row: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { dots_avx2(xs, m, k, w_row, out) };
            return;
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = xs[i * k..(i + 1) * k]
            .iter()
            .zip(w_row)
            .map(|(a, b)| a * b)
            .sum();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2(xs: &[f32], m: usize, k: usize, w_row: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let lanes = k / 8 * 8;
    let mut start = 0;
    while start < m {
        let rows = (m - start).min(8);
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut kk = 0;
        while kk < lanes {
            // SAFETY: kk + 8 <= lanes <= k, and each row of xs and w_row holds k floats.
            let w = unsafe { _mm256_loadu_ps(w_row.as_ptr().add(kk)) };
            for (r, a) in acc.iter_mut().enumerate().take(rows) {
                let x = unsafe { _mm256_loadu_ps(xs.as_ptr().add((start + r) * k + kk)) };
                *a = _mm256_fmadd_ps(x, w, *a);
            }
            kk += 8;
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            let mut lanes_out = [0f32; 8];
            // SAFETY: an 8-float array is a valid unaligned store target.
            unsafe { _mm256_storeu_ps(lanes_out.as_mut_ptr(), *a) };
            let mut sum: f32 = lanes_out.iter().sum();
            let row = &xs[(start + r) * k..(start + r + 1) * k];
            for t in lanes..k {
                sum += row[t] * w_row[t];
            }
            out[start + r] = sum;
        }
        start += rows;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_candle_matmul() {
        let device = Device::Cpu;
        for (m, k, n) in [(1, 576, 700), (8, 37, 300), (13, 64, 5), (16, 9, 1)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &device).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &device).unwrap();
            let fast = matmul_t(&x, &w).unwrap();
            let reference = x.matmul(&w.t().unwrap()).unwrap();
            let diff: f32 = (fast - reference)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar()
                .unwrap();
            assert!(diff < 1e-3, "({m},{k},{n}): {diff}");
        }
    }
}
