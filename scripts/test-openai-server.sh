#!/usr/bin/env bash
# spar-host against a real OpenAI-compatible server: llama.cpp's server (PyPI llama-cpp-python,
# built from source once and cached) serving the demo model on loopback. Not part of CI (the
# build takes about 15 minutes on 2 cores); tests/server.rs covers the same paths in CI with a
# stand-in server.
#
#   scripts/test-openai-server.sh        # prints one line per check and a summary; exit 1 on a failure
#
# Checks: `judge` and `search` generate on the server; `spar-host run` with the refiner on the
# server; the server killed mid-search (the run fails naming the job; restarted, the same command
# finishes with trees and pairs byte-identical to an uninterrupted run); and, through a fault proxy
# in front of the server, HTTP 500s (retried), persistent 503s and malformed JSON (a clear error
# after the retries), a slow answer (the timeout is honoured).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${SPAR_LLAMA_VENV:-$HOME/.cache/spar-host/llama-server-venv}
work=$root/target/openai-server-test
port=${SPAR_TEST_PORT:-18081}
proxy_port=$((port + 1))
url=http://127.0.0.1:$port/v1
proxy_url=http://127.0.0.1:$proxy_port/v1

if ! "$venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  echo "installing llama-cpp-python[server] into $venv (builds llama.cpp from source)"
  python3 -m venv "$venv"
  CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    "$venv/bin/pip" install --quiet "llama-cpp-python[server]==0.3.36" || exit 1
fi
set -e
cargo xtask plugins >/dev/null
cargo build --release -p spar-host 2>/dev/null
bin=${CARGO_TARGET_DIR:-$root/target}/release/spar-host
export SPAR_PLUGIN_DIR=$root/target/plugins
model=$(scripts/fetch-demo-model.sh)
set +e
rm -rf "$work" && mkdir -p "$work"

server_pid=""
start_server() {
  "$venv/bin/python" -m llama_cpp.server --model "$model" --host 127.0.0.1 --port "$port" \
    --n_ctx 4096 >> "$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 120); do
    curl -sf "$url/models" >/dev/null && return 0
    sleep 0.5
  done
  echo "the server did not start; see $work/server.log"; exit 1
}
stop_server() { kill -9 "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; }
proxy_pid=""
start_proxy() {
  "$venv/bin/python" scripts/openai_fault_proxy.py "$proxy_port" "$url" "$@" >> "$work/proxy.log" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 1 40); do curl -sf "$proxy_url/models" >/dev/null && return 0; sleep 0.25; done
}
stop_proxy() { kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; }
trap 'stop_proxy; stop_server' EXIT

failures=0
check() { # description, then a command whose success means the check passed
  local what=$1; shift
  if "$@"; then echo "ok    $what"; else echo "FAIL  $what"; failures=$((failures + 1)); fi
}
contains() { grep -q -- "$2" "$1"; }

start_server
judge_plugin=$SPAR_PLUGIN_DIR/judge-direct.wasm
"$bin" prompts synth --tasks data/synth-tasks.txt --n 6 --seed 3 --output "$work/prompts.jsonl" 2>/dev/null

# 1. The loop with the refiner on the server (actor sampling, DPO and RFT stay local).
cat > "$work/config.toml" <<EOF
run_dir = "run-a"
seed = 7
[models]
actor = "$model"
[prompts]
train = "prompts.jsonl"
[actor]
n = 2
max_new_tokens = 96
batch_size = 12
[judge]
mode = "hybrid"
k = 3
max_new_tokens = 96
plugin = "$judge_plugin"
[search]
branch = 2
max_depth = 2
budget = 4
max_new_tokens = 128
[[filters]]
plugin = "$SPAR_PLUGIN_DIR/filter-dedup.wasm"
[dpo]
max_length = 512
[sft]
max_length = 768
[servers.refiner]
url = "$url"
model = "smollm2"
# One request at a time: llama.cpp reuses the previous prompt's cached prefix, so the order of
# requests can change its numerics; serial requests keep runs comparable.
concurrency = 1
retries = 2
backoff_s = 0.5
EOF
started=$SECONDS
"$bin" run "$work/config.toml" > "$work/run-a.log" 2>&1
echo "      (run with the refiner on the server: $((SECONDS - started)) s)"
a=$work/run-a/iter-1
check "run: every stage done with the refiner on the server" test -f "$a/pairs.jsonl" -a -f "$a/trees.jsonl"
check "run: the judge stage generated on the server" contains "$work/server.log" "POST /v1/chat/completions"
tail -n 12 "$work/run-a.log" | sed 's/^/      /'

# 2. The single steps on the server.
"$bin" judge --server "$url" --mode llm --k 3 --judge-plugin "$judge_plugin" --judge-max-new-tokens 96 \
  --input "$a/samples.jsonl" --output "$work/judgments.jsonl" > "$work/judge.log" 2>&1
check "judge --server: one judgment per sample" \
  test "$(wc -l < "$work/judgments.jsonl")" = "$(wc -l < "$a/samples.jsonl")"
grep "^stats" "$work/judge.log" | sed 's/^/      /'
"$bin" search --server "$url" --mode hybrid --k 3 --judge-plugin "$judge_plugin" --judge-max-new-tokens 96 \
  --max-depth 2 --budget 4 --refine-max-new-tokens 128 \
  --input "$a/judgments.jsonl" --output "$work/trees.jsonl" > "$work/search.log" 2>&1
check "search --server: one tree per prompt with a negative" \
  test "$(wc -l < "$work/trees.jsonl")" = "$(wc -l < "$a/trees.jsonl")"
grep "^stats" "$work/search.log" | sed 's/^/      /'

# 3. The server killed in the middle of the search, then restarted.
sed 's/run_dir = "run-a"/run_dir = "run-b"/' "$work/config.toml" > "$work/config-b.toml"
b=$work/run-b/iter-1
"$bin" run "$work/config-b.toml" > "$work/run-b1.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 1200); do
  [ -s "$b/search.journal.jsonl" ] && break
  kill -0 $run_pid 2>/dev/null || break
  sleep 0.1
done
stop_server
wait $run_pid
code=$?
check "killed server: the run exits 1" test "$code" = 1
check "killed server: the error names the server and the job" contains "$work/run-b1.log" "server $url: job"
check "killed server: the search journal keeps the finished rounds" test -s "$b/search.journal.jsonl"
grep "^error" "$work/run-b1.log" | cut -c1-300 | sed 's/^/      /'
cp "$b/search.journal.jsonl" "$work/journal-at-kill.jsonl"
start_server
"$bin" run "$work/config-b.toml" > "$work/run-b2.log" 2>&1
check "restarted server: the same command finishes" test $? = 0
check "restarted server: the search resumed from its journal" \
  contains "$work/run-b/metrics.jsonl" '"rounds_replayed_from_journal":[1-9]'
# Every child journalled before the kill is in the final trees as it was, not regenerated.
journal_kept() {
  "$venv/bin/python" - "$work/journal-at-kill.jsonl" "$b/trees.jsonl" <<'PY'
import json, sys
journal = [json.loads(l) for l in open(sys.argv[1])]
nodes = {n["raw"] for l in open(sys.argv[2]) for n in json.loads(l)["nodes"] if n.get("raw")}
kids = [c["raw"] for r in journal for group in r["children"] for c in group if c["raw"]]
print(f"      {len(kids)} journalled refinements, all in the final trees: {all(k in nodes for k in kids)}")
sys.exit(0 if kids and all(k in nodes for k in kids) else 1)
PY
}
check "restarted server: the journalled refinements were kept, not regenerated" journal_kept
check "restarted server: trees.jsonl byte-identical to the uninterrupted run" cmp -s "$a/trees.jsonl" "$b/trees.jsonl"
check "restarted server: pairs.jsonl byte-identical to the uninterrupted run" cmp -s "$a/pairs.jsonl" "$b/pairs.jsonl"

# 4. Faults through the proxy.
judge_via_proxy() { # log name, extra flags
  local name=$1; shift
  "$bin" judge --server "$proxy_url" --mode llm --k 1 --judge-plugin "$judge_plugin" --judge-max-new-tokens 32 \
    --server-concurrency 1 --input "$a/samples.jsonl" --output "$work/$name.jsonl" "$@" > "$work/$name.log" 2>&1
}
start_proxy --status 500:2
judge_via_proxy fault-500
check "two HTTP 500s: retried, then the judge step succeeds" test $? = 0
check "two HTTP 500s: the retries are logged" contains "$work/fault-500.log" "HTTP 500"
stop_proxy
start_proxy --status 503:10
judge_via_proxy fault-503 --server-retries 2
check "persistent HTTP 503: exit 1" test $? = 1
check "persistent HTTP 503: the error says so after 3 attempts" contains "$work/fault-503.log" "after 3 attempts"
stop_proxy
start_proxy --malformed 10
judge_via_proxy fault-json --server-retries 1
check "malformed JSON: a clear error after the retry" contains "$work/fault-json.log" "unreadable answer"
stop_proxy
start_proxy --slow 6:1
started=$SECONDS
judge_via_proxy fault-slow --server-timeout 1 --server-retries 0
check "slow server: the 1 s timeout is honoured" contains "$work/fault-slow.log" "no answer within the 1 s timeout"
check "slow server: it gave up in under 5 s" test $((SECONDS - started)) -lt 5
stop_proxy
for f in fault-503 fault-json fault-slow; do grep "^error" "$work/$f.log" | cut -c1-260 | sed 's/^/      /'; done

echo
if [ $failures = 0 ]; then echo "all checks passed (logs in $work)"; else echo "$failures checks failed (logs in $work)"; exit 1; fi
