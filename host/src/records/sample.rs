//! Actor samples and their judgments (`samples.jsonl`, `judgments.jsonl`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::FinishReason;
use crate::storage::jsonl::Validate;

/// An actor sample to judge: a prompt, one response, and optionally IFEval-style constraints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    pub id: Value,
    pub prompt: String,
    pub response: String,
    /// Why generation stopped (`length`: cut by the token limit); absent when unknown (a file
    /// written by hand or before finish reasons were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Tokens generated, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_id_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwargs: Option<Vec<Value>>,
}

impl Sample {
    /// Cut off by the token limit.
    pub fn truncated(&self) -> bool {
        self.finish_reason == Some(FinishReason::Length)
    }

    /// The constraints, paired up; an error when the two lists disagree.
    pub fn constraints(&self) -> anyhow::Result<Vec<Constraint>> {
        match (&self.instruction_id_list, &self.kwargs) {
            (None, _) => Ok(Vec::new()),
            (Some(ids), kwargs) => {
                let empty = Vec::new();
                let kwargs = kwargs.as_ref().unwrap_or(&empty);
                if !kwargs.is_empty() && kwargs.len() != ids.len() {
                    anyhow::bail!(
                        "`kwargs` has {} entries but `instruction_id_list` has {}",
                        kwargs.len(),
                        ids.len()
                    );
                }
                Ok(ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| Constraint {
                        id: id.clone(),
                        kwargs: kwargs
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| serde_json::json!({})),
                    })
                    .collect())
            }
        }
    }
}

/// A judged sample (`judgments.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JudgedSample {
    #[serde(flatten)]
    pub sample: Sample,
    #[serde(flatten)]
    pub judgment: Judgment,
}

/// One IFEval-style constraint of a prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub id: String,
    /// The arguments as a JSON object.
    pub kwargs: serde_json::Value,
}

/// Judge votes behind a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Votes {
    pub yes: u32,
    pub no: u32,
    pub unparsed: u32,
}

/// A judgment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgment {
    /// Share of Yes among parsed verdicts (`llm`), share of constraints passed (`verifier`), or
    /// the LLM's value when the verifiers pass and at most half of it otherwise (`hybrid`).
    pub value: f64,
    /// The majority verdict; `None` for a tie (dropped, as in the paper).
    pub verdict: Option<bool>,
    pub votes: Votes,
    /// A critique that agrees with the verdict.
    pub critique: String,
    /// Why no judgment could be made: a judge or verifier plugin faulted on this item (its
    /// error, naming the plugin and the function). The verdict is then `None`, so the sample is
    /// used neither as a negative nor as a positive; the judge stage counts these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

impl Validate for Sample {
    fn validate(&self) -> Result<(), String> {
        self.constraints().map(|_| ()).map_err(|e| e.to_string())
    }
}

impl Validate for JudgedSample {
    fn validate(&self) -> Result<(), String> {
        self.sample.validate()?;
        if !(0.0..=1.0).contains(&self.judgment.value) {
            return Err(format!("value {} is not in [0, 1]", self.judgment.value));
        }
        Ok(())
    }
}
