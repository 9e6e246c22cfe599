//! The generation side of the self-play steps: conversations in, sampled texts out, with
//! seeds derived from what is being sampled (not from batch position), so a step's output does not
//! depend on batching or on where a resumed run restarted.

use std::cell::Cell;

use candle_core::Device;

use crate::backend::local::{LocalBackend, LocalOptions};
use crate::backend::openai::{OpenAiBackend, ServerConfig};
use crate::backend::{ChatBackend, Generated};
use crate::engine::chat_template::Message;
use crate::engine::model::Transformer;

/// Sampling settings of one step (SPaR uses different ones for acting, judging and refining).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleSettings {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub max_new_tokens: usize,
}

/// Samples conversations for the self-play steps through a generation backend (the embedded
/// engine or a server), counting what it generated.
pub struct ChatSampler<'m> {
    backend: Box<dyn ChatBackend + 'm>,
    /// Jobs per call that the steps hand over at once (a batch for the engine, the requests in
    /// flight for a server).
    pub batch_size: usize,
    /// Generation passes run (each a batch), or requests made to a server.
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
    /// A sampler on the embedded engine, stopping at the model's end-of-turn tokens; the model
    /// needs a chat template.
    pub fn new(
        loaded: &'m crate::engine::loader::LoadedModel,
        model: &'m Transformer,
        device: Device,
        batch_size: usize,
    ) -> anyhow::Result<ChatSampler<'m>> {
        Self::local(loaded, model, device, batch_size, LocalOptions::default())
    }

    /// A sampler on the embedded engine with `options` (raw prompts, stop strings, fixed length).
    pub fn local(
        loaded: &'m crate::engine::loader::LoadedModel,
        model: &'m Transformer,
        device: Device,
        batch_size: usize,
        options: LocalOptions,
    ) -> anyhow::Result<ChatSampler<'m>> {
        let backend = LocalBackend::new(loaded, model, device, batch_size, options)?;
        Ok(Self::with_backend(Box::new(backend), batch_size))
    }

    /// A sampler on an OpenAI-compatible server, with as many jobs per call as the batch size or
    /// the requests it may have in flight, whichever is larger.
    pub fn on_server(server: ServerConfig, batch_size: usize) -> anyhow::Result<Self> {
        let per_call = batch_size.max(server.concurrency);
        Ok(Self::with_backend(
            Box::new(OpenAiBackend::new(server)?),
            per_call,
        ))
    }

    /// A sampler on any backend.
    pub fn with_backend(backend: Box<dyn ChatBackend + 'm>, batch_size: usize) -> Self {
        ChatSampler {
            backend,
            batch_size,
            passes: Cell::new(0),
            sequences: Cell::new(0),
            tokens: Cell::new(0),
        }
    }

    /// One completion per (conversation, seed), in order, each with why it stopped.
    pub fn sample(
        &self,
        jobs: &[(Vec<Message>, u64)],
        settings: &SampleSettings,
    ) -> anyhow::Result<Vec<Generated>> {
        let done = self.backend.complete(jobs, settings)?;
        self.passes.set(self.passes.get() + done.passes);
        self.sequences.set(self.sequences.get() + jobs.len());
        self.tokens.set(self.tokens.get() + done.tokens);
        Ok(done.outputs)
    }
}
