//! Batched generation with a KV cache: many sequences advance one token per step in one forward
//! pass; prompts of different lengths are left-padded and masked; a finished sequence leaves the
//! batch. Each sequence samples with its own seeded generator, so its output does not depend on
//! its batch mates.
//!
//! Sequences with the same prompt (an actor's n samples, a node's branch children, a judge's k
//! votes) share its prefill: each distinct prompt is prefilled once and its KV cache rows and last
//! logits are copied to every sequence that asked for it. The copies hold exactly what a prefill
//! of their own would have computed, so sharing changes the time taken, never the tokens.

use candle_core::{Device, Tensor};

use super::kv_cache::Cache;
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

/// Whether sequences with the same prompt share its prefill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PromptSharing {
    #[default]
    On,
    /// Every sequence prefills its own prompt (for measuring what sharing saves).
    Off,
}

/// Generate every request in one batch, prompts shared. The longest prompt plus
/// `max_new_tokens` must fit the model's context.
pub fn generate(
    model: &Transformer,
    tokenizer: &Tokenizer,
    requests: &[Request],
    device: &Device,
) -> anyhow::Result<Vec<Completion>> {
    generate_with(model, tokenizer, requests, device, PromptSharing::On)
}

/// [`generate`], with prompt sharing as asked.
pub fn generate_with(
    model: &Transformer,
    tokenizer: &Tokenizer,
    requests: &[Request],
    device: &Device,
    sharing: PromptSharing,
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

    // Prefill every distinct prompt once; then each sequence gets the cache rows and last logits
    // of its prompt.
    let started = std::time::Instant::now();
    let (prompts, prompt_of) = distinct_prompts(requests, sharing);
    let (mut cache, mut logits, row_of_prompt) = prefill(model, &prompts, longest, device)?;
    let rows: Vec<u32> = prompt_of.iter().map(|&p| row_of_prompt[p]).collect();
    if rows.iter().enumerate().any(|(i, &r)| r as usize != i) {
        let index = Tensor::new(rows.as_slice(), device)?;
        cache.select_rows(&index)?;
        logits = logits.index_select(&index, 0)?;
    }
    tracing::debug!(
        sequences = requests.len(),
        prefilled = prompts.len(),
        prompt_tokens = prompts.iter().map(|p| p.len()).sum::<usize>(),
        longest,
        seconds = started.elapsed().as_secs_f64(),
        "prefill"
    );
    let started = std::time::Instant::now();
    let mut steps = 0usize;

    loop {
        // [B, 1, V] -> one row per running sequence.
        let rows: Vec<Vec<f32>> = logits
            .squeeze(1)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2()?;
        let mut finished = Vec::new();
        for (i, (row, run)) in rows.iter().zip(running.iter_mut()).enumerate() {
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
            if let Some(reason) = finish {
                done[run.request] = Some(complete(tokenizer, request, &run.generated, reason)?);
                finished.push(i);
            }
        }
        if finished.len() == running.len() {
            break;
        }
        if !finished.is_empty() {
            cache.swap_remove_rows(&finished)?;
            for &i in finished.iter().rev() {
                running.swap_remove(i);
            }
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
        steps += 1;
    }
    tracing::debug!(steps, seconds = started.elapsed().as_secs_f64(), "decode");
    Ok(done
        .into_iter()
        .map(|c| c.expect("every request finishes"))
        .collect())
}

/// Most tokens (padding included) one prefill pass computes: bounds the activations of a pass,
/// while leaving the matmuls thousands of rows to work on.
const PREFILL_PASS_TOKENS: usize = 8192;

/// The prompts to prefill, and for each request the index of its prompt among them: one per
/// distinct prompt (in order of first appearance) when sharing, one per request otherwise.
fn distinct_prompts(requests: &[Request], sharing: PromptSharing) -> (Vec<&[u32]>, Vec<usize>) {
    if sharing == PromptSharing::Off {
        let prompts = requests.iter().map(|r| r.prompt_ids.as_slice()).collect();
        return (prompts, (0..requests.len()).collect());
    }
    let mut row_of: std::collections::HashMap<&[u32], usize> = std::collections::HashMap::new();
    let mut prompts = Vec::new();
    let rows = requests
        .iter()
        .map(|r| {
            *row_of.entry(r.prompt_ids.as_slice()).or_insert_with(|| {
                prompts.push(r.prompt_ids.as_slice());
                prompts.len() - 1
            })
        })
        .collect();
    (prompts, rows)
}

/// Prefill `prompts` in passes of similar length, longest first, so that little is computed on
/// padding, and stack their caches into one left-padded to `longest`. Returns that cache, the
/// last position's logits [P, 1, V] in the cache's row order, and each prompt's row in it.
fn prefill(
    model: &Transformer,
    prompts: &[&[u32]],
    longest: usize,
    device: &Device,
) -> anyhow::Result<(Cache, Tensor, Vec<u32>)> {
    let mut by_length: Vec<usize> = (0..prompts.len()).collect();
    by_length.sort_by_key(|&p| std::cmp::Reverse(prompts[p].len()));
    let (mut parts, mut logits) = (Vec::new(), Vec::new());
    let mut row_of_prompt = vec![0u32; prompts.len()];
    let mut pass_start = 0;
    while pass_start < by_length.len() {
        let width = prompts[by_length[pass_start]].len();
        let (mut end, mut tokens) = (pass_start + 1, width);
        // Take the next prompt while the pass stays within its size and an eighth of padding.
        while end < by_length.len() {
            let padded = width * (end - pass_start + 1);
            let real = tokens + prompts[by_length[end]].len();
            if padded > PREFILL_PASS_TOKENS || (padded - real) * 8 > padded {
                break;
            }
            (end, tokens) = (end + 1, real);
        }
        let pass = &by_length[pass_start..end];
        let (mut ids, mut positions, mut valid) = (Vec::new(), Vec::new(), Vec::new());
        for (row, &p) in pass.iter().enumerate() {
            let pad = width - prompts[p].len();
            ids.extend(std::iter::repeat_n(0u32, pad));
            ids.extend(prompts[p]);
            positions.extend((0..width).map(|j| j.saturating_sub(pad) as u32));
            valid.push((0..width).map(|j| j >= pad).collect::<Vec<bool>>());
            row_of_prompt[p] = (pass_start + row) as u32;
        }
        let input = Tensor::from_vec(ids, (pass.len(), width), device)?;
        let pos = Tensor::from_vec(positions, (pass.len(), width), device)?;
        let mask = attention_mask(&valid, width, device)?;
        let mut cache = model.new_cache();
        logits.push(model.forward(&input, &pos, &mask, Some(&mut cache), true)?);
        parts.push(cache);
        pass_start = end;
    }
    let cache = match parts.as_slice() {
        [only] if only.len() == longest => parts.pop().expect("one part"),
        _ => Cache::stack(&parts, longest)?,
    };
    Ok((cache, Tensor::cat(&logits, 0)?, row_of_prompt))
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
