# Sourced by the speed benchmarks after `cd` to the repository root. Builds spar-host and sets
# BIN, the binary to run, and TORCH_ENV, settings for the PyTorch peer (`env "${TORCH_ENV[@]}"`).
# SIMD=avx2 measures an AVX2-only machine on an AVX-512 one: spar-host built without its `avx512`
# feature (gemm's AVX2+FMA kernels) as target/release/spar-host-avx2 and run with
# SPAR_MAX_SIMD=avx2 (the host's own kernels), and PyTorch with ATen, MKL and oneDNN capped at
# AVX2. The default build is rebuilt afterwards; cargo keeps both variants' dependencies, so
# switching back only relinks.
target=${CARGO_TARGET_DIR:-target}
BIN=$target/release/spar-host
TORCH_ENV=()
case "${SIMD:-}" in
    "") cargo build --release -q -p spar-host ;;
    avx2)
        cargo build --release -q -p spar-host --no-default-features
        cp "$BIN" "$target/release/spar-host-avx2"
        cargo build --release -q -p spar-host
        BIN=$target/release/spar-host-avx2
        export SPAR_MAX_SIMD=avx2
        TORCH_ENV=(ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2) ;;
    *) echo "SIMD=$SIMD: only avx2 (or unset) is known" >&2; exit 2 ;;
esac
# The CPU, its topology, and the SIMD level and thread count each side runs with (spar-host takes
# one thread per logical CPU: on a CPU with two threads per core the counts may differ).
print_machine() {
    lscpu | grep -E "^(Model name|Thread\(s\) per core|Core\(s\) per socket):" | sed 's/  */ /g'
    echo "spar-host: $("$BIN" bench parity --device cpu --dtype f32 |
        python3 -c "import json,sys; print(json.load(sys.stdin)['simd'])"), ${RAYON_NUM_THREADS:-$(nproc)} threads"
    echo "pytorch:   $(env "${TORCH_ENV[@]}" "$TV/bin/python" -c \
        "import torch; print(torch.backends.cpu.get_cpu_capability() + ',', torch.get_num_threads(), 'threads')")"
}
