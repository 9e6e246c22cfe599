#!/usr/bin/env bash
# Generation speed of spar-host on SmolLM2-135M-Instruct against PyTorch transformers, measured in
# the same run on the same machine (the machines are noisy: only a side-by-side ratio holds).
# Env: TV=<venv with torch + transformers>  HF=<HF dir converted from the demo GGUF by the peers'
# gguf_llama_to_hf.py>  PEERS=<folder of the peer scripts> (default ../shared/bench/peers)  RUNS=3
# SIMD=avx2: both sides capped at AVX2, to measure an AVX2-only machine (scripts/simd-cap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TV:?set TV to a virtualenv with torch and transformers}" "${HF:?set HF to the converted HF directory}"
PEERS=${PEERS:-../shared/bench/peers}
RUNS=${RUNS:-3}
GGUF=$(scripts/fetch-demo-model.sh)
source scripts/simd-cap.sh
export OMP_NUM_THREADS=2
print_machine

# Batch 64 is the peer's 8 prompts 8 times over, each with its own seed: spar-host prefills each
# distinct prompt once (prompt sharing), so it is also measured with sharing off.
OURS=$("$BIN" bench generate --model "$GGUF" --runs "$RUNS" --batches 1,8,64 | tail -n 1)
UNSHARED=$(SPAR_HOST_PROMPT_SHARING=off "$BIN" bench generate --model "$GGUF" --runs "$RUNS" --batches 64 | tail -n 1)
# Weights stored in bf16 (computing in f32): the peer stays f32; the parity line says whether the
# batch-1 greedy answer is the f32 model's.
BF16=$("$BIN" bench generate --model "$GGUF" --runs "$RUNS" --batches 1,8 --dtype bf16 | tail -n 1)
T1=$(env "${TORCH_ENV[@]}" "$TV/bin/python" "$PEERS/torch_peer.py" "$HF" gen1 --runs "$RUNS" | grep '"torch.gen1.decode_tok_s"')
T8=$(env "${TORCH_ENV[@]}" "$TV/bin/python" "$PEERS/torch_peer.py" "$HF" gen8 --runs "$RUNS" | grep '"torch.gen8.generated_tok_s"')
T64=$(cd "$PEERS" && env "${TORCH_ENV[@]}" "$TV/bin/python" -c "
import sys, torch_peer
torch_peer.PROMPTS8 = torch_peer.PROMPTS8 * 8
torch_peer.bench_gen8(sys.argv[1], int(sys.argv[2]))" "$HF" "$RUNS" | grep '"torch.gen8.generated_tok_s"')
python3 - "$OURS" "$UNSHARED" "$T1" "$T8" "$T64" "$BF16" <<'PY'
import json, sys
ours, unshared, t1, t8, t64, bf16 = (json.loads(a) for a in sys.argv[1:7])
assert t64["batch"] == 64, t64
print(f"CPU: {ours['cpu']}, spar-host matmul kernels {ours['simd']}")
rows = [
    ("batch 1 greedy decode tok/s", ours["gen1_decode_tok_s"], t1["median"]),
    ("batch 8 sampling generated tok/s", ours["gen8_generated_tok_s"], t8["median"]),
    ("batch 64 sampling generated tok/s", ours["gen64_generated_tok_s"], t64["median"]),
    ("  the same, prompt sharing off", unshared["gen64_generated_tok_s"], t64["median"]),
    ("batch 1, bf16 weights (torch f32)", bf16["gen1_decode_tok_s"], t1["median"]),
    ("batch 8, bf16 weights (torch f32)", bf16["gen8_generated_tok_s"], t8["median"]),
]
print(f"{'SmolLM2-135M, 128 new tokens, f32, CPU':<38} {'spar-host':>10} {'torch':>10} {'ratio':>7}")
for name, a, b in rows:
    print(f"{name:<38} {a:>10.1f} {b:>10.1f} {a / b:>6.2f}x")
print("bf16 weights: batch-1 greedy answer " + ("identical to" if bf16["greedy_identical_to_f32"]
      else f"differs from") + f" f32's ({bf16['greedy_common_prefix_chars']} characters in common)")
PY
