#!/usr/bin/env bash
# Benchmark `spar-host eval ifeval` on IFEval's 541 GPT-4 responses against the Python reference
# (lm-eval[ifeval]==0.4.13, the official Google checker), both measured here, in one run.
# Prints wall times (median of RUNS) and the ratio, and checks that both wrote the official labels.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DATA=tests/data/ifeval
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/spar-host
VENV=$CACHE/pyref-lm-eval-0.4.13

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "lm-eval[ifeval]==0.4.13"
fi
# The Punkt English parameters the reference needs, from the plugin's own copy (no download).
export NLTK_DATA=$CACHE/nltk_data
mkdir -p "$NLTK_DATA/tokenizers/punkt_tab/english"
cp plugins/nltk-text/data/punkt-english/*.t* "$NLTK_DATA/tokenizers/punkt_tab/english/"

cargo xtask plugins >/dev/null
cargo build --quiet --release -p spar-host
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
export SPAR_PLUGIN_DIR=$PWD/target/plugins

OUT=$(mktemp -d)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

# Cold: the compiled-plugin cache is empty, so the plugin is compiled first.
COLD=$(SPAR_PLUGIN_CACHE=$OUT/cache-cold time_ms "$BIN" eval ifeval --input $DATA/input_data.jsonl \
  --responses $DATA/input_response_data_gpt4_20231107_145030.jsonl --output "$OUT/rust")
export SPAR_PLUGIN_CACHE=$OUT/cache
"$BIN" eval ifeval --input $DATA/input_data.jsonl --responses $DATA/input_response_data_gpt4_20231107_145030.jsonl --output "$OUT/rust" >/dev/null
RUST=$(for _ in $(seq "$RUNS"); do time_ms "$BIN" eval ifeval --input $DATA/input_data.jsonl \
  --responses $DATA/input_response_data_gpt4_20231107_145030.jsonl --output "$OUT/rust"; done | median)
mkdir -p "$OUT/python"
PY=$(for _ in $(seq "$RUNS"); do time_ms "$VENV/bin/python" scripts/ifeval_reference.py $DATA/input_data.jsonl \
  $DATA/input_response_data_gpt4_20231107_145030.jsonl "$OUT/python"; done | median)

same() { cmp -s "$1" "$2" && echo identical || echo DIFFERENT; }
echo "IFEval, 541 responses, 834 instructions (median of $RUNS runs, wall clock, process start to exit)"
printf '%-44s %8s ms\n' "spar-host eval ifeval (plugin cache warm)" "$RUST"
printf '%-44s %8s ms\n' "spar-host eval ifeval (cold: compiles plugin)" "$COLD"
printf '%-44s %8s ms\n' "Python reference (lm-eval 0.4.13)" "$PY"
echo "ratio (Python / spar-host, warm): $(awk "BEGIN {printf \"%.1f\", $PY / $RUST}")x; cold: $(awk "BEGIN {printf \"%.1f\", $PY / $COLD}")x"
echo "spar-host strict labels vs official: $(same "$OUT/rust/eval_results_strict.jsonl" $DATA/eval_results_strict.jsonl)"
echo "spar-host loose labels vs official:  $(same "$OUT/rust/eval_results_loose.jsonl" $DATA/eval_results_loose.jsonl)"
rm -rf "$OUT"
