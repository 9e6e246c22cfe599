//! Per-sequence log-probabilities of the trained tokens: right-padded micro-batches, one forward
//! pass through the decoder, then only the trained positions projected to the vocabulary, and
//! log p(target) = logit(target) − logsumexp(logits) with a log-sum-exp whose backward recomputes
//! the softmax from the logits. The full-vocabulary tensors are the memory of training: this keeps
//! one [trained tokens × vocabulary] tensor alive for the backward, where `log_softmax` over every
//! position kept three of [all positions × vocabulary].

use candle_core::{CpuStorage, CustomOp1, D, DType, Device, Layout, Result, Shape, Tensor};

use super::data::Sequence;
use crate::engine::model::{MASKED, Transformer};

/// One forward pass over a micro-batch, per sequence.
pub struct SequenceLogps {
    /// Sum of log p(token) over the trained tokens [B], differentiable.
    pub sums: Tensor,
    /// How many tokens were trained.
    pub counts: Vec<usize>,
    /// Sum over the trained positions of the logits' mean over the vocabulary (TRL's
    /// `logits/chosen|rejected` divide it by the tokens), detached.
    pub logit_sums: Vec<f32>,
}

/// Log-probabilities of each sequence's trained tokens.
pub fn sequence_logps(
    model: &Transformer,
    batch: &[&Sequence],
    device: &Device,
) -> Result<SequenceLogps> {
    let b = batch.len();
    let longest = batch.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(b * longest);
    let mut mask = Vec::with_capacity(b * longest * longest);
    // Flat positions (sequence-major) that predict a trained token, and those tokens.
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut counts = Vec::with_capacity(b);
    for (k, seq) in batch.iter().enumerate() {
        let n = seq.ids.len();
        ids.extend(&seq.ids);
        ids.extend(std::iter::repeat_n(0u32, longest - n));
        // Position t predicts token t+1.
        let before = rows.len();
        for t in 0..n.saturating_sub(1) {
            if seq.trained[t + 1] {
                rows.push((k * longest + t) as u32);
                targets.push(seq.ids[t + 1]);
            }
        }
        counts.push(rows.len() - before);
        for i in 0..longest {
            for j in 0..longest {
                mask.push(if j <= i && j < n { 0.0 } else { MASKED });
            }
        }
    }
    let input = Tensor::from_vec(ids, (b, longest), device)?;
    let positions = Tensor::arange(0u32, longest as u32, device)?
        .unsqueeze(0)?
        .broadcast_as((b, longest))?
        .contiguous()?;
    let mask = Tensor::from_vec(mask, (b, 1, longest, longest), device)?;
    if rows.is_empty() {
        return Ok(SequenceLogps {
            sums: Tensor::zeros(b, DType::F32, device)?,
            counts,
            logit_sums: vec![0.0; b],
        });
    }
    let hidden = model.hidden_states(&input, &positions, &mask)?;
    let width = hidden.dim(D::Minus1)?;
    let n = rows.len();
    let picked_hidden = hidden
        .reshape((b * longest, width))?
        .index_select(&Tensor::from_vec(rows, n, device)?, 0)?;
    let logits = model.logits(&picked_hidden)?.to_dtype(DType::F32)?;
    let targets = Tensor::from_vec(targets, (n, 1), device)?;
    let logps = (logits.gather(&targets, 1)?.squeeze(1)? - logsumexp(&logits)?)?;
    let means: Vec<f32> = logits.detach().mean(1)?.to_vec1()?;
    // The trained positions are grouped by sequence: sum each group.
    let mut sums = Vec::with_capacity(b);
    let mut logit_sums = Vec::with_capacity(b);
    let mut start = 0;
    for &count in &counts {
        sums.push(if count == 0 {
            Tensor::zeros((), DType::F32, device)?
        } else {
            logps.narrow(0, start, count)?.sum(0)?
        });
        logit_sums.push(means[start..start + count].iter().sum());
        start += count;
    }
    Ok(SequenceLogps {
        sums: Tensor::stack(&sums, 0)?,
        counts,
        logit_sums,
    })
}

/// log Σ exp over the last dimension of [N, V] f32 logits, as [N]. On the CPU a custom op whose
/// backward recomputes the softmax from the logits (nothing else kept); elsewhere the composite
/// of tensor ops.
fn logsumexp(logits: &Tensor) -> Result<Tensor> {
    if logits.device().is_cpu() {
        logits.apply_op1_arc(std::sync::Arc::new(Box::new(LogSumExp)))
    } else {
        let max = logits.max_keepdim(1)?.detach();
        logits.broadcast_sub(&max)?.exp()?.sum(1)?.log()? + max.squeeze(1)?
    }
}

struct LogSumExp;

impl CustomOp1 for LogSumExp {
    fn name(&self) -> &'static str {
        "logsumexp-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("logsumexp: f32 logits expected");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("logsumexp: contiguous logits expected");
        };
        let (n, v) = layout.shape().dims2()?;
        let data = &data[start..end];
        use rayon::prelude::*;
        let out: Vec<f32> = (0..n)
            .into_par_iter()
            .map(|row| {
                let row = &data[row * v..(row + 1) * v];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = row.iter().map(|&x| f64::from((x - max).exp())).sum();
                max + sum.ln() as f32
            })
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

    #[test]
    fn logsumexp_and_its_gradient_match_log_softmax() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.7).collect();
        let x = candle_core::Var::from_vec(values, (3, 8), &device).unwrap();
        let targets = Tensor::new(&[[1u32], [7], [0]], &device).unwrap();
        let ours = (x.gather(&targets, 1).unwrap().squeeze(1).unwrap()
            - logsumexp(x.as_tensor()).unwrap())
        .unwrap();
        let reference = candle_nn::ops::log_softmax(x.as_tensor(), 1)
            .unwrap()
            .gather(&targets, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let a: Vec<f32> = ours.to_vec1().unwrap();
        let r: Vec<f32> = reference.to_vec1().unwrap();
        for (a, r) in a.iter().zip(&r) {
            assert!((a - r).abs() < 1e-5, "{a} vs {r}");
        }
        let weights = Tensor::new(&[1.0f32, -2.0, 0.5], &device).unwrap();
        let grad = |y: &Tensor| -> Vec<Vec<f32>> {
            let loss = (y * &weights).unwrap().sum_all().unwrap();
            loss.backward()
                .unwrap()
                .get(x.as_tensor())
                .unwrap()
                .to_vec2()
                .unwrap()
        };
        for (a, r) in grad(&ours)
            .iter()
            .flatten()
            .zip(grad(&reference).iter().flatten())
        {
            assert!((a - r).abs() < 1e-5, "{a} vs {r}");
        }
    }
}
