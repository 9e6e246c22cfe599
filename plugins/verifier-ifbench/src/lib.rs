//! `verifier-ifbench`: IFBench's 58 out-of-distribution instruction checkers (allenai/IFBench at
//! db69a6f, Apache-2.0) as a spar-host verifier plugin, with IFBench's strict and loose
//! semantics (loose = any of the 8 response variants passes).
//!
//! Arguments are the IFBench `kwargs` object of the instruction; `null` values count as absent,
//! as `run_eval.py` drops them. Where IFBench would draw a random value for a missing argument,
//! or crash on one, this plugin returns an error naming the argument: a verdict must not depend
//! on chance. `words:start_verb` needs NLTK's POS tagger model, which is not included: it is not
//! in the catalogue, and checking it is an error that says so.
//!
//! Built against the plugin SDK only; its text semantics (Punkt, `word_tokenize`, Python's `str`)
//! come from the `nltk-text` library it shares with `verifier-ifeval`.

mod args;
pub mod catalogue;
mod checks;
mod csv;
mod emoji;
mod syllables;
mod text;

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::verifier::{CheckResult, ConstraintInfo, Verifier, strict_and_loose};

pub use checks::NEEDS_POS_TAGGER;

struct IfBench;

impl Verifier for IfBench {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "verifier-ifbench",
            env!("CARGO_PKG_VERSION"),
            "IFBench's out-of-distribution instruction checkers (strict and loose, as IFBench's run_eval)",
        )
    }

    fn constraints() -> Vec<ConstraintInfo> {
        catalogue::CATALOGUE
            .iter()
            .filter(|entry| entry.id != NEEDS_POS_TAGGER)
            .map(|entry| ConstraintInfo {
                id: entry.id.to_string(),
                description: entry.sentence.to_string(),
                args_schema: catalogue::args_schema(entry),
            })
            .collect()
    }

    fn describe(id: &str, args: &str) -> Result<String, String> {
        let _validated = checks::build(id, args)?;
        catalogue::describe(id, args)
    }

    fn check(id: &str, args: &str, _prompt: &str, response: &str) -> Result<CheckResult, String> {
        let follows = checks::build(id, args)?;
        Ok(strict_and_loose(response, |r| follows(r)))
    }
}

spar_plugin_sdk::export_verifier!(IfBench);

/// Check one instruction natively (tests and tools that link the crate directly).
pub fn check(id: &str, args: &str, response: &str) -> Result<CheckResult, String> {
    IfBench::check(id, args, "", response)
}

/// Describe one instruction natively.
pub fn describe(id: &str, args: &str) -> Result<String, String> {
    IfBench::describe(id, args)
}
