//! spar-host: SPaR self-play training with a native engine and sandboxed WebAssembly plugins.

pub mod backend;
pub mod cli;
pub mod config;
pub mod engine;
pub mod eval;
pub mod failpoint;
pub mod plugins;
pub mod progress;
pub mod records;
pub mod spar;
pub mod storage;
pub mod train;
