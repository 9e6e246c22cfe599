//! Several verifier plugins used together: each instruction id goes to the plugin that lists it.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::bail;

use super::bindings::repairing_verifier::RepairingVerifier;
use super::bindings::verifier::Verifier;
use super::world_calls::{CheckResult, RepairPlugin};
use super::{PluginError, PluginHost, Session, VerifierPlugin};

/// Verifier plugins and which of them checks each instruction id.
pub struct Verifiers {
    plugins: Vec<VerifierPlugin>,
    /// The same components' repair view, for those that export `repair-api`.
    repairers: Vec<Option<RepairPlugin>>,
    by_id: HashMap<String, usize>,
    /// Each id's JSON Schema of its arguments, as its plugin gave it.
    schemas: HashMap<String, String>,
}

impl Verifiers {
    /// Start a stage for every verifier (see [`crate::plugins::Plugin::start_stage`]).
    pub fn start_stage(&self) {
        for plugin in &self.plugins {
            plugin.start_stage();
        }
        for repairer in self.repairers.iter().flatten() {
            repairer.start_stage();
        }
    }

    /// Load `paths`; an instruction id offered by two plugins is an error.
    pub fn load(host: &PluginHost, paths: &[PathBuf]) -> anyhow::Result<Verifiers> {
        let mut plugins = Vec::new();
        let mut repairers = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut schemas = HashMap::new();
        for path in paths {
            let plugin: VerifierPlugin = host.load(path)?;
            repairers.push(if plugin.manifest().offers_repair() {
                Some(host.load::<RepairingVerifier>(path)?)
            } else {
                None
            });
            for constraint in plugin.session().constraints()? {
                if let Some(&other) = by_id.get(&constraint.id) {
                    // The plugin's own list may repeat an id: an error, never a panic.
                    match plugins.get(other) {
                        Some(other) => bail!(
                            "instruction id `{}` is offered by both `{}` and `{}`; load only one of them",
                            constraint.id,
                            VerifierPlugin::name(other),
                            plugin.name()
                        ),
                        None => bail!(
                            "plugin `{}` ({}): constraints() lists instruction id `{}` twice",
                            plugin.name(),
                            path.display(),
                            constraint.id
                        ),
                    }
                }
                schemas.insert(constraint.id.clone(), constraint.args_schema);
                by_id.insert(constraint.id, plugins.len());
            }
            plugins.push(plugin);
        }
        Ok(Verifiers {
            plugins,
            repairers,
            by_id,
            schemas,
        })
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

    /// The JSON Schema of `id`'s arguments, as its plugin declared it.
    pub fn args_schema(&self, id: &str) -> Option<&str> {
        self.schemas.get(id).map(String::as_str)
    }

    /// Whether some loaded plugin offers repair.
    pub fn any_repair(&self) -> bool {
        self.repairers.iter().any(Option::is_some)
    }

    /// One fresh instance of every plugin, for one thread's unit of work.
    pub fn sessions(&self) -> VerifierSessions<'_> {
        VerifierSessions {
            verifiers: self,
            sessions: self.plugins.iter().map(|p| p.session()).collect(),
            repair_sessions: self
                .repairers
                .iter()
                .map(|r| r.as_ref().map(|r| r.session()))
                .collect(),
        }
    }
}

/// Instances of every loaded verifier.
pub struct VerifierSessions<'v> {
    verifiers: &'v Verifiers,
    sessions: Vec<Session<Verifier>>,
    repair_sessions: Vec<Option<Session<RepairingVerifier>>>,
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

    /// Which of `constraints` ((id, kwargs JSON) pairs) `response` keeps and which it breaks
    /// (strictly); a constraint that cannot be checked counts as broken, with the reason.
    pub fn keeps_and_breaks(
        &mut self,
        constraints: &[(String, String)],
        prompt: &str,
        response: &str,
    ) -> (Vec<String>, Vec<String>) {
        let (mut keeps, mut breaks) = (Vec::new(), Vec::new());
        for (id, args) in constraints {
            match self.check(id, args, prompt, response) {
                Ok(r) if r.strict => keeps.push(id.clone()),
                Ok(_) => breaks.push(id.clone()),
                Err(e) => breaks.push(format!("{id} (cannot check: {e})")),
            }
        }
        (keeps, breaks)
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

    /// `response` minimally edited to keep `id`, from the plugin that checks `id` when it offers
    /// repair; `None` when it does not, or when it has no mechanical fix.
    pub fn repair(
        &mut self,
        id: &str,
        kwargs: &str,
        prompt: &str,
        response: &str,
    ) -> Result<Option<String>, PluginError> {
        self.session(id)?;
        let index = self.verifiers.by_id[id];
        match &mut self.repair_sessions[index] {
            Some(session) => session.repair(id, kwargs, prompt, response),
            None => Ok(None),
        }
    }
}
