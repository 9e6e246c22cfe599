//! Typed calls per world: what the rest of the host uses. A plugin's own `Err(message)` becomes
//! [`PluginError::Failed`]; traps and limits become the errors in [`super::sandbox`].

use wasmtime::component::ResourceAny;

use super::bindings::{conformance, filter, judge, repairing_verifier, search, verifier};
use super::{Message, Plugin, PluginError, Session};

pub type VerifierPlugin = Plugin<verifier::Verifier>;
pub type RepairPlugin = Plugin<repairing_verifier::RepairingVerifier>;
pub type JudgePlugin = Plugin<judge::Judge>;
pub type SearchPlugin = Plugin<search::SearchStrategy>;
pub type FilterPlugin = Plugin<filter::PairFilter>;
pub type ConformancePlugin = Plugin<conformance::Conformance>;

pub use conformance::exports::spar::plugins::conformance_api;
pub use filter::exports::spar::plugins::filter_api::{Decision, Pair};
pub use search::exports::spar::plugins::search_api::{Expansion, Node, NodeId, SearchParams, Step};
pub use verifier::exports::spar::plugins::verifier_api::{CheckResult, ConstraintInfo};

impl Session<verifier::Verifier> {
    /// Every constraint the verifier knows.
    pub fn constraints(&mut self) -> Result<Vec<ConstraintInfo>, PluginError> {
        self.call("constraints", |b, s| {
            b.spar_plugins_verifier_api().call_constraints(s)
        })
    }

    /// The instruction sentence for `id` with JSON `args`.
    pub fn describe(&mut self, id: &str, args: &str) -> Result<String, PluginError> {
        let answer = self.call("describe", |b, s| {
            b.spar_plugins_verifier_api().call_describe(s, id, args)
        })?;
        answer.map_err(|message| self.plugin_error("describe", message))
    }

    /// Check `response` to `prompt` against constraint `id` with JSON `args`.
    pub fn check(
        &mut self,
        id: &str,
        args: &str,
        prompt: &str,
        response: &str,
    ) -> Result<CheckResult, PluginError> {
        let answer = self.call("check", |b, s| {
            b.spar_plugins_verifier_api()
                .call_check(s, id, args, prompt, response)
        })?;
        answer.map_err(|message| self.plugin_error("check", message))
    }
}

impl Session<repairing_verifier::RepairingVerifier> {
    /// `response` minimally edited to keep constraint `id`, or `None` (no mechanical fix).
    pub fn repair(
        &mut self,
        id: &str,
        args: &str,
        prompt: &str,
        response: &str,
    ) -> Result<Option<String>, PluginError> {
        let answer = self.call("repair", |b, s| {
            b.spar_plugins_repair_api()
                .call_repair(s, id, args, prompt, response)
        })?;
        answer.map_err(|message| self.plugin_error("repair", message))
    }
}

/// Most messages a judge's prompt may have.
pub const MAX_PROMPT_MESSAGES: usize = 64;

/// How much bigger than its inputs a judge's prompt may be: the inputs again (a prompt may quote
/// them twice) plus this much wording of its own.
pub const MAX_PROMPT_WORDING: usize = 64 << 10;

impl Session<judge::Judge> {
    /// A prompt within bounds: at most [`MAX_PROMPT_MESSAGES`] messages and at most twice its
    /// inputs plus [`MAX_PROMPT_WORDING`] bytes, so that a plugin inside its sandbox cannot make
    /// the host tokenise and generate without limit.
    fn bounded(
        &self,
        function: &str,
        inputs: usize,
        messages: Vec<Message>,
    ) -> Result<Vec<Message>, PluginError> {
        let bytes: usize = messages
            .iter()
            .map(|m| m.role.len() + m.content.len())
            .sum();
        let limit = 2 * inputs + MAX_PROMPT_WORDING;
        if messages.len() > MAX_PROMPT_MESSAGES || bytes > limit {
            return Err(self.plugin_error(
                function,
                format!(
                    "returned {} messages of {bytes} bytes; the limit is {MAX_PROMPT_MESSAGES} messages and {limit} bytes (twice the inputs plus {MAX_PROMPT_WORDING})",
                    messages.len()
                ),
            ));
        }
        Ok(messages)
    }

    /// The conversation that asks for a verdict on `response`.
    pub fn judge_prompt(
        &mut self,
        instruction: &str,
        response: &str,
    ) -> Result<Vec<Message>, PluginError> {
        let messages = self.call("judge-prompt", |b, s| {
            b.spar_plugins_judge_api()
                .call_judge_prompt(s, instruction, response)
        })?;
        self.bounded("judge-prompt", instruction.len() + response.len(), messages)
    }

    /// The verdict in one sampled judgment.
    pub fn parse_judgment(&mut self, text: &str) -> Result<Option<bool>, PluginError> {
        self.call("parse-judgment", |b, s| {
            b.spar_plugins_judge_api().call_parse_judgment(s, text)
        })
    }

    /// The conversation that asks for a refinement after `critique`.
    pub fn refine_prompt(
        &mut self,
        instruction: &str,
        response: &str,
        critique: &str,
    ) -> Result<Vec<Message>, PluginError> {
        let messages = self.call("refine-prompt", |b, s| {
            b.spar_plugins_judge_api()
                .call_refine_prompt(s, instruction, response, critique)
        })?;
        self.bounded(
            "refine-prompt",
            instruction.len() + response.len() + critique.len(),
            messages,
        )
    }

    /// The refined response in one sampled refinement: never longer than the text it was
    /// parsed from.
    pub fn parse_refinement(&mut self, text: &str) -> Result<Option<String>, PluginError> {
        let refined = self.call("parse-refinement", |b, s| {
            b.spar_plugins_judge_api().call_parse_refinement(s, text)
        })?;
        if let Some(r) = &refined
            && r.len() > text.len()
        {
            return Err(self.plugin_error(
                "parse-refinement",
                format!(
                    "returned {} bytes from a text of {}; a refinement is part of the text it is parsed from",
                    r.len(),
                    text.len()
                ),
            ));
        }
        Ok(refined)
    }
}

/// A search tree living in a [`Session`] of a search plugin. Valid only in the session (and
/// instance) that created it: after a trap the session's trees are gone.
#[derive(Clone, Copy, Debug)]
pub struct TreeHandle(ResourceAny);

impl Session<search::SearchStrategy> {
    /// Start a tree at `root`.
    pub fn new_tree(
        &mut self,
        root: &Node,
        params: SearchParams,
    ) -> Result<TreeHandle, PluginError> {
        self.call("[constructor]tree", |b, s| {
            b.spar_plugins_search_api()
                .tree()
                .call_constructor(s, root, params)
        })
        .map(TreeHandle)
    }

    /// The tree's next step given the children judged since its last step.
    pub fn next(&mut self, tree: TreeHandle, new_nodes: &[Node]) -> Result<Step, PluginError> {
        self.call("[method]tree.next", |b, s| {
            b.spar_plugins_search_api()
                .tree()
                .call_next(s, tree.0, new_nodes)
        })
    }

    /// Free a finished tree inside the plugin.
    pub fn drop_tree(&mut self, tree: TreeHandle) -> Result<(), PluginError> {
        self.call("[resource-drop]tree", |_, s| tree.0.resource_drop(s))
    }
}

impl Session<filter::PairFilter> {
    /// One decision per pair, in order. A plugin that returns a different number is an error.
    pub fn filter(&mut self, config: &str, pairs: &[Pair]) -> Result<Vec<Decision>, PluginError> {
        let answer = self.call("filter", |b, s| {
            b.spar_plugins_filter_api().call_filter(s, config, pairs)
        })?;
        let decisions = answer.map_err(|message| self.plugin_error("filter", message))?;
        if decisions.len() != pairs.len() {
            return Err(self.plugin_error(
                "filter",
                format!(
                    "returned {} decisions for {} pairs",
                    decisions.len(),
                    pairs.len()
                ),
            ));
        }
        Ok(decisions)
    }
}

impl Session<conformance::Conformance> {
    /// Call any conformance export with the raw bindings (tests only need this).
    pub fn with<R>(
        &mut self,
        function: &str,
        f: impl FnOnce(
            &conformance_api::Guest,
            &mut wasmtime::Store<super::PluginState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.call(function, |b, s| f(b.spar_plugins_conformance_api(), s))
    }
}
