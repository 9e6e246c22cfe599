//! The DPO objective (with SPaR's SFT term) and its metrics, under TRL's names.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Which preference loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossType {
    /// −log σ(β·Δ), the DPO paper's.
    Sigmoid,
    /// (Δ − 1/(2β))², IPO, with Δ over per-token mean log-probs (length-normalised, as TRL and
    /// LLaMA-Factory compute it).
    Ipo,
    /// max(0, 1 − β·Δ), SLiC's hinge.
    Hinge,
}

/// `softplus(x) = log(1 + eᵡ)`, computed without overflow: `max(x, 0) + log(1 + e^(−|x|))`.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// The batch loss and per-pair rewards. `policy_*` and `reference_*` are summed log-probs [B];
/// `chosen_tokens` and `rejected_tokens` count the responses' tokens (IPO divides by them; the
/// SFT term is the chosen response's mean NLL per token, per sequence, as LLaMA-Factory's
/// `pref_ftx`, where TRL pools tokens across the batch).
pub struct DpoOutput {
    pub loss: Tensor,
    pub chosen_rewards: Tensor,
    pub rejected_rewards: Tensor,
}

#[allow(clippy::too_many_arguments)]
pub fn dpo_loss(
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    reference_chosen: &Tensor,
    reference_rejected: &Tensor,
    chosen_tokens: &Tensor,
    rejected_tokens: &Tensor,
    beta: f64,
    sft_weight: f64,
    loss_type: LossType,
) -> Result<DpoOutput> {
    // IPO compares per-token means; the other losses summed log-probs.
    let (pc, pr, rc, rr) = if loss_type == LossType::Ipo {
        (
            (policy_chosen / chosen_tokens)?,
            (policy_rejected / rejected_tokens)?,
            (reference_chosen / chosen_tokens)?,
            (reference_rejected / rejected_tokens)?,
        )
    } else {
        (
            policy_chosen.clone(),
            policy_rejected.clone(),
            reference_chosen.clone(),
            reference_rejected.clone(),
        )
    };
    let delta = ((&pc - &pr)? - (&rc - &rr)?)?;
    let per_pair = match loss_type {
        LossType::Sigmoid => softplus(&(delta.clone() * -beta)?)?,
        LossType::Ipo => (delta.clone() - 1.0 / (2.0 * beta))?.sqr()?,
        LossType::Hinge => ((delta.clone() * -beta)? + 1.0)?.relu()?,
    };
    let mut loss = per_pair.mean_all()?;
    if sft_weight > 0.0 {
        // Mean negative log-likelihood per chosen token.
        let nll = (policy_chosen.neg()? / chosen_tokens)?.mean_all()?;
        loss = (loss + (nll * sft_weight)?)?;
    }
    Ok(DpoOutput {
        loss,
        chosen_rewards: ((&pc - &rc)? * beta)?.detach(),
        rejected_rewards: ((&pr - &rr)? * beta)?.detach(),
    })
}

/// One logged step, TRL's metric names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DpoMetrics {
    pub step: usize,
    pub loss: f64,
    #[serde(rename = "rewards/chosen")]
    pub rewards_chosen: f64,
    #[serde(rename = "rewards/rejected")]
    pub rewards_rejected: f64,
    #[serde(rename = "rewards/accuracies")]
    pub rewards_accuracies: f64,
    #[serde(rename = "rewards/margins")]
    pub rewards_margins: f64,
    #[serde(rename = "logps/chosen")]
    pub logps_chosen: f64,
    #[serde(rename = "logps/rejected")]
    pub logps_rejected: f64,
    #[serde(rename = "logits/chosen", default)]
    pub logits_chosen: f64,
    #[serde(rename = "logits/rejected", default)]
    pub logits_rejected: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    pub tokens_per_second: f64,
}
