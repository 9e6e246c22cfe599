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

/// The dtype models compute in. Generation loads the weights in it; training keeps f32 master
/// weights and f32 optimizer state and computes forward and backward in it.
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
