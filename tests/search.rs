//! Search strategies driven by a scripted, deterministic value function (no model): the order in
//! which nodes are expanded, where the search stops and what it picks, worked out by hand.

mod common;

use std::collections::HashMap;

use spar_host::backend::FinishReason;
use spar_host::plugins::world_calls::SearchParams;
use spar_host::plugins::{Limits, PluginHost, SearchPlugin};
use spar_host::spar::search::{
    Child, ExpandRequest, Expanded, Expander, Root, Tree, Votes, search,
};

/// Children are named after their parent plus `a`, `b`, `c`...; values come from a table
/// (default 0.1); a name in `unparsable` comes back as a failed refinement.
struct Scripted {
    values: HashMap<&'static str, f64>,
    unparsable: Vec<&'static str>,
    /// Names that come back cut off by the token limit (parsed, judged, but truncated).
    cut: Vec<&'static str>,
    /// Parents whose expansion a (pretend) judge plugin faults on.
    faulty: Vec<&'static str>,
    /// The parent text of every expansion, in order, one list per round.
    rounds: Vec<Vec<String>>,
}

impl Scripted {
    fn new(values: &[(&'static str, f64)]) -> Self {
        Scripted {
            values: values.iter().copied().collect(),
            unparsable: vec![],
            cut: vec![],
            faulty: vec![],
            rounds: vec![],
        }
    }
}

impl Expander for Scripted {
    fn expand(&mut self, requests: &[ExpandRequest<'_>]) -> anyhow::Result<Vec<Expanded>> {
        self.rounds
            .push(requests.iter().map(|r| r.node.response.clone()).collect());
        Ok(requests
            .iter()
            .map(|r| {
                if self.faulty.contains(&r.node.response.as_str()) {
                    return Err(format!("plugin `judge` faulted on {}", r.node.response));
                }
                Ok((0..r.count)
                    .map(|i| {
                        let text = format!("{}{}", r.node.response, (b'a' + i as u8) as char);
                        let parsed = !self.unparsable.contains(&text.as_str());
                        let cut = self.cut.contains(&text.as_str());
                        Child {
                            value: if parsed {
                                self.values.get(text.as_str()).copied().unwrap_or(0.1)
                            } else {
                                0.0
                            },
                            response: parsed.then_some(text),
                            critique: String::new(),
                            verdict: None,
                            votes: Votes::default(),
                            raw: String::new(),
                            finish_reason: Some(if cut {
                                FinishReason::Length
                            } else {
                                FinishReason::Stop
                            }),
                            tokens: None,
                            repaired: false,
                        }
                    })
                    .collect())
            })
            .collect())
    }
}

fn strategy(name: &str) -> SearchPlugin {
    PluginHost::new(Limits::default())
        .unwrap()
        .load(&common::plugin(name))
        .unwrap()
}

fn fixture(name: &str) -> SearchPlugin {
    PluginHost::new(Limits::default())
        .unwrap()
        .load(&common::fixture(name))
        .unwrap()
}

fn root(text: &str) -> Root {
    Root {
        instruction: "do it".into(),
        response: text.into(),
        critique: String::new(),
        value: 0.0,
        votes: Votes::default(),
        finish_reason: None,
        tokens: None,
    }
}

fn params(branch: u32, select: u32, max_depth: u32, budget: u32) -> SearchParams {
    SearchParams {
        branch,
        select,
        max_depth,
        pass_gate: 0.5,
        budget,
    }
}

fn chosen_text(tree: &Tree) -> Option<&str> {
    tree.chosen
        .map(|id| tree.nodes[id as usize].response.as_str())
}

#[test]
fn bfs_expands_level_by_level_keeping_the_best_two() {
    let mut script = Scripted::new(&[
        ("ra", 0.3),
        ("rb", 0.4),
        ("rc", 0.2),
        ("rbb", 0.45),
        ("rab", 0.6),
        ("rac", 0.7),
    ]);
    let (trees, stats) = search(
        &strategy("search-bfs"),
        &[root("r")],
        params(3, 2, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(script.rounds, vec![vec!["r"], vec!["rb", "ra"]]);
    assert_eq!(
        chosen_text(&trees[0]),
        Some("rac"),
        "the best passing child of the level"
    );
    assert!(trees[0].solved);
    assert_eq!(trees[0].nodes[trees[0].chosen.unwrap() as usize].depth, 2);
    assert_eq!(stats.batch_sizes, vec![3, 6]);
    assert_eq!(stats.solved_by_depth.get(&2), Some(&1));
}

#[test]
fn a_refinement_cut_by_the_token_limit_never_solves_a_tree() {
    // "ra" passes the gate by value, but its text was cut off: the strategy stops on it, and
    // the host refuses to call the tree solved.
    let mut script = Scripted::new(&[("ra", 0.9)]);
    script.cut.push("ra");
    let (trees, stats) = search(
        &strategy("search-bfs"),
        &[root("r")],
        params(1, 1, 1, 1),
        &mut script,
    )
    .unwrap();
    assert_eq!(chosen_text(&trees[0]), Some("ra"));
    assert!(!trees[0].solved);
    assert!(trees[0].nodes[1].truncated());
    assert_eq!(stats.solved, 0);
}

#[test]
fn dfs_goes_deep_along_the_best_child_first() {
    let mut script = Scripted::new(&[
        ("ra", 0.3),
        ("rb", 0.4),
        ("rba", 0.2),
        ("rbb", 0.1),
        ("rbaa", 0.9),
    ]);
    let (trees, stats) = search(
        &strategy("search-dfs"),
        &[root("r")],
        params(2, 2, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(script.rounds, vec![vec!["r"], vec!["rb"], vec!["rba"]]);
    assert_eq!(chosen_text(&trees[0]), Some("rbaa"));
    assert!(trees[0].solved);
    assert_eq!(stats.batch_sizes, vec![2, 2, 2]);
}

#[test]
fn dfs_backtracks_when_a_branch_reaches_max_depth() {
    let mut script = Scripted::new(&[("ra", 0.3), ("rb", 0.4), ("rbb", 0.2), ("raa", 0.8)]);
    let (trees, _) = search(
        &strategy("search-dfs"),
        &[root("r")],
        params(2, 2, 2, 100),
        &mut script,
    )
    .unwrap();
    // rb's children sit at depth 2 = max depth, so the search backs up to ra.
    assert_eq!(script.rounds, vec![vec!["r"], vec!["rb"], vec!["ra"]]);
    assert_eq!(chosen_text(&trees[0]), Some("raa"));
}

#[test]
fn greedy_refines_one_child_per_level_and_can_fail() {
    let mut script = Scripted::new(&[("ra", 0.2), ("raa", 0.3), ("raaa", 0.4)]);
    let (trees, stats) = search(
        &strategy("search-greedy"),
        &[root("r")],
        params(3, 2, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(script.rounds, vec![vec!["r"], vec!["ra"], vec!["raa"]]);
    assert_eq!(
        chosen_text(&trees[0]),
        Some("raaa"),
        "best node, but it does not pass"
    );
    assert!(!trees[0].solved);
    assert_eq!(stats.solved, 0);
}

#[test]
fn greedy_refines_the_last_parsed_node_after_a_failed_refinement() {
    // "ra" never parses, so every level refines "r" again (and fails again).
    let mut script = Scripted::new(&[]);
    script.unparsable = vec!["ra"];
    let (trees, _) = search(
        &strategy("search-greedy"),
        &[root("r")],
        params(1, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(script.rounds, vec![vec!["r"], vec!["r"], vec!["r"]]);
    assert!(!trees[0].solved);
    assert_eq!(trees[0].nodes.iter().filter(|n| !n.valid).count(), 3);
}

/// Beam keeps the best open nodes of every level: when "ra"'s children disappoint, it backs up
/// to "rb" from the level before, where BFS (same width) only goes deeper under "ra".
#[test]
fn beam_expands_the_best_open_nodes_of_any_level() {
    let values = [("ra", 0.3), ("rb", 0.2), ("rba", 0.6)];
    let mut script = Scripted::new(&values);
    let (trees, stats) = search(
        &strategy("search-beam"),
        &[root("r")],
        params(2, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(script.rounds, vec![vec!["r"], vec!["ra"], vec!["rb"]]);
    assert_eq!(chosen_text(&trees[0]), Some("rba"));
    assert!(trees[0].solved);
    assert_eq!(stats.batch_sizes, vec![2, 2, 2]);

    let mut bfs = Scripted::new(&values);
    let (trees, _) = search(
        &strategy("search-bfs"),
        &[root("r")],
        params(2, 1, 3, 100),
        &mut bfs,
    )
    .unwrap();
    assert_eq!(bfs.rounds, vec![vec!["r"], vec!["ra"], vec!["raa"]]);
    assert!(!trees[0].solved);

    // A wider beam expands several nodes a round; nodes at max depth are never expanded.
    let mut wide = Scripted::new(&values);
    let (trees, _) = search(
        &strategy("search-beam"),
        &[root("r")],
        params(2, 2, 1, 100),
        &mut wide,
    )
    .unwrap();
    assert_eq!(wide.rounds, vec![vec!["r"]]);
    assert_eq!(
        chosen_text(&trees[0]),
        Some("ra"),
        "the best node, unsolved"
    );
    assert!(!trees[0].solved);
}

/// MCTS (UCT, C = sqrt 2) worked by hand. Round 2 exploits "ra" (0.45 against 0.0); round 3
/// explores "rb", whose single visit now outweighs "ra"'s mean; round 4 returns to "ra" and
/// expands its first child, where the answer is.
#[test]
fn mcts_balances_exploring_and_exploiting_by_uct() {
    let mut script = Scripted::new(&[
        ("ra", 0.45),
        ("rb", 0.0),
        ("raa", 0.45),
        ("rab", 0.45),
        ("raaa", 0.9),
    ]);
    let (trees, stats) = search(
        &strategy("search-mcts"),
        &[root("r")],
        params(2, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(
        script.rounds,
        vec![vec!["r"], vec!["ra"], vec!["rb"], vec!["raa"]]
    );
    assert_eq!(chosen_text(&trees[0]), Some("raaa"));
    assert!(trees[0].solved);
    assert_eq!(stats.solved_by_depth.get(&3), Some(&1));

    // The budget counts children: 4 with a branch of 2 is two expansions.
    let mut short = Scripted::new(&[("ra", 0.45), ("rb", 0.0)]);
    let (trees, stats) = search(
        &strategy("search-mcts"),
        &[root("r")],
        params(2, 1, 3, 4),
        &mut short,
    )
    .unwrap();
    assert_eq!(short.rounds, vec![vec!["r"], vec!["ra"]]);
    assert_eq!(stats.batch_sizes, vec![2, 2]);
    assert!(!trees[0].solved);

    // Nothing below max depth is left after the first expansion.
    let mut shallow = Scripted::new(&[]);
    search(
        &strategy("search-mcts"),
        &[root("r")],
        params(2, 1, 1, 100),
        &mut shallow,
    )
    .unwrap();
    assert_eq!(shallow.rounds, vec![vec!["r"]]);
}

#[test]
fn the_budget_caps_generation_and_ends_the_search() {
    let mut script = Scripted::new(&[]);
    let (trees, stats) = search(
        &strategy("search-bfs"),
        &[root("r")],
        params(3, 2, 3, 4),
        &mut script,
    )
    .unwrap();
    assert_eq!(stats.batch_sizes, vec![3, 1]);
    assert_eq!(script.rounds, vec![vec!["r"], vec!["ra"]]);
    assert!(!trees[0].solved);
    assert_eq!(trees[0].nodes.len(), 5);
}

#[test]
fn a_tree_without_a_solution_returns_its_best_node_unsolved() {
    let mut script = Scripted::new(&[]);
    let (trees, stats) = search(
        &strategy("search-bfs"),
        &[root("r")],
        params(3, 2, 2, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(stats.batch_sizes, vec![3, 6]);
    assert_eq!(
        chosen_text(&trees[0]),
        Some("ra"),
        "ties go to the earliest node"
    );
    assert!(!trees[0].solved);
}

#[test]
fn all_trees_advance_in_lockstep_one_batch_per_round() {
    let mut script = Scripted::new(&[("xa", 0.9), ("ya", 0.2), ("yab", 0.8)]);
    let roots = [root("x"), root("y"), root("z")];
    let (trees, stats) = search(
        &strategy("search-bfs"),
        &roots,
        params(2, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(
        script.rounds[0],
        vec!["x", "y", "z"],
        "round 1 batches every tree's root"
    );
    assert_eq!(stats.batch_sizes[0], 6);
    assert_eq!(chosen_text(&trees[0]), Some("xa"));
    assert_eq!(chosen_text(&trees[1]), Some("yab"));
    assert_eq!(
        script.rounds[1],
        vec!["ya", "za"],
        "round 2: only the unfinished trees, x is done"
    );
    assert!(trees[0].solved && trees[1].solved && !trees[2].solved);
}

/// A judge plugin faulting on one tree's refinements (a trap, a limit, a refused value) ends
/// that tree with the plugin's error; the other trees search on in the same rounds.
#[test]
fn a_judge_fault_ends_only_its_own_tree() {
    let mut script = Scripted::new(&[("xa", 0.9), ("ya", 0.2), ("yab", 0.8)]);
    script.faulty = vec!["ya"];
    let roots = [root("x"), root("y"), root("z")];
    let (trees, stats) = search(
        &strategy("search-bfs"),
        &roots,
        params(2, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(chosen_text(&trees[0]), Some("xa"));
    assert!(trees[0].solved && trees[0].error.is_none());
    assert!(!trees[1].solved);
    assert_eq!(
        trees[1].error.as_deref(),
        Some("plugin `judge` faulted on ya")
    );
    // y's first round is kept; its faulted expansion added nothing.
    assert_eq!(trees[1].nodes.len(), 3);
    assert_eq!(script.rounds[1], vec!["ya", "za"]);
    assert_eq!(script.rounds[2], vec!["zaa"], "z goes on after y's fault");
    assert!(trees[2].error.is_none());
    assert_eq!(stats.tree_errors, 1);
}

#[test]
fn a_misbehaving_strategy_ends_only_its_own_trees() {
    let mut script = Scripted::new(&[]);
    let roots = [root("fine"), root("unknown"), root("choose-unknown")];
    let (trees, stats) = search(
        &fixture("bad-search"),
        &roots,
        params(1, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(chosen_text(&trees[0]), Some("finea"));
    assert_eq!(
        trees[1].error.as_deref(),
        Some("the strategy asked to expand unknown node 42")
    );
    assert_eq!(
        trees[2].error.as_deref(),
        Some("the strategy chose unknown node 999")
    );
    assert_eq!(stats.tree_errors, 2);
}

#[test]
fn a_trapping_strategy_ends_its_trees_cleanly() {
    let mut script = Scripted::new(&[]);
    let roots = [root("panic"), root("fine")];
    let (trees, stats) = search(
        &fixture("bad-search"),
        &roots,
        params(1, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    let error = trees[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("plugin `bad-search` trapped in `[method]tree.next`: panicked at "),
        "{error}"
    );
    assert!(error.contains("strategy bug"), "{error}");
    assert!(
        trees[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("lost when the plugin trapped: ")
    );
    assert_eq!(stats.tree_errors, 2);
}

#[test]
fn a_strategy_that_traps_while_freeing_a_finished_tree_loses_no_result() {
    let mut script = Scripted::new(&[]);
    let roots = [root("drop-panics"), root("fine")];
    let (trees, stats) = search(
        &fixture("bad-search"),
        &roots,
        params(1, 1, 3, 100),
        &mut script,
    )
    .unwrap();
    assert_eq!(chosen_text(&trees[0]), Some("drop-panicsa"));
    assert_eq!(chosen_text(&trees[1]), Some("finea"));
    assert!(trees.iter().all(|t| t.error.is_none()));
    // The trap replaces the instance, which takes the other tree with it: one failure reported.
    assert_eq!(stats.drop_errors, 1);
}
