//! Judging responses: the refiner's sampled Yes/No judgments (`llm`, the paper), the verifier
//! plugins' strict checks (`verifier`), or both (`hybrid`: passes only if the verifiers pass and the
//! LLM votes Yes). Identical (instruction, response) pairs are judged once.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::backend::sampler::{ChatSampler, SampleSettings, seed_of};
use crate::engine::chat_template::Message;
use crate::plugins::bindings::judge::Judge as JudgeWorld;
use crate::plugins::verifiers::{VerifierSessions, Verifiers};
use crate::plugins::{JudgePlugin, PluginError, Session};

pub use crate::config::JudgeMode;
pub use crate::records::{Constraint, Judgment, Votes};

/// What to judge.
#[derive(Clone, Debug)]
pub struct JudgeItem {
    pub instruction: String,
    pub response: String,
    pub constraints: Vec<Constraint>,
}

/// Counters for the stats line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JudgeStats {
    pub judged: usize,
    pub cache_hits: usize,
    pub llm_samples: usize,
    pub unparsed_verdicts: usize,
    /// Judge replies cut by the token limit (their verdict line may be missing).
    pub truncated_judgments: usize,
    /// Split votes judged again (each re-sample of all k counts once).
    pub tie_resamples: usize,
    /// Items a judge or verifier plugin faulted on (each failed alone, its error logged).
    #[serde(default)]
    pub plugin_faults: usize,
}

pub struct Judger<'a> {
    pub mode: JudgeMode,
    /// Judgments sampled per response (`llm`, `hybrid`).
    pub k: usize,
    pub settings: SampleSettings,
    pub seed: u64,
    /// How often a split vote is judged again before it counts as a tie (SPaR: 3).
    pub tie_resamples: usize,
    sampler: Option<&'a ChatSampler<'a>>,
    judge: Session<JudgeWorld>,
    verifiers: Option<VerifierSessions<'a>>,
    cache: HashMap<(String, String), Judgment>,
    pub stats: JudgeStats,
}

impl<'a> Judger<'a> {
    /// A judge as `[judge]` (or the same command options) describes it; `seed` varies the
    /// sampled verdicts.
    pub fn from_config(
        config: &crate::config::JudgeConfig,
        seed: u64,
        sampler: Option<&'a ChatSampler<'a>>,
        judge: &'a JudgePlugin,
        verifiers: Option<&'a Verifiers>,
    ) -> anyhow::Result<Self> {
        let mut judger = Judger::new(
            config.mode,
            config.k,
            SampleSettings {
                temperature: config.temperature,
                top_p: config.top_p,
                top_k: 0,
                max_new_tokens: config.max_new_tokens,
            },
            seed,
            sampler,
            judge,
            verifiers,
        )?;
        judger.tie_resamples = config.tie_resamples;
        Ok(judger)
    }

    pub fn new(
        mode: JudgeMode,
        k: usize,
        settings: SampleSettings,
        seed: u64,
        sampler: Option<&'a ChatSampler<'a>>,
        judge: &JudgePlugin,
        verifiers: Option<&'a Verifiers>,
    ) -> anyhow::Result<Judger<'a>> {
        if mode != JudgeMode::Verifier && sampler.is_none() {
            anyhow::bail!("judge mode {mode:?} needs a model");
        }
        if mode != JudgeMode::Llm && verifiers.is_none() {
            anyhow::bail!("judge mode {mode:?} needs verifier plugins");
        }
        Ok(Judger {
            mode,
            k: k.max(1),
            settings,
            seed,
            tie_resamples: 3,
            sampler,
            judge: judge.session(),
            verifiers: verifiers.map(Verifiers::sessions),
            cache: HashMap::new(),
            stats: JudgeStats::default(),
        })
    }

    /// The judge plugin's session (the refiner builds its prompts with it too).
    pub fn judge_session(&mut self) -> &mut Session<JudgeWorld> {
        &mut self.judge
    }

    /// The search's pass gate for this judge. An LLM judge's value is its share of Yes votes, so
    /// a majority passes the configured gate (0.5 in the paper); hybrid values of failing answers
    /// stay at or below half. A verifier's value is the share of constraints kept, which for a
    /// failing answer can exceed any gate below 1: only an answer that keeps every constraint
    /// may count as solved.
    pub fn pass_gate(&self, configured: f64) -> f64 {
        match self.mode {
            JudgeMode::Verifier => configured.max(1.0 - 1e-9),
            JudgeMode::Llm | JudgeMode::Hybrid => configured,
        }
    }

    /// Put a judgment made earlier (by a run that was stopped) into the cache, so that judging
    /// the same response again gives it, as it would have in an uninterrupted run.
    pub fn remember(&mut self, instruction: &str, response: &str, judgment: Judgment) {
        self.cache
            .insert((instruction.to_string(), response.to_string()), judgment);
    }

    /// Judge every item; one generation batch for all LLM judgments. A plugin fault on any
    /// item fails the whole call (see [`Self::judge_each`] to keep the others).
    pub fn judge(&mut self, items: &[JudgeItem]) -> anyhow::Result<Vec<Judgment>> {
        self.judge_each(items)?
            .into_iter()
            .map(|j| j.map_err(anyhow::Error::msg))
            .collect()
    }

    /// Judge every item, one generation batch for all LLM judgments. A plugin that faults on
    /// an item (a trap, a limit, a refused value from the judge or a verifier) fails that item
    /// only, with the error naming the plugin and the function; the others are judged.
    /// Failures of generation itself fail the call.
    pub fn judge_each(
        &mut self,
        items: &[JudgeItem],
    ) -> anyhow::Result<Vec<Result<Judgment, String>>> {
        let keys: Vec<(String, String)> = items
            .iter()
            .map(|i| (i.instruction.clone(), i.response.clone()))
            .collect();
        let mut todo: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            if self.cache.contains_key(key) {
                self.stats.cache_hits += 1;
            } else if seen.insert(key.clone()) {
                todo.push(i);
            } else {
                self.stats.cache_hits += 1;
            }
        }
        if self.mode != JudgeMode::Llm && todo.iter().any(|&i| items[i].constraints.is_empty()) {
            anyhow::bail!(
                "verifier judging needs constraints (instruction_id_list/kwargs) on every prompt"
            );
        }
        // Faults are not cached: a later call judges the item afresh.
        let mut faults: HashMap<usize, String> = HashMap::new();
        let llm = if self.mode == JudgeMode::Verifier {
            HashMap::new()
        } else {
            self.llm_judgments(items, &todo, &mut faults)?
        };
        for &i in &todo {
            if faults.contains_key(&i) {
                continue;
            }
            let item = &items[i];
            let checked = match self.mode {
                JudgeMode::Llm => Ok(llm[&i].clone()),
                JudgeMode::Verifier => self.verifier_judgment(item),
                JudgeMode::Hybrid => self.verifier_judgment(item).map(|checks| {
                    let model = &llm[&i];
                    let passes = checks.verdict == Some(true);
                    Judgment {
                        value: if passes {
                            model.value
                        } else {
                            0.5 * checks.value * model.value
                        },
                        verdict: if passes { model.verdict } else { Some(false) },
                        votes: model.votes,
                        critique: if passes {
                            model.critique.clone()
                        } else {
                            format!("{}\n\n{}", checks.critique, model.critique)
                        },
                        fault: None,
                    }
                }),
            };
            match checked {
                Ok(judgment) => {
                    self.stats.judged += 1;
                    self.cache.insert(keys[i].clone(), judgment);
                }
                Err(fault) => {
                    faults.insert(i, fault.to_string());
                }
            }
        }
        self.stats.plugin_faults += faults.len();
        let fault_of: HashMap<&(String, String), &String> =
            faults.iter().map(|(&i, f)| (&keys[i], f)).collect();
        Ok(keys
            .iter()
            .map(|k| match self.cache.get(k) {
                Some(judgment) => Ok(judgment.clone()),
                None => Err(fault_of[k].clone()),
            })
            .collect())
    }

    /// LLM judgments of `todo`: k sampled verdicts each. A split vote (as many Yes as No, at
    /// least one of each) is judged again, all k afresh, up to `tie_resamples` times, and
    /// stays a tie (verdict `None`, dropped) after that, as SPaR does. No parseable verdict at
    /// all is not a split and is not re-sampled.
    fn llm_judgments(
        &mut self,
        items: &[JudgeItem],
        todo: &[usize],
        faults: &mut HashMap<usize, String>,
    ) -> anyhow::Result<HashMap<usize, Judgment>> {
        let mut out = HashMap::new();
        let mut pending: Vec<usize> = todo.to_vec();
        for attempt in 0..=self.tie_resamples {
            if pending.is_empty() {
                break;
            }
            let mut split = Vec::new();
            for (i, judgment) in self.llm_round(items, &pending, attempt, faults)? {
                let tie = judgment.verdict.is_none() && judgment.votes.yes > 0;
                if tie && attempt < self.tie_resamples {
                    self.stats.tie_resamples += 1;
                    split.push(i);
                } else {
                    out.insert(i, judgment);
                }
            }
            pending = split;
        }
        Ok(out)
    }

    /// One round of k sampled verdicts for each of `todo`; `attempt` > 0 re-samples a tie with
    /// seeds of its own.
    fn llm_round(
        &mut self,
        items: &[JudgeItem],
        todo: &[usize],
        attempt: usize,
        faults: &mut HashMap<usize, String>,
    ) -> anyhow::Result<Vec<(usize, Judgment)>> {
        let sampler = self.sampler.expect("checked in new");
        let mut jobs = Vec::with_capacity(todo.len() * self.k);
        let round = format!("tie-{attempt}");
        let mut prompted = Vec::with_capacity(todo.len());
        for &i in todo {
            let item = &items[i];
            let messages: Vec<Message> =
                match self.judge.judge_prompt(&item.instruction, &item.response) {
                    Ok(messages) => messages.into_iter().map(Message::from).collect(),
                    Err(fault) => {
                        faults.insert(i, fault.to_string());
                        continue;
                    }
                };
            prompted.push(i);
            for j in 0..self.k {
                let j = j.to_string();
                let mut parts = vec!["judge", &item.instruction, &item.response, &j];
                if attempt > 0 {
                    parts.push(&round);
                }
                jobs.push((messages.clone(), seed_of(self.seed, &parts)));
            }
        }
        let outputs = sampler.sample(&jobs, &self.settings)?;
        self.stats.llm_samples += outputs.len();
        self.stats.truncated_judgments += outputs.iter().filter(|o| o.truncated()).count();
        let texts: Vec<String> = outputs.into_iter().map(|o| o.text).collect();
        let mut out = Vec::with_capacity(prompted.len());
        'items: for (n, &i) in prompted.iter().enumerate() {
            let samples = &texts[n * self.k..(n + 1) * self.k];
            let mut votes = Votes::default();
            let mut parsed = Vec::with_capacity(samples.len());
            for text in samples {
                let verdict = match self.judge.parse_judgment(text) {
                    Ok(verdict) => verdict,
                    Err(fault) => {
                        faults.insert(i, fault.to_string());
                        continue 'items;
                    }
                };
                match verdict {
                    Some(true) => votes.yes += 1,
                    Some(false) => votes.no += 1,
                    None => votes.unparsed += 1,
                }
                parsed.push(verdict);
            }
            self.stats.unparsed_verdicts += votes.unparsed as usize;
            let counted = votes.yes + votes.no;
            let value = if counted == 0 {
                0.0
            } else {
                f64::from(votes.yes) / f64::from(counted)
            };
            let verdict = match votes.yes.cmp(&votes.no) {
                std::cmp::Ordering::Greater => Some(true),
                std::cmp::Ordering::Less => Some(false),
                std::cmp::Ordering::Equal => None,
            };
            // A critique that agrees with the majority (the paper's refinement input); a tie
            // has no majority, so no critique (never one labelled with the other verdict).
            let critique = samples
                .iter()
                .zip(&parsed)
                .find(|(_, v)| verdict.is_some() && **v == verdict)
                .map(|(t, _)| t.clone())
                .unwrap_or_default();
            out.push((
                i,
                Judgment {
                    value,
                    verdict,
                    votes,
                    critique,
                    fault: None,
                },
            ));
        }
        Ok(out)
    }

    /// The strict verifier checks as a judgment, with a critique naming what failed: plain text
    /// with no verdict line, since the host knows no judge plugin's format; the judge plugin's
    /// `refine-prompt` puts it into its own. The item has constraints (checked by the caller).
    fn verifier_judgment(&mut self, item: &JudgeItem) -> Result<Judgment, PluginError> {
        let sessions = self.verifiers.as_mut().expect("checked in new");
        let mut passed = 0usize;
        let mut failures = Vec::new();
        for c in &item.constraints {
            let kwargs = c.kwargs.to_string();
            let result = sessions.check(&c.id, &kwargs, &item.instruction, &item.response)?;
            if result.strict {
                passed += 1;
            } else {
                let wanted = sessions
                    .describe(&c.id, &kwargs)
                    .unwrap_or_else(|_| c.id.clone());
                failures.push(format!("- Not satisfied ({}): {wanted}", c.id));
            }
        }
        let all = failures.is_empty();
        let critique = if all {
            "Every constraint of the prompt is satisfied.".to_string()
        } else {
            format!(
                "The output does not follow the prompt:\n{}",
                failures.join("\n")
            )
        };
        Ok(Judgment {
            value: passed as f64 / item.constraints.len() as f64,
            verdict: Some(all),
            votes: Votes::default(),
            critique,
            fault: None,
        })
    }
}
