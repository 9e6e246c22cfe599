//! The structure the code promises (docs/architecture.md), checked on the source itself: no file
//! in `host/src` over 500 lines, the layers import only downwards, and the plugin contract's
//! version is the same everywhere it is written.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, recursively, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
    out
}

#[test]
fn no_host_source_file_is_over_500_lines() {
    let long: Vec<String> = sources(&root().join("host/src"))
        .into_iter()
        .filter(|(_, text)| text.lines().count() > 500)
        .map(|(path, text)| format!("{} ({} lines)", path.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "{long:?}");
}

#[test]
fn lower_layers_import_nothing_from_the_self_play_layer() {
    let mut offenders = Vec::new();
    for layer in [
        "backend", "config", "train", "engine", "records", "storage", "plugins",
    ] {
        for (path, text) in sources(&root().join("host/src").join(layer)) {
            if text.contains("crate::spar") || text.contains("crate::cli") {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}

/// `0.1.0` in `package spar:plugins@0.1.0;`, `"spar:plugins/types@0.1.0"` and
/// `CONTRACT_VERSION: &str = "0.1.0"`.
fn versions_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["spar:plugins@", "spar:plugins/types@", "spar:plugins/host@"] {
        for (at, _) in text.match_indices(marker) {
            let rest = &text[at + marker.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                .unwrap_or(rest.len());
            found.push(rest[..end].to_string());
        }
    }
    if let Some(at) = text.find("CONTRACT_VERSION: &str = \"") {
        let rest = &text[at + "CONTRACT_VERSION: &str = \"".len()..];
        found.push(rest[..rest.find('"').unwrap()].to_string());
    }
    found
}

#[test]
fn the_contract_version_agrees_everywhere_it_is_written() {
    let version = spar_host::plugins::contract::CONTRACT_VERSION;
    let mut places = 0;
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(root().join("wit"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    // The test-only conformance world and its fixture name the contract too.
    files.push((
        root().join("tests/wit/conformance.wit"),
        std::fs::read_to_string(root().join("tests/wit/conformance.wit")).unwrap(),
    ));
    files.extend(sources(&root().join("tests/fixtures/conformance/src")));
    files.extend(sources(&root().join("plugins/sdk/src")));
    files.extend(sources(&root().join("host/src/plugins")));
    for (path, text) in files {
        for found in versions_in(&text) {
            assert_eq!(found, version, "{}", path.display());
            places += 1;
        }
    }
    // Six WIT packages (five in `wit/`, the test-only one), the `with:` keys of the SDK and the
    // conformance fixture, the SDK's constant, the host's constant.
    assert!(places >= 6 + 10 + 2, "only {places} places found");
}
