//! Where generation runs. The self-play steps sample conversations through a [`ChatBackend`]:
//! the embedded candle engine ([`local`], the default) or any OpenAI-compatible server
//! ([`openai`]: vLLM, SGLang, llama.cpp's server) for models that outgrow one machine. Judging,
//! search and pairs do not know which one they use.

pub mod local;
pub mod openai;

use crate::engine::chat_template::Message;
use crate::spar::sampler::SampleSettings;

/// Texts for a list of jobs, with what producing them cost.
#[derive(Debug, Default)]
pub struct Completions {
    /// One per job, in order.
    pub texts: Vec<String>,
    /// Tokens generated (as the server reports them, for a server).
    pub tokens: usize,
    /// Generation passes (local batches) or HTTP requests made (a server).
    pub passes: usize,
}

/// Samples one completion per (conversation, seed).
pub trait ChatBackend {
    fn complete(
        &self,
        jobs: &[(Vec<Message>, u64)],
        settings: &SampleSettings,
    ) -> anyhow::Result<Completions>;
}
