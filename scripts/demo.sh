#!/usr/bin/env bash
# On a fresh machine: install what is needed, build, and run the main job.
# For now the main job builds every plugin from source and checks each one with the host
# (world, contract version, exports, verdict); the full SPaR demo replaces it later.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup show active-toolchain >/dev/null   # installs the pinned toolchain if it is missing
rustup target add wasm32-unknown-unknown >/dev/null

cargo xtask plugins
cargo run --quiet -p spar-host -- plugins list target/plugins
cargo run --quiet -p spar-host -- plugins check target/plugins/*.wasm
