//! Several verifier plugins used together: each instruction id goes to the plugin that lists it.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::bail;

use super::bindings::verifier::Verifier;
use super::world_calls::CheckResult;
use super::{PluginError, PluginHost, Session, VerifierPlugin};

/// Verifier plugins and which of them checks each instruction id.
pub struct Verifiers {
    plugins: Vec<VerifierPlugin>,
    by_id: HashMap<String, usize>,
}

impl Verifiers {
    /// Load `paths`; an instruction id offered by two plugins is an error.
    pub fn load(host: &PluginHost, paths: &[PathBuf]) -> anyhow::Result<Verifiers> {
        let mut plugins = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for path in paths {
            let plugin: VerifierPlugin = host.load(path)?;
            for constraint in plugin.session().constraints()? {
                if let Some(&other) = by_id.get(&constraint.id) {
                    let other: &VerifierPlugin = &plugins[other];
                    bail!(
                        "instruction id `{}` is offered by both `{}` and `{}`; load only one of them",
                        constraint.id,
                        other.name(),
                        plugin.name()
                    );
                }
                by_id.insert(constraint.id, plugins.len());
            }
            plugins.push(plugin);
        }
        Ok(Verifiers { plugins, by_id })
    }

    /// "name (N ids), ..." for messages.
    pub fn describe_loaded(&self) -> String {
        self.plugins
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let n = self.by_id.values().filter(|&&j| j == i).count();
                format!("{} ({n} ids)", p.name())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Verifiers {
    /// Whether some loaded plugin checks `id`.
    pub fn knows(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Every instruction id the loaded plugins check, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.by_id.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// One fresh instance of every plugin, for one thread's unit of work.
    pub fn sessions(&self) -> VerifierSessions<'_> {
        VerifierSessions {
            verifiers: self,
            sessions: self.plugins.iter().map(|p| p.session()).collect(),
        }
    }
}

/// Instances of every loaded verifier.
pub struct VerifierSessions<'v> {
    verifiers: &'v Verifiers,
    sessions: Vec<Session<Verifier>>,
}

impl VerifierSessions<'_> {
    fn session(&mut self, id: &str) -> Result<&mut Session<Verifier>, PluginError> {
        let index = *self
            .verifiers
            .by_id
            .get(id)
            .ok_or_else(|| PluginError::Failed {
                plugin: "verifiers".into(),
                function: "check".into(),
                message: format!("instruction id `{id}` is not known to any loaded verifier"),
            })?;
        Ok(&mut self.sessions[index])
    }

    pub fn check(
        &mut self,
        id: &str,
        kwargs: &str,
        prompt: &str,
        response: &str,
    ) -> Result<CheckResult, PluginError> {
        self.session(id)?.check(id, kwargs, prompt, response)
    }

    pub fn describe(&mut self, id: &str, kwargs: &str) -> Result<String, PluginError> {
        self.session(id)?.describe(id, kwargs)
    }
}
