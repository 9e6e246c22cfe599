#!/usr/bin/env bash
# One self-play round on the demo model, timed by stage: actor sampling on N IFEval prompts,
# verifier judging, tree search (SPaR prompts, verifier-judged children), pairs. Prints each
# stage's stats line (generation passes, children per round = batch size across trees) and time.
# Env: N=16 prompts, SAMPLES=2 per prompt, MODE=verifier (or hybrid/llm), TOKENS=128.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-16}; SAMPLES=${SAMPLES:-2}; MODE=${MODE:-verifier}; TOKENS=${TOKENS:-128}
MODEL=$(scripts/fetch-demo-model.sh)
cargo xtask plugins >/dev/null
cargo build --quiet --release -p spar-host
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
export SPAR_PLUGIN_DIR=$PWD/target/plugins
OUT=${OUT:-$(mktemp -d)}
head -n "$N" tests/data/ifeval/input_data.jsonl > "$OUT/input.jsonl"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
with open(f"{out}/prompts.jsonl", "w") as f:
    for line in open(f"{out}/input.jsonl"):
        d = json.loads(line)
        f.write(json.dumps({"id": d["key"], "prompt": d["prompt"]}) + "\n")
PY
stage() { local name=$1; shift; local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo "time $name: $(( (e - s) / 1000000 )) ms" >&2; }
stage actor "$BIN" generate --model "$MODEL" --prompts "$OUT/prompts.jsonl" --output "$OUT/actor.jsonl" \
  --n "$SAMPLES" --temperature 0.9 --top-p 0.9 --max-new-tokens "$TOKENS" --batch-size 16 --seed 1
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
inputs = {json.loads(l)["key"]: json.loads(l) for l in open(f"{out}/input.jsonl")}
with open(f"{out}/samples.jsonl", "w") as f:
    for line in open(f"{out}/actor.jsonl"):
        a = json.loads(line); d = inputs[a["id"]]
        f.write(json.dumps({"id": f'{a["id"]}-{a["sample"]}', "prompt": d["prompt"], "response": a["text"],
                            "instruction_id_list": d["instruction_id_list"], "kwargs": d["kwargs"]}) + "\n")
PY
stage judge "$BIN" judge --mode "$MODE" --model "$MODEL" --k 3 --judge-max-new-tokens 256 --batch-size 16 \
  --input "$OUT/samples.jsonl" --output "$OUT/judgments.jsonl"
stage search "$BIN" search --mode "$MODE" --model "$MODEL" --k 3 --judge-max-new-tokens 256 --batch-size 24 \
  --branch 3 --select 2 --max-depth 3 --budget 12 --retries 1 --refine-max-new-tokens "$TOKENS" \
  --input "$OUT/judgments.jsonl" --output "$OUT/trees.jsonl" --sft-output "$OUT/refiner-sft.jsonl"
stage pairs "$BIN" pairs --input "$OUT/trees.jsonl" --output "$OUT/pairs.jsonl"
echo "outputs in $OUT" >&2
