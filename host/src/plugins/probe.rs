//! What `plugins check` does beyond reading the manifest: it calls a plugin's discovery functions
//! as a run would and checks their answers, so a plugin that would fail mid-run fails here.

use std::collections::HashSet;

use super::{AnyPlugin, PluginError};

/// Call `plugin`'s discovery functions and check what they return:
/// - a verifier's instruction ids: none empty, none twice;
/// - a judge's prompts (within the host's bounds) and its parsers, on a small example;
/// - a filter's decisions on an empty list.
///
/// Returns what was probed, in a few words.
pub fn probe(plugin: &AnyPlugin) -> Result<String, PluginError> {
    match plugin {
        AnyPlugin::Verifier(p) => {
            let mut session = p.session();
            let ids = session.constraints()?;
            let mut seen = HashSet::new();
            for c in &ids {
                if c.id.trim().is_empty() {
                    return Err(
                        session.plugin_error("constraints", "lists an empty instruction id".into())
                    );
                }
                if !seen.insert(c.id.as_str()) {
                    return Err(session.plugin_error(
                        "constraints",
                        format!("lists instruction id `{}` twice", c.id),
                    ));
                }
            }
            Ok(format!("{} instruction ids", ids.len()))
        }
        AnyPlugin::Judge(p) => {
            let mut session = p.session();
            session.judge_prompt("Say hi.", "Hi.")?;
            session.refine_prompt("Say hi.", "Hello.", "It did not say hi.")?;
            session.parse_judgment("Checked.")?;
            session.parse_refinement("Hi.")?;
            Ok("prompts and parsers answer within bounds".into())
        }
        AnyPlugin::PairFilter(p) => {
            p.session().filter("", &[])?;
            Ok("decides on an empty list".into())
        }
        AnyPlugin::SearchStrategy(_) | AnyPlugin::Conformance(_) => Ok("no discovery calls".into()),
    }
}
