//! Breadth-first refinement search (SPaR's): every node of the current level is refined into
//! `branch` children; if a child passes the gate the best passing child wins; otherwise the best
//! `select` children form the next level, down to `max-depth`, within `budget` generations.

use std::collections::BTreeMap;

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::search::{
    Expansion, Node, NodeId, SearchParams, SearchStrategy, SearchTree, Step, best, top,
};

struct Bfs;

struct Tree {
    params: SearchParams,
    nodes: BTreeMap<NodeId, Node>,
    frontier: Vec<NodeId>,
    depth: u32,
    used: u32,
    started: bool,
}

impl Tree {
    fn done_with_best(&self) -> Step {
        Step::Done(best(self.nodes.values()).map(|n| n.id))
    }

    fn expand_frontier(&mut self) -> Step {
        let mut remaining = self.params.budget.saturating_sub(self.used);
        let mut expansions = Vec::new();
        for &node in &self.frontier {
            let count = self.params.branch.min(remaining);
            if count == 0 {
                break;
            }
            remaining -= count;
            expansions.push(Expansion { node, count });
        }
        if expansions.is_empty() {
            return self.done_with_best();
        }
        Step::Expand(expansions)
    }
}

impl SearchTree for Tree {
    fn new(root: Node, params: SearchParams) -> Self {
        let frontier = vec![root.id];
        let mut nodes = BTreeMap::new();
        nodes.insert(root.id, root);
        Tree {
            params,
            nodes,
            frontier,
            depth: 0,
            used: 0,
            started: false,
        }
    }

    fn next(&mut self, new_nodes: Vec<Node>) -> Step {
        if !self.started {
            self.started = true;
            if self.params.max_depth == 0 {
                return Step::Done(None);
            }
            return self.expand_frontier();
        }
        self.used += new_nodes.len() as u32;
        let gate = self.params.pass_gate;
        if let Some(winner) = best(new_nodes.iter().filter(|n| n.passes(gate))) {
            return Step::Done(Some(winner.id));
        }
        self.frontier = top(&new_nodes, self.params.select as usize)
            .iter()
            .map(|n| n.id)
            .collect();
        for node in new_nodes {
            self.nodes.insert(node.id, node);
        }
        self.depth += 1;
        if self.depth >= self.params.max_depth || self.frontier.is_empty() {
            return self.done_with_best();
        }
        self.expand_frontier()
    }
}

impl SearchStrategy for Bfs {
    type Tree = Tree;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "search-bfs",
            env!("CARGO_PKG_VERSION"),
            "Breadth-first tree-search refinement (SPaR)",
        )
    }
}

spar_plugin_sdk::export_search!(Bfs);
