#!/usr/bin/env bash
# One DPO step side by side: PyTorch (../shared/bench/peers/torch_peer.py, full f32 with a frozen
# reference copy), spar-host full DPO, and spar-host LoRA (rank 16, every linear layer, the
# reference = the policy with its adapters off), at 2 x 256 and 2 x 1024 tokens, in one run.
# Prints the CPU, then one row per (length, trainer): median step seconds, peak RSS, and the
# ratio against PyTorch (> 1: faster than PyTorch). The machines are noisy (PyTorch's own step
# has varied by 30% between runs of this script), so ROUNDS > 1 repeats each length's three
# measurements back to back that many times, one row each, then prints each trainer's median ratio.
# SIMD=avx2 caps both sides at AVX2, to measure an AVX2-only machine (scripts/simd-cap.sh).
#   HF=<HF dir of the model> TV=<venv with torch and transformers> [ROUNDS=n] [SIMD=avx2] scripts/bench-dpo.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HF:?set HF to an HF model directory (e.g. from peers/gguf_llama_to_hf.py)}"
: "${TV:?set TV to a virtualenv with torch and transformers}"
runs=${1:-3}
rounds=${ROUNDS:-1}
ratios=$(mktemp)
trap 'rm -f "$ratios"' EXIT
peers=${PEERS:-../shared/bench/peers}
source scripts/simd-cap.sh
print_machine
printf '%-6s %-22s %10s %12s %10s\n' tokens trainer step_s peak_rss_mb vs_torch
for seq in 256 1024; do
  for round in $(seq "$rounds"); do
    torch=$(cd "$peers" && env "${TORCH_ENV[@]}" "$TV/bin/python" -c "
import json, sys, torch_peer
torch_peer.bench_dpo(sys.argv[1], int(sys.argv[2]), seq=int(sys.argv[3]))" "$HF" "$runs" "$seq")
    t_step=$(echo "$torch" | python3 -c "import json,sys
for l in sys.stdin:
    d = json.loads(l)
    if d.get('metric') == 'torch.dpo.step_s': print(d['median'])")
    t_rss=$(echo "$torch" | python3 -c "import json,sys
for l in sys.stdin:
    d = json.loads(l)
    if 'peak_rss_mb' in d: print(round(d['peak_rss_mb']))")
    printf '%-6s %-22s %10.2f %12s %10s\n' "2x$seq" "pytorch (full)" "$t_step" "$t_rss" "1.00"
    for rank in 0 16; do
        ours=$("$BIN" bench dpo --model "$HF" --seq "$seq" --runs "$runs" --lora-rank "$rank" | tail -1)
        step=$(echo "$ours" | python3 -c "import json,sys; print(json.load(sys.stdin)['dpo_step_s'])")
        rss=$(echo "$ours" | python3 -c "import json,sys; print(round(json.load(sys.stdin)['peak_rss_mb']))")
        name=$([ "$rank" = 0 ] && echo "spar-host (full)" || echo "spar-host (LoRA r$rank)")
        ratio=$(echo "$t_step / $step" | bc -l)
        printf '%-6s %-22s %10.2f %12s %10.2f\n' "2x$seq" "$name" "$step" "$rss" "$ratio"
        echo "2x$seq|$name|$ratio" >> "$ratios"
    done
  done
done
if [ "$rounds" -gt 1 ]; then
    echo "median ratio over $rounds rounds:"
    python3 - "$ratios" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    length, name, ratio = line.strip().split("|")
    rows.setdefault((length, name), []).append(float(ratio))
for (length, name), values in rows.items():
    print(f"{length:<6} {name:<22} {statistics.median(values):.2f}  (min {min(values):.2f}, max {max(values):.2f})")
PY
fi
