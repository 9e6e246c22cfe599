#!/usr/bin/env bash
# On a fresh machine: install what is needed, build, and run the main job: one SPaR iteration on
# the demo model (SmolLM2-135M-Instruct, CPU), verifier-judged, from configs/demo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup show active-toolchain >/dev/null   # installs the pinned toolchain if it is missing
rustup target add wasm32-unknown-unknown >/dev/null

cargo xtask plugins >/dev/null
cargo build --release -p spar-host
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
export SPAR_PLUGIN_DIR=$PWD/target/plugins
"$BIN" plugins list target/plugins

mkdir -p target/demo
MODEL=$(scripts/fetch-demo-model.sh)
ln -sf "$MODEL" target/demo/SmolLM2-135M-Instruct.Q4_1.gguf
"$BIN" prompts synth --tasks data/synth-tasks.txt --n 24 --seed 1 --output target/demo/prompts.jsonl \
  --held-out 16 --held-out-output target/demo/heldout.jsonl
"$BIN" check configs/demo.toml
"$BIN" run configs/demo.toml
echo
echo "What DPO learned from: two pairs as word diffs (rejected -> chosen), with the constraints"
echo "each side keeps or breaks (spar-host pairs show FILE shows them all):"
"$BIN" pairs show target/demo/run/iter-1/pairs.jsonl --limit 2
echo "Each stage's output is in target/demo/run/iter-1/ (samples, judgments, trees, pairs, refiner-sft,"
echo "and the trained actor/ and refiner/ when there was data); target/demo/run/metrics.jsonl has one"
echo "line per stage (pass rate of the actor's samples, trees solved, pairs kept and dropped, DPO metrics)."
echo "The whole run as one page (stages, curves, every pair and tree): target/demo/run/report.html"
