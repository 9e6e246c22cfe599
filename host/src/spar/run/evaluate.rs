//! Held-out evaluation: greedy answers to `prompts.eval`, checked strictly by the verifiers.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use super::plan::{Role, Run};
use crate::backend::sampler::SampleSettings;
use crate::engine::chat_template::Message;
use crate::records::Sample;
use crate::storage::{read_jsonl, write_jsonl};

/// Held-out evaluation of `actor`: greedy answers to `prompts.eval`, checked strictly by the
/// verifiers; returns the share of prompts whose every constraint passes (None without an eval set).
pub fn evaluate(
    run: &Run,
    iteration: usize,
    actor: &Path,
    out: &Path,
) -> anyhow::Result<Option<f64>> {
    let Some(eval) = &run.config.prompts.eval else {
        return Ok(None);
    };
    let pass_rate = |records: &[Value]| {
        let passed = records.iter().filter(|r| r["pass"] == json!(true)).count();
        passed as f64 / records.len().max(1) as f64
    };
    if out.exists() {
        return Ok(Some(pass_rate(&read_jsonl::<Value>(out)?)));
    }
    let started = Instant::now();
    let prompts: Vec<Value> = read_jsonl(&run.resolve(eval))?;
    let model = run.local_model(Role::Actor, actor)?;
    let sampler = run.sampler(Role::Actor, model.as_ref())?;
    let jobs: Vec<(Vec<Message>, u64)> = prompts
        .iter()
        .map(|p| {
            (
                vec![Message::new(
                    "user",
                    p["prompt"].as_str().unwrap_or_default(),
                )],
                0,
            )
        })
        .collect();
    let greedy = SampleSettings {
        temperature: 0.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: run.config.actor.max_new_tokens,
    };
    let outputs = sampler.sample(&jobs, &greedy)?;
    let mut sessions = run.eval_verifiers().sessions();
    let mut records = Vec::with_capacity(prompts.len());
    let (mut instructions, mut followed) = (0usize, 0usize);
    let truncated = outputs.iter().filter(|o| o.truncated()).count();
    for (p, output) in prompts.iter().zip(outputs) {
        let sample: Sample = serde_json::from_value(
            json!({"id": p.get("key").or(p.get("id")).cloned().unwrap_or(Value::Null),
            "prompt": p["prompt"], "response": output.text, "finish_reason": output.finish_reason,
            "instruction_id_list": p.get("instruction_id_list"), "kwargs": p.get("kwargs")}),
        )?;
        let mut all = true;
        for c in sample.constraints()? {
            let ok = sessions
                .check(
                    &c.id,
                    &c.kwargs.to_string(),
                    &sample.prompt,
                    &sample.response,
                )?
                .strict;
            instructions += 1;
            followed += usize::from(ok);
            all &= ok;
        }
        records.push(
            json!({"id": sample.id, "prompt": sample.prompt, "response": sample.response,
            "finish_reason": sample.finish_reason, "pass": all}),
        );
    }
    write_jsonl(out, &records)?;
    let rate = pass_rate(&records);
    run.metrics.record(iteration, "eval", started.elapsed().as_secs_f64(), json!({"model": actor.display().to_string(),
        "prompts": records.len(), "pass_rate": rate, "instruction_pass_rate": followed as f64 / instructions.max(1) as f64,
        "truncated": truncated}))?;
    Ok(Some(rate))
}
