//! Logging through the host: the only channel out of the sandbox.

use crate::base::spar::plugins::host;

pub use host::LogLevel as Level;

/// Write one line to the host's log, attributed to this plugin.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}
