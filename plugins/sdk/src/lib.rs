//! The spar-host plugin SDK.
//!
//! A plugin implements the trait of its role and calls that role's export macro:
//!
//! ```ignore
//! use spar_plugin_sdk::verifier::{CheckResult, Verifier};
//! use spar_plugin_sdk::PluginInfo;
//!
//! struct NoShouting;
//! impl Verifier for NoShouting {
//!     fn info() -> PluginInfo { PluginInfo::new("no-shouting", "0.1.0", "Rejects all-caps answers") }
//!     fn check(_id: &str, _args: &str, _prompt: &str, response: &str) -> Result<CheckResult, String> {
//!         let ok = response.to_uppercase() != response;
//!         Ok(CheckResult { strict: ok, loose: ok })
//!     }
//! }
//! spar_plugin_sdk::export_verifier!(NoShouting);
//! ```
//!
//! Build with `cargo build --target wasm32-unknown-unknown --release`; see the README for the
//! linker setting that turns the output into a component.

#![allow(clippy::too_many_arguments)]

/// The contract version this SDK builds against; the host compares it with its own.
pub const CONTRACT_VERSION: &str = "0.1.0";

#[doc(hidden)]
pub mod base {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin-base",
        generate_all,
        additional_derives: [PartialEq],
    });
}

pub use base::spar::plugins::types::{Message, PluginInfo};

mod log;
pub use log::{Level, log};

pub mod filter;
pub mod judge;
pub mod search;
pub mod verifier;

impl PluginInfo {
    /// A plugin's name, own version and one-line description.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
        }
    }
}

impl Message {
    /// A message from `role` (`system`, `user` or `assistant`).
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
}

/// Called at the top of every exported function: routes panic messages to the host's log, since a
/// wasm32-unknown-unknown guest has no stderr and the host would otherwise see a bare trap.
#[doc(hidden)]
pub fn __enter() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|panic| {
            let location = panic
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "an unknown location".to_string());
            let message = panic.payload_as_str().unwrap_or("(no message)");
            log(Level::Error, &format!("panicked at {location}: {message}"));
        }));
    });
}
