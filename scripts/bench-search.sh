#!/usr/bin/env bash
# The demo's search stage (configs/demo.toml's [search] and verifier judging) on the same failed
# samples twice: with prompt sharing (the default; sequences with the same prompt prefill it once)
# and without it (SPAR_HOST_PROMPT_SHARING=off, every sequence prefills its own). Prints the
# seconds of each, split into prefill and decode, and checks that both runs wrote the same trees.
#   scripts/bench-search.sh [JUDGMENTS] [MODEL] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
judgments=${1:-target/demo/run/iter-1/judgments.jsonl}
model=${2:-target/demo/SmolLM2-135M-Instruct.Q4_1.gguf}
out=${3:-target/bench-search}
mkdir -p "$out"
cargo build --release -q -p spar-host
cargo xtask plugins >/dev/null
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
settings=(--mode verifier --judge-plugin target/plugins/judge-direct.wasm --refine both
          --branch 3 --select 1 --max-depth 2 --gate 0.5 --budget 6 --retries 1
          --refine-temperature 0.7 --refine-max-new-tokens 384 --batch-size 32 --seed 1
          --model "$model" --input "$judgments")
for sharing in off on; do
    started=$(date +%s.%N)
    SPAR_HOST_PROMPT_SHARING=$sharing RUST_LOG=spar_host::engine::generate=debug,info \
        "$BIN" search "${settings[@]}" --output "$out/trees-$sharing.jsonl" 2>"$out/search-$sharing.log"
    echo "$(echo "$(date +%s.%N) - $started" | bc)" >"$out/seconds-$sharing"
done
python3 - "$out" "$cpu" <<'PY'
import json, re, sys
out, cpu = sys.argv[1:3]
print(f"search stage on the demo's trees; CPU: {cpu}, {len(open('/proc/cpuinfo').read().split('processor')) - 1} vCPUs")
print(f"{'prompt sharing':<15} {'seconds':>8} {'prefill s':>10} {'decode s':>9} {'prompts prefilled':>18} {'sequences':>10} {'solved':>7}")
rows = {}
for sharing in ["off", "on"]:
    log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{out}/search-{sharing}.log").read())
    prefill = [dict(re.findall(r"(\w+)=([\d.]+)", l)) for l in log.splitlines() if " prefill " in l]
    decode = [dict(re.findall(r"(\w+)=([\d.]+)", l)) for l in log.splitlines() if " decode " in l]
    trees = [json.loads(l) for l in open(f"{out}/trees-{sharing}.jsonl")]
    seconds = float(open(f"{out}/seconds-{sharing}").read())
    rows[sharing] = seconds
    print(f"{sharing:<15} {seconds:8.1f} {sum(float(p['seconds']) for p in prefill):10.1f} "
          f"{sum(float(d['seconds']) for d in decode):9.1f} {sum(int(p['prefilled']) for p in prefill):18d} "
          f"{sum(int(p['sequences']) for p in prefill):10d} {sum(t['solved'] for t in trees):7d}")
same = open(f"{out}/trees-off.jsonl").read() == open(f"{out}/trees-on.jsonl").read()
print(f"speed-up {rows['off'] / rows['on']:.2f}x; trees identical with and without sharing: {same}")
PY
