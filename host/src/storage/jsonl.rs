//! The one JSONL reader and writer: every file of records a run reads or writes goes through
//! here, so a bad line is always reported as `FILE:LINE: why`.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A record that can say what is wrong with it beyond its JSON shape.
pub trait Validate {
    /// `Err(why)` for a record that parses but cannot be right (a tree whose links point
    /// nowhere, a pair without an answer).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Validate for Value {}

/// Each non-blank line parsed as JSON and handed to `parse` with its line number; an error
/// (invalid UTF-8, invalid JSON, or `parse`'s own) names the file and line.
pub fn read_with<T>(
    path: &Path,
    mut parse: impl FnMut(Value, usize) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut out = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let text = std::str::from_utf8(raw)
            .map_err(|e| anyhow::anyhow!("{}:{line}: not valid UTF-8 ({e})", path.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}:{line}: invalid JSON: {e}", path.display()))?;
        out.push(
            parse(value, line).map_err(|e| anyhow::anyhow!("{}:{line}: {e:#}", path.display()))?,
        );
    }
    Ok(out)
}

/// A file of `T` records, each validated.
pub fn read_jsonl<T: DeserializeOwned + Validate>(path: &Path) -> anyhow::Result<Vec<T>> {
    read_with(path, |value, _| {
        let record: T = serde_json::from_value(value)
            .map_err(|e| anyhow::anyhow!("not a valid record: {e}"))?;
        record
            .validate()
            .map_err(|why| anyhow::anyhow!("not a valid record: {why}"))?;
        Ok(record)
    })
}

/// Write records as JSONL, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    super::write_atomic(path, text.as_bytes())
}
