//! `spar-host plugins list|check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::plugins::{AnyPlugin, CONTRACT_VERSION, Limits, PluginHost, World, contract};

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// One line per `.wasm` file in DIR: name, world, versions and verdict.
    List { dir: PathBuf },
    /// World, versions, imports, exports and a verdict for each FILE.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Fail unless every file implements this world (verifier, judge, search-strategy,
        /// pair-filter, conformance).
        #[arg(long, value_parser = parse_world)]
        world: Option<World>,
    },
}

fn parse_world(name: &str) -> Result<World, String> {
    World::from_name(name).ok_or_else(|| {
        let names: Vec<_> = World::ALL.iter().map(|w| w.name()).collect();
        format!(
            "unknown world `{name}` (expected one of: {})",
            names.join(", ")
        )
    })
}

pub fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    let host = PluginHost::new(Limits::default())?;
    match command {
        PluginsCommand::List { dir } => list(&host, &dir),
        PluginsCommand::Check { files, world } => {
            let mut failed = 0;
            for file in &files {
                match load(&host, file, world).and_then(|plugin| {
                    let probed = crate::plugins::probe::probe(&plugin)?;
                    Ok((plugin, probed))
                }) {
                    Ok((plugin, probed)) => print_check(file, &plugin, &probed),
                    Err(error) => {
                        eprintln!("error: {error:#}");
                        failed += 1;
                    }
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn load(host: &PluginHost, file: &Path, world: Option<World>) -> anyhow::Result<AnyPlugin> {
    if let Some(expected) = world {
        let (manifest, _) = host.inspect(file)?;
        if manifest.world != expected {
            return Err(crate::plugins::PluginError::WrongWorld {
                path: file.to_path_buf(),
                expected,
                found: manifest.world,
            }
            .into());
        }
    }
    Ok(host.load_any(file)?)
}

fn print_check(file: &Path, plugin: &AnyPlugin, probed: &str) {
    let manifest = plugin.manifest();
    let info = plugin.info();
    println!("{}", file.display());
    println!("  world:    {}", manifest.world);
    println!(
        "  contract: {}@{} (this host: {CONTRACT_VERSION})",
        contract::CONTRACT_PACKAGE,
        manifest.contract_version
    );
    println!(
        "  plugin:   {} {} - {}",
        info.name, info.version, info.description
    );
    println!("  imports:  {}", join_or_none(&manifest.imports));
    println!("  exports:  {}", join_or_none(&plugin.exported_functions()));
    if manifest.offers_repair() {
        println!("  repair:   offered (exports spar:plugins/repair-api)");
    }
    println!("  probe:    {probed}");
    println!("  verdict:  ok, this host can run it");
}

fn join_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn list(host: &PluginHost, dir: &Path) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read directory", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    files.sort();
    if files.is_empty() {
        println!("no .wasm files in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = 0;
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        match host.load_any(file) {
            Ok(plugin) => {
                let info = plugin.info();
                let manifest = plugin.manifest();
                let world = if manifest.offers_repair() {
                    format!("{}+repair", manifest.world.name())
                } else {
                    manifest.world.name().to_string()
                };
                println!(
                    "{name:<32} {world:<16} {:<24} contract {:<8} ok",
                    format!("{} {}", info.name, info.version),
                    plugin.manifest().contract_version.to_string(),
                );
            }
            Err(error) => {
                failed += 1;
                println!("{name:<32} refused: {error}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
