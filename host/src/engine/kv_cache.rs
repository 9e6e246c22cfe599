//! The KV cache of generation: each layer's keys and values for every sequence of a batch,
//! left-padded to one length (the padding is masked), in buffers that grow in place.

use candle_core::{Result, Tensor};

/// One layer's cached keys and values: preallocated buffers [B, KV heads, capacity, D] written in
/// place, so a decode step copies only its new keys instead of the whole cache.
#[derive(Clone, Debug, Default)]
pub(crate) struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
}

impl LayerCache {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append [B, KV heads, t, D] keys and values; return views of everything cached so far.
    pub(crate) fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let needed = self.len + t;
        let capacity = self.k.as_ref().map_or(0, |b| b.dim(2).unwrap_or(0));
        if needed > capacity {
            // Grow geometrically; the first allocation leaves room for a typical completion.
            let new_capacity = needed.max(capacity * 2).max(needed + 256);
            let grow = |old: &Option<Tensor>, new: &Tensor| -> Result<Tensor> {
                let (b, h, _, d) = new.dims4()?;
                let buffer = Tensor::zeros((b, h, new_capacity, d), new.dtype(), new.device())?;
                if let Some(old) = old {
                    buffer.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                }
                Ok(buffer)
            };
            self.k = Some(grow(&self.k, k)?);
            self.v = Some(grow(&self.v, v)?);
        }
        let (kb, vb) = (
            self.k.as_ref().expect("allocated"),
            self.v.as_ref().expect("allocated"),
        );
        kb.slice_set(&k.contiguous()?, 2, self.len)?;
        vb.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len = needed;
        Ok((kb.narrow(2, 0, needed)?, vb.narrow(2, 0, needed)?))
    }
}

/// The KV cache of a whole model for one batch.
#[derive(Clone, Debug)]
pub struct Cache {
    pub(crate) layers: Vec<LayerCache>,
}

impl Cache {
    pub fn new(layers: usize) -> Self {
        Cache {
            layers: vec![LayerCache::default(); layers],
        }
    }

    /// Cached length (keys per sequence).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep only the batch rows in `rows` (finished sequences leave the batch).
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        for layer in &mut self.layers {
            if let Some(k) = &layer.k {
                layer.k = Some(k.index_select(rows, 0)?);
            }
            if let Some(v) = &layer.v {
                layer.v = Some(v.index_select(rows, 0)?);
            }
        }
        Ok(())
    }

    /// Remove the batch rows `finished` (ascending) as `Vec::swap_remove` would, highest first:
    /// the last row moves into each freed one, so a finished sequence costs one row's copy, not
    /// a copy of the whole cache.
    pub fn swap_remove_rows(&mut self, finished: &[usize]) -> Result<()> {
        for layer in &mut self.layers {
            for buffer in [&mut layer.k, &mut layer.v].into_iter().flatten() {
                let mut rows = buffer.dim(0)?;
                for &i in finished.iter().rev() {
                    let last = rows - 1;
                    if i != last {
                        // A copy first: slice_set refuses a source sharing its storage.
                        buffer.slice_set(&buffer.narrow(0, last, 1)?.copy()?, 0, i)?;
                    }
                    rows -= 1;
                }
                *buffer = buffer.narrow(0, 0, rows)?;
            }
        }
        Ok(())
    }

    /// One cache for the rows of `parts` in order, each part's keys left-padded with zeros to
    /// `length` (the padding is masked, as left padding of a prompt is). Prompts prefilled in
    /// separate passes, each at its own length, become one batch for decoding.
    pub fn stack(parts: &[Cache], length: usize) -> Result<Cache> {
        let layers = parts.first().map_or(0, |p| p.layers.len());
        let mut stacked = Cache::new(layers);
        for (i, layer) in stacked.layers.iter_mut().enumerate() {
            let padded = |pick: fn(&LayerCache) -> &Option<Tensor>| -> Result<Tensor> {
                let mut rows = Vec::with_capacity(parts.len());
                for part in parts {
                    let cached = &part.layers[i];
                    let t = pick(cached)
                        .as_ref()
                        .ok_or_else(|| candle_core::Error::Msg("stacking an empty cache".into()))?;
                    let t = t.narrow(2, 0, cached.len)?;
                    let (b, h, _, d) = t.dims4()?;
                    rows.push(if cached.len < length {
                        let pad =
                            Tensor::zeros((b, h, length - cached.len, d), t.dtype(), t.device())?;
                        Tensor::cat(&[&pad, &t], 2)?
                    } else {
                        t
                    });
                }
                Tensor::cat(&rows, 0)
            };
            layer.k = Some(padded(|c| &c.k)?);
            layer.v = Some(padded(|c| &c.v)?);
            layer.len = length;
        }
        Ok(stacked)
    }
}
