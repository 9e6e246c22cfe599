#!/usr/bin/env bash
# The GPU check, in one go on a GPU machine (one H100/H200, driver 580, CUDA 13.0, PyTorch and
# transformers installed, no Rust): CPU-vs-GPU parity on a tiny model, generation throughput at
# batch 1/8/64, a DPO step, peak GPU memory, and the same generation and DPO step measured with
# PyTorch in the same run on the same card. Ends with a table; full logs go to LOG_DIR.
#
#   On the CPU machine:  scripts/build-cuda.sh && scripts/gpu-check.sh --prepare
#     (packs target/cuda-dist/: the gzipped CUDA binary, about 21 MB, and the SmolLM2-135M
#      architecture, tokenizer and chat template without weights, about 2 MB)
#   On the GPU machine:  scripts/gpu-check.sh LOG_DIR
#   Anywhere, no GPU:    scripts/gpu-check.sh --dry-run LOG_DIR   (the same steps with the CPU
#                        build on --device cpu and one run each: checks the script, not the GPU)
#
# The real weights (98 MB) do not travel: throughput is measured on seeded random weights of
# SmolLM2-135M's exact shape (`spar-host bench make-model`), for both spar-host and PyTorch, with
# EOS masked so every run makes the same number of tokens.
set -uo pipefail
cd "$(dirname "$0")/.."
dist=target/cuda-dist

if [ "${1:-}" = "--prepare" ]; then
  set -e
  cargo build --release -p spar-host
  model=$(scripts/fetch-demo-model.sh)
  rm -rf "$dist/smollm2-skeleton"
  target/release/spar-host bench make-model --like "$model" --output "$dist/smollm2-skeleton"
  rm "$dist/smollm2-skeleton/model.safetensors"
  du -sh "$dist"/*
  exit 0
fi

dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
out=${1:?usage: scripts/gpu-check.sh [--dry-run] LOG_DIR}
mkdir -p "$out"
py=${PYTHON:-python3}
if [ $dry = 1 ]; then
  bin=${SPAR_HOST:-target/release/spar-host}; device=cpu; runs=1; batches=8; new=16
else
  bin="$out/spar-host"; device=cuda; runs=3; batches=8,64; new=128
  gunzip -c "$dist/spar-host.gz" > "$bin" && chmod +x "$bin"
  # cuBLAS, cuRAND and cudart 13 come with PyTorch's CUDA wheels (the driver brings libcuda).
  libs=$("$py" - <<'PY'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
found = set()
for root in roots:
    for lib in ("libcublas.so.13", "libcurand.so.10", "libcudart.so.13"):
        for path in glob.glob(os.path.join(root, "nvidia", "**", lib), recursive=True):
            found.add(os.path.dirname(path))
print(":".join(sorted(found)))
PY
)
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1
  ldd "$bin" > "$out/ldd.txt" 2>&1
  if grep -q "not found" "$out/ldd.txt"; then
    echo "missing libraries:"; grep "not found" "$out/ldd.txt"; exit 1
  fi
fi
model="$out/smollm2-random"

# Run one step with a GPU-memory sampler beside it (nvidia-smi's used memory, whole card, which
# includes the CUDA context); NAME.log gets stdout and stderr, NAME.mem the samples.
step() {
  local name=$1; shift
  echo "== $name: $*" | tee -a "$out/steps.txt"
  local sampler=""
  if [ $dry = 0 ]; then
    (while :; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done) \
      > "$out/$name.mem" 2>/dev/null &
    sampler=$!
  fi
  local started=$SECONDS
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  echo "   exit $rc, $((SECONDS - started)) s" | tee -a "$out/steps.txt"
  return 0
}

step parity-f32 "$bin" bench parity --device $device --dtype f32
step parity-bf16 "$bin" bench parity --device $device --dtype bf16
step make-model "$bin" bench make-model --like "$dist/smollm2-skeleton" --output "$model" --seed 1
for dtype in bf16 f32; do
  step "gen-$dtype" "$bin" bench generate --model "$model" --device $device --dtype $dtype \
    --batches $batches --runs $runs --new-tokens $new
  step "dpo-$dtype" "$bin" bench dpo --model "$model" --device $device --dtype $dtype --runs $runs
  step "dpo-lora-$dtype" "$bin" bench dpo --model "$model" --device $device --dtype $dtype \
    --runs $runs --lora-rank 16
  step "torch-gen-$dtype" "$py" scripts/gpu/torch_gpu_peer.py "$model" gen --device $device \
    --dtype $dtype --batches $batches --runs $runs --new-tokens $new
  step "torch-dpo-$dtype" "$py" scripts/gpu/torch_gpu_peer.py "$model" dpo --device $device \
    --dtype $dtype --runs $runs
done
"$py" scripts/gpu/summarize.py "$out" | tee "$out/table.md"
