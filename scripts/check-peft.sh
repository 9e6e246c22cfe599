#!/usr/bin/env bash
# A LoRA adapter written by `spar-host train --lora-rank` loads in PEFT onto its base and gives the
# logits of spar-host's merged checkpoint. The base is an HF directory in the demo model's shape
# with seeded random weights (`bench make-model`); a few LoRA DPO steps move the adapters off zero.
# Env: TV=<venv with torch, transformers, safetensors and peft>.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TV:?set TV to a virtualenv with torch, transformers, safetensors and peft}"
MODEL=$(scripts/fetch-demo-model.sh)
cargo build --quiet --release -p spar-host
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
OUT=$(mktemp -d)
"$BIN" bench make-model --like "$MODEL" --output "$OUT/base" --seed 1 2>/dev/null
printf '%s\n' '{"prompt": "Name a color.", "chosen": "Blue.", "rejected": "I like turtles, and trains."}' \
    '{"prompt": "Say hi.", "chosen": "Hi.", "rejected": "HELLO THERE, FRIEND!"}' > "$OUT/pairs.jsonl"
"$BIN" train dpo --model "$OUT/base" --pairs "$OUT/pairs.jsonl" --output "$OUT/lora" \
    --micro-batch 1 --epochs 3 --lr 1e-3 --warmup-ratio 0 \
    --lora-rank 8 --lora-alpha 16 --lora-target-modules all-linear 2>/dev/null
"$BIN" bench logits --model "$OUT/lora" --ids 1,4093,198,19556,216,33,34,35,28,905,17,2 > "$OUT/logits.json"
"$TV/bin/python" scripts/check_peft.py "$OUT/base" "$OUT/lora" "$OUT/logits.json"
rm -rf "$OUT"
