//! Resuming a search stage at round granularity. Every round's judged children are appended to a
//! journal (one JSON line per round, synced) before the search goes on. After a crash the search
//! runs again from the start: the strategy plugin is deterministic, so it asks for the same
//! expansions, and the journal answers the rounds it holds without touching the model; the rest
//! are generated live. Refinement and judging seeds depend only on content, so the result is the
//! one an uninterrupted run gives.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::search::{Child, ExpandRequest, Expanded, Expander};
use crate::storage::PartialLog;

#[derive(Serialize, Deserialize)]
struct Round {
    /// (tree, node, count) of each request, to detect a journal from a different search.
    requests: Vec<(usize, u32, u32)>,
    /// Each request's children (none for a request a plugin faulted on).
    children: Vec<Vec<Child>>,
    /// Unparseable refinements the round's generation produced (for the stats).
    unparsed: usize,
    /// (request, error) of each request a plugin faulted on: its tree ended there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    faults: Vec<(usize, String)>,
}

impl Round {
    fn outcomes(&self) -> Vec<Expanded> {
        let mut outcomes: Vec<Expanded> = self.children.iter().cloned().map(Ok).collect();
        for (request, fault) in &self.faults {
            if let Some(outcome) = outcomes.get_mut(*request) {
                *outcome = Err(fault.clone());
            }
        }
        outcomes
    }
}

pub struct JournaledExpander<'e> {
    inner: &'e mut dyn Expander,
    path: PathBuf,
    replay: VecDeque<Round>,
    log: PartialLog,
    /// Rounds answered from the journal.
    pub replayed: usize,
    replayed_unparsed: usize,
}

impl<'e> JournaledExpander<'e> {
    /// Open `path`, keeping the complete rounds it holds (a line cut short by a crash is dropped).
    pub fn open(path: &Path, inner: &'e mut dyn Expander) -> anyhow::Result<Self> {
        let (log, rounds) = PartialLog::open::<Round>(path, usize::MAX)?;
        if !rounds.is_empty() {
            tracing::info!(
                rounds = rounds.len(),
                "resuming a search stage from its journal"
            );
        }
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            replay: rounds.into(),
            log,
            replayed: 0,
            replayed_unparsed: 0,
        })
    }
}

impl Expander for JournaledExpander<'_> {
    fn expand(&mut self, requests: &[ExpandRequest<'_>]) -> anyhow::Result<Vec<Expanded>> {
        let plan: Vec<(usize, u32, u32)> = requests
            .iter()
            .map(|r| (r.tree, r.node.id, r.count))
            .collect();
        if let Some(round) = self.replay.pop_front() {
            if round.requests != plan {
                bail!(
                    "{}: the search journal does not match this search (round {}); delete it to search again",
                    self.path.display(),
                    self.replayed + 1
                );
            }
            self.replayed += 1;
            self.replayed_unparsed += round.unparsed;
            let outcomes = round.outcomes();
            self.inner.remember(requests, &outcomes);
            return Ok(outcomes);
        }
        let before = self.inner.unparsed();
        let outcomes = self.inner.expand(requests)?;
        let round = Round {
            requests: plan,
            children: outcomes
                .iter()
                .map(|o| o.clone().unwrap_or_default())
                .collect(),
            unparsed: self.inner.unparsed() - before,
            faults: outcomes
                .iter()
                .enumerate()
                .filter_map(|(i, o)| o.as_ref().err().map(|f| (i, f.clone())))
                .collect(),
        };
        self.log.append(std::slice::from_ref(&round))?;
        crate::failpoint::hit("search-round");
        Ok(outcomes)
    }

    fn unparsed(&self) -> usize {
        self.replayed_unparsed + self.inner.unparsed()
    }
}
