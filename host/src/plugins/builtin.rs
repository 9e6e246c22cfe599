//! Where the plugins built from this repository live, so commands can default to them.

use std::path::PathBuf;

use super::World;

/// The plugin each role uses when a config or command names none: the one table of defaults.
pub fn default_name(world: World) -> Option<&'static str> {
    match world {
        World::Judge => Some("judge-spar"),
        World::Verifier => Some("verifier-ifeval"),
        World::SearchStrategy => Some("search-bfs"),
        // Filters are opt-in (SPaR keeps every pair that passed the gate).
        World::PairFilter | World::Conformance => None,
    }
}

/// The path of the default plugin of `world` (see [`default_name`]).
pub fn default_for(world: World) -> anyhow::Result<PathBuf> {
    let name = default_name(world)
        .ok_or_else(|| anyhow::anyhow!("no built-in default for a `{world}` plugin"))?;
    find(name)
}

/// The verifier plugins a command was given, or the built-in one when it was given none.
pub fn verifiers_or_default(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if given.is_empty() {
        Ok(vec![default_for(World::Verifier)?])
    } else {
        Ok(given.to_vec())
    }
}

/// Folders searched for built-in plugins, in order: `$SPAR_PLUGIN_DIR`, `plugins/` next to the
/// binary's folder (`target/plugins` for `target/debug/spar-host`), and `target/plugins` under the
/// current directory.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("SPAR_PLUGIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(bin_dir) = exe.parent()
    {
        if let Some(up) = bin_dir.parent() {
            dirs.push(up.join("plugins"));
        }
        dirs.push(bin_dir.join("plugins"));
    }
    dirs.push(PathBuf::from("target").join("plugins"));
    dirs
}

/// The path of built-in plugin `name` (e.g. `verifier-ifeval`), or an error saying where it was
/// looked for and how to build it.
pub fn find(name: &str) -> anyhow::Result<PathBuf> {
    let file = format!("{name}.wasm");
    let dirs = search_path();
    dirs.iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            anyhow::anyhow!(
                "built-in plugin {file} not found (looked in: {}); build the plugins with `cargo xtask plugins` or set SPAR_PLUGIN_DIR",
                looked.join(", ")
            )
        })
}
