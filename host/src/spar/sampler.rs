//! The generation side of the self-play steps: conversations in, sampled texts out, batched, with
//! seeds derived from what is being sampled (not from batch position), so a step's output does not
//! depend on batching or on where a resumed run restarted.

use std::cell::Cell;

use candle_core::Device;

use crate::engine::chat_template::{ChatTemplate, Message};
use crate::engine::generate::{Request, generate};
use crate::engine::model::Transformer;
use crate::engine::sampling::SamplingParams;
use crate::engine::tokenizer::Tokenizer;

/// Sampling settings of one step (SPaR uses different ones for acting, judging and refining).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleSettings {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub max_new_tokens: usize,
}

/// A loaded model ready to sample conversations.
pub struct ChatSampler<'m> {
    pub model: &'m Transformer,
    pub tokenizer: &'m Tokenizer,
    pub template: &'m ChatTemplate,
    pub device: Device,
    pub stop_token_ids: Vec<u32>,
    pub batch_size: usize,
    /// Generation passes run (each a batch).
    pub passes: Cell<usize>,
    /// Sequences generated.
    pub sequences: Cell<usize>,
    /// Tokens generated.
    pub tokens: Cell<usize>,
}

/// FNV-1a over the parts: a stable seed from what is sampled.
pub fn seed_of(root: u64, parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ root;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

impl<'m> ChatSampler<'m> {
    /// A sampler for a loaded model, stopping at its end-of-turn tokens; the model needs a chat
    /// template.
    pub fn new(
        loaded: &'m crate::engine::loader::LoadedModel,
        model: &'m Transformer,
        device: Device,
        batch_size: usize,
    ) -> anyhow::Result<ChatSampler<'m>> {
        let template = loaded.template.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the model has no chat template",
                loaded.source.display()
            )
        })?;
        Ok(ChatSampler {
            model,
            tokenizer: &loaded.tokenizer,
            template,
            device,
            stop_token_ids: loaded.chat_stop_ids(),
            batch_size,
            passes: Cell::new(0),
            sequences: Cell::new(0),
            tokens: Cell::new(0),
        })
    }

    /// One completion per (conversation, seed), in order, batched `batch_size` at a time.
    pub fn sample(
        &self,
        jobs: &[(Vec<Message>, u64)],
        settings: &SampleSettings,
    ) -> anyhow::Result<Vec<String>> {
        let mut requests = Vec::with_capacity(jobs.len());
        for (messages, seed) in jobs {
            let prompt = self.template.render(messages, true)?;
            requests.push(Request {
                prompt_ids: self.tokenizer.encode(&prompt)?,
                sampling: SamplingParams {
                    temperature: settings.temperature,
                    top_p: settings.top_p,
                    top_k: settings.top_k,
                    seed: *seed,
                },
                max_new_tokens: settings.max_new_tokens,
                stop_token_ids: self.stop_token_ids.clone(),
                stop_strings: Vec::new(),
            });
        }
        let mut texts = Vec::with_capacity(jobs.len());
        for batch in requests.chunks(self.batch_size.max(1)) {
            // Keep prompts within the context: trim new tokens rather than fail the batch.
            let context = self.model.config().max_position_embeddings;
            let batch: Vec<Request> = batch
                .iter()
                .cloned()
                .map(|mut r| {
                    r.max_new_tokens = r
                        .max_new_tokens
                        .min(context.saturating_sub(r.prompt_ids.len()));
                    r
                })
                .collect();
            let (runnable, too_long): (Vec<_>, Vec<_>) = batch
                .iter()
                .enumerate()
                .partition(|(_, r)| r.max_new_tokens > 0);
            let mut out = vec![String::new(); batch.len()];
            if !runnable.is_empty() {
                let reqs: Vec<Request> = runnable.iter().map(|(_, r)| (*r).clone()).collect();
                let completions = generate(self.model, self.tokenizer, &reqs, &self.device)?;
                self.passes.set(self.passes.get() + 1);
                self.sequences.set(self.sequences.get() + reqs.len());
                for ((i, _), c) in runnable.iter().zip(completions) {
                    self.tokens.set(self.tokens.get() + c.token_ids.len());
                    out[*i] = c.text;
                }
            }
            for (i, r) in too_long {
                tracing::warn!(
                    prompt_tokens = r.prompt_ids.len(),
                    "prompt fills the context; nothing generated"
                );
                let _ = i;
            }
            texts.extend(out);
        }
        Ok(texts)
    }
}
