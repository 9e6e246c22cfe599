//! One micro-batch of training as a reusable step: the loss of a batch of pairs (DPO with the SFT
//! term) or of conversations (SFT), with the figures a step logs. The trainer accumulates these
//! over a step's micro-batches; `spar-host bench` times exactly the same code.

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, Var};

use super::data::Sequence;
use super::dpo::{LossType, dpo_loss};
use super::logprobs::{SequenceLogps, sequence_logps};
use crate::engine::model::Transformer;

/// What a pair micro-batch's loss is made of, per pair where it varies.
pub struct PairLoss {
    /// Differentiable.
    pub loss: Tensor,
    pub rewards_chosen: Vec<f32>,
    pub rewards_rejected: Vec<f32>,
    pub logps_chosen: Vec<f32>,
    pub logps_rejected: Vec<f32>,
    /// TRL's `logits/chosen|rejected`: the mean logit over every trained position of the side.
    pub logits_chosen: f64,
    pub logits_rejected: f64,
    /// The chosen responses' mean NLL per token, averaged over pairs.
    pub nll_chosen: f64,
}

/// The DPO loss of `pairs` (chosen, rejected) against the reference's summed log-probs.
pub fn pair_loss(
    model: &Transformer,
    pairs: &[(&Sequence, &Sequence)],
    reference: &[(f32, f32)],
    (beta, sft_weight, loss_type): (f64, f64, LossType),
    device: &Device,
) -> Result<PairLoss> {
    let n = pairs.len();
    let batch: Vec<&Sequence> = pairs.iter().flat_map(|(c, r)| [*c, *r]).collect();
    let SequenceLogps {
        sums,
        counts,
        logit_sums,
    } = sequence_logps(model, &batch, device)?;
    let side = |k: usize| -> Result<Tensor> {
        let picks: Vec<u32> = (0..n).map(|i| (2 * i + k) as u32).collect();
        sums.index_select(&Tensor::new(picks.as_slice(), device)?, 0)
    };
    let (pc, pr) = (side(0)?, side(1)?);
    let tokens =
        |k: usize| -> Vec<f32> { (0..n).map(|i| counts[2 * i + k].max(1) as f32).collect() };
    let (chosen_tokens, rejected_tokens) = (tokens(0), tokens(1));
    let rc: Vec<f32> = reference.iter().map(|r| r.0).collect();
    let rr: Vec<f32> = reference.iter().map(|r| r.1).collect();
    let out = dpo_loss(
        &pc,
        &pr,
        &Tensor::new(rc.as_slice(), device)?,
        &Tensor::new(rr.as_slice(), device)?,
        &Tensor::new(chosen_tokens.as_slice(), device)?,
        &Tensor::new(rejected_tokens.as_slice(), device)?,
        beta,
        sft_weight,
        loss_type,
    )?;
    let pooled = |k: usize| {
        let (sum, count) = (0..n).fold((0f64, 0usize), |(s, c), i| {
            (s + logit_sums[2 * i + k] as f64, c + counts[2 * i + k])
        });
        sum / count.max(1) as f64
    };
    let logps_chosen: Vec<f32> = pc.detach().to_vec1()?;
    let nll_chosen = logps_chosen
        .iter()
        .zip(&chosen_tokens)
        .map(|(p, t)| -(*p as f64) / *t as f64)
        .sum::<f64>()
        / n.max(1) as f64;
    Ok(PairLoss {
        loss: out.loss,
        rewards_chosen: out.chosen_rewards.to_vec1()?,
        rewards_rejected: out.rejected_rewards.to_vec1()?,
        logps_chosen,
        logps_rejected: pr.detach().to_vec1()?,
        logits_chosen: pooled(0),
        logits_rejected: pooled(1),
        nll_chosen,
    })
}

/// The SFT loss of `batch`: mean NLL over all its trained tokens.
pub fn sequence_loss(model: &Transformer, batch: &[&Sequence], device: &Device) -> Result<Tensor> {
    let SequenceLogps { sums, counts, .. } = sequence_logps(model, batch, device)?;
    let total: usize = counts.iter().sum::<usize>().max(1);
    sums.sum_all()?.neg()? / total as f64
}

/// The gradients of `params` by name.
pub fn grads_by_name(
    params: &[(String, Var)],
    grads: &candle_core::backprop::GradStore,
) -> HashMap<String, Tensor> {
    params
        .iter()
        .filter_map(|(n, v)| grads.get(v.as_tensor()).map(|g| (n.clone(), g.clone())))
        .collect()
}
