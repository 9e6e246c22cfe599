//! Per-sequence log-probabilities of the trained tokens: right-padded micro-batches, one forward
//! pass, `log_softmax`, the target tokens gathered, prompt and padding masked out.

use candle_core::{D, DType, Device, Result, Tensor};

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
    let mut targets = Vec::with_capacity(b * longest);
    let mut weights = Vec::with_capacity(b * longest);
    let mut mask = Vec::with_capacity(b * longest * longest);
    for seq in batch {
        let n = seq.ids.len();
        ids.extend(&seq.ids);
        ids.extend(std::iter::repeat_n(0u32, longest - n));
        // Position t predicts token t+1: its weight is whether token t+1 is trained.
        for t in 0..longest {
            let next = t + 1;
            let trained = next < n && seq.trained[next];
            targets.push(if next < n { seq.ids[next] } else { 0 });
            weights.push(if trained { 1f32 } else { 0.0 });
        }
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
    let logits = model
        .forward(&input, &positions, &mask, None, false)?
        .to_dtype(DType::F32)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let targets = Tensor::from_vec(targets, (b, longest, 1), device)?;
    let picked = logp.gather(&targets, D::Minus1)?.squeeze(D::Minus1)?;
    let weights = Tensor::from_vec(weights, (b, longest), device)?;
    let logit_sums = (logits.detach().mean(D::Minus1)? * &weights)?
        .sum(1)?
        .to_vec1()?;
    let sums = (picked * weights)?.sum(1)?;
    Ok(SequenceLogps {
        sums,
        counts: batch.iter().map(|s| s.trained_tokens()).collect(),
        logit_sums,
    })
}
