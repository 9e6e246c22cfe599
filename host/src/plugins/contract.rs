//! The plugin contract as the host sees it before compiling anything: which version of
//! `spar:plugins` a component was built against, which world it implements, and what it imports.
//! Read from the component's own import/export names, so the WIT stays the single source of truth.

use std::fmt;
use wasmtime::wasmparser::{Encoding, Parser, Payload};

/// The contract package every plugin is built against.
pub const CONTRACT_PACKAGE: &str = "spar:plugins";

/// The contract version this host implements (the version in `wit/*.wit`).
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The host's contract version, parsed.
pub fn host_version() -> semver::Version {
    semver::Version::parse(CONTRACT_VERSION).expect("CONTRACT_VERSION is valid semver")
}

/// A plugin built against `plugin` runs on a host that speaks `host` when both agree on the
/// leftmost non-zero component (cargo's rule) and the plugin is not newer than the host, which
/// could not know additions the plugin relies on.
pub fn is_compatible(plugin: &semver::Version, host: &semver::Version) -> bool {
    let same_line = if host.major > 0 {
        plugin.major == host.major
    } else if host.minor > 0 {
        plugin.major == 0 && plugin.minor == host.minor
    } else {
        plugin.major == 0 && plugin.minor == 0 && plugin.patch == host.patch
    };
    same_line && plugin <= host
}

/// The roles a plugin can play: one world of the contract each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum World {
    Verifier,
    Judge,
    SearchStrategy,
    PairFilter,
    Conformance,
}

impl World {
    pub const ALL: [World; 5] = [
        World::Verifier,
        World::Judge,
        World::SearchStrategy,
        World::PairFilter,
        World::Conformance,
    ];

    /// The world's name in the WIT.
    pub fn name(self) -> &'static str {
        match self {
            World::Verifier => "verifier",
            World::Judge => "judge",
            World::SearchStrategy => "search-strategy",
            World::PairFilter => "pair-filter",
            World::Conformance => "conformance",
        }
    }

    /// The interface the world exports.
    pub fn interface(self) -> &'static str {
        match self {
            World::Verifier => "verifier-api",
            World::Judge => "judge-api",
            World::SearchStrategy => "search-api",
            World::PairFilter => "filter-api",
            World::Conformance => "conformance-api",
        }
    }

    fn from_interface(interface: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.interface() == interface)
    }

    /// Parse a world name as the WIT spells it.
    pub fn from_name(name: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.name() == name)
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a component's binary says about it, read without compiling it.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub world: World,
    /// The contract version the plugin was built against.
    pub contract_version: semver::Version,
    /// Every top-level import name, e.g. `spar:plugins/host@0.1.0`.
    pub imports: Vec<String>,
    /// Every top-level export name.
    pub exports: Vec<String>,
}

/// The optional interface a verifier exports when it can repair responses (`wit/verifier.wit`).
pub const REPAIR_INTERFACE: &str = "repair-api";

impl Manifest {
    /// Whether the plugin is a verifier that also exports `repair-api`: the host asks such
    /// plugins for minimal fixes; every other verifier is only checked against.
    pub fn offers_repair(&self) -> bool {
        self.world == World::Verifier
            && self
                .exports
                .iter()
                .any(|e| contract_name(e).is_some_and(|(iface, _)| iface == REPAIR_INTERFACE))
    }
}

/// Why a binary is not a plugin this host can run; the caller adds the path.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build plugins with spar-plugin-sdk (see the README's plugin guide)"
    )]
    CoreModule,
    #[error("malformed or truncated component: {0}")]
    Malformed(String),
    #[error(
        "exports no spar:plugins world (expected one of: {expected}); its exports are: {found}"
    )]
    NoWorld { expected: String, found: String },
    #[error("exports more than one spar:plugins world ({0}); a plugin implements exactly one")]
    SeveralWorlds(String),
    #[error("contract version `{0}` in `{1}` is not valid semver")]
    BadVersion(String, String),
    #[error(
        "built against {CONTRACT_PACKAGE}@{plugin}, but this host implements {CONTRACT_PACKAGE}@{host}: rebuild the plugin against {CONTRACT_PACKAGE}@{host}{hint}"
    )]
    Incompatible {
        plugin: semver::Version,
        host: semver::Version,
        hint: &'static str,
    },
    #[error(
        "imports `{0}`, which spar-host does not provide: plugins get no files, network, environment or clocks, only {CONTRACT_PACKAGE}/host"
    )]
    ForbiddenImport(String),
}

/// Split `spar:plugins/verifier-api@0.1.0` into (`verifier-api`, `0.1.0`).
fn contract_name(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    Some(match rest.split_once('@') {
        Some((iface, version)) => (iface, Some(version)),
        None => (rest, None),
    })
}

/// Read a component's world, contract version and imports from its binary, and check that this
/// host can run it. Nothing is compiled or instantiated.
pub fn inspect(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ManifestError::NotWasm);
    }
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // Nested core modules and components have their own sections; only depth 0 is the plugin's
    // interface.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ManifestError::Malformed(e.message().to_string()))?;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => return Err(ManifestError::CoreModule),
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| ManifestError::Malformed(e.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| ManifestError::Malformed(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }

    let mut worlds = Vec::new();
    for export in &exports {
        if let Some((iface, version)) = contract_name(export)
            && let Some(world) = World::from_interface(iface)
        {
            worlds.push((world, version.unwrap_or("").to_string(), export.clone()));
        }
    }
    let (world, version, export_name) = match worlds.len() {
        0 => {
            return Err(ManifestError::NoWorld {
                expected: World::ALL
                    .iter()
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                found: if exports.is_empty() {
                    "none".to_string()
                } else {
                    exports.join(", ")
                },
            });
        }
        1 => worlds.pop().expect("one world"),
        _ => {
            let names: Vec<_> = worlds.iter().map(|(w, _, _)| w.name()).collect();
            return Err(ManifestError::SeveralWorlds(names.join(", ")));
        }
    };
    let contract_version = semver::Version::parse(&version)
        .map_err(|_| ManifestError::BadVersion(version.clone(), export_name.to_string()))?;
    let host = host_version();
    if !is_compatible(&contract_version, &host) {
        let hint = if contract_version > host {
            " (or upgrade spar-host)"
        } else {
            ""
        };
        return Err(ManifestError::Incompatible {
            plugin: contract_version,
            host,
            hint,
        });
    }
    for import in &imports {
        let allowed = matches!(contract_name(import), Some(("host" | "types", _)));
        if !allowed {
            return Err(ManifestError::ForbiddenImport(import.to_string()));
        }
    }
    Ok(Manifest {
        world,
        contract_version,
        imports,
        exports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn compatibility_follows_cargo_rule_and_refuses_newer_plugins() {
        assert!(is_compatible(&v("0.1.0"), &v("0.1.0")));
        assert!(is_compatible(&v("0.1.0"), &v("0.1.3")));
        assert!(!is_compatible(&v("0.1.4"), &v("0.1.3")));
        assert!(!is_compatible(&v("0.2.0"), &v("0.1.0")));
        assert!(!is_compatible(&v("1.0.0"), &v("0.1.0")));
        assert!(is_compatible(&v("1.0.0"), &v("1.2.0")));
        assert!(!is_compatible(&v("2.0.0"), &v("1.2.0")));
    }

    #[test]
    fn junk_and_core_modules_are_refused() {
        assert_eq!(inspect(b"hello world!"), Err(ManifestError::NotWasm));
        let core = b"\0asm\x01\0\0\0";
        assert_eq!(inspect(core), Err(ManifestError::CoreModule));
        let component_header = b"\0asm\x0d\0\x01\0";
        assert!(matches!(
            inspect(component_header),
            Err(ManifestError::NoWorld { .. })
        ));
        let truncated = b"\0asm\x0d\0\x01\0\x07\x05";
        assert!(matches!(
            inspect(truncated),
            Err(ManifestError::Malformed(_))
        ));
    }
}
