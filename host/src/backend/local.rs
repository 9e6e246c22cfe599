//! The embedded engine as a [`ChatBackend`]: the model's own chat template, its end-of-turn
//! stop tokens, batches of `batch_size` sequences in one generation pass each.

use candle_core::Device;

use super::{ChatBackend, Completions, FinishReason, Generated};
use crate::backend::sampler::SampleSettings;
use crate::engine::chat_template::{ChatTemplate, Message};
use crate::engine::generate::{Request, generate};
use crate::engine::loader::LoadedModel;
use crate::engine::model::Transformer;
use crate::engine::sampling::SamplingParams;
use crate::engine::tokenizer::Tokenizer;

pub struct LocalBackend<'m> {
    model: &'m Transformer,
    tokenizer: &'m Tokenizer,
    template: &'m ChatTemplate,
    device: Device,
    stop_token_ids: Vec<u32>,
    batch_size: usize,
}

impl<'m> LocalBackend<'m> {
    /// The model needs a chat template.
    pub fn new(
        loaded: &'m LoadedModel,
        model: &'m Transformer,
        device: Device,
        batch_size: usize,
    ) -> anyhow::Result<Self> {
        let template = loaded.template.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the model has no chat template",
                loaded.source.display()
            )
        })?;
        Ok(Self {
            model,
            tokenizer: &loaded.tokenizer,
            template,
            device,
            stop_token_ids: loaded.chat_stop_ids(),
            batch_size,
        })
    }
}

impl ChatBackend for LocalBackend<'_> {
    fn complete(
        &self,
        jobs: &[(Vec<Message>, u64)],
        settings: &SampleSettings,
    ) -> anyhow::Result<Completions> {
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
        let mut done = Completions::default();
        let context = self.model.config().max_position_embeddings;
        for batch in requests.chunks(self.batch_size.max(1)) {
            // Keep prompts within the context: trim new tokens rather than fail the batch.
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
            let runnable: Vec<usize> = (0..batch.len())
                .filter(|&i| batch[i].max_new_tokens > 0)
                .collect();
            // A prompt that fills the context gets nothing: cut by the limit, as far as anyone
            // downstream is concerned.
            let mut out = vec![
                Generated {
                    text: String::new(),
                    finish_reason: Some(FinishReason::Length),
                    tokens: Some(0),
                };
                batch.len()
            ];
            if !runnable.is_empty() {
                let reqs: Vec<Request> = runnable.iter().map(|&i| batch[i].clone()).collect();
                let completions = generate(self.model, self.tokenizer, &reqs, &self.device)?;
                done.passes += 1;
                for (&i, c) in runnable.iter().zip(completions) {
                    done.tokens += c.token_ids.len();
                    out[i] = Generated {
                        tokens: Some(c.token_ids.len()),
                        text: c.text,
                        finish_reason: Some(c.finish_reason),
                    };
                }
            }
            for r in batch.iter().filter(|r| r.max_new_tokens == 0) {
                tracing::warn!(
                    prompt_tokens = r.prompt_ids.len(),
                    "prompt fills the context; nothing generated"
                );
            }
            done.outputs.extend(out);
        }
        Ok(done)
    }
}
