#!/usr/bin/env bash
# Build `spar-host --features cuda` for sm_90 (H100/H200) on a machine with no GPU and no CUDA
# install: a CUDA 13.0 toolkit is laid out from PyPI's wheels (pinned, sha256-checked, cached).
# The GPU machines run driver 580 (CUDA 13.0); PTX from a newer nvcc would not load there, so the
# toolkit stays at 13.0. The CPU build and CI never run this.
#
#   scripts/build-cuda.sh   -> target/cuda/release/spar-host, packed as target/cuda-dist/spar-host.gz
#   (then scripts/gpu-check.sh --prepare, and scripts/gpu-check.sh on the GPU machine)
#
# Env: SPAR_CUDA_CACHE (wheels and toolkit, default ~/.cache/spar-host/cuda-13.0),
#      CUDA_COMPUTE_CAP (default 90), CARGO_TARGET_DIR (default target/cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache="${SPAR_CUDA_CACHE:-$HOME/.cache/spar-host/cuda-13.0}"
wheels="$cache/wheels"
site="$cache/site"
tk="$site/nvidia/cu13"
started=$(date +%s)

# 1. Wheels: exact versions of CUDA 13.0's parts (cuRAND 10.4.0 is 13.0's; CCCL brings <nv/target>
# that cuda_fp16.h includes), checksums in git.
pins=(
  nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35 nvidia-cuda-cccl==13.0.85
)
mkdir -p "$wheels"
if ! (cd "$wheels" && sha256sum --quiet -c "$root/scripts/cuda-13.0-wheels.sha256" >/dev/null 2>&1); then
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "${pins[@]}"
  (cd "$wheels" && sha256sum --quiet -c "$root/scripts/cuda-13.0-wheels.sha256")
fi

# 2. Toolkit directory: the wheels unpacked into one tree (nvcc finds nvvm/ and include/ beside
# bin/), unversioned library names for the linker, and a libcuda stub (the GPU machine's driver
# provides the real one at run time).
if [ ! -f "$tk/.complete" ]; then
  rm -rf "$site" && mkdir -p "$site"
  for w in "$wheels"/*.whl; do python3 -m zipfile -e "$w" "$site"; done
  chmod +x "$tk"/bin/* "$tk"/nvvm/bin/* 2>/dev/null || true
  (cd "$tk/lib" && for so in *.so.*; do base="${so%%.so.*}.so"; [ -e "$base" ] || ln -s "$so" "$base"; done)
  touch "$tk/.toolkit-unpacked"
fi
cudarc=$(cargo metadata --format-version 1 --features spar-host/cuda 2>/dev/null |
  python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc").rsplit("/",1)[0])')
if [ ! -f "$tk/.complete" ]; then
  mkdir -p "$tk/lib/stubs"
  # Every driver entry point cudarc declares, as an empty function: enough for the linker.
  grep -ohE '\bfn cu[A-Za-z0-9_]+\(' "$cudarc"/src/driver/sys/*.rs | sort -u |
    sed -E 's/fn (cu[A-Za-z0-9_]+)\(/void \1(void) {}/' > "$tk/lib/stubs/cuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$tk/lib/stubs/libcuda.so" "$tk/lib/stubs/cuda_stub.c"
  touch "$tk/.complete"
fi

# 3. The build.
export CUDA_ROOT="$tk" CUDA_HOME="$tk" CUDA_PATH="$tk"
export PATH="$tk/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$tk/lib:$tk/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$tk/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/cuda}"
nvcc --version | tail -2
cargo build --release -p spar-host --features cuda
bin="$CARGO_TARGET_DIR/release/spar-host"
# What travels to the GPU machine: the stripped binary, gzipped (the kernels' PTX dominates).
mkdir -p "$root/target/cuda-dist"
strip -o "$root/target/cuda-dist/spar-host" "$bin"
gzip -f -9 "$root/target/cuda-dist/spar-host"
echo "built $bin in $(( $(date +%s) - started )) s -> target/cuda-dist/spar-host.gz ($(du -h "$root/target/cuda-dist/spar-host.gz" | cut -f1)); it needs at run time:"
readelf -d "$bin" | grep NEEDED
