//! Writing results so that a crash never leaves a half-written file: temp file, then rename; the
//! run's metrics log; the one JSONL reader and writer.

pub mod jsonl;

pub use jsonl::{read_jsonl, write_jsonl};

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

/// Write `bytes` to `path` atomically: a reader sees the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("{}: cannot write", path.display()))
}

/// A run's `metrics.jsonl`: one line per finished stage,
/// `{"iteration", "stage", "seconds", "stats"}`, also logged and printed as it is written.
pub struct MetricsLog {
    path: std::path::PathBuf,
}

impl MetricsLog {
    pub fn new(run_dir: &Path) -> Self {
        MetricsLog {
            path: run_dir.join("metrics.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn record(
        &self,
        iteration: usize,
        stage: &str,
        seconds: f64,
        stats: serde_json::Value,
    ) -> anyhow::Result<()> {
        let line = serde_json::json!({"iteration": iteration, "stage": stage, "seconds": seconds,
            "stats": stats});
        tracing::info!(target: "run", "{line}");
        eprintln!("iter {iteration} {stage:<8} {seconds:>8.1} s  {stats}");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("{}: cannot write metrics", self.path.display()))?;
        writeln!(file, "{line}")
            .with_context(|| format!("{}: cannot write metrics", self.path.display()))
    }
}

/// An append-only JSON-lines file of a stage's finished items, synced after every append, so an
/// interrupted stage can resume after the items it already finished. A last line cut short by a
/// crash has no newline and is dropped when the log is reopened.
pub struct PartialLog {
    path: std::path::PathBuf,
    file: std::fs::File,
}

impl PartialLog {
    /// Open `path` and return the complete items it holds (at most `limit`), in order.
    pub fn open<T: serde::de::DeserializeOwned + serde::Serialize>(
        path: &Path,
        limit: usize,
    ) -> anyhow::Result<(Self, Vec<T>)> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let mut done = Vec::new();
        let mut kept = String::new();
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if !line.ends_with('\n') || done.len() == limit {
                break;
            }
            done.push(serde_json::from_str::<T>(line).with_context(|| {
                format!("{}:{}: unreadable partial results", path.display(), n + 1)
            })?);
            kept.push_str(line);
        }
        write_atomic(path, kept.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
            },
            done,
        ))
    }

    /// Append `items` and sync them to disk.
    pub fn append<T: serde::Serialize>(&mut self, items: &[T]) -> anyhow::Result<()> {
        let mut text = String::new();
        for item in items {
            text.push_str(&serde_json::to_string(item)?);
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }

    /// The stage is complete: its real output has been written, the log is no longer needed.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
