#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit and integration test. Integration
# tests build the plugins and fixtures from source themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup show active-toolchain >/dev/null
rustup target add wasm32-unknown-unknown >/dev/null

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
