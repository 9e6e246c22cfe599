//! Generation on an OpenAI-compatible server (`POST {url}/chat/completions`): vLLM, SGLang,
//! llama.cpp's server, or a hosted API. Each job is one request with its own seed, so results do
//! not depend on how jobs are grouped; up to `concurrency` requests are in flight; 429, 5xx,
//! dropped connections and unreadable answers are retried with exponential backoff; every
//! request has a deadline. A job that still fails stops the step with an error naming the job,
//! the server and the last failure, and the run directory keeps what finished before it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ChatBackend, Completions, FinishReason, Generated};
use crate::backend::sampler::SampleSettings;
use crate::engine::chat_template::Message;

/// How to reach a server (the `[servers.<role>]` config tables and the `--server` flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Base URL up to and including the API version, e.g. `http://127.0.0.1:8080/v1`.
    pub url: String,
    /// The `model` field of each request (the name the server serves the model under).
    pub model: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Deadline of one request, in seconds.
    pub timeout_s: f64,
    /// Attempts after the first for a retryable failure.
    pub retries: u32,
    /// First backoff, in seconds; doubled after every retry, at most 30 s.
    pub backoff_s: f64,
    /// The environment variable holding an API key (sent as a bearer token), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Extra stop strings sent with every request.
    pub stop: Vec<String>,
    /// For `spar-host run`: a shell command that makes the server serve a new checkpoint of
    /// this role (`{model}` is replaced by its directory), run in the config's folder when
    /// training produced one; the
    /// run then waits until `{url}/models` answers. Without it the server keeps its model and the
    /// trained checkpoint is not used for this role's generation (a warning says so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_command: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            url: String::new(),
            model: "default".into(),
            concurrency: 8,
            timeout_s: 600.0,
            retries: 4,
            backoff_s: 0.5,
            api_key_env: None,
            stop: Vec::new(),
            reload_command: None,
        }
    }
}

pub struct OpenAiBackend {
    config: ServerConfig,
    endpoint: String,
    agent: ureq::Agent,
    api_key: Option<String>,
}

/// One job's outcome: the completion and the attempts made, or why it failed.
type JobResult = Result<(Generated, usize), String>;

/// Why one attempt failed, and whether trying again can help.
struct Failure {
    message: String,
    retryable: bool,
}

impl OpenAiBackend {
    pub fn new(config: ServerConfig) -> anyhow::Result<Self> {
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            bail!(
                "server url `{}`: expected http://host:port/v1 (or https://)",
                config.url
            );
        }
        if config.url.starts_with("https://") && !cfg!(feature = "https") {
            bail!(
                "server url `{}`: this build has no TLS; rebuild with `--features https` or use http://",
                config.url
            );
        }
        let api_key = match &config.api_key_env {
            Some(var) => Some(std::env::var(var).with_context(|| {
                format!("the server's api_key_env names `{var}`, which is not set")
            })?),
            None => None,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(config.timeout_s.max(0.001))))
            .http_status_as_error(false)
            .max_idle_connections_per_host(config.concurrency.max(1))
            .build()
            .into();
        Ok(Self {
            endpoint: format!("{}/chat/completions", config.url.trim_end_matches('/')),
            config,
            agent,
            api_key,
        })
    }

    /// Wait until `{url}/models` answers 200 (a server starting or reloading), at most `limit`.
    pub fn wait_until_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let url = format!("{}/models", self.config.url.trim_end_matches('/'));
        let started = std::time::Instant::now();
        loop {
            let last = match self.agent.get(&url).call() {
                Ok(r) if r.status().as_u16() == 200 => return Ok(()),
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= limit {
                bail!(
                    "server {url} not ready after {:.0} s: {last}",
                    limit.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn body(&self, messages: &[Message], seed: u64, settings: &SampleSettings) -> Value {
        let mut body = json!({
            "model": self.config.model,
            "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_new_tokens,
            // Servers disagree on the seed's width; 31 bits are accepted everywhere.
            "seed": seed & 0x7fff_ffff,
            "n": 1,
        });
        if settings.top_k > 0 {
            body["top_k"] = json!(settings.top_k);
        }
        if !self.config.stop.is_empty() {
            body["stop"] = json!(self.config.stop);
        }
        body
    }

    /// One attempt: the completion, with its finish reason and token count.
    fn attempt(&self, body: &str) -> Result<Generated, Failure> {
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send(body).map_err(|e| Failure {
            retryable: !matches!(e, ureq::Error::BadUri(_) | ureq::Error::HostNotFound),
            message: match e {
                ureq::Error::Timeout(_) => {
                    format!("no answer within the {} s timeout", self.config.timeout_s)
                }
                e => e.to_string(),
            },
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| Failure {
                message: format!("reading the answer: {e}"),
                retryable: true,
            })?;
        if status != 200 {
            return Err(Failure {
                message: format!("HTTP {status}: {}", snippet(&text)),
                retryable: status == 429 || status >= 500,
            });
        }
        parse_completion(&text).map_err(|message| Failure {
            message,
            retryable: true,
        })
    }

    /// Every attempt for one job, with backoff between them.
    fn complete_one(&self, body: &str) -> JobResult {
        let mut wait = self.config.backoff_s;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(body) {
                Ok(generated) => return Ok((generated, attempts)),
                Err(f) if f.retryable && attempts <= self.config.retries as usize => {
                    tracing::warn!(
                        server = %self.config.url,
                        attempt = attempts,
                        "{}; retrying in {wait:.1} s",
                        f.message
                    );
                    std::thread::sleep(Duration::from_secs_f64(wait));
                    wait = (wait * 2.0).min(30.0);
                }
                Err(f) => {
                    return Err(format!(
                        "{} after {attempts} attempt{}",
                        f.message,
                        if attempts == 1 { "" } else { "s" }
                    ));
                }
            }
        }
    }
}

/// The text, finish reason and completion-token count of a chat completion answer. OpenAI's
/// `finish_reason` is `length` when `max_tokens` cut the text; every other value (`stop`,
/// `content_filter`, `tool_calls`) ended it for another reason; none at all is unknown.
fn parse_completion(text: &str) -> Result<Generated, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("unreadable answer ({e}): {}", snippet(text)))?;
    let content = value["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| {
            format!(
                "answer without choices[0].message.content: {}",
                snippet(text)
            )
        })?;
    let finish_reason = match value["choices"][0]["finish_reason"].as_str() {
        Some("length") => Some(FinishReason::Length),
        Some(_) => Some(FinishReason::Stop),
        None => None,
    };
    Ok(Generated {
        text: content.to_string(),
        finish_reason,
        tokens: value["usage"]["completion_tokens"]
            .as_u64()
            .map(|n| n as usize),
    })
}

fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

impl ChatBackend for OpenAiBackend {
    fn complete(
        &self,
        jobs: &[(Vec<Message>, u64)],
        settings: &SampleSettings,
    ) -> anyhow::Result<Completions> {
        let bodies: Vec<String> = jobs
            .iter()
            .map(|(messages, seed)| self.body(messages, *seed, settings).to_string())
            .collect();
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<JobResult>>> =
            Mutex::new((0..jobs.len()).map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..self.config.concurrency.clamp(1, jobs.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        // After a failure, start nothing new: the step is going to stop.
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let result = self.complete_one(body);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                    }
                });
            }
        });
        let mut done = Completions::default();
        for (i, result) in results
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .enumerate()
        {
            match result {
                Some(Ok((generated, attempts))) => {
                    done.tokens += generated.tokens.unwrap_or(0);
                    done.outputs.push(generated);
                    done.passes += attempts;
                }
                Some(Err(message)) => {
                    let (messages, seed) = &jobs[i];
                    let last = messages.last().map(|m| m.content.as_str()).unwrap_or("");
                    bail!(
                        "server {}: job {} of {} (seed {seed}, \"{}\") failed: {message}",
                        self.config.url,
                        i + 1,
                        jobs.len(),
                        snippet(last).replace('\n', " ")
                    );
                }
                // Not started because another job failed; that job's error is reported.
                None => {}
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_and_bad_ones_named() {
        let ok = r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],"usage":{"completion_tokens":3}}"#;
        assert_eq!(
            parse_completion(ok),
            Ok(Generated {
                text: "hi".to_string(),
                finish_reason: Some(FinishReason::Length),
                tokens: Some(3)
            })
        );
        let unknown = r#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#;
        assert_eq!(parse_completion(unknown).unwrap().finish_reason, None);
        assert!(
            parse_completion("{\"choices\": [")
                .unwrap_err()
                .starts_with("unreadable answer")
        );
        assert!(
            parse_completion(r#"{"error": "busy"}"#)
                .unwrap_err()
                .starts_with("answer without choices[0].message.content")
        );
    }

    #[test]
    fn urls_are_checked() {
        let bad = OpenAiBackend::new(ServerConfig {
            url: "localhost:8080".into(),
            ..ServerConfig::default()
        });
        assert!(
            bad.err()
                .unwrap()
                .to_string()
                .contains("expected http://host:port/v1")
        );
    }
}
