//! Builds every plugin crate of the workspace into a WebAssembly component.
//!
//! Plugins are the workspace members with a `cdylib` target. Those under `plugins/` land in
//! `target/plugins/<package>.wasm`; test fixtures under `tests/fixtures/` in
//! `target/test-fixtures/<package>.wasm`. The CLI (`cargo xtask plugins`) and the integration
//! tests both call [`build_plugins`], so there is one way plugins get built.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target plugins are built for (pinned in rust-toolchain.toml).
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Which plugins to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Plugins under `plugins/` only.
    Plugins,
    /// Plugins and the test fixtures.
    All,
}

/// One plugin crate.
#[derive(Clone, Debug)]
pub struct PluginCrate {
    pub package: String,
    /// The cdylib's file stem (the package name with `-` as `_`).
    pub lib_name: String,
    pub manifest_dir: PathBuf,
    pub is_fixture: bool,
}

/// A built plugin.
#[derive(Clone, Debug)]
pub struct BuiltPlugin {
    pub package: String,
    pub wasm: PathBuf,
    pub is_fixture: bool,
}

/// The workspace root (the folder above `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Where built plugins are copied.
pub fn plugin_dir(root: &Path) -> PathBuf {
    root.join("target").join("plugins")
}

/// Where built test fixtures are copied.
pub fn fixture_dir(root: &Path) -> PathBuf {
    root.join("target").join("test-fixtures")
}

/// Where cargo builds the wasm artifacts: beside the host's build, in a folder of its own so a
/// nested build never waits on the outer build's lock.
fn wasm_target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            let dir = if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            };
            dir.join("wasm")
        }
        _ => root.join("target").join("wasm"),
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A cargo command for `root` that does not inherit the settings of a cargo (or clippy) that may
/// be running us: those are for the host's build, not the plugins'.
fn clean_cargo(root: &Path) -> Command {
    let mut command = Command::new(cargo());
    command.current_dir(root);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let inherited_build_setting =
            (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
                || key.starts_with("__CARGO")
                || matches!(
                    key.as_ref(),
                    "RUSTC_WORKSPACE_WRAPPER" | "RUSTC_WRAPPER" | "RUSTFLAGS" | "RUSTDOCFLAGS"
                );
        if inherited_build_setting {
            command.env_remove(key.as_ref());
        }
    }
    command
}

/// Every plugin crate in the workspace, from `cargo metadata`.
pub fn plugin_crates(root: &Path) -> Result<Vec<PluginCrate>, String> {
    let output = clean_cargo(root)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed invalid JSON: {e}"))?;
    let fixtures = root.join("tests").join("fixtures");
    let mut crates = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(manifest) = package["manifest_path"].as_str() else {
            continue;
        };
        let manifest_dir = Path::new(manifest).parent().unwrap_or(root).to_path_buf();
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_cdylib = target["crate_types"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "cdylib"));
            if is_cdylib {
                crates.push(PluginCrate {
                    package: package["name"].as_str().unwrap_or_default().to_string(),
                    lib_name: target["name"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('-', "_"),
                    is_fixture: manifest_dir.starts_with(&fixtures),
                    manifest_dir: manifest_dir.clone(),
                });
            }
        }
    }
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(crates)
}

/// Build the selected plugins in release mode for [`WASM_TARGET`] and copy each component to
/// [`plugin_dir`] or [`fixture_dir`] (atomically, so a reader never sees half a file).
pub fn build_plugins(root: &Path, selection: Selection) -> Result<Vec<BuiltPlugin>, String> {
    let crates: Vec<_> = plugin_crates(root)?
        .into_iter()
        .filter(|c| selection == Selection::All || !c.is_fixture)
        .collect();
    if crates.is_empty() {
        return Ok(Vec::new());
    }
    let target_dir = wasm_target_dir(root);
    let mut command = clean_cargo(root);
    command
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    for c in &crates {
        command.args(["-p", &c.package]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building plugins failed ({status})"));
    }
    let artifacts = target_dir.join(WASM_TARGET).join("release");
    let mut built = Vec::new();
    for c in crates {
        let from = artifacts.join(format!("{}.wasm", c.lib_name));
        let dir = if c.is_fixture {
            fixture_dir(root)
        } else {
            plugin_dir(root)
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let to = dir.join(format!("{}.wasm", c.package));
        let tmp = dir.join(format!(".{}.wasm.tmp{}", c.package, std::process::id()));
        std::fs::copy(&from, &tmp).map_err(|e| format!("{}: {e}", from.display()))?;
        std::fs::rename(&tmp, &to).map_err(|e| format!("{}: {e}", to.display()))?;
        built.push(BuiltPlugin {
            package: c.package,
            wasm: to,
            is_fixture: c.is_fixture,
        });
    }
    Ok(built)
}
