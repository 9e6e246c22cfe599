#!/usr/bin/env bash
# The fidelity benchmark: does one SPaR iteration make the demo model follow instructions better,
# and better than DPO on independently sampled pairs (the baseline the paper argues against)?
#
#   1. synthesise TRAIN training prompts and HELDOUT held-out prompts (never IFEval's);
#   2. one SPaR iteration (configs/fidelity.toml: actor samples, verifier judging, tree-search
#      refinement, quality-gated pairs, DPO);
#   3. the same samples and judgments, two more ways, each capped to the number of pairs SPaR
#      kept (PAIRS overrides it): SPaR with verifier repair (search.refine = "repair": a failed
#      answer's child is the verifiers' minimal fix) and independent pairs (a passing vs a
#      failing sample of the same prompt, the baseline the paper argues against);
#   4. greedy evaluation of the base, SPaR, repair and independent actors on IFEval's 541
#      prompts, on IFBench's 300 (out-of-distribution constraints; `words:start_verb`, which needs
#      a POS tagger, counts as failed for every model) and on the held-out prompts (all four
#      accuracies each);
#   5. one table with exact McNemar tests on prompt-level loose, also written as JSON to
#      $OUT/report.json (scripts/fidelity/report.py).
#
# About an hour on 2 CPU cores once built. Every step is skipped when its output exists, so a
# rerun continues; delete $OUT to start over. Settings (environment): TRAIN, HELDOUT, SEED,
# IFEVAL_LIMIT (first N IFEval prompts; default all), IFBENCH_LIMIT (first N IFBench prompts;
# default all), HELDOUT_LIMIT (first N held-out prompts
# evaluated; default all), EVAL_MAX_NEW (tokens per evaluated answer), EVAL_BATCH (sequences per
# generation pass), OUT (default target/fidelity), SET (extra `--set key=value` words for every
# run), PAIRS (pairs per arm; default: as many as SPaR kept).
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN=${TRAIN:-150}
HELDOUT=${HELDOUT:-100}
SEED=${SEED:-11}
IFEVAL_LIMIT=${IFEVAL_LIMIT:-541}
IFBENCH_LIMIT=${IFBENCH_LIMIT:-300}
HELDOUT_LIMIT=${HELDOUT_LIMIT:-$HELDOUT}
EVAL_MAX_NEW=${EVAL_MAX_NEW:-384}
EVAL_BATCH=${EVAL_BATCH:-16}
OUT=${OUT:-target/fidelity}
SET=${SET:-}

cargo xtask plugins >/dev/null
cargo build --quiet --release -p spar-host
BIN=$PWD/${CARGO_TARGET_DIR:-target}/release/spar-host
export SPAR_PLUGIN_DIR=$PWD/target/plugins
MODEL=$(scripts/fetch-demo-model.sh)
mkdir -p "$OUT/eval"
OUT=$(cd "$OUT" && pwd)
ln -sf "$MODEL" "$OUT/base.gguf"
timed() { local s; s=$(date +%s); "$@"; echo "  ($(( $(date +%s) - s )) s: $*)" | cut -c1-160 >&2; }

if [ ! -s "$OUT/prompts.jsonl" ]; then
  "$BIN" prompts synth --tasks data/synth-tasks.txt --n "$TRAIN" --seed "$SEED" \
    --output "$OUT/prompts.jsonl" --held-out "$HELDOUT" --held-out-output "$OUT/heldout.jsonl"
fi
sets=()
for s in $SET; do sets+=(--set "$s"); done
run_config() { # name, extra --set words
  local name=$1; shift
  "$BIN" run configs/fidelity.toml --set "run_dir=\"$OUT/run-$name\"" \
    --set "models.actor=\"$OUT/base.gguf\"" --set "prompts.train=\"$OUT/prompts.jsonl\"" \
    "${sets[@]}" "$@"
}

# SPaR.
echo "== SPaR iteration" >&2
timed run_config spar
KEPT=$(grep -c . "$OUT/run-spar/iter-1/pairs.jsonl" || true)
echo "SPaR kept $KEPT pairs" >&2

PAIRS=${PAIRS:-$KEPT}

# Repair and independent pairs from the same samples and judgments, PAIRS of each.
arm() { # name, --set words
  local name=$1; shift
  echo "== $name iteration" >&2
  mkdir -p "$OUT/run-$name/iter-1"
  for f in samples.jsonl judgments.jsonl; do
    [ -e "$OUT/run-$name/iter-1/$f" ] || cp "$OUT/run-spar/iter-1/$f" "$OUT/run-$name/iter-1/$f"
  done
  if [ "$PAIRS" -gt 0 ]; then
    timed run_config "$name" --set "pairs.max_pairs=$PAIRS" "$@"
  else
    echo "no pairs to match: the $name run is skipped" >&2
  fi
}
arm repair --set 'search.refine="repair"' --set search.branch=1 --set search.max_depth=1 \
  --set search.budget=1
arm independent --set 'pairs.source="independent"'

# Greedy evaluation of the three actors.
evaluate() { # name, model
  local name=$1 model=$2
  [ -e "$model" ] || { echo "no model for $name ($model): not evaluated" >&2; return 0; }
  [ -s "$OUT/eval/ifeval-$name/eval_results_loose.jsonl" ] ||
    timed "$BIN" eval ifeval --input tests/data/ifeval/input_data.jsonl --model "$model" \
      --limit "$IFEVAL_LIMIT" --max-new-tokens "$EVAL_MAX_NEW" --batch-size "$EVAL_BATCH" \
      --output "$OUT/eval/ifeval-$name" >/dev/null
  [ -s "$OUT/eval/ifbench-$name/eval_results_loose.jsonl" ] ||
    timed "$BIN" eval ifbench --input tests/data/ifbench/IFBench_test.jsonl --model "$model" \
      --limit "$IFBENCH_LIMIT" --max-new-tokens "$EVAL_MAX_NEW" --batch-size "$EVAL_BATCH" \
      --unsupported-as-failed --output "$OUT/eval/ifbench-$name" >/dev/null
  [ -s "$OUT/eval/heldout-$name/eval_results_loose.jsonl" ] ||
    timed "$BIN" eval ifeval --input "$OUT/heldout.jsonl" --model "$model" --limit "$HELDOUT_LIMIT" \
      --max-new-tokens "$EVAL_MAX_NEW" --batch-size "$EVAL_BATCH" \
      --output "$OUT/eval/heldout-$name" >/dev/null
}
echo "== evaluation" >&2
evaluate base "$OUT/base.gguf"
evaluate spar "$OUT/run-spar/iter-1/actor"
evaluate repair "$OUT/run-repair/iter-1/actor"
evaluate independent "$OUT/run-independent/iter-1/actor"

echo
echo "fidelity benchmark ($(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; TRAIN=$TRAIN HELDOUT=$HELDOUT SEED=$SEED PAIRS=$PAIRS IFEVAL_LIMIT=$IFEVAL_LIMIT IFBENCH_LIMIT=$IFBENCH_LIMIT HELDOUT_LIMIT=$HELDOUT_LIMIT EVAL_MAX_NEW=$EVAL_MAX_NEW EVAL_BATCH=$EVAL_BATCH SET=\"$SET\")"
python3 scripts/fidelity/report.py "$OUT"
echo
for name in spar repair; do
  echo "two $name pairs as diffs:"
  "$BIN" pairs show "$OUT/run-$name/iter-1/pairs.jsonl" --limit 2 --color never || true
done
