//! Choosing where tensors live: `cpu` (default) or `cuda[:N]` in builds with the `cuda` feature.

use anyhow::bail;
use candle_core::Device;

/// Parse a device name.
pub fn parse(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        cuda if cuda == "cuda" || cuda.starts_with("cuda:") => {
            let ordinal: usize = match cuda.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid device `{name}`: expected cuda:N"))?,
                None => 0,
            };
            if !cfg!(feature = "cuda") {
                bail!(
                    "device `{name}`: this spar-host was built without CUDA (rebuild with `--features cuda`)"
                );
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        other => bail!("unknown device `{other}` (expected cpu, cuda or cuda:N)"),
    }
}

/// The dtype models compute in. Generation loads the weights in it (on the CPU, bf16 means
/// weights stored in bf16 and f32 compute); training keeps f32 master weights and f32 optimizer
/// state and computes forward and backward in it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16: the GPU default; on the CPU it works but is slow.
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
        }
    }
}

/// The CPU's model name (from /proc/cpuinfo on Linux) and the SIMD levels the kernels use: gemm's
/// (the GEMMs; AVX-512 where the CPU has AVX-512F and the build the `avx512` feature, else AVX2
/// with FMA, at run time) and, where it differs, the host's own (capped by `SPAR_MAX_SIMD`).
pub fn cpu_description() -> (String, String) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let (gemm, own) = (gemm_level(), super::simd_level::simd_level().label());
    let simd = if gemm == own || !cfg!(target_arch = "x86_64") {
        gemm.to_string()
    } else {
        format!("{own} (GEMM {gemm})")
    };
    (model, simd)
}

/// The level of gemm's kernels: its AVX-512 ones only in a build with the `avx512` feature.
#[cfg(target_arch = "x86_64")]
fn gemm_level() -> &'static str {
    if cfg!(feature = "avx512") && std::arch::is_x86_feature_detected!("avx512f") {
        "AVX-512"
    } else if std::arch::is_x86_feature_detected!("fma") {
        "AVX2+FMA"
    } else {
        "scalar"
    }
}

#[cfg(target_arch = "aarch64")]
fn gemm_level() -> &'static str {
    "NEON"
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn gemm_level() -> &'static str {
    "scalar"
}
