//! log p(target) of each row of hidden states through the LM head: logits = h·Wᵀ and
//! log p = logit[target] − logsumexp(logits). The [rows × vocabulary] logits were the largest
//! tensors of a DPO step: 377 MB at 2 × 1024 tokens of a 49,152-token vocabulary, kept for the
//! backward, plus their softmax and its gradient there. On the CPU in f32 this is one op that
//! computes the logits a chunk of rows at a time. Logits that fit in [`KEPT_BYTES`] are kept
//! (as e^(logit − row max), which the backward scales into the softmax); beyond that it keeps one
//! log-sum-exp per row and the backward recomputes a chunk's logits (one more matmul). Either way
//! the backward turns them into their gradient in place. So the op's memory grows with the
//! tokens up to the budget and not beyond, and short batches skip a third of the head's work.

use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::{f32_values, with_f32_values};
use super::simd::{self, simd_dispatch};

/// A chunk's logits take at most this much memory.
const CHUNK_BYTES: usize = 64 << 20;

/// The backward reuses the forward's logits when they take at most this much memory (2 × 256
/// tokens of a 49,152-token vocabulary take 100 MB), and recomputes them beyond it.
const KEPT_BYTES: usize = 256 << 20;

/// Each row's log-probability of its target, [N] f32 and differentiable, with each row's mean
/// logit over the vocabulary (TRL's `logits/chosen|rejected` average it), detached.
pub struct TokenLogps {
    pub logps: Tensor,
    pub mean_logits: Vec<f32>,
}

/// Whether [`fused`] takes hidden states and an LM-head weight of these kinds.
pub fn fused_applies(hidden: &Tensor, weight: &Tensor) -> bool {
    hidden.device().is_cpu() && hidden.dtype() == DType::F32 && weight.dtype() == DType::F32
}

/// The fused op for `hidden` [N, D] under the LM head `weight` [V, D] (no bias); see
/// [`fused_applies`]. Differentiable in both.
pub fn fused(hidden: &Tensor, weight: &Tensor, targets: &[u32]) -> Result<TokenLogps> {
    let vocab = weight.dim(0)?;
    let keep = targets.len() * vocab * 4 <= KEPT_BYTES;
    fused_in_chunks(
        hidden,
        weight,
        targets,
        (CHUNK_BYTES / (4 * vocab)).max(1),
        keep,
    )
}

fn fused_in_chunks(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &[u32],
    chunk_rows: usize,
    keep: bool,
) -> Result<TokenLogps> {
    let vocab = weight.dim(0)?;
    if let Some(&bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("token log-probs: target {bad} is outside the vocabulary of {vocab}");
    }
    let op = FusedTokenLogps {
        targets: targets.to_vec(),
        chunk_rows,
        logsumexp: OnceLock::new(),
        // Only a backward reads them.
        kept: keep
            .then(|| Mutex::new(None))
            .filter(|_| hidden.track_op() || weight.track_op()),
    };
    let logps = hidden
        .contiguous()?
        .apply_op2_arc(&weight.contiguous()?, Arc::new(Box::new(op)))?;
    // The mean of h·Wᵀ over the vocabulary is h · (the mean row of W), which a product with a
    // row of ones sums in parallel (candle's reduction over dim 0 runs on one thread).
    let ones = Tensor::ones((1, vocab), DType::F32, weight.device())?;
    let mean_row = (ones.matmul(&weight.detach())? / vocab as f64)?;
    let mean_logits = hidden
        .detach()
        .matmul(&mean_row.t()?)?
        .squeeze(1)?
        .to_vec1()?;
    Ok(TokenLogps { logps, mean_logits })
}

/// The same from full logits [N, V] f32: gather minus a log-sum-exp whose backward recomputes the
/// softmax (nothing else kept) on the CPU, tensor ops elsewhere.
pub fn from_logits(logits: &Tensor, targets: &[u32]) -> Result<TokenLogps> {
    let device = logits.device();
    let picks = Tensor::from_slice(targets, (targets.len(), 1), device)?;
    let lse = if device.is_cpu() {
        logits.apply_op1_arc(Arc::new(Box::new(LogSumExp)))?
    } else {
        let max = logits.max_keepdim(1)?.detach();
        (logits.broadcast_sub(&max)?.exp()?.sum(1)?.log()? + max.squeeze(1)?)?
    };
    Ok(TokenLogps {
        logps: (logits.gather(&picks, 1)?.squeeze(1)? - lse)?,
        mean_logits: logits.detach().mean(1)?.to_vec1()?,
    })
}

struct FusedTokenLogps {
    targets: Vec<u32>,
    chunk_rows: usize,
    /// log Σ exp(logits) per row, from the forward pass.
    logsumexp: OnceLock<Vec<f32>>,
    /// When the logits are kept: the forward's, for the backward to take.
    kept: Option<Mutex<Option<KeptLogits>>>,
}

struct KeptLogits {
    /// [rows, vocab] e^(logit − row max).
    exp_shifted: Vec<f32>,
    maxima: Vec<f32>,
}

/// `dst = alpha·dst + lhs·rhs` for row-major `dst` [m, n]; each operand given as
/// (pointer, column stride, row stride). gemm reads `dst` only when `alpha` is not zero.
///
/// # Safety
/// The pointers must span the matrices their strides describe, and `dst` must not alias them.
unsafe fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    alpha: f32,
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
) {
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            alpha != 0.0,
            lhs.0,
            lhs.1,
            lhs.2,
            rhs.0,
            rhs.1,
            rhs.2,
            alpha,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The logits of `rows` hidden rows [rows, D] against `weight` [V, D], into `out` [rows, V].
fn logits_into(out: &mut [f32], rows: &[f32], weight: &[f32], dim: usize) {
    let (n, vocab) = (rows.len() / dim, weight.len() / dim);
    debug_assert_eq!(out.len(), n * vocab);
    // SAFETY: `rows` is [n, dim], `weight` [vocab, dim] read as its transpose [dim, vocab], and
    // `out` [n, vocab] is a separate buffer.
    unsafe {
        gemm(
            (n, vocab, dim),
            out.as_mut_ptr(),
            0.0,
            (rows.as_ptr(), 1, dim as isize),
            (weight.as_ptr(), dim as isize, 1),
        )
    }
}

simd_dispatch! {
    /// The max and the log Σ exp of one row of logits; the row is left as e^(x − max).
    fn row_logsumexp(row: &mut [f32]) -> (f32, f32) {
        let max = simd::max(row);
        (max, max + simd::exp_shifted_sum(row, max).ln())
    }
}

simd_dispatch! {
    /// A row of logits into its gradient: −g · softmax (the one-hot term is added by the caller).
    fn row_gradient(row: &mut [f32], lse: f32, g: f32) {
        for x in row.iter_mut() {
            *x = -g * simd::exp(*x - lse);
        }
    }
}

simd_dispatch! {
    /// A kept row, e^(x − max), into its gradient: −g · softmax = −g · e^(x − max) · e^(max − lse).
    fn kept_row_gradient(row: &mut [f32], scale: f32) {
        for x in row.iter_mut() {
            *x *= scale;
        }
    }
}

impl CustomOp2 for FusedTokenLogps {
    fn name(&self) -> &'static str {
        "token-logps"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (hidden, weight) = (
            f32_values(s1, l1, "token log-probs")?,
            f32_values(s2, l2, "token log-probs")?,
        );
        let (n, dim) = l1.shape().dims2()?;
        let vocab = l2.shape().dims2()?.0;
        if self.targets.len() != n {
            candle_core::bail!(
                "token log-probs: {} targets for {n} rows",
                self.targets.len()
            );
        }
        // Kept logits fill one buffer chunk after chunk; otherwise one chunk's buffer is reused.
        let mut logits = match self.kept {
            Some(_) => vec![0f32; n * vocab],
            None => vec![0f32; self.chunk_rows.min(n) * vocab],
        };
        let mut logsumexp = Vec::with_capacity(n);
        let mut maxima = Vec::with_capacity(n);
        let mut logps = Vec::with_capacity(n);
        for start in (0..n).step_by(self.chunk_rows) {
            let rows = self.chunk_rows.min(n - start);
            let chunk = match self.kept {
                Some(_) => &mut logits[start * vocab..(start + rows) * vocab],
                None => &mut logits[..rows * vocab],
            };
            logits_into(
                chunk,
                &hidden[start * dim..(start + rows) * dim],
                weight,
                dim,
            );
            let targets = &self.targets[start..start + rows];
            let picked: Vec<(f32, (f32, f32))> = chunk
                .par_chunks_mut(vocab)
                .zip(targets)
                .map(|(row, &target)| {
                    let logit = row[target as usize];
                    (logit, row_logsumexp(row))
                })
                .collect();
            for (logit, (max, lse)) in picked {
                logps.push(logit - lse);
                logsumexp.push(lse);
                maxima.push(max);
            }
        }
        if let Some(kept) = &self.kept {
            *kept.lock().expect("kept logits") = Some(KeptLogits {
                exp_shifted: logits,
                maxima,
            });
        }
        // The op is made for one call; a second forward would find the first's value here.
        let _ = self.logsumexp.set(logsumexp);
        Ok((CpuStorage::F32(logps), Shape::from(n)))
    }

    /// d log p / d logits = onehot(target) − softmax; then through the matmul to both inputs.
    fn bwd(
        &self,
        hidden: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(logsumexp) = self.logsumexp.get() else {
            candle_core::bail!("token log-probs: backward before forward");
        };
        let (n, dim) = hidden.dims2()?;
        let vocab = weight.dim(0)?;
        let grad_res: Vec<f32> = grad_res.to_dtype(DType::F32)?.to_vec1()?;
        let weight_needs_grad = weight.track_op();
        let mut grad_hidden = vec![0f32; n * dim];
        let mut grad_weight = if weight_needs_grad {
            vec![0f32; vocab * dim]
        } else {
            Vec::new()
        };
        let (hidden, weight) = (hidden.contiguous()?, weight.contiguous()?);
        // The forward's logits when it kept them (taken: a second backward recomputes).
        let kept = self
            .kept
            .as_ref()
            .and_then(|k| k.lock().expect("kept logits").take());
        let filled = with_f32_values(&hidden, |hidden| {
            with_f32_values(&weight, |weight| {
                let (mut logits, chunk_rows, maxima) = match kept {
                    Some(KeptLogits {
                        exp_shifted,
                        maxima,
                    }) => (exp_shifted, n.max(1), maxima),
                    None => {
                        let rows = self.chunk_rows.min(n);
                        (vec![0f32; rows * vocab], self.chunk_rows, Vec::new())
                    }
                };
                for start in (0..n).step_by(chunk_rows) {
                    let rows = chunk_rows.min(n - start);
                    let chunk = &mut logits[..rows * vocab];
                    let hidden_rows = &hidden[start * dim..(start + rows) * dim];
                    if maxima.is_empty() {
                        logits_into(chunk, hidden_rows, weight, dim);
                    }
                    // The logits become their gradient in place.
                    chunk
                        .par_chunks_mut(vocab)
                        .enumerate()
                        .for_each(|(i, row)| {
                            let (g, lse) = (grad_res[start + i], logsumexp[start + i]);
                            match maxima.get(start + i) {
                                Some(max) => kept_row_gradient(row, -g * (max - lse).exp()),
                                None => row_gradient(row, lse, g),
                            }
                            row[self.targets[start + i] as usize] += g;
                        });
                    // SAFETY: `chunk` is [rows, vocab]; `weight` [vocab, dim]; `hidden_rows`
                    // [rows, dim]; the destinations are separate buffers of the stated shapes.
                    unsafe {
                        gemm(
                            (rows, dim, vocab),
                            grad_hidden[start * dim..].as_mut_ptr(),
                            0.0,
                            (chunk.as_ptr(), 1, vocab as isize),
                            (weight.as_ptr(), 1, dim as isize),
                        );
                        if weight_needs_grad {
                            // gradᵀ [vocab, rows] (the chunk read column-major) · hidden rows.
                            gemm(
                                (vocab, dim, rows),
                                grad_weight.as_mut_ptr(),
                                if start == 0 { 0.0 } else { 1.0 },
                                (chunk.as_ptr(), vocab as isize, 1),
                                (hidden_rows.as_ptr(), 1, dim as isize),
                            );
                        }
                    }
                }
            })
        })
        .flatten();
        if filled.is_none() {
            candle_core::bail!("token log-probs: CPU f32 inputs expected in the backward");
        }
        let device = Device::Cpu;
        let grad_hidden = Tensor::from_vec(grad_hidden, (n, dim), &device)?;
        let grad_weight = weight_needs_grad
            .then(|| Tensor::from_vec(grad_weight, (vocab, dim), &device))
            .transpose()?;
        Ok((Some(grad_hidden), grad_weight))
    }
}

/// log Σ exp over the last dimension of [N, V] f32 logits, as [N], whose backward recomputes the
/// softmax from the logits (nothing else kept).
struct LogSumExp;

impl CustomOp1 for LogSumExp {
    fn name(&self) -> &'static str {
        "logsumexp-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = f32_values(storage, layout, "logsumexp")?;
        let (n, v) = layout.shape().dims2()?;
        // `row_logsumexp` works in place: each task copies rows into one buffer of its own.
        let out: Vec<f32> = data
            .par_chunks(v)
            .map_init(
                || vec![0f32; v],
                |buffer, row| {
                    buffer.copy_from_slice(row);
                    row_logsumexp(buffer).1
                },
            )
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    /// d lse / d logits = softmax = exp(logits − lse).
    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let softmax = arg.broadcast_sub(&res.unsqueeze(1)?)?.exp()?;
        Ok(Some(softmax.broadcast_mul(&grad_res.unsqueeze(1)?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// The fused op, in chunks that do not divide the rows, against log_softmax over full logits:
    /// the same log-probs and the same gradients of the hidden states and of the weight.
    #[test]
    fn the_fused_op_equals_log_softmax_in_value_and_gradients() {
        let device = Device::Cpu;
        let (n, dim, vocab) = (11, 6, 37);
        let values = |count: usize, seed: usize| -> Vec<f32> {
            (0..count)
                .map(|i| (((i * 29 + seed * 13) % 19) as f32 - 9.0) * 0.11)
                .collect()
        };
        let hidden = Var::from_vec(values(n * dim, 1), (n, dim), &device).unwrap();
        let weight = Var::from_vec(values(vocab * dim, 2), (vocab, dim), &device).unwrap();
        let targets: Vec<u32> = (0..n as u32).map(|i| (i * 7) % vocab as u32).collect();
        let fused =
            |keep| fused_in_chunks(hidden.as_tensor(), weight.as_tensor(), &targets, 4, keep);
        let (recomputing, keeping) = (fused(false).unwrap(), fused(true).unwrap());
        let logits = hidden
            .as_tensor()
            .matmul(&weight.as_tensor().t().unwrap())
            .unwrap();
        let picks = Tensor::from_slice(&targets, (n, 1), &device).unwrap();
        let reference = candle_nn::ops::log_softmax(&logits, 1)
            .unwrap()
            .gather(&picks, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let via_logits = from_logits(&logits, &targets).unwrap();
        let flat = |x: &Tensor| x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let close = |a: &[f32], r: &[f32], what: &str| {
            assert_eq!(a.len(), r.len(), "{what}");
            let worst = a
                .iter()
                .zip(r)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{what}: largest difference {worst}");
        };
        close(&flat(&recomputing.logps), &flat(&reference), "log-probs");
        close(&flat(&keeping.logps), &flat(&reference), "log-probs, kept");
        close(
            &flat(&via_logits.logps),
            &flat(&reference),
            "log-probs from logits",
        );
        close(
            &recomputing.mean_logits,
            &via_logits.mean_logits,
            "mean logits",
        );
        let upstream = Tensor::from_vec(values(n, 5), n, &device).unwrap();
        let grads = |y: &Tensor| {
            let grads = (y * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            [&hidden, &weight].map(|x| flat(grads.get(x.as_tensor()).unwrap()))
        };
        let (ours, kept, theirs, composite) = (
            grads(&recomputing.logps),
            grads(&keeping.logps),
            grads(&reference),
            grads(&via_logits.logps),
        );
        for (name, i) in [("hidden", 0), ("weight", 1)] {
            close(&ours[i], &theirs[i], name);
            close(&kept[i], &theirs[i], name);
            close(&composite[i], &theirs[i], name);
        }
        // A frozen weight gets no gradient.
        let frozen = weight.as_tensor().detach();
        let y = fused_in_chunks(hidden.as_tensor(), &frozen, &targets, 4, true).unwrap();
        let grads = (y.logps * &upstream)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&frozen).is_none());
        close(
            &flat(grads.get(hidden.as_tensor()).unwrap()),
            &ours[0],
            "hidden, frozen weight",
        );
    }
}
