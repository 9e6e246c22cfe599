//! Sampling and judging that survive a stop: each finished batch is appended to a partial log,
//! and a rerun continues after the last complete one with the same results.

use std::path::Path;

use crate::backend::Generated;
use crate::backend::sampler::{ChatSampler, SampleSettings};
use crate::engine::chat_template::Message;
use crate::progress;
use crate::records::{JudgedSample, Sample};
use crate::spar::judge::Judger;
use crate::spar::steps;
use crate::storage::PartialLog;

/// Sample every job, a batch at a time, appending each finished batch's outputs to `partial`.
/// After a stop, the jobs already in `partial` are not sampled again: each job's seed is its own
/// and batches keep their composition, so the result equals an uninterrupted run's.
pub fn sample_resumably(
    sampler: &ChatSampler<'_>,
    jobs: &[(Vec<Message>, u64)],
    settings: &SampleSettings,
    partial: &Path,
) -> anyhow::Result<Vec<Generated>> {
    let (mut log, done) = PartialLog::open::<PartialSample>(partial, jobs.len())?;
    let mut done: Vec<Generated> = done
        .into_iter()
        .map(PartialSample::into_generated)
        .collect();
    if !done.is_empty() {
        tracing::info!(
            done = done.len(),
            total = jobs.len(),
            "resuming a sampling stage"
        );
    }
    let bar = progress::bar("samples", jobs.len(), done.len());
    for batch in jobs[done.len()..].chunks(sampler.batch_size.max(1)) {
        let outputs = sampler.sample(batch, settings)?;
        log.append(&outputs)?;
        bar.inc(outputs.len() as u64);
        done.extend(outputs);
        crate::failpoint::hit("samples-batch");
    }
    bar.finish_and_clear();
    log.finish();
    Ok(done)
}

/// A line of a sampling stage's partial log: an output, or a bare text from a log written
/// before finish reasons were kept (its finish reason is then unknown, and counted so).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum PartialSample {
    Output(Generated),
    Text(String),
}

impl PartialSample {
    fn into_generated(self) -> Generated {
        match self {
            PartialSample::Output(g) => g,
            PartialSample::Text(text) => Generated {
                text,
                finish_reason: None,
                tokens: None,
            },
        }
    }
}

/// Judge `samples` a fixed chunk at a time, appending each chunk's records to `partial`; after a
/// stop, the finished records are kept (and their judgments cached, as in an uninterrupted run).
pub fn judge_resumably(
    samples: Vec<Sample>,
    judger: &mut Judger<'_>,
    chunk: usize,
    partial: &Path,
) -> anyhow::Result<Vec<JudgedSample>> {
    let (mut log, mut done) = PartialLog::open::<JudgedSample>(partial, samples.len())?;
    for r in &done {
        judger.remember(&r.sample.prompt, &r.sample.response, r.judgment.clone());
    }
    let bar = progress::bar("judge", samples.len(), done.len());
    let rest: Vec<Sample> = samples.into_iter().skip(done.len()).collect();
    for part in rest.chunks(chunk.max(1)) {
        let (records, _) = steps::judge_samples(part.to_vec(), judger)?;
        log.append(&records)?;
        bar.inc(records.len() as u64);
        done.extend(records);
        crate::failpoint::hit("judge-batch");
    }
    bar.finish_and_clear();
    log.finish();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_log_from_before_finish_reasons_reads_as_unknown() {
        let old: PartialSample = serde_json::from_str("\"a text\"").unwrap();
        assert_eq!(
            old.into_generated(),
            Generated {
                text: "a text".into(),
                finish_reason: None,
                tokens: None
            }
        );
        let new: PartialSample =
            serde_json::from_str(r#"{"text": "b", "finish_reason": "length", "tokens": 4}"#)
                .unwrap();
        assert!(new.into_generated().truncated());
    }
}
