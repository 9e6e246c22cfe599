//! The embedded engine as a [`ChatBackend`]: the model's own chat template, its end-of-turn
//! stop tokens, batches of `batch_size` sequences in one generation pass each.
//! [`LocalOptions`] covers what only some commands need: raw text prompts and extra stop strings
//! (`generate`), and a fixed length (`bench`).

use candle_core::Device;

use super::{ChatBackend, Completions, FinishReason, Generated};
use crate::backend::sampler::SampleSettings;
use crate::engine::chat_template::{ChatTemplate, Message};
use crate::engine::generate::{PromptSharing, Request, generate_with};
use crate::engine::loader::LoadedModel;
use crate::engine::model::Transformer;
use crate::engine::sampling::SamplingParams;
use crate::engine::tokenizer::Tokenizer;

/// How the engine turns a conversation into a prompt and when it stops, beyond the defaults
/// (the chat template; the model's end-of-turn tokens).
#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    /// Feed the turns' text as it is, joined by newlines, instead of through the chat template.
    pub raw: bool,
    /// Stop strings besides the end-of-turn tokens.
    pub stop_strings: Vec<String>,
    /// Generate exactly `max_new_tokens`, whatever the model emits (benchmarks time a fixed
    /// length).
    pub ignore_eos: bool,
}

/// The environment variable that turns prompt sharing off (`off`) for measuring what it saves;
/// it is on by default, and on or off gives the same tokens.
pub const PROMPT_SHARING_ENV: &str = "SPAR_HOST_PROMPT_SHARING";

fn prompt_sharing_from_env() -> anyhow::Result<PromptSharing> {
    match std::env::var(PROMPT_SHARING_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(PromptSharing::On),
        Ok(v) if v == "on" => Ok(PromptSharing::On),
        Ok(v) if v == "off" => Ok(PromptSharing::Off),
        Ok(v) => anyhow::bail!("{PROMPT_SHARING_ENV}={v:?}: expected `on` or `off`"),
        Err(e) => anyhow::bail!("{PROMPT_SHARING_ENV}: {e}"),
    }
}

pub struct LocalBackend<'m> {
    model: &'m Transformer,
    tokenizer: &'m Tokenizer,
    /// `None` for raw prompts.
    template: Option<&'m ChatTemplate>,
    device: Device,
    stop_token_ids: Vec<u32>,
    stop_strings: Vec<String>,
    batch_size: usize,
    sharing: PromptSharing,
}

impl<'m> LocalBackend<'m> {
    /// The model needs a chat template unless `options.raw`.
    pub fn new(
        loaded: &'m LoadedModel,
        model: &'m Transformer,
        device: Device,
        batch_size: usize,
        options: LocalOptions,
    ) -> anyhow::Result<Self> {
        let template = if options.raw {
            None
        } else {
            Some(loaded.template.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: the model has no chat template (`generate --raw` feeds prompts as text)",
                    loaded.source.display()
                )
            })?)
        };
        Ok(Self {
            model,
            tokenizer: &loaded.tokenizer,
            template,
            device,
            stop_token_ids: if options.ignore_eos {
                Vec::new()
            } else {
                loaded.chat_stop_ids()
            },
            stop_strings: options.stop_strings,
            batch_size,
            sharing: prompt_sharing_from_env()?,
        })
    }

    fn prompt_ids(&self, messages: &[Message]) -> anyhow::Result<Vec<u32>> {
        let text = match self.template {
            Some(template) => template.render(messages, true)?,
            None => messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        };
        self.tokenizer.encode(&text)
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
            requests.push(Request {
                prompt_ids: self.prompt_ids(messages)?,
                sampling: SamplingParams {
                    temperature: settings.temperature,
                    top_p: settings.top_p,
                    top_k: settings.top_k,
                    seed: *seed,
                },
                max_new_tokens: settings.max_new_tokens,
                stop_token_ids: self.stop_token_ids.clone(),
                stop_strings: self.stop_strings.clone(),
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
                let completions = generate_with(
                    self.model,
                    self.tokenizer,
                    &reqs,
                    &self.device,
                    self.sharing,
                )?;
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
