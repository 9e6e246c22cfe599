//! Per-sequence log-probabilities of the trained tokens: right-padded micro-batches, one forward
//! pass through the decoder, then only the trained positions through the LM head
//! ([`Transformer::token_logps`]: log p(target) = logit(target) − logsumexp(logits)). The
//! full-vocabulary tensors are the memory of training: on the CPU none is kept for the backward,
//! where `log_softmax` over every position kept three of [all positions × vocabulary].

use candle_core::{D, DType, Device, Result, Tensor};

use super::data::Sequence;
use crate::engine::model::{MASKED, Transformer};
use crate::engine::token_logprobs::TokenLogps;

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
    let TokenLogps {
        logps,
        mean_logits: means,
    } = model.token_logps(&picked_hidden, &targets)?;
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
