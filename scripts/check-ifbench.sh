#!/usr/bin/env bash
# verifier-ifbench against IFBench's current checker, label by label, on IFBench's sample
# responses and 17 transformations of each (scripts/ifbench/variants.py: about 5,000 responses,
# 6,000 instructions), with both evaluations timed in the same run.
#
# Needs a checkout of allenai/IFBench (IFBENCH_SRC; checked at db69a6f) and makes a venv with the
# versions IFBench's uv.lock pins (emoji 2.15.0, syllapy 0.7.2) and nltk 3.10.4. NLTK data comes
# from the shared benchmark data (NLTK_DATA) or the plugins' own copies; no download.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${IFBENCH_SRC:?set IFBENCH_SRC to a checkout of allenai/IFBench}"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/spar-host
VENV=${VENV:-$CACHE/pyref-ifbench}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet nltk==3.10.4 emoji==2.15.0 syllapy==0.7.2 immutabledict absl-py langdetect
fi
# Punkt from the plugins' copy, stop words from verifier-ifbench's: the reference reads the same data.
NLTK_DIR=$CACHE/nltk_data_ifbench
mkdir -p "$NLTK_DIR/tokenizers/punkt_tab/english" "$NLTK_DIR/corpora/stopwords"
cp plugins/nltk-text/data/punkt-english/*.t* "$NLTK_DIR/tokenizers/punkt_tab/english/"
cp plugins/verifier-ifbench/data/stopwords/english "$NLTK_DIR/corpora/stopwords/"
chmod -R go-w "$NLTK_DIR"
export NLTK_DATA=$NLTK_DIR

cargo xtask plugins >/dev/null
cargo build --quiet --release -p spar-host
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
export SPAR_PLUGIN_DIR=$PWD/target/plugins
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT/python" "$OUT/rust"
N=$(python3 scripts/ifbench/variants.py tests/data/ifbench/IFBench_test.jsonl tests/data/ifbench/sample_output.jsonl "$OUT")
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
"$BIN" eval ifbench --input "$OUT/input.jsonl" --responses "$OUT/responses.jsonl" --output "$OUT/rust" >/dev/null
RUST=$(time_ms "$BIN" eval ifbench --input "$OUT/input.jsonl" --responses "$OUT/responses.jsonl" --output "$OUT/rust")
PY=$(IFBENCH_SRC=$IFBENCH_SRC time_ms "$VENV/bin/python" scripts/ifbench/reference.py "$OUT/input.jsonl" "$OUT/responses.jsonl" "$OUT/python")
python3 - "$OUT" <<'PY'
import collections, json, sys
out = sys.argv[1]
for mode in ["strict", "loose"]:
    ours = [json.loads(l) for l in open(f"{out}/rust/eval_results_{mode}.jsonl")]
    ref = [json.loads(l) for l in open(f"{out}/python/eval_results_{mode}.jsonl")]
    assert len(ours) == len(ref)
    total, differ = 0, collections.Counter()
    examples = {}
    for a, b in zip(ours, ref):
        assert a["prompt"] == b["prompt"]
        for id, x, y in zip(b["instruction_id_list"], a["follow_instruction_list"], b["follow_instruction_list"]):
            total += 1
            if x != y:
                differ[id] += 1
                examples.setdefault(id, (b["prompt"][-14:], y, a["response"][:100]))
    print(f"{mode}: {total - sum(differ.values())}/{total} instruction labels agree")
    for id, n in differ.most_common():
        print(f"  {id}: {n} differ, e.g. {examples[id]}")
PY
echo "$N responses ($(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores): spar-host eval ifbench $RUST ms, IFBench's run_eval (Python) $PY ms"
