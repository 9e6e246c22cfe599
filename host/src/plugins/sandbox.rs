//! What confines a plugin: the store state it runs with, its memory limit, its time limit, and
//! how a limit hit or a trap becomes an error that names the plugin, the function and the limit.

use std::sync::Arc;
use std::time::Duration;
use wasmtime::{ResourceLimiter, Store, Trap};

use super::error::{Limit, PluginError};

/// How often the engine's epoch advances; the time limit is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource limits for every instance of a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory an instance may hold, in bytes.
    pub memory_bytes: usize,
    /// Longest one call may run.
    pub call_timeout: Duration,
    /// Most table elements an instance may hold.
    pub table_elements: usize,
    /// Most time all of one plugin's calls may take together in one stage (a command, or a
    /// stage of `run`): many calls each under the per-call limit cannot stall a stage for long.
    pub stage_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(1),
            table_elements: 100_000,
            stage_time: Duration::from_secs(300),
        }
    }
}

impl Limits {
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let ticks = self.call_timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// Memory/table limiter that remembers which limit it enforced, so the error can say so (a failed
/// grow otherwise surfaces as an anonymous trap).
struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    hit: Option<Limit>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = Some(Limit::Memory {
                limit_bytes: self.memory_bytes,
            });
            wasmtime::bail!("memory limit of {} bytes reached", self.memory_bytes);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.hit = Some(Limit::Table {
                limit_elements: self.table_elements,
            });
            wasmtime::bail!("table limit of {} elements reached", self.table_elements);
        }
        Ok(true)
    }
}

/// The data a plugin's store carries: everything the plugin can reach is in here.
pub struct PluginState {
    plugin: Arc<str>,
    limiter: Limiter,
    /// The last panic message the plugin logged, attached to the trap that follows it.
    last_panic: Option<String>,
    /// Log lines written in the current call, and those left out past the budget.
    logged: usize,
    suppressed: usize,
}

/// Longest log line kept from a plugin; the rest is cut so a plugin cannot flood the host.
const MAX_LOG_LINE: usize = 4096;

/// Log lines a plugin may write per call; the rest are counted and reported as one line.
pub const MAX_LOG_LINES_PER_CALL: usize = 100;

/// Longest name or version a plugin may give itself.
pub const MAX_PLUGIN_NAME: usize = 64;

/// Longest error or drop-reason text kept from a plugin.
pub const MAX_PLUGIN_TEXT: usize = 4096;

/// A plugin's text made safe to print: control characters (escape sequences, carriage returns,
/// newlines that would forge a log line) written as escapes, and cut to `max` bytes with the
/// number of bytes left out.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 16);
    let mut taken = 0;
    for c in text.chars() {
        if taken + c.len_utf8() > max {
            out.push_str(&format!("… ({} more bytes)", text.len() - taken));
            return out;
        }
        taken += c.len_utf8();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl PluginState {
    pub(crate) fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        PluginState {
            plugin,
            limiter: Limiter {
                memory_bytes: limits.memory_bytes,
                table_elements: limits.table_elements,
                hit: None,
            },
            last_panic: None,
            logged: 0,
            suppressed: 0,
        }
    }

    /// Log lines left out of the call that just ended (past [`MAX_LOG_LINES_PER_CALL`]).
    pub(crate) fn take_suppressed(&mut self) -> usize {
        std::mem::take(&mut self.suppressed)
    }

    pub(crate) fn log(&mut self, level: tracing::Level, message: &str) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message = &message[..end];
        }
        // The SDK's panic hook logs this prefix; keep it for the trap that follows.
        if message.starts_with("panicked at ") {
            self.last_panic = Some(message.to_string());
        }
        self.logged += 1;
        if self.logged > MAX_LOG_LINES_PER_CALL {
            self.suppressed += 1;
            return;
        }
        let message = printable(message, MAX_LOG_LINE);
        let plugin = &*self.plugin;
        match level {
            tracing::Level::ERROR => tracing::error!(plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin, "{message}"),
            tracing::Level::TRACE => tracing::trace!(plugin, "{message}"),
        }
    }
}

/// A fresh store for one instance, with the limits wired in.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    plugin: Arc<str>,
    limits: &Limits,
) -> Store<PluginState> {
    let mut store = Store::new(engine, PluginState::new(plugin, limits));
    store.limiter(|state| &mut state.limiter);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(limits.deadline_ticks());
    store
}

/// Arm the time limit and clear per-call state before a call.
pub(crate) fn before_call(store: &mut Store<PluginState>, limits: &Limits) {
    store.set_epoch_deadline(limits.deadline_ticks());
    let state = store.data_mut();
    state.limiter.hit = None;
    state.last_panic = None;
    state.logged = 0;
    state.suppressed = 0;
}

/// Turn a failed call into an error naming the plugin, the function and the limit or trap.
pub(crate) fn classify(
    store: &Store<PluginState>,
    function: &str,
    limits: &Limits,
    error: wasmtime::Error,
) -> PluginError {
    let state = store.data();
    let plugin = state.plugin.to_string();
    let function = function.to_string();
    if let Some(limit) = state.limiter.hit.clone() {
        return PluginError::LimitExceeded {
            plugin,
            function,
            limit,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginError::LimitExceeded {
            plugin,
            function,
            limit: Limit::Time {
                limit: limits.call_timeout,
            },
        },
        Some(trap) => PluginError::Trapped {
            plugin,
            function,
            reason: match (&state.last_panic, trap) {
                (Some(panic), _) => format!("{} ({trap})", printable(panic, MAX_PLUGIN_TEXT)),
                // Rust and C guests keep their stack in linear memory below their data; a
                // recursion too deep for it runs off the bottom, which the engine can only see
                // as an access out of bounds.
                (None, Trap::MemoryOutOfBounds) => format!(
                    "{trap} (in a plugin built from Rust or C, usually its stack overflowing: \
                     recursion too deep for the stack in its linear memory)"
                ),
                (None, _) => trap.to_string(),
            },
        },
        None => PluginError::Trapped {
            plugin,
            function,
            reason: format!("{error:#}"),
        },
    }
}
