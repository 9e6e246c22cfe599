//! Depth-first refinement search: refine the most promising node into `branch` children; if one
//! passes the gate it wins; otherwise push the best `select` children (best on top) and go deeper
//! from the best of them, backtracking when a branch reaches `max-depth`, within `budget`.

use std::collections::BTreeMap;

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::search::{
    Expansion, Node, NodeId, SearchParams, SearchStrategy, SearchTree, Step, best, top,
};

struct Dfs;

struct Tree {
    params: SearchParams,
    nodes: BTreeMap<NodeId, Node>,
    stack: Vec<NodeId>,
    used: u32,
    started: bool,
}

impl Tree {
    fn expand_next(&mut self) -> Step {
        let remaining = self.params.budget.saturating_sub(self.used);
        while let Some(node) = self.stack.pop() {
            let depth = self.nodes[&node].depth;
            if depth >= self.params.max_depth {
                continue;
            }
            let count = self.params.branch.min(remaining);
            if count == 0 {
                break;
            }
            return Step::Expand(vec![Expansion { node, count }]);
        }
        Step::Done(best(self.nodes.values()).map(|n| n.id))
    }
}

impl SearchTree for Tree {
    fn new(root: Node, params: SearchParams) -> Self {
        let stack = vec![root.id];
        let mut nodes = BTreeMap::new();
        nodes.insert(root.id, root);
        Tree {
            params,
            nodes,
            stack,
            used: 0,
            started: false,
        }
    }

    fn next(&mut self, new_nodes: Vec<Node>) -> Step {
        if !self.started {
            self.started = true;
            return self.expand_next();
        }
        self.used += new_nodes.len() as u32;
        if let Some(winner) = best(new_nodes.iter().filter(|n| n.passes(self.params.pass_gate))) {
            return Step::Done(Some(winner.id));
        }
        // Push the kept children worst first, so the best is expanded next.
        let kept: Vec<NodeId> = top(&new_nodes, self.params.select as usize)
            .iter()
            .map(|n| n.id)
            .collect();
        for node in new_nodes {
            self.nodes.insert(node.id, node);
        }
        self.stack.extend(kept.into_iter().rev());
        self.expand_next()
    }
}

impl SearchStrategy for Dfs {
    type Tree = Tree;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "search-dfs",
            env!("CARGO_PKG_VERSION"),
            "Depth-first tree-search refinement",
        )
    }
}

spar_plugin_sdk::export_search!(Dfs);
