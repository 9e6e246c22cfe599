//! Attention for one decode step on the CPU: each sequence's one new query (per query head)
//! against its cached keys and values, read in place from the KV cache's buffers. The tensor-op
//! path runs two small GEMMs per sequence and KV head (a few hundred calls per layer and step at
//! batch 32, each dispatched to the thread pool) and copies nothing less; here one task per
//! sequence and KV head does the whole softmax(scale · q kᵀ + mask) v, skipping masked keys.

use candle_core::{CpuStorage, DType, Device, Result, Storage, Tensor};
use rayon::prelude::*;

use super::simd;

use super::model::MASKED;
use super::simd_level::Kernel;

/// `softmax(scale · q kᵀ + mask) v` for `q` [B, G, R, D] (R: the query heads sharing a KV head,
/// one query each), `k` and `v` [B, G, K, D] (any strides with D contiguous) and an additive
/// `mask` [B, 1, 1, K]; `None` where this path does not apply (not the CPU, not f32, more than
/// one query per head), and the caller takes the tensor-op path.
pub fn decode_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    queries_per_head: usize,
    scale: f64,
) -> Result<Option<Tensor>> {
    let all_f32 = [q, k, v, mask].iter().all(|t| t.dtype() == DType::F32);
    if queries_per_head != 1 || !all_f32 || !matches!(q.device(), Device::Cpu) {
        return Ok(None);
    }
    let (b, g, r, d) = q.dims4()?;
    let keys = k.dim(2)?;
    let (q, mask) = (q.contiguous()?, mask.contiguous()?);
    let (q_storage, q_layout) = q.storage_and_layout();
    let (mask_storage, mask_layout) = mask.storage_and_layout();
    let (k_storage, k_layout) = k.storage_and_layout();
    let (v_storage, v_layout) = v.storage_and_layout();
    let (
        Storage::Cpu(CpuStorage::F32(q_data)),
        Storage::Cpu(CpuStorage::F32(mask_data)),
        Storage::Cpu(CpuStorage::F32(k_data)),
        Storage::Cpu(CpuStorage::F32(v_data)),
    ) = (&*q_storage, &*mask_storage, &*k_storage, &*v_storage)
    else {
        return Ok(None);
    };
    let (Some(k_rows), Some(v_rows)) = (Rows::new(k_data, k_layout), Rows::new(v_data, v_layout))
    else {
        return Ok(None);
    };
    let q_values = &q_data[q_layout.start_offset()..][..b * g * r * d];
    let mask_values = &mask_data[mask_layout.start_offset()..];
    if mask_layout.shape().elem_count() != b * keys {
        candle_core::bail!(
            "decode attention: a mask of shape {:?} for {b} sequences of {keys} keys",
            mask_layout.shape()
        );
    }
    let task = Task {
        q_values,
        mask_values,
        k_rows,
        v_rows,
        g,
        r,
        d,
        keys,
        scale: scale as f32,
    };
    let kernel = super::simd_level::simd_level();
    let mut out = vec![0f32; b * g * r * d];
    out.par_chunks_mut(r * d)
        .enumerate()
        .for_each(|(index, out)| task.run_with(kernel, index, out));
    Ok(Some(Tensor::from_vec(out, (b, g, r, d), &Device::Cpu)?))
}

/// What every task of one decode attention reads.
struct Task<'a> {
    q_values: &'a [f32],
    mask_values: &'a [f32],
    k_rows: Rows<'a>,
    v_rows: Rows<'a>,
    g: usize,
    r: usize,
    d: usize,
    keys: usize,
    scale: f32,
}

impl Task<'_> {
    /// Task `task` (sequence `task / G`, KV head `task % G`), compiled for the widest vectors
    /// the CPU has: the crate is built for baseline x86-64, where the compiler vectorises this
    /// code 4 lanes wide. Without FMA contraction every lane does the same IEEE operations, so
    /// the result is the same on every path.
    fn run_with(&self, kernel: Kernel, task: usize, out: &mut [f32]) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd_level` names a SIMD kernel only when the CPU has it.
            Kernel::Avx512 => unsafe { self.run_avx512(task, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx2 => unsafe { self.run_avx2(task, out) },
            _ => self.run(task, out),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self, task: usize, out: &mut [f32]) {
        self.run(task, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, task: usize, out: &mut [f32]) {
        self.run(task, out)
    }

    #[inline(always)]
    fn run(&self, task: usize, out: &mut [f32]) {
        let (sequence, group) = (task / self.g, task % self.g);
        let mask = &self.mask_values[sequence * self.keys..(sequence + 1) * self.keys];
        // Masked keys get exactly zero weight (exp of about -1e9); skip them unless every key
        // is masked, when the softmax is uniform over all of them.
        let all_masked = mask.iter().all(|&m| m <= MASKED);
        let attended: Vec<usize> = (0..self.keys)
            .filter(|&j| all_masked || mask[j] > MASKED)
            .collect();
        let mut scores = vec![0f32; attended.len()];
        for (row, out) in out.chunks_mut(self.d).enumerate() {
            let query = &self.q_values[(task * self.r + row) * self.d..][..self.d];
            for (s, &j) in scores.iter_mut().zip(&attended) {
                let key = self.k_rows.row(sequence, group, j);
                *s = dot(query, key) * self.scale + mask[j];
            }
            let max = simd::max(&scores);
            let sum = simd::exp_shifted_sum(&mut scores, max);
            for (&p, &j) in scores.iter().zip(&attended) {
                let value = self.v_rows.row(sequence, group, j);
                for (o, x) in out.iter_mut().zip(value) {
                    *o += p * x;
                }
            }
            for o in out.iter_mut() {
                *o /= sum;
            }
        }
    }
}

/// A dot product in 16 independent lanes (which the compiler vectorises), then their sum.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let whole = a.len() / 16 * 16;
    for (ca, cb) in a[..whole].chunks_exact(16).zip(b[..whole].chunks_exact(16)) {
        for l in 0..16 {
            lanes[l] += ca[l] * cb[l];
        }
    }
    let tail: f32 = a[whole..].iter().zip(&b[whole..]).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// The key or value rows of a [B, G, K, D] tensor, read in place through its strides.
struct Rows<'a> {
    data: &'a [f32],
    start: usize,
    strides: [usize; 3],
    d: usize,
}

impl<'a> Rows<'a> {
    /// `None` unless each row's D values are contiguous.
    fn new(data: &'a [f32], layout: &candle_core::Layout) -> Option<Rows<'a>> {
        let (dims, stride) = (layout.dims(), layout.stride());
        if dims.len() != 4 || (stride[3] != 1 && dims[3] > 1) {
            return None;
        }
        Some(Rows {
            data,
            start: layout.start_offset(),
            strides: [stride[0], stride[1], stride[2]],
            d: dims[3],
        })
    }

    fn row(&self, sequence: usize, group: usize, key: usize) -> &'a [f32] {
        let at = self.start
            + sequence * self.strides[0]
            + group * self.strides[1]
            + key * self.strides[2];
        &self.data[at..at + self.d]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::attention::{Mask, composite};

    /// Against the tensor-op path, on keys and values read through a cache-like view (a longer
    /// buffer narrowed to the cached length) and a mask with left padding.
    #[test]
    fn agrees_with_the_tensor_op_path_on_a_cache_view() {
        let device = Device::Cpu;
        let (b, g, r, d, keys, capacity) = (3, 2, 3, 20, 37, 50);
        let q = Tensor::randn(0f32, 1.0, (b, g, r, d), &device).unwrap();
        let k_buffer = Tensor::randn(0f32, 1.0, (b, g, capacity, d), &device).unwrap();
        let v_buffer = Tensor::randn(0f32, 1.0, (b, g, capacity, d), &device).unwrap();
        let (k, v) = (
            k_buffer.narrow(2, 0, keys).unwrap(),
            v_buffer.narrow(2, 0, keys).unwrap(),
        );
        // Sequence i has i * 5 padding keys on the left.
        let mask: Vec<f32> = (0..b)
            .flat_map(|i| (0..keys).map(move |j| if j < i * 5 { MASKED } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, 1, keys), &device).unwrap();
        let ours = decode_attention(&q, &k, &v, &mask, 1, 0.125)
            .unwrap()
            .expect("applies");
        let theirs = composite(&q, &k, &v, &Mask::new(&mask), 0.125).unwrap();
        let diff = crate::engine::test_support::max_abs_diff(&ours, &theirs);
        assert!(diff < 1e-5, "{diff}");
        // Every SIMD level this CPU has computes exactly what the portable code does.
        let at = |kernel| {
            crate::engine::simd_level::with_kernel(Some(kernel), || {
                decode_attention(&q, &k, &v, &mask, 1, 0.125)
                    .unwrap()
                    .expect("applies")
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
        };
        let portable = at(Kernel::Portable);
        for kernel in [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .filter(|k| k.available())
        {
            assert_eq!(at(kernel), portable, "{kernel:?}");
        }
    }
}
