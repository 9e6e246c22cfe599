#!/usr/bin/env bash
# A checkpoint written by `spar-host train` loads in transformers and gives the same logits.
# Trains one DPO step from the demo model, then compares logits on the same ids in both.
# Env: TV=<venv with torch, transformers and safetensors>.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TV:?set TV to a virtualenv with torch, transformers and safetensors}"
MODEL=$(scripts/fetch-demo-model.sh)
cargo build --quiet --release -p spar-host
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
OUT=$(mktemp -d)
printf '%s\n' '{"prompt": "Name a color.", "chosen": "Blue.", "rejected": "I like turtles, and trains."}' > "$OUT/pairs.jsonl"
"$BIN" train dpo --model "$MODEL" --pairs "$OUT/pairs.jsonl" --output "$OUT/ckpt" --micro-batch 1 --lr 1e-5 2>/dev/null
"$BIN" bench logits --model "$OUT/ckpt" --ids 1,4093,198,19556,216,33,34,35,28,905,17,2 > "$OUT/logits.json"
"$TV/bin/python" scripts/check_transformers.py "$OUT/ckpt" "$OUT/logits.json"
rm -rf "$OUT"
