//! Iterative refinement, the ablation baseline: one child per level, each refining the last
//! parsed refinement (or the node before it when a refinement failed to parse), until one passes
//! the gate, `max-depth` levels are made, or the `budget` is spent.

use std::collections::BTreeMap;

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::search::{
    Expansion, Node, NodeId, SearchParams, SearchStrategy, SearchTree, Step, best,
};

struct Greedy;

struct Tree {
    params: SearchParams,
    nodes: BTreeMap<NodeId, Node>,
    current: NodeId,
    levels: u32,
    used: u32,
    started: bool,
}

impl Tree {
    fn refine_current(&self) -> Step {
        if self.levels >= self.params.max_depth || self.used >= self.params.budget {
            return Step::Done(best(self.nodes.values()).map(|n| n.id));
        }
        Step::Expand(vec![Expansion {
            node: self.current,
            count: 1,
        }])
    }
}

impl SearchTree for Tree {
    fn new(root: Node, params: SearchParams) -> Self {
        let current = root.id;
        let mut nodes = BTreeMap::new();
        nodes.insert(root.id, root);
        Tree {
            params,
            nodes,
            current,
            levels: 0,
            used: 0,
            started: false,
        }
    }

    fn next(&mut self, new_nodes: Vec<Node>) -> Step {
        if !self.started {
            self.started = true;
            return self.refine_current();
        }
        self.used += new_nodes.len() as u32;
        self.levels += 1;
        for node in new_nodes {
            if node.passes(self.params.pass_gate) {
                return Step::Done(Some(node.id));
            }
            if node.valid {
                self.current = node.id;
            }
            self.nodes.insert(node.id, node);
        }
        self.refine_current()
    }
}

impl SearchStrategy for Greedy {
    type Tree = Tree;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "search-greedy",
            env!("CARGO_PKG_VERSION"),
            "Iterative refinement: one child per level (ablation baseline)",
        )
    }
}

spar_plugin_sdk::export_search!(Greedy);
