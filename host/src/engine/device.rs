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
