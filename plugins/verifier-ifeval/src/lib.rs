//! `verifier-ifeval`: the 25 IFEval instruction checkers as a spar-host verifier plugin, with the
//! official checker's strict and loose semantics (loose = any of the 8 response variants passes).
//!
//! Arguments are the IFEval `kwargs` object of the instruction, as JSON. Where the official
//! checker would pick a random value for a missing or invalid argument, this plugin returns an
//! error naming the argument instead: a verdict must not depend on chance.

mod args;
mod instructions;
mod json_syntax;
mod langdetect;
mod language;
mod repair;

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::verifier::{CheckResult, ConstraintInfo, Verifier, strict_and_loose};

pub use instructions::{CATALOGUE, Instruction, count_words};
pub use nltk_text::punkt::count_sentences;

struct IfEval;

impl Verifier for IfEval {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "verifier-ifeval",
            env!("CARGO_PKG_VERSION"),
            "The 25 IFEval instruction checkers (strict and loose, as the official checker)",
        )
    }

    fn constraints() -> Vec<ConstraintInfo> {
        CATALOGUE
            .iter()
            .map(|(id, _, description)| ConstraintInfo {
                id: id.to_string(),
                description: description.to_string(),
                args_schema: instructions::args_schema(id),
            })
            .collect()
    }

    fn describe(id: &str, args: &str) -> Result<String, String> {
        instructions::describe(id, args)
    }

    fn check(id: &str, args: &str, _prompt: &str, response: &str) -> Result<CheckResult, String> {
        let instruction = Instruction::new(id, args)?;
        Ok(strict_and_loose(response, |r| instruction.follows(r)))
    }

    fn repair(
        id: &str,
        args: &str,
        prompt: &str,
        response: &str,
    ) -> Result<Option<String>, String> {
        repair::repair(id, args, prompt, response)
    }
}

spar_plugin_sdk::export_verifier!(IfEval, repair);

/// Check one instruction natively (tests and tools that link the crate directly).
pub fn check(id: &str, args: &str, response: &str) -> Result<CheckResult, String> {
    IfEval::check(id, args, "", response)
}

/// Repair one instruction natively.
pub fn repair(
    id: &str,
    args: &str,
    prompt: &str,
    response: &str,
) -> Result<Option<String>, String> {
    IfEval::repair(id, args, prompt, response)
}

/// Describe one instruction natively.
pub fn describe(id: &str, args: &str) -> Result<String, String> {
    IfEval::describe(id, args)
}
