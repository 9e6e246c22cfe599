//! Rotary position embeddings (HF's "rotate half" layout): the tables, one row's rotation, and
//! the rotation as tensor ops. On the CPU in f32 the rotation is fused into the op that lays the
//! attention heads out ([`super::heads`]), whose backward is the inverse rotation: spelled out
//! (negate half, concatenate, two products and a sum), autograd kept four more q-sized tensors
//! per layer for q and k each.

use std::sync::{Arc, OnceLock};

use candle_core::{D, DType, Device, Result, Tensor};

use super::config::ModelConfig;

/// Rotary position embedding tables (HF's "rotate half" layout).
#[derive(Clone, Debug)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub fn new(cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<Self> {
        let dim = cfg.head_dim();
        let inv_freq: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| 1.0 / (cfg.rope_theta as f32).powf(i as f32 / dim as f32))
            .collect();
        let positions = cfg.max_position_embeddings;
        let inv_freq = Tensor::from_vec(inv_freq, (1, dim / 2), device)?;
        let t = Tensor::arange(0u32, positions as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((positions, 1))?;
        let freqs = t.broadcast_mul(&inv_freq)?;
        let freqs = Tensor::cat(&[&freqs, &freqs], D::Minus1)?;
        Ok(Rope {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
        })
    }

    /// Rotate `x` of shape [B, H, T, D] at `positions` [B, T], as tensor ops (the path off the
    /// CPU; on it, [`super::heads::split_heads`] rotates as it lays the heads out).
    pub fn apply(&self, x: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let (b, _heads, t, d) = x.dims4()?;
        let flat = positions.flatten_all()?;
        let cos = self.cos.index_select(&flat, 0)?.reshape((b, 1, t, d))?;
        let sin = self.sin.index_select(&flat, 0)?.reshape((b, 1, t, d))?;
        let (cos, sin) = (cos.to_dtype(x.dtype())?, sin.to_dtype(x.dtype())?);
        let half = d / 2;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
    }
}

/// The rotation at one forward pass's positions [B, T]: every layer rotates queries and keys at
/// the same positions, so the host path reads the tables' rows once per pass.
pub struct RopeAt<'a> {
    pub rope: &'a Rope,
    pub positions: &'a Tensor,
    rows: OnceLock<Arc<RopeRows>>,
}

/// The cos and sin rows of each (batch, position), [B·T, D] each.
pub struct RopeRows {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
}

impl<'a> RopeAt<'a> {
    pub fn new(rope: &'a Rope, positions: &'a Tensor) -> RopeAt<'a> {
        RopeAt {
            rope,
            positions,
            rows: OnceLock::new(),
        }
    }

    /// The table rows of the positions, on the host; read on first use.
    pub fn rows(&self) -> Result<Arc<RopeRows>> {
        if let Some(rows) = self.rows.get() {
            return Ok(rows.clone());
        }
        let flat = self.positions.flatten_all()?;
        let table = |t: &Tensor| {
            t.index_select(&flat, 0)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1()
        };
        let rows = Arc::new(RopeRows {
            cos: table(&self.rope.cos)?,
            sin: table(&self.rope.sin)?,
        });
        Ok(self.rows.get_or_init(|| rows).clone())
    }
}

/// One row's rotation, `out = x ⊙ cos + rotate_half(x) ⊙ sin`, or with `adjoint` its transpose
/// (the backward pass: `dx = g ⊙ cos + rotate_halfᵀ(g ⊙ sin)`).
pub fn rotate_row(out: &mut [f32], x: &[f32], cos: &[f32], sin: &[f32], adjoint: bool) {
    let half = x.len() / 2;
    for i in 0..half {
        if adjoint {
            out[i] = x[i] * cos[i] + x[i + half] * sin[i + half];
            out[i + half] = x[i + half] * cos[i + half] - x[i] * sin[i];
        } else {
            out[i] = x[i] * cos[i] - x[i + half] * sin[i];
            out[i + half] = x[i + half] * cos[i + half] + x[i] * sin[i + half];
        }
    }
}
