//! Batched generation with a KV cache: many sequences advance one token per step in one forward
//! pass; prompts of different lengths are left-padded and masked; a finished sequence leaves the
//! batch. Each sequence samples with its own seeded generator, so its output does not depend on
//! its batch mates.

use candle_core::{Device, Tensor};

use super::model::{Transformer, attention_mask};
use super::sampling::{Sampler, SamplingParams};
use super::tokenizer::Tokenizer;

/// One sequence to generate.
#[derive(Clone, Debug)]
pub struct Request {
    pub prompt_ids: Vec<u32>,
    pub sampling: SamplingParams,
    pub max_new_tokens: usize,
    /// Token ids that end the sequence (not included in the output).
    pub stop_token_ids: Vec<u32>,
    /// Strings that end the sequence; the text is cut before the first one.
    pub stop_strings: Vec<String>,
}

/// Why a sequence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

/// A finished sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub token_ids: Vec<u32>,
    pub text: String,
    pub finish_reason: FinishReason,
}

struct Running {
    request: usize,
    sampler: Sampler,
    generated: Vec<u32>,
    /// Which key positions of this row are real tokens (false = left padding).
    valid: Vec<bool>,
    next_position: u32,
}

/// Generate every request in one batch. The longest prompt plus `max_new_tokens` must fit the
/// model's context.
pub fn generate(
    model: &Transformer,
    tokenizer: &Tokenizer,
    requests: &[Request],
    device: &Device,
) -> anyhow::Result<Vec<Completion>> {
    let context = model.config().max_position_embeddings;
    for (i, r) in requests.iter().enumerate() {
        if r.prompt_ids.is_empty() {
            anyhow::bail!("request {i}: the prompt is empty");
        }
        if r.prompt_ids.len() + r.max_new_tokens > context {
            anyhow::bail!(
                "request {i}: prompt of {} tokens plus {} new tokens exceeds the model's context of {context} tokens",
                r.prompt_ids.len(),
                r.max_new_tokens
            );
        }
    }
    let mut done: Vec<Option<Completion>> = vec![None; requests.len()];
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let longest = requests
        .iter()
        .map(|r| r.prompt_ids.len())
        .max()
        .unwrap_or(0);
    let mut running: Vec<Running> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let pad = longest - r.prompt_ids.len();
            let mut valid = vec![false; pad];
            valid.extend(std::iter::repeat_n(true, r.prompt_ids.len()));
            Running {
                request: i,
                sampler: Sampler::new(r.sampling.clone()),
                generated: Vec::new(),
                valid,
                next_position: r.prompt_ids.len() as u32,
            }
        })
        .collect();

    // Prefill: every prompt, left-padded to the longest.
    let mut ids = Vec::with_capacity(running.len() * longest);
    let mut positions = Vec::with_capacity(running.len() * longest);
    for run in &running {
        let prompt = &requests[run.request].prompt_ids;
        let pad = longest - prompt.len();
        ids.extend(std::iter::repeat_n(0u32, pad));
        ids.extend(prompt);
        positions.extend((0..longest).map(|j| j.saturating_sub(pad) as u32));
    }
    let b = running.len();
    let mut cache = model.new_cache();
    let input = Tensor::from_vec(ids, (b, longest), device)?;
    let pos = Tensor::from_vec(positions, (b, longest), device)?;
    let valid: Vec<Vec<bool>> = running.iter().map(|r| r.valid.clone()).collect();
    let mask = attention_mask(&valid, longest, device)?;
    let mut logits = model.forward(&input, &pos, &mask, Some(&mut cache), true)?;

    loop {
        // [B, 1, V] -> one row per running sequence.
        let rows: Vec<Vec<f32>> = logits
            .squeeze(1)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2()?;
        let mut keep = Vec::new();
        for (row, run) in rows.iter().zip(running.iter_mut()) {
            let request = &requests[run.request];
            let token = run.sampler.sample(row);
            let mut finish = None;
            if request.stop_token_ids.contains(&token) {
                finish = Some(FinishReason::Stop);
            } else {
                run.generated.push(token);
                if !request.stop_strings.is_empty() {
                    let text = tokenizer.decode(&run.generated)?;
                    if request
                        .stop_strings
                        .iter()
                        .any(|s| text.contains(s.as_str()))
                    {
                        finish = Some(FinishReason::Stop);
                    }
                }
                if finish.is_none() && run.generated.len() >= request.max_new_tokens {
                    finish = Some(FinishReason::Length);
                }
            }
            match finish {
                Some(reason) => {
                    done[run.request] = Some(complete(tokenizer, request, &run.generated, reason)?);
                }
                None => keep.push(true),
            }
            if finish.is_some() {
                keep.push(false);
            }
        }
        let kept_rows: Vec<u32> = keep
            .iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i as u32)
            .collect();
        if kept_rows.is_empty() {
            break;
        }
        if kept_rows.len() < running.len() {
            let index = Tensor::new(kept_rows.as_slice(), device)?;
            cache.select_rows(&index)?;
            let mut kept = Vec::with_capacity(kept_rows.len());
            for (run, k) in running.into_iter().zip(&keep) {
                if *k {
                    kept.push(run);
                }
            }
            running = kept;
        }
        // One decode step for every running sequence.
        let b = running.len();
        let ids: Vec<u32> = running
            .iter()
            .map(|r| *r.generated.last().expect("sampled"))
            .collect();
        let positions: Vec<u32> = running.iter().map(|r| r.next_position).collect();
        for run in &mut running {
            run.valid.push(true);
            run.next_position += 1;
        }
        let valid: Vec<Vec<bool>> = running.iter().map(|r| r.valid.clone()).collect();
        let input = Tensor::from_vec(ids, (b, 1), device)?;
        let pos = Tensor::from_vec(positions, (b, 1), device)?;
        let mask = attention_mask(&valid, 1, device)?;
        logits = model.forward(&input, &pos, &mask, Some(&mut cache), true)?;
    }
    Ok(done
        .into_iter()
        .map(|c| c.expect("every request finishes"))
        .collect())
}

fn complete(
    tokenizer: &Tokenizer,
    request: &Request,
    generated: &[u32],
    finish_reason: FinishReason,
) -> anyhow::Result<Completion> {
    let mut text = tokenizer.decode(generated)?;
    if let Some(cut) = request
        .stop_strings
        .iter()
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        text.truncate(cut);
    }
    Ok(Completion {
        token_ids: generated.to_vec(),
        text,
        finish_reason,
    })
}
