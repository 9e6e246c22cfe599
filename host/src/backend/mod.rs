//! Where generation runs. The self-play steps sample conversations through a [`ChatBackend`]:
//! the embedded candle engine ([`local`], the default) or any OpenAI-compatible server
//! ([`openai`]: vLLM, SGLang, llama.cpp's server) for models that outgrow one machine. Judging,
//! search and pairs do not know which one they use.

pub mod local;
pub mod openai;
pub mod sampler;

use serde::{Deserialize, Serialize};

use crate::backend::sampler::SampleSettings;
use crate::engine::chat_template::Message;
pub use crate::engine::generate::FinishReason;

/// One sampled text and why its generation stopped. A text cut by the token limit can fail a
/// constraint it was about to keep, so every stage records this and none trains on a cut text
/// without saying so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    pub text: String,
    /// `None` when the source did not say (a server without `finish_reason`, or a record
    /// written before finish reasons were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Tokens generated, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
}

impl Generated {
    /// Cut off by the token limit.
    pub fn truncated(&self) -> bool {
        self.finish_reason == Some(FinishReason::Length)
    }
}

/// Texts for a list of jobs, with what producing them cost.
#[derive(Debug, Default)]
pub struct Completions {
    /// One per job, in order.
    pub outputs: Vec<Generated>,
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
