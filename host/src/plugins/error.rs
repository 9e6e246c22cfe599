//! Errors from loading and calling plugins. Each names the plugin (or its file) and says why.

use std::path::PathBuf;
use std::time::Duration;

use super::contract::{ManifestError, World};

/// Which sandbox limit stopped a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limit {
    Time {
        limit: Duration,
    },
    Memory {
        limit_bytes: usize,
    },
    Table {
        limit_elements: usize,
    },
    /// The summed time of the plugin's calls in one stage.
    StageTime {
        limit: Duration,
    },
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Time { limit } => write!(f, "time limit of {} ms", limit.as_millis()),
            Limit::Memory { limit_bytes } => {
                write!(f, "memory limit of {} MiB", limit_bytes / (1 << 20))
            }
            Limit::Table { limit_elements } => {
                write!(f, "table limit of {limit_elements} elements")
            }
            Limit::StageTime { limit } => write!(
                f,
                "time budget of {} s for one stage (all its calls together)",
                limit.as_secs_f64()
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    // The causes are part of the message (not `#[source]`), so `{:#}` prints them once.
    #[error("{}: cannot read plugin: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Refused {
        path: PathBuf,
        reason: Box<ManifestError>,
    },
    #[error("{}: implements the `{found}` world, but a `{expected}` plugin is needed here", path.display())]
    WrongWorld {
        path: PathBuf,
        expected: World,
        found: World,
    },
    #[error("{}: cannot compile component: {reason}", path.display())]
    Compile { path: PathBuf, reason: String },
    #[error("plugin `{plugin}` could not be instantiated: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin `{plugin}` exceeded its {limit} in `{function}`")]
    LimitExceeded {
        plugin: String,
        function: String,
        limit: Limit,
    },
    #[error("plugin `{plugin}` trapped in `{function}`: {reason}")]
    Trapped {
        plugin: String,
        function: String,
        reason: String,
    },
    #[error("plugin `{plugin}` returned an error from `{function}`: {message}")]
    Failed {
        plugin: String,
        function: String,
        message: String,
    },
}
