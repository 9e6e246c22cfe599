//! `x · Wᵀ` for the few dozen rows of a decode step (one row per sequence), reading every weight
//! once. A general GEMM packs the weight matrix first, which for a few rows costs about as much as
//! the multiply; here tiles of weight rows are streamed against groups of input rows, the work
//! split across cores by output column. Used only for inference on CPU tensors that carry no
//! gradient: f32 inputs against f32 weights, or against weights stored in bf16 (half the memory
//! to stream at batch 1, where a decode step is bound by memory bandwidth).
//!
//! The kernel is chosen at run time: AVX-512 where the CPU has it, else AVX2 with FMA, else plain
//! Rust. Every output element is one dot product whose summation order depends on the kernel and
//! `k` alone, never on the batch, so a sequence's logits do not depend on its batch mates.

use candle_core::{DType, Device, Result, Storage, Tensor};
use rayon::prelude::*;

use super::simd_level::{Kernel, forced_or_detected};

/// Rows up to which the streaming kernel beats the GEMM on the machines measured (README,
/// "Benchmarks").
pub const MAX_ROWS: usize = 64;

/// Input rows up to which AVX-512 streams one weight row at a time (memory-bound steps).
const ONE_WEIGHT_ROW_UP_TO: usize = 4;

/// Whether `x · wᵀ` should take the streaming path.
pub fn applies(x: &Tensor, w: &Tensor) -> bool {
    let rows = x.elem_count() / x.dims().last().copied().unwrap_or(1).max(1);
    rows <= MAX_ROWS
        && forced_or_detected().is_some()
        && !w.track_op()
        && !x.track_op()
        && matches!(w.dtype(), DType::F32 | DType::BF16)
        && x.dtype() == DType::F32
        && matches!(w.device(), Device::Cpu)
        && w.rank() == 2
        && w.is_contiguous()
}

/// `x · wᵀ` where `x` is [..., K] f32 and `w` is [N, K], f32 or bf16 (weights stored in bf16,
/// each widened to f32 as it is loaded; the products and sums are f32); returns [..., N] f32.
pub fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let kernel = forced_or_detected().unwrap_or(Kernel::Portable);
    let (n, k) = w.dims2()?;
    let mut out_dims = x.dims().to_vec();
    let m = x.elem_count() / k;
    *out_dims.last_mut().expect("rank >= 1") = n;
    let xs: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let (storage, layout) = w.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("small_matmul needs a CPU tensor");
    };
    let range = layout.start_offset()..layout.start_offset() + n * k;
    let transposed = match w.dtype() {
        DType::BF16 => stream(kernel, &xs, m, k, &cpu.as_slice::<half::bf16>()?[range]),
        _ => stream(kernel, &xs, m, k, &cpu.as_slice::<f32>()?[range]),
    };
    let mut data = vec![0f32; m * n];
    for (j, col) in transposed.chunks(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            data[i * n + j] = *v;
        }
    }
    Tensor::from_vec(data, out_dims, &Device::Cpu)
}

/// A weight element the kernels stream: f32, or bf16 widened to f32 as it is loaded.
trait Weight: Copy + Send + Sync + 'static {
    const BF16: bool;
    fn to_f32(self) -> f32;
}

impl Weight for f32 {
    const BF16: bool = false;
    fn to_f32(self) -> f32 {
        self
    }
}

impl Weight for half::bf16 {
    const BF16: bool = true;
    fn to_f32(self) -> f32 {
        half::bf16::to_f32(self)
    }
}

/// `x · wᵀ` transposed ([N, m]): output column blocks in parallel, each by `kernel`'s tiles.
fn stream<E: Weight>(kernel: Kernel, xs: &[f32], m: usize, k: usize, weights: &[E]) -> Vec<f32> {
    let n = weights.len() / k;
    // Output column blocks per task; each task writes its block transposed ([columns, m]).
    const BLOCK: usize = 256;
    let mut transposed = vec![0f32; n * m];
    transposed
        .par_chunks_mut(BLOCK * m)
        .enumerate()
        .for_each(|(block, out)| {
            let first = block * BLOCK;
            let columns = out.len() / m;
            let w_rows = &weights[first * k..(first + columns) * k];
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `forced_or_detected()` returns a SIMD kernel only when the CPU has it.
                Kernel::Avx512 if m <= ONE_WEIGHT_ROW_UP_TO => unsafe {
                    by_tiles::<1, Avx512<1>, E>(xs, m, k, w_rows, out)
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Kernel::Avx512 => unsafe { by_tiles::<4, Avx512<4>, E>(xs, m, k, w_rows, out) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Kernel::Avx2 => unsafe { by_tiles::<3, Avx2Tile, E>(xs, m, k, w_rows, out) },
                _ => portable(xs, m, k, w_rows, out),
            }
        });
    transposed
}

/// `out[j * m + i] = xs[i] · w_rows[j]`, one dot product at a time.
fn portable<E: Weight>(xs: &[f32], m: usize, k: usize, w_rows: &[E], out: &mut [f32]) {
    for (w_row, out_col) in w_rows.chunks(k).zip(out.chunks_mut(m)) {
        for (i, o) in out_col.iter_mut().enumerate() {
            *o = xs[i * k..(i + 1) * k]
                .iter()
                .zip(w_row)
                .map(|(a, b)| a * b.to_f32())
                .sum();
        }
    }
}

/// A SIMD kernel's tile: the dot products of `W` weight rows with `X` input rows, each `k` long.
/// Every dot product keeps its own accumulator, so its result does not depend on the tile.
trait Tile<const W: usize> {
    /// The most input rows a tile takes (as many as the registers hold accumulators for).
    const MAX_X: usize;
    /// # Safety
    /// The CPU has the kernel's features, and every pointer starts a row of `k` elements.
    unsafe fn dots<const X: usize, E: Weight>(
        w: [*const E; W],
        x: [*const f32; X],
        k: usize,
    ) -> [[f32; X]; W];
}

/// All of `out[j * m + i] = xs[i] · w_rows[j]` by tiles of `W` weight rows and up to `T::MAX_X`
/// input rows; weight rows past the end repeat the last one (computed and dropped).
///
/// # Safety
/// The CPU has `T`'s features.
unsafe fn by_tiles<const W: usize, T: Tile<W>, E: Weight>(
    xs: &[f32],
    m: usize,
    k: usize,
    w_rows: &[E],
    out: &mut [f32],
) {
    let n = w_rows.len() / k;
    for j0 in (0..n).step_by(W) {
        let w = std::array::from_fn(|a| w_rows[(j0 + a).min(n - 1) * k..].as_ptr());
        let mut i0 = 0;
        while i0 < m {
            let rows = (m - i0).min(T::MAX_X);
            let mut store = |dots: &[&[f32]]| {
                for (a, row) in dots.iter().enumerate().take(n - j0) {
                    out[(j0 + a) * m + i0..][..row.len()].copy_from_slice(row);
                }
            };
            macro_rules! tile {
                ($x:literal) => {{
                    let x = std::array::from_fn::<_, $x, _>(|b| xs[(i0 + b) * k..].as_ptr());
                    // SAFETY: the caller's CPU has T's features; the pointers start rows of k.
                    let dots = unsafe { T::dots::<$x, E>(w, x, k) };
                    store(&dots.each_ref().map(|r| r.as_slice()));
                }};
            }
            match rows {
                1 => tile!(1),
                2 => tile!(2),
                3 => tile!(3),
                4 => tile!(4),
                5 => tile!(5),
                _ => tile!(6),
            }
            i0 += rows;
        }
    }
}

/// `W` weight rows × up to 4 input rows (6 for one weight row) in at most 16 of the 32 vector
/// registers, 16 lanes each (with 4 × 6 the compiler spilled accumulators to the stack); the
/// tail of `k` by masked loads. One weight row is one stream through the weights, which the
/// hardware prefetcher follows best when a step has so few rows that memory bandwidth bounds it.
#[cfg(target_arch = "x86_64")]
struct Avx512<const W: usize>;

#[cfg(target_arch = "x86_64")]
impl<const W: usize> Tile<W> for Avx512<W> {
    const MAX_X: usize = if W == 1 { 6 } else { 4 };

    #[target_feature(enable = "avx512f")]
    unsafe fn dots<const X: usize, E: Weight>(
        w: [*const E; W],
        x: [*const f32; X],
        k: usize,
    ) -> [[f32; X]; W] {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); X]; W];
        let mut kk = 0;
        while kk < k {
            let mask: __mmask16 = if k - kk >= 16 {
                0xffff
            } else {
                (1u16 << (k - kk)) - 1
            };
            let mut wv = [_mm512_setzero_ps(); W];
            for a in 0..W {
                wv[a] = if E::BF16 {
                    // bf16 is the top half of an f32: widen each to 32 bits, shift up by 16.
                    let p = w[a].wrapping_add(kk) as *const u16;
                    let mut tail = [0u16; 16];
                    let halves = if mask == 0xffff {
                        p
                    } else {
                        // SAFETY: k − kk < 16 elements remain in the row.
                        unsafe { std::ptr::copy_nonoverlapping(p, tail.as_mut_ptr(), k - kk) };
                        tail.as_ptr()
                    };
                    // SAFETY: `halves` points to 16 readable u16s.
                    let halves = unsafe { _mm256_loadu_si256(halves as *const __m256i) };
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(halves)))
                } else {
                    // SAFETY: each pointer starts a row of k floats and the mask stops at k.
                    unsafe { _mm512_maskz_loadu_ps(mask, w[a].add(kk) as *const f32) }
                };
            }
            for (b, xp) in x.iter().enumerate() {
                let xv = unsafe { _mm512_maskz_loadu_ps(mask, xp.add(kk)) };
                for a in 0..W {
                    acc[a][b] = _mm512_fmadd_ps(wv[a], xv, acc[a][b]);
                }
            }
            kk += 16;
        }
        let mut dots = [[0f32; X]; W];
        for a in 0..W {
            for b in 0..X {
                dots[a][b] = _mm512_reduce_add_ps(acc[a][b]);
            }
        }
        dots
    }
}

/// 3 weight rows × up to 4 input rows in 12 of the 16 vector registers, 8 lanes each; the tail
/// of `k` added one product at a time.
#[cfg(target_arch = "x86_64")]
struct Avx2Tile;

#[cfg(target_arch = "x86_64")]
impl Tile<3> for Avx2Tile {
    const MAX_X: usize = 4;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dots<const X: usize, E: Weight>(
        w: [*const E; 3],
        x: [*const f32; X],
        k: usize,
    ) -> [[f32; X]; 3] {
        use std::arch::x86_64::*;
        let lanes = k / 8 * 8;
        let mut acc = [[_mm256_setzero_ps(); X]; 3];
        let mut kk = 0;
        while kk < lanes {
            let mut wv = [_mm256_setzero_ps(); 3];
            for a in 0..3 {
                // SAFETY: kk + 8 <= lanes <= k, and each pointer starts a row of k elements.
                wv[a] = if E::BF16 {
                    let halves = unsafe { _mm_loadu_si128(w[a].add(kk) as *const __m128i) };
                    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(halves)))
                } else {
                    unsafe { _mm256_loadu_ps(w[a].add(kk) as *const f32) }
                };
            }
            for (b, xp) in x.iter().enumerate() {
                let xv = unsafe { _mm256_loadu_ps(xp.add(kk)) };
                for a in 0..3 {
                    acc[a][b] = _mm256_fmadd_ps(wv[a], xv, acc[a][b]);
                }
            }
            kk += 8;
        }
        let mut dots = [[0f32; X]; 3];
        for a in 0..3 {
            for b in 0..X {
                let mut lanes_out = [0f32; 8];
                // SAFETY: an 8-float array is a valid unaligned store target.
                unsafe { _mm256_storeu_ps(lanes_out.as_mut_ptr(), acc[a][b]) };
                let mut sum: f32 = lanes_out.iter().sum();
                for t in lanes..k {
                    // SAFETY: t < k, within both rows.
                    sum += unsafe { (*w[a].add(t)).to_f32() * *x[b].add(t) };
                }
                dots[a][b] = sum;
            }
        }
        dots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::simd_level::with_kernel;

    /// Every kernel this CPU runs agrees with candle's GEMM, for sizes with and without a tail
    /// of `k` and partial tiles, and gives a row the same result whatever rows surround it.
    #[test]
    fn every_kernel_agrees_with_the_gemm_and_is_independent_of_the_batch() {
        let device = Device::Cpu;
        for kernel in [Kernel::Avx512, Kernel::Avx2, Kernel::Portable] {
            if !kernel.available() {
                eprintln!("{kernel:?}: not on this CPU");
                continue;
            }
            for (m, k, n) in [
                (1, 576, 700),
                (8, 37, 300),
                (13, 64, 5),
                (16, 9, 1),
                (64, 200, 131),
            ] {
                for dtype in [DType::F32, DType::BF16] {
                    let x = Tensor::randn(0f32, 1.0, (m, k), &device).unwrap();
                    let w = Tensor::randn(0f32, 1.0, (n, k), &device)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap();
                    let fast = with_kernel(Some(kernel), || matmul_t(&x, &w)).unwrap();
                    let widened = w.to_dtype(DType::F32).unwrap();
                    let reference = x.matmul(&widened.t().unwrap()).unwrap();
                    let diff = crate::engine::test_support::max_abs_diff(&fast, &reference);
                    assert!(diff < 1e-3, "{kernel:?} {dtype:?} ({m},{k},{n}): {diff}");
                    let last = with_kernel(Some(kernel), || {
                        matmul_t(&x.narrow(0, m - 1, 1).unwrap(), &w)
                    })
                    .unwrap();
                    let batched: Vec<f32> = fast.get(m - 1).unwrap().to_vec1().unwrap();
                    assert_eq!(
                        batched,
                        last.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                    );
                }
            }
        }
    }
}
