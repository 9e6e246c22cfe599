//! Monte Carlo tree search over refinements (UCT). Each round descends from the root, at every
//! expanded node taking the child with the highest upper confidence bound
//! `mean value + C * sqrt(ln(parent visits) / child visits)`, until it reaches a node not yet
//! expanded; that node is refined into `branch` children. The judge's value of each child is its
//! reward: the child starts with one visit and that value, and every ancestor gains a visit and
//! the value. A child that passes the gate ends the search. Nodes at `max-depth`, unparsed
//! children, and subtrees with nothing left to expand are never descended into. The budget (in
//! generated children, as for every strategy) bounds the expansions to `budget / branch`.

use std::collections::BTreeMap;

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::search::{
    Expansion, Node, NodeId, SearchParams, SearchStrategy, SearchTree, Step, best,
};

/// UCB1's exploration constant for rewards in [0, 1].
const EXPLORATION: f64 = std::f64::consts::SQRT_2;

struct Mcts;

struct Stats {
    node: Node,
    children: Vec<NodeId>,
    expanded: bool,
    visits: f64,
    reward: f64,
}

struct Tree {
    params: SearchParams,
    nodes: BTreeMap<NodeId, Stats>,
    root: NodeId,
    /// The node whose children the host is generating.
    pending: Option<NodeId>,
    used: u32,
}

impl Tree {
    /// Whether a descent into `id` can still reach a node to expand.
    fn open(&self, id: NodeId) -> bool {
        let stats = &self.nodes[&id];
        if !stats.node.valid || stats.node.depth >= self.params.max_depth {
            return false;
        }
        !stats.expanded || stats.children.iter().any(|&c| self.open(c))
    }

    /// The node to expand: the UCT descent from the root, or `None` when nothing is open.
    fn select(&self) -> Option<NodeId> {
        let mut at = self.root;
        if !self.open(at) {
            return None;
        }
        while self.nodes[&at].expanded {
            let parent_visits = self.nodes[&at].visits;
            at = self.nodes[&at]
                .children
                .iter()
                .copied()
                .filter(|&c| self.open(c))
                .map(|c| (c, self.upper_bound(c, parent_visits)))
                // Ties go to the earliest child.
                .fold(None, |best: Option<(NodeId, f64)>, (c, u)| match best {
                    Some((_, b)) if b >= u => best,
                    _ => Some((c, u)),
                })
                .expect("an open node has an open child")
                .0;
        }
        Some(at)
    }

    fn upper_bound(&self, id: NodeId, parent_visits: f64) -> f64 {
        let stats = &self.nodes[&id];
        stats.reward / stats.visits + EXPLORATION * (parent_visits.ln() / stats.visits).sqrt()
    }

    /// Each new child's value, added to every ancestor of it.
    fn backpropagate(&mut self, parent: NodeId, children: &[Node]) {
        let (visits, reward) = (
            children.len() as f64,
            children.iter().map(value).sum::<f64>(),
        );
        let mut at = Some(parent);
        while let Some(id) = at {
            let stats = self.nodes.get_mut(&id).expect("ancestors are known");
            stats.visits += visits;
            stats.reward += reward;
            at = stats.node.parent;
        }
    }

    fn step(&mut self) -> Step {
        let count = self
            .params
            .branch
            .min(self.params.budget.saturating_sub(self.used));
        match self.select() {
            Some(node) if count > 0 => {
                self.nodes.get_mut(&node).expect("selected").expanded = true;
                self.pending = Some(node);
                Step::Expand(vec![Expansion { node, count }])
            }
            _ => Step::Done(best(self.nodes.values().map(|s| &s.node)).map(|n| n.id)),
        }
    }
}

/// A node's reward: its judged value, none for a refinement that could not be parsed.
fn value(node: &Node) -> f64 {
    if node.valid { node.value } else { 0.0 }
}

impl SearchTree for Tree {
    fn new(root: Node, params: SearchParams) -> Self {
        let id = root.id;
        let reward = value(&root);
        let stats = Stats {
            node: root,
            children: Vec::new(),
            expanded: false,
            visits: 1.0,
            reward,
        };
        Tree {
            params,
            nodes: BTreeMap::from([(id, stats)]),
            root: id,
            pending: None,
            used: 0,
        }
    }

    fn next(&mut self, new_nodes: Vec<Node>) -> Step {
        self.used += new_nodes.len() as u32;
        if let Some(winner) = best(new_nodes.iter().filter(|n| n.passes(self.params.pass_gate))) {
            return Step::Done(Some(winner.id));
        }
        if let Some(parent) = self.pending.take() {
            self.backpropagate(parent, &new_nodes);
            for node in new_nodes {
                let reward = value(&node);
                self.nodes
                    .get_mut(&parent)
                    .expect("the expanded node")
                    .children
                    .push(node.id);
                self.nodes.insert(
                    node.id,
                    Stats {
                        node,
                        children: Vec::new(),
                        expanded: false,
                        visits: 1.0,
                        reward,
                    },
                );
            }
        }
        self.step()
    }
}

impl SearchStrategy for Mcts {
    type Tree = Tree;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "search-mcts",
            env!("CARGO_PKG_VERSION"),
            "Monte Carlo tree-search refinement (UCT, the judge's value as reward)",
        )
    }
}

spar_plugin_sdk::export_search!(Mcts);
