//! Where a command's text is generated: a local model on the embedded engine, or an
//! OpenAI-compatible server. Commands flatten [`GeneratorArgs`] and get a
//! [`ChatSampler`](crate::backend::sampler::ChatSampler), the one generation seam the run loop
//! also uses (same seeds, same finish reasons).

use std::path::PathBuf;

use candle_core::DType;
use clap::Args;

use crate::backend::local::LocalOptions;
use crate::backend::openai::ServerConfig;
use crate::backend::sampler::ChatSampler;
use crate::engine::loader::{self, LoadedModel};
use crate::engine::model::Transformer;

#[derive(Args, Clone)]
pub struct GeneratorArgs {
    /// The model: an HF model directory or a GGUF file.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sequences per generation pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// `cpu`, or `cuda[:N]` in a CUDA build.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Generate on an OpenAI-compatible server instead (e.g. http://127.0.0.1:8080/v1);
    /// `--model` is then not needed.
    #[arg(long)]
    pub server: Option<String>,
    /// The model name sent to the server.
    #[arg(long, default_value = "default")]
    pub server_model: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub server_concurrency: usize,
    /// Deadline of one request, in seconds.
    #[arg(long, default_value_t = 600.0)]
    pub server_timeout: f64,
    /// Retries of a failed request (429, 5xx, dropped connection, unreadable answer).
    #[arg(long, default_value_t = 4)]
    pub server_retries: u32,
}

/// A model loaded for the embedded engine.
pub struct Loaded {
    model: LoadedModel,
    transformer: Transformer,
}

impl Loaded {
    /// The loaded checkpoint: config, tokenizer, template, generation defaults.
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }
}

impl GeneratorArgs {
    fn server_config(&self) -> Option<ServerConfig> {
        self.server.as_ref().map(|url| ServerConfig {
            url: url.clone(),
            model: self.server_model.clone(),
            concurrency: self.server_concurrency,
            timeout_s: self.server_timeout,
            retries: self.server_retries,
            ..ServerConfig::default()
        })
    }

    /// Whether anything generates (a local model or a server).
    pub fn is_given(&self) -> bool {
        self.model.is_some() || self.server.is_some()
    }

    /// The local model, loaded; `None` with a server or without `--model`.
    pub fn load(&self) -> anyhow::Result<Option<Loaded>> {
        if self.server.is_some() {
            return Ok(None);
        }
        let Some(path) = &self.model else {
            return Ok(None);
        };
        let device = crate::engine::device::parse(&self.device)?;
        let model = loader::load(path)?;
        let transformer = model.transformer(DType::F32, &device)?;
        Ok(Some(Loaded { model, transformer }))
    }

    /// The sampler: on the server, or on the embedded engine with `loaded`; `None` when neither
    /// is given.
    pub fn sampler<'m>(
        &self,
        loaded: Option<&'m Loaded>,
    ) -> anyhow::Result<Option<ChatSampler<'m>>> {
        self.sampler_with(loaded, LocalOptions::default())
    }

    /// [`Self::sampler`] with `options`; a server gets the stop strings, and refuses raw
    /// prompts and a fixed length (a chat server applies its own template and stops).
    pub fn sampler_with<'m>(
        &self,
        loaded: Option<&'m Loaded>,
        options: LocalOptions,
    ) -> anyhow::Result<Option<ChatSampler<'m>>> {
        if let Some(mut server) = self.server_config() {
            if options.raw || options.ignore_eos {
                anyhow::bail!(
                    "--server takes chat prompts only: raw text and a fixed length need a local --model"
                );
            }
            server.stop = options.stop_strings;
            return ChatSampler::on_server(server, self.batch_size).map(Some);
        }
        loaded
            .map(|l| {
                ChatSampler::local(
                    &l.model,
                    &l.transformer,
                    crate::engine::device::parse(&self.device)?,
                    self.batch_size,
                    options,
                )
            })
            .transpose()
    }
}
