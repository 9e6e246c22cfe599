//! Beam refinement search: every round, the best `select` nodes not yet expanded, from any level
//! above `max-depth`, are each refined into `branch` children; the first round with a child that
//! passes the gate ends the search with the best passing child. Unlike BFS, a good node of an
//! earlier level stays in the beam when the next level disappoints, so the search can back up to
//! it. It ends with the best node found when nothing is left to expand or the budget is spent.

use std::collections::{BTreeMap, BTreeSet};

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::search::{
    Expansion, Node, NodeId, SearchParams, SearchStrategy, SearchTree, Step, best, top,
};

struct Beam;

struct Tree {
    params: SearchParams,
    nodes: BTreeMap<NodeId, Node>,
    expanded: BTreeSet<NodeId>,
    used: u32,
}

impl Tree {
    /// The beam: the best `select` parsed nodes that are neither expanded nor at `max-depth`.
    fn beam(&self) -> Vec<NodeId> {
        let open = self
            .nodes
            .values()
            .filter(|n| !self.expanded.contains(&n.id) && n.depth < self.params.max_depth);
        top(open, self.params.select.max(1) as usize)
            .iter()
            .map(|n| n.id)
            .collect()
    }

    fn step(&mut self) -> Step {
        let mut remaining = self.params.budget.saturating_sub(self.used);
        let mut expansions = Vec::new();
        for node in self.beam() {
            let count = self.params.branch.min(remaining);
            if count == 0 {
                break;
            }
            remaining -= count;
            self.expanded.insert(node);
            expansions.push(Expansion { node, count });
        }
        if expansions.is_empty() {
            return Step::Done(best(self.nodes.values()).map(|n| n.id));
        }
        Step::Expand(expansions)
    }
}

impl SearchTree for Tree {
    fn new(root: Node, params: SearchParams) -> Self {
        Tree {
            params,
            nodes: BTreeMap::from([(root.id, root)]),
            expanded: BTreeSet::new(),
            used: 0,
        }
    }

    fn next(&mut self, new_nodes: Vec<Node>) -> Step {
        self.used += new_nodes.len() as u32;
        if let Some(winner) = best(new_nodes.iter().filter(|n| n.passes(self.params.pass_gate))) {
            return Step::Done(Some(winner.id));
        }
        for node in new_nodes {
            self.nodes.insert(node.id, node);
        }
        self.step()
    }
}

impl SearchStrategy for Beam {
    type Tree = Tree;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "search-beam",
            env!("CARGO_PKG_VERSION"),
            "Beam tree-search refinement: the best `select` open nodes of any level each round",
        )
    }
}

spar_plugin_sdk::export_search!(Beam);
