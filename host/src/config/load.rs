//! Reading a config: TOML, `--set key=value` overrides, and every unknown key reported at once.

use std::path::Path;

use anyhow::Context;

use super::RunConfig;

/// Apply `key.path=value` overrides to a parsed TOML table; the value is TOML (`3`, `0.5`,
/// `"x"`, `[1, 2]`) or, failing that, a plain string.
pub fn apply_overrides(table: &mut toml::Table, sets: &[String]) -> anyhow::Result<()> {
    for set in sets {
        let (key, raw) = set
            .split_once('=')
            .with_context(|| format!("--set `{set}`: expected key=value"))?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|t| t.get("v").cloned())
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        let parts: Vec<&str> = key.trim().split('.').collect();
        let mut current = &mut *table;
        for part in &parts[..parts.len() - 1] {
            let entry = current
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = entry
                .as_table_mut()
                .with_context(|| format!("--set `{set}`: `{part}` is not a table"))?;
        }
        current.insert(parts[parts.len() - 1].to_string(), value);
    }
    Ok(())
}

/// Read `path`, apply overrides, and deserialize (unknown keys and wrong types are errors that
/// name the key).
pub fn load(path: &Path, sets: &[String]) -> anyhow::Result<RunConfig> {
    match load_reporting(path, sets)? {
        (Some(config), problems) if problems.is_empty() => Ok(config),
        (_, problems) => {
            let prefix = format!("{}: ", path.display());
            anyhow::bail!("{prefix}{}", problems.join(&format!("\n{prefix}")))
        }
    }
}

/// Parse a config, collecting what is wrong with its keys: every unknown key (serde stops at
/// the first, so each one it names is dropped and parsing retried), then at most one wrong
/// type or missing key. Returns the config when only unknown keys were wrong, so that
/// [`validate`] can report its values too. An unreadable or syntactically broken file is an
/// error.
pub fn load_reporting(
    path: &Path,
    sets: &[String],
) -> anyhow::Result<(Option<RunConfig>, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))?;
    apply_overrides(&mut table, sets)?;
    let mut problems = Vec::new();
    loop {
        match toml::Value::Table(table.clone()).try_into::<RunConfig>() {
            Ok(config) => return Ok((Some(config), problems)),
            Err(e) => {
                let message = one_line(&e.to_string());
                let dropped = unknown_key(&message)
                    .is_some_and(|(parent, name)| remove_key(&mut table, &parent, &name));
                problems.push(message);
                if !dropped || problems.len() >= 50 {
                    return Ok((None, problems));
                }
            }
        }
    }
}

/// `(parent path, key)` of serde's "unknown field `key`, expected … [in `parent`]".
fn unknown_key(message: &str) -> Option<(Vec<String>, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let parent = match rest.rsplit_once(" in `") {
        Some((_, path)) => path
            .trim_end_matches('`')
            .split('.')
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    Some((parent, name.to_string()))
}

/// Remove `name` from the table at `parent` (from every table of an array on the way).
fn remove_key(table: &mut toml::Table, parent: &[String], name: &str) -> bool {
    match parent.split_first() {
        None => table.remove(name).is_some(),
        Some((first, rest)) => match table.get_mut(first) {
            Some(toml::Value::Table(t)) => remove_key(t, rest, name),
            Some(toml::Value::Array(items)) => items
                .iter_mut()
                .filter_map(|v| v.as_table_mut())
                .fold(false, |removed, t| remove_key(t, rest, name) | removed),
            _ => false,
        },
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'))
        .collect::<Vec<_>>()
        .join(" ")
}
