//! Tree-search refinement driven through a search-strategy plugin, every tree in lockstep: each
//! round the host asks every active tree for its next step, sends all requested expansions to the
//! [`Expander`] as one batch (one generation pass, one judging pass), and feeds the judged children
//! back. A misbehaving plugin ends its tree cleanly with the reason recorded, never the run.

use serde::{Deserialize, Serialize};

use crate::backend::FinishReason;
use crate::plugins::world_calls::{Expansion, Node, SearchParams, Step};
use crate::plugins::{PluginError, SearchPlugin, TreeHandle};
pub use crate::records::{NodeRecord, Tree, Votes};

/// A tree to search: the failed response and its judgment.
#[derive(Clone, Debug)]
pub struct Root {
    pub instruction: String,
    pub response: String,
    pub critique: String,
    pub value: f64,
    pub votes: Votes,
    pub finish_reason: Option<FinishReason>,
    pub tokens: Option<usize>,
}

/// One expansion the expander must perform: `count` refinements of `node` in tree `tree`.
pub struct ExpandRequest<'a> {
    pub tree: usize,
    pub root: &'a Root,
    pub node: &'a NodeRecord,
    pub count: u32,
}

/// A judged refinement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Child {
    /// `None` when no parseable refinement came out of the retries.
    pub response: Option<String>,
    pub critique: String,
    pub value: f64,
    /// The judge's majority verdict (`None`: a tie, or no parseable refinement).
    #[serde(default)]
    pub verdict: Option<bool>,
    pub votes: Votes,
    /// The raw refinement text the response was parsed from.
    pub raw: String,
    /// Why the refinement's generation stopped; a refinement cut by the token limit has no
    /// `response` (it is re-sampled like an unparseable one, then counted as failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// A verifier's repair of the parent rather than the refiner's rewrite.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repaired: bool,
}

/// One request's outcome: exactly `count` children, or why a plugin fault (the judge's or a
/// verifier's, on this request's prompt or children) ends the request's tree.
pub type Expanded = Result<Vec<Child>, String>;

/// Generates and judges refinements, a whole round at a time.
pub trait Expander {
    /// One outcome per request, in order. An error fails the whole round (generation itself
    /// failed); a plugin fault fails only its request.
    fn expand(&mut self, requests: &[ExpandRequest<'_>]) -> anyhow::Result<Vec<Expanded>>;

    /// Refinements so far that could not be parsed (re-sampled or failed), for the stats.
    fn unparsed(&self) -> usize {
        0
    }

    /// Learn from a round answered elsewhere (a resumed search's journal), so that later rounds
    /// behave as if this expander had produced it (e.g. its judgment cache).
    fn remember(&mut self, _requests: &[ExpandRequest<'_>], _children: &[Expanded]) {}
}

/// What the search did, for the stats line and the benchmark.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchStats {
    pub trees: usize,
    pub solved: usize,
    /// Solved trees by the depth of the chosen node.
    pub solved_by_depth: std::collections::BTreeMap<u32, usize>,
    pub rounds: usize,
    /// Children generated per round (each round is one generation batch).
    pub batch_sizes: Vec<usize>,
    pub nodes_expanded: usize,
    pub invalid_children: usize,
    pub tree_errors: usize,
    /// Finished trees the plugin failed to free (their results are kept).
    #[serde(default)]
    pub drop_errors: usize,
}

fn wit_node(record: &NodeRecord) -> Node {
    Node {
        id: record.id,
        parent: record.parent,
        depth: record.depth,
        value: record.value,
        valid: record.valid,
        text: record.response.clone(),
    }
}

struct Active {
    handle: Option<TreeHandle>,
    tree: Tree,
    new_nodes: Vec<Node>,
    generated: u32,
    done: bool,
}

/// Search every root with `plugin` under `params`.
pub fn search(
    plugin: &SearchPlugin,
    roots: &[Root],
    params: SearchParams,
    expander: &mut dyn Expander,
) -> anyhow::Result<(Vec<Tree>, SearchStats)> {
    let mut session = plugin.session();
    let mut stats = SearchStats {
        trees: roots.len(),
        ..SearchStats::default()
    };
    let mut active: Vec<Active> = Vec::with_capacity(roots.len());
    for root in roots {
        let record = NodeRecord {
            id: 0,
            parent: None,
            depth: 0,
            response: root.response.clone(),
            critique: root.critique.clone(),
            value: root.value,
            valid: true,
            votes: root.votes,
            raw: String::new(),
            finish_reason: root.finish_reason,
            tokens: root.tokens,
            repaired: false,
        };
        let mut entry = Active {
            handle: None,
            tree: Tree {
                nodes: vec![record.clone()],
                chosen: None,
                solved: false,
                error: None,
            },
            new_nodes: Vec::new(),
            generated: 0,
            done: false,
        };
        match session.new_tree(&wit_node(&record), params) {
            Ok(handle) => entry.handle = Some(handle),
            Err(error) => end_with_error(&mut entry, &error.to_string()),
        }
        active.push(entry);
    }
    // Budget and depth bound the rounds; the guard only stops a strategy that never finishes.
    let max_rounds = params.budget as usize + params.max_depth as usize + 2;
    let bar = crate::progress::bar("search", roots.len(), 0);
    while active.iter().any(|a| !a.done) {
        bar.set_position(active.iter().filter(|a| a.done).count() as u64);
        bar.set_message(format!("trees done, round {}", stats.rounds + 1));
        if stats.rounds >= max_rounds {
            for entry in active.iter_mut().filter(|a| !a.done) {
                end_with_error(entry, "the strategy did not finish within its budget");
            }
            break;
        }
        // Ask every active tree for its step.
        let mut wanted: Vec<(usize, Vec<Expansion>)> = Vec::new();
        let mut trapped = None;
        for (t, entry) in active.iter_mut().enumerate() {
            if entry.done {
                continue;
            }
            let handle = entry.handle.expect("active trees have handles");
            let new_nodes = std::mem::take(&mut entry.new_nodes);
            match session.next(handle, &new_nodes) {
                Ok(Step::Done(chosen)) => finish(entry, chosen, params.pass_gate),
                Ok(Step::Expand(expansions)) => match validate(entry, &expansions, &params) {
                    Ok(expansions) if expansions.is_empty() => {
                        finish(entry, None, params.pass_gate)
                    }
                    Ok(expansions) => wanted.push((t, expansions)),
                    Err(reason) => end_with_error(entry, &reason),
                },
                Err(error) => {
                    let trap = !session.is_live();
                    end_with_error(entry, &error.to_string());
                    if trap {
                        trapped = Some(error);
                        break;
                    }
                }
            }
        }
        if let Some(error) = trapped {
            // A trapped instance loses every tree it held.
            for entry in active.iter_mut().filter(|a| !a.done) {
                end_with_error(
                    entry,
                    &format!("lost when the plugin trapped: {}", plugin_reason(&error)),
                );
            }
            break;
        }
        if wanted.is_empty() {
            continue;
        }
        let requests: Vec<ExpandRequest<'_>> = wanted
            .iter()
            .flat_map(|(t, expansions)| {
                let tree = &active[*t].tree;
                expansions.iter().map(move |e| ExpandRequest {
                    tree: *t,
                    root: &roots[*t],
                    node: &tree.nodes[e.node as usize],
                    count: e.count,
                })
            })
            .collect();
        let children = expander.expand(&requests)?;
        anyhow::ensure!(
            children.len() == requests.len()
                && children
                    .iter()
                    .zip(&requests)
                    .all(|(c, r)| c.as_ref().map_or(true, |c| c.len() == r.count as usize)),
            "expander returned the wrong number of children"
        );
        let plan: Vec<(usize, u32, u32)> = requests
            .iter()
            .map(|r| (r.tree, r.node.id, r.node.depth))
            .collect();
        stats.rounds += 1;
        stats
            .batch_sizes
            .push(children.iter().flatten().map(Vec::len).sum());
        stats.nodes_expanded += plan.len();
        for ((t, parent, depth), kids) in plan.into_iter().zip(children) {
            let entry = &mut active[t];
            let kids = match kids {
                Ok(kids) => kids,
                // The tree's other requests this round keep their children (nothing is lost),
                // but the tree ends here.
                Err(fault) => {
                    if !entry.done {
                        end_with_error(entry, &fault);
                    }
                    continue;
                }
            };
            for child in kids {
                let record = NodeRecord {
                    id: entry.tree.nodes.len() as u32,
                    parent: Some(parent),
                    depth: depth + 1,
                    valid: child.response.is_some(),
                    response: child.response.unwrap_or_default(),
                    critique: child.critique,
                    value: child.value,
                    votes: child.votes,
                    raw: child.raw,
                    finish_reason: child.finish_reason,
                    tokens: child.tokens,
                    repaired: child.repaired,
                };
                stats.invalid_children += usize::from(!record.valid);
                entry.generated += 1;
                entry.new_nodes.push(wit_node(&record));
                entry.tree.nodes.push(record);
            }
        }
    }
    bar.finish_and_clear();
    // Free the finished trees inside the plugin. A failure here loses no result (the trees are
    // complete) but is reported; after a trap the instance is gone, and so are its other trees.
    for entry in &active {
        if let Some(handle) = entry.handle
            && session.is_live()
            && let Err(error) = session.drop_tree(handle)
        {
            tracing::warn!("{error} (freeing a finished tree; its results are kept)");
            stats.drop_errors += 1;
        }
    }
    let trees: Vec<Tree> = active.into_iter().map(|a| a.tree).collect();
    for tree in &trees {
        stats.tree_errors += usize::from(tree.error.is_some());
        if tree.solved {
            stats.solved += 1;
            let depth = tree.nodes[tree.chosen.expect("solved trees chose") as usize].depth;
            *stats.solved_by_depth.entry(depth).or_default() += 1;
        }
    }
    Ok((trees, stats))
}

fn plugin_reason(error: &PluginError) -> String {
    error.to_string()
}

fn end_with_error(entry: &mut Active, reason: &str) {
    tracing::warn!("search tree ended: {reason}");
    entry.tree.error = Some(reason.to_string());
    entry.done = true;
}

fn finish(entry: &mut Active, chosen: Option<u32>, gate: f64) {
    entry.done = true;
    match chosen {
        Some(id) if (id as usize) < entry.tree.nodes.len() => {
            let node = &entry.tree.nodes[id as usize];
            entry.tree.chosen = Some(id);
            // A cut-off text can pass a verifier by accident; it is never a chosen answer.
            entry.tree.solved = id != 0 && node.valid && !node.truncated() && node.value > gate;
        }
        Some(id) => {
            entry.tree.error = Some(format!("the strategy chose unknown node {id}"));
        }
        None => {}
    }
}

/// Check a plugin's expansions against the tree: known, parsed nodes; counts within the branch
/// factor and the remaining budget (trimmed to it). An unknown node ends the tree.
fn validate(
    entry: &Active,
    expansions: &[Expansion],
    params: &SearchParams,
) -> Result<Vec<Expansion>, String> {
    let mut remaining = params.budget.saturating_sub(entry.generated);
    let mut out = Vec::new();
    for e in expansions {
        let Some(node) = entry.tree.nodes.get(e.node as usize) else {
            return Err(format!(
                "the strategy asked to expand unknown node {}",
                e.node
            ));
        };
        if !node.valid {
            return Err(format!(
                "the strategy asked to expand unparsed node {}",
                e.node
            ));
        }
        let count = e.count.min(params.branch.max(1)).min(remaining);
        if count > 0 {
            remaining -= count;
            out.push(Expansion {
                node: e.node,
                count,
            });
        }
    }
    Ok(out)
}
