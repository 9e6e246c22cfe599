//! A disk cache of compiled components: compiling a large plugin with Cranelift takes most of a
//! second, loading its compiled form takes milliseconds. Entries are keyed by the SHA-256 of the
//! component bytes and the engine's compatibility hash (wasmtime version and settings), written
//! atomically, and only ever produced by this process's own `serialize`.
//!
//! Location: `$SPAR_PLUGIN_CACHE`, else `$XDG_CACHE_HOME/spar-host/components`, else
//! `~/.cache/spar-host/components`. `SPAR_PLUGIN_CACHE=off` disables it.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("SPAR_PLUGIN_CACHE") {
        Some(value) if value == "off" => None,
        Some(value) if !value.is_empty() => Some(PathBuf::from(value)),
        _ => {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(base.join("spar-host").join("components"))
        }
    }
}

/// Feeds `Engine::precompile_compatibility_hash` into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(bytes);
    hasher
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compile `bytes`, or load the compiled form cached by an earlier run.
pub fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    let Some(dir) = cache_dir() else {
        return Component::from_binary(engine, bytes);
    };
    let path = dir.join(format!("{}.cwasm", key(engine, bytes)));
    if path.is_file() {
        // SAFETY: the file was written by `Component::serialize` of this same engine
        // configuration (the key includes its compatibility hash) into the user's own cache.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {error:#}")
            }
        }
    }
    let component = Component::from_binary(engine, bytes)?;
    if let Ok(serialized) = component.serialize() {
        let written = std::fs::create_dir_all(&dir)
            .map_err(anyhow::Error::from)
            .and_then(|_| crate::storage::write_atomic(&path, &serialized));
        if let Err(error) = written {
            tracing::debug!("not caching compiled plugin: {error:#}");
        }
    }
    Ok(component)
}
