#!/usr/bin/env bash
# The search strategies side by side on the same trees: every failed sample of a judgments file
# (default: the demo run's first iteration) searched by bfs, dfs, greedy, beam and mcts with the
# same model, judge, refiner settings and budget; prints trees solved, mean depth of the chosen
# refinements, children generated, rounds and seconds per strategy.
#   scripts/bench-strategies.sh [JUDGMENTS] [MODEL] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
judgments=${1:-target/demo/run/iter-1/judgments.jsonl}
model=${2:-target/demo/SmolLM2-135M-Instruct.Q4_1.gguf}
out=${3:-target/strategies}
mkdir -p "$out"
cargo build --release -q
cargo xtask plugins >/dev/null
# Refiner children only (no verifier repairs, which solve most trees at depth 1 whatever the
# strategy), judged by the verifiers; the same budget for all.
common=(--mode verifier --judge-plugin target/plugins/judge-direct.wasm --refine llm
        --branch 3 --select 1 --max-depth 3 --budget 9 --retries 1
        --refine-max-new-tokens 256 --batch-size 32 --seed 7 --model "$model")
printf '%-8s %7s %7s %11s %9s %7s %8s\n' strategy trees solved mean_depth children rounds seconds
for s in bfs dfs greedy beam mcts; do
    started=$(date +%s.%N)
    target/release/spar-host search "${common[@]}" --strategy "target/plugins/search-$s.wasm" \
        --input "$judgments" --output "$out/trees-$s.jsonl" 2>"$out/search-$s.log"
    seconds=$(echo "$(date +%s.%N) - $started" | bc)
    python3 - "$out/trees-$s.jsonl" "$s" "$seconds" "$out/search-$s.log" <<'PY'
import json, sys
path, name, seconds, log = sys.argv[1:5]
trees = [json.loads(l) for l in open(path)]
solved = [t for t in trees if t["solved"]]
depth = [t["nodes"][t["chosen"]]["depth"] for t in solved]
children = sum(len(t["nodes"]) - 1 for t in trees)
stats = next(json.loads(l.split("stats search: ", 1)[1]) for l in open(log) if "stats search: " in l)
print(f"{name:<8} {len(trees):7d} {len(solved):7d} {sum(depth) / max(len(depth), 1):11.2f} "
      f"{children:9d} {stats['rounds']:7d} {float(seconds):8.0f}")
PY
done
