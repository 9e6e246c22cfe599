//! Attention heads' memory layout: a projection's output [B, T, H·D] (position-major) against the
//! head-major [B, H, T, D] attention reads, with RoPE fused into the split for queries and keys.
//! On the CPU in f32 each direction is one op over the rows, whose backward is the other: spelled
//! out (reshape, transpose, copy, rotate; reshape, transpose, reshape), every one of those steps
//! was a node of autograd's graph, and each node's backward costs a zeroed buffer and an add
//! over the activation, three to four per projection and layer.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::{f32_values, with_f32_values};
use super::rope::{RopeAt, RopeRows, rotate_row};

/// A parallel task copies at least this many elements.
const MIN_TASK_ELEMENTS: usize = 1 << 14;

/// [B, T, H·D] → [B, G, (H/G)·T, D]: the `heads` heads of width D made head-major, the heads
/// that share one of `groups` key/value heads stacked as that group's rows (grouped-query
/// attention; `groups = heads` gives [B, H, T, D]). With `rope` each row is rotated at its
/// position.
pub fn split_heads(
    x: &Tensor,
    heads: usize,
    groups: usize,
    rope: Option<&RopeAt>,
) -> Result<Tensor> {
    let (b, t, width) = x.dims3()?;
    if heads == 0 || groups == 0 || !heads.is_multiple_of(groups) || !width.is_multiple_of(heads) {
        candle_core::bail!("split_heads: {width} columns are not {heads} heads in {groups} groups");
    }
    let d = width / heads;
    let rotatable = rope.is_none() || d.is_multiple_of(2);
    if !(x.device().is_cpu() && x.dtype() == DType::F32 && rotatable) {
        let split = x.reshape((b, t, heads, d))?.transpose(1, 2)?.contiguous()?;
        let split = match rope {
            Some(at) => at.rope.apply(&split, at.positions)?,
            None => split,
        };
        return split.reshape((b, groups, heads / groups * t, d));
    }
    let rotation = rope.map(RopeAt::rows).transpose()?;
    if let Some(rows) = &rotation
        && (rows.cos.len() != b * t * d || rows.sin.len() != b * t * d)
    {
        candle_core::bail!("split_heads: RoPE positions for another shape than {b} x {t}");
    }
    let op = HeadLayout {
        heads,
        positions: t,
        width: d,
        rotation,
        to_heads: true,
        shape: Shape::from((b, groups, heads / groups * t, d)),
        input_shape: x.shape().clone(),
    };
    x.contiguous()?.apply_op1(op)
}

/// [B, …, D] laid out as [B, H, T, D] (what attention returns) → [B, T, H·D].
pub fn merge_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 2 || heads == 0 {
        candle_core::bail!("merge_heads: {:?} is not {heads} heads", x.shape());
    }
    let (b, d) = (dims[0], dims[dims.len() - 1]);
    let t = x.elem_count() / (b * heads * d).max(1);
    if b * heads * t * d != x.elem_count() {
        candle_core::bail!("merge_heads: {:?} is not {heads} heads", x.shape());
    }
    if !(x.device().is_cpu() && x.dtype() == DType::F32) {
        return x
            .reshape((b, heads, t, d))?
            .transpose(1, 2)?
            .reshape((b, t, heads * d));
    }
    let op = HeadLayout {
        heads,
        positions: t,
        width: d,
        rotation: None,
        to_heads: false,
        shape: Shape::from((b, t, heads * d)),
        input_shape: x.shape().clone(),
    };
    x.contiguous()?.apply_op1(op)
}

/// A permutation of D-wide rows between the position-major and the head-major layouts, rotating
/// each row on the way to the heads (or, on the way back, by the adjoint rotation).
#[derive(Clone)]
struct HeadLayout {
    heads: usize,
    positions: usize,
    width: usize,
    rotation: Option<Arc<RopeRows>>,
    /// Position-major to head-major (rotating), or back (by the adjoint).
    to_heads: bool,
    shape: Shape,
    input_shape: Shape,
}

impl HeadLayout {
    fn run(&self, x: &[f32]) -> Vec<f32> {
        let (h, t, d) = (self.heads, self.positions, self.width);
        let mut out = vec![0f32; x.len()];
        // A decode step's few rows stay on the calling thread: handing them to the pool costs
        // more than the copy.
        let rows_per_task = (MIN_TASK_ELEMENTS / d.max(1)).max(1);
        out.par_chunks_mut(d)
            .with_min_len(rows_per_task)
            .enumerate()
            .for_each(|(row, out)| {
                // `row` numbers the output's rows; the batch is the outer index of both layouts.
                let (batch, within) = (row / (h * t), row % (h * t));
                let (head, position) = if self.to_heads {
                    (within / t, within % t)
                } else {
                    (within % h, within / h)
                };
                let source = if self.to_heads {
                    (batch * t + position) * h + head
                } else {
                    (batch * h + head) * t + position
                };
                let x = &x[source * d..(source + 1) * d];
                match &self.rotation {
                    Some(rows) => {
                        let at = (batch * t + position) * d;
                        let (cos, sin) = (&rows.cos[at..at + d], &rows.sin[at..at + d]);
                        rotate_row(out, x, cos, sin, !self.to_heads);
                    }
                    None => out.copy_from_slice(x),
                }
            });
        out
    }
}

impl CustomOp1 for HeadLayout {
    fn name(&self) -> &'static str {
        "head-layout"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_values(storage, layout, "head-layout")?;
        Ok((CpuStorage::F32(self.run(x)), self.shape.clone()))
    }

    /// The gradient goes back through the inverse permutation (and the adjoint rotation).
    fn bwd(&self, _x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let back = HeadLayout {
            to_heads: !self.to_heads,
            shape: self.input_shape.clone(),
            input_shape: self.shape.clone(),
            ..self.clone()
        };
        // Read where it lies: the permutation copies each element once anyway.
        let grad = grad.detach().contiguous()?;
        let Some(moved) = with_f32_values(&grad, |values| back.run(values)) else {
            candle_core::bail!("head-layout: a CPU f32 gradient expected");
        };
        Ok(Some(Tensor::from_vec(
            moved,
            back.shape.clone(),
            grad.device(),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::engine::rope::Rope;

    use crate::engine::test_support::max_abs_diff as diff;

    /// Split (with and without RoPE, grouped and not) and merge against the tensor ops they
    /// replace, in value and in gradient.
    #[test]
    fn the_fused_layouts_equal_the_tensor_ops_in_value_and_gradient() {
        let device = Device::Cpu;
        let cfg = crate::engine::tiny::config(&crate::engine::tiny::TinySpec::default());
        let rope = Rope::new(&cfg, DType::F32, &device).unwrap();
        let (b, t, d) = (2, 5, cfg.head_dim());
        let positions =
            Tensor::from_vec(vec![0u32, 1, 2, 3, 4, 7, 3, 9, 0, 2], (b, t), &device).unwrap();
        for (heads, groups, rotate) in [(4, 2, true), (4, 4, true), (3, 3, false), (6, 2, false)] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, heads * d), &device).unwrap())
                    .unwrap();
            let at = RopeAt::new(&rope, &positions);
            let rope_at = rotate.then_some(&at);
            let fused = split_heads(x.as_tensor(), heads, groups, rope_at).unwrap();
            let split = x
                .reshape((b, t, heads, d))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap();
            let split = if rotate {
                rope.apply(&split, &positions).unwrap()
            } else {
                split
            };
            let reference = split.reshape((b, groups, heads / groups * t, d)).unwrap();
            assert_eq!(fused.dims(), reference.dims());
            assert!(
                diff(&fused, &reference) < 1e-6,
                "{heads} heads, {groups} groups"
            );
            // Merging back must give the input (for the unrotated split) and the tensor ops'.
            let merged = merge_heads(&fused, heads).unwrap();
            let merge_by_tensor_ops = |y: &Tensor| {
                y.reshape((b, heads, t, d))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .reshape((b, t, heads * d))
                    .unwrap()
            };
            assert!(diff(&merged, &merge_by_tensor_ops(&fused)) < 1e-6);
            if !rotate {
                assert!(diff(&merged, x.as_tensor()) < 1e-6);
            }
            let grad = |y: &Tensor| {
                // A different weight for every element, so a misplaced row shows.
                let weights = Tensor::arange(0f32, y.elem_count() as f32, &device)
                    .and_then(|w| (w * 0.37)?.sin()?.reshape(y.shape()))
                    .unwrap();
                (y * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
                    .get(x.as_tensor())
                    .unwrap()
                    .clone()
            };
            // The split's backward alone, then the merge's through it.
            assert!(diff(&grad(&fused), &grad(&reference)) < 1e-5);
            let reference_chain = merge_by_tensor_ops(&reference);
            assert!(diff(&grad(&merged), &grad(&reference_chain)) < 1e-5);
        }
    }
}
