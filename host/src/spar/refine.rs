//! The search's [`Expander`] backed by the model: refinements are sampled for every requested
//! node of every tree in one batch (a refinement that cannot be parsed, or that the token limit
//! cut off, is re-sampled up to a limit, then counted as failed), and the parsed ones are judged
//! in one judging batch. With repair (`RefineMode::Repair|Both`), a node's first child is the
//! verifiers' repair of it, judged like any other child.

use super::judge::{Constraint, JudgeItem, Judger, Judgment};
use super::repair::{RefineMode, repair_response};
use super::search::{Child, ExpandRequest, Expanded, Expander, Votes};
use crate::backend::Generated;
use crate::backend::sampler::{ChatSampler, SampleSettings, seed_of};
use crate::engine::chat_template::Message;
use crate::plugins::verifiers::VerifierSessions;

/// A slot's last attempt: the refinement parsed from it (none when it did not parse or was cut
/// by the token limit), the generation itself, and whether it is a verifier's repair.
type Attempt = (Option<String>, Generated, bool);

pub struct Refiner<'s, 'j, 'a> {
    pub sampler: &'s ChatSampler<'s>,
    pub judger: &'j mut Judger<'a>,
    pub settings: SampleSettings,
    /// Re-samples of an unparseable refinement before it counts as failed.
    pub retries: u32,
    pub seed: u64,
    /// Constraints of each tree's prompt (for verifier and hybrid judging).
    pub constraints: &'s [Vec<Constraint>],
    pub unparsed_refinements: usize,
    /// Refinements cut by the token limit (each re-sampled, like an unparseable one).
    pub truncated_refinements: usize,
    /// Whether children come from the refiner, the verifiers' repairs, or both.
    pub mode: RefineMode,
    /// The verifiers that repair (needed unless `mode` is `llm`).
    pub repairs: Option<VerifierSessions<'s>>,
    /// Children made by repair, and nodes for which no repair applied.
    pub repaired_children: usize,
    pub unrepairable_nodes: usize,
}

impl Expander for Refiner<'_, '_, '_> {
    fn expand(&mut self, requests: &[ExpandRequest<'_>]) -> anyhow::Result<Vec<Expanded>> {
        // A plugin fault on a request (its refine prompt, its repair, parsing or judging one of
        // its children) fails that request alone, and the search ends its tree.
        let mut faults: Vec<Option<String>> = vec![None; requests.len()];
        // Each requested child is a slot, re-sampled until it parses or the retries run out.
        let mut prompts = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            let prompt = self.judger.judge_session().refine_prompt(
                &r.root.instruction,
                &r.node.response,
                &r.node.critique,
            );
            prompts.push(match prompt {
                Ok(messages) => messages.into_iter().map(Message::from).collect(),
                Err(fault) => {
                    faults[i] = Some(fault.to_string());
                    Vec::new()
                }
            });
        }
        // Per slot: the parsed refinement and the generation it came from; a slot that never
        // gave a complete, parseable refinement keeps its last generation (for the record)
        // without one.
        let mut parsed: Vec<Vec<Option<Attempt>>> = requests
            .iter()
            .map(|r| vec![None; r.count as usize])
            .collect();
        // A node's first child is its repair, when the mode asks for one and a fix applies.
        if self.mode.uses_repair() {
            let sessions = self
                .repairs
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("refining by repair needs verifier plugins"))?;
            for (i, r) in requests.iter().enumerate() {
                if faults[i].is_some() {
                    continue;
                }
                let constraints = &self.constraints[r.tree];
                let fixed =
                    repair_response(sessions, constraints, &r.root.instruction, &r.node.response);
                let fixed = match fixed {
                    Ok(fixed) => fixed,
                    Err(fault) => {
                        faults[i] = Some(format!("{fault:#}"));
                        continue;
                    }
                };
                match fixed {
                    Some(fixed) if r.count > 0 => {
                        self.repaired_children += 1;
                        // The repaired text is the parent's generation, edited: it is as
                        // complete as the parent was.
                        let output = Generated {
                            text: String::new(),
                            finish_reason: r.node.finish_reason,
                            tokens: None,
                        };
                        parsed[i][0] = Some((Some(fixed), output, true));
                    }
                    _ => self.unrepairable_nodes += 1,
                }
            }
        }
        let llm = self.mode.uses_llm();
        let mut pending: Vec<(usize, u32)> = requests
            .iter()
            .enumerate()
            .flat_map(|(i, r)| (0..r.count).map(move |s| (i, s)))
            .filter(|&(i, s)| llm && faults[i].is_none() && parsed[i][s as usize].is_none())
            .collect();
        for attempt in 0..=self.retries {
            if pending.is_empty() {
                break;
            }
            let jobs: Vec<(Vec<Message>, u64)> = pending
                .iter()
                .map(|&(i, slot)| {
                    let r = &requests[i];
                    let seed = seed_of(
                        self.seed,
                        &[
                            "refine",
                            &r.root.instruction,
                            &r.node.response,
                            &slot.to_string(),
                            &attempt.to_string(),
                        ],
                    );
                    (prompts[i].clone(), seed)
                })
                .collect();
            let outputs = self.sampler.sample(&jobs, &self.settings)?;
            let mut still = Vec::new();
            for (&(i, slot), output) in pending.iter().zip(outputs) {
                if faults[i].is_some() {
                    continue;
                }
                let refined = match self.judger.judge_session().parse_refinement(&output.text) {
                    Ok(refined) => refined,
                    Err(fault) => {
                        faults[i] = Some(fault.to_string());
                        continue;
                    }
                };
                match refined {
                    None => self.unparsed_refinements += 1,
                    // A reply the token limit cut may hold a cut refinement that passes by
                    // accident; it must never be chosen, so it is sampled again.
                    Some(_) if output.truncated() => self.truncated_refinements += 1,
                    Some(r) => {
                        parsed[i][slot as usize] = Some((Some(r), output, false));
                        continue;
                    }
                }
                parsed[i][slot as usize] = Some((None, output, false));
                still.push((i, slot));
            }
            pending = still;
        }
        // Judge every parsed child in one batch.
        let mut items = Vec::new();
        let mut owners = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            if faults[i].is_some() {
                continue;
            }
            for refined in parsed[i]
                .iter()
                .flatten()
                .filter_map(|(r, _, _)| r.as_ref())
            {
                items.push(JudgeItem {
                    instruction: r.root.instruction.clone(),
                    response: refined.clone(),
                    constraints: self.constraints[r.tree].clone(),
                });
                owners.push(i);
            }
        }
        let judged = self.judger.judge_each(&items)?;
        for (&i, judgment) in owners.iter().zip(&judged) {
            if let Err(fault) = judgment
                && faults[i].is_none()
            {
                faults[i] = Some(fault.clone());
            }
        }
        // The judgments of requests that did not fault, in order (a faulted request's other
        // children are not used).
        let mut judgments = owners
            .iter()
            .zip(judged)
            .filter(|(i, _)| faults[**i].is_none())
            .map(|(_, j)| j.expect("faulted requests were filtered out"))
            .collect::<Vec<_>>()
            .into_iter();
        Ok(parsed
            .into_iter()
            .zip(faults)
            .map(|(slots, fault)| {
                if let Some(fault) = fault {
                    return Err(fault);
                }
                Ok(slots
                    .into_iter()
                    .map(|refined| match refined {
                        Some((Some(response), output, repaired)) => {
                            let j = judgments.next().expect("one judgment per parsed child");
                            // A tie (after its re-samples) is dropped, as SPaR drops it: the
                            // child stays in the record but cannot be expanded or chosen.
                            let tie = j.verdict.is_none();
                            Child {
                                response: (!tie).then_some(response),
                                critique: j.critique,
                                value: j.value,
                                verdict: j.verdict,
                                votes: j.votes,
                                raw: output.text,
                                finish_reason: output.finish_reason,
                                tokens: output.tokens,
                                repaired,
                            }
                        }
                        // Cut off or unparseable on every attempt: failed, last text kept.
                        Some((None, output, _)) => Child {
                            response: None,
                            critique: String::new(),
                            value: 0.0,
                            verdict: None,
                            votes: Votes::default(),
                            raw: output.text,
                            finish_reason: output.finish_reason,
                            tokens: output.tokens,
                            repaired: false,
                        },
                        // Not generated: the mode makes no refiner children and no repair
                        // applied.
                        None => Child {
                            response: None,
                            critique: String::new(),
                            value: 0.0,
                            verdict: None,
                            votes: Votes::default(),
                            raw: String::new(),
                            finish_reason: None,
                            tokens: None,
                            repaired: false,
                        },
                    })
                    .collect())
            })
            .collect())
    }

    fn unparsed(&self) -> usize {
        self.unparsed_refinements
    }

    fn remember(&mut self, requests: &[ExpandRequest<'_>], children: &[Expanded]) {
        for (r, kids) in requests.iter().zip(children) {
            for child in kids.iter().flatten() {
                if let Some(response) = &child.response {
                    self.judger.remember(
                        &r.root.instruction,
                        response,
                        Judgment {
                            value: child.value,
                            verdict: child.verdict,
                            votes: child.votes,
                            critique: child.critique.clone(),
                            fault: None,
                        },
                    );
                }
            }
        }
    }
}
