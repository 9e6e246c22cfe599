//! Reading and writing weight files.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::Tensor;

/// Save tensors as safetensors with `{"format": "pt"}` metadata (what transformers expects),
/// atomically.
pub fn save_safetensors(tensors: &HashMap<String, Tensor>, path: &Path) -> anyhow::Result<()> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let views: Vec<(String, Tensor)> = names
        .iter()
        .map(|n| {
            Ok((
                (*n).clone(),
                tensors[*n]
                    .to_device(&candle_core::Device::Cpu)?
                    .contiguous()?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let bytes = safetensors::serialize(views.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .with_context(|| format!("{}: cannot serialize", path.display()))?;
    crate::storage::write_atomic(path, &bytes)
}
