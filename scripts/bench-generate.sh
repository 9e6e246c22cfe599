#!/usr/bin/env bash
# Generation speed of spar-host on SmolLM2-135M-Instruct against PyTorch transformers, measured in
# the same run on the same machine (the machines are noisy: only a side-by-side ratio holds).
# Env: TV=<venv with torch + transformers>  HF=<HF dir converted from the demo GGUF by the peers'
# gguf_llama_to_hf.py>  PEERS=<folder of the peer scripts> (default ../shared/bench/peers)  RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TV:?set TV to a virtualenv with torch and transformers}" "${HF:?set HF to the converted HF directory}"
PEERS=${PEERS:-../shared/bench/peers}
RUNS=${RUNS:-3}
GGUF=$(scripts/fetch-demo-model.sh)
cargo build --quiet --release -p spar-host
BIN=${CARGO_TARGET_DIR:-target}/release/spar-host
export OMP_NUM_THREADS=2

OURS=$("$BIN" bench generate --model "$GGUF" --runs "$RUNS" | tail -n 1)
T1=$("$TV/bin/python" "$PEERS/torch_peer.py" "$HF" gen1 --runs "$RUNS" | grep '"torch.gen1.decode_tok_s"')
T8=$("$TV/bin/python" "$PEERS/torch_peer.py" "$HF" gen8 --runs "$RUNS" | grep '"torch.gen8.generated_tok_s"')
python3 - "$OURS" "$T1" "$T8" <<'PY'
import json, sys
ours, t1, t8 = (json.loads(a) for a in sys.argv[1:4])
rows = [
    ("batch 1 greedy decode tok/s", ours["gen1_decode_tok_s"], t1["median"]),
    ("batch 8 sampling generated tok/s", ours["gen8_generated_tok_s"], t8["median"]),
]
print(f"{'SmolLM2-135M, 128 new tokens, f32, CPU':<36} {'spar-host':>10} {'torch':>10} {'ratio':>7}")
for name, a, b in rows:
    print(f"{name:<36} {a:>10.1f} {b:>10.1f} {a / b:>6.2f}x")
PY
