//! The MLP's gate: silu(gate) ⊙ up as one op. Spelled out (gate · sigmoid(gate) · up), autograd
//! keeps the sigmoid and the silu besides gate and up: two more [tokens × intermediate] tensors
//! per layer. This op keeps gate and up only, and its backward recomputes the sigmoid.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::f32_values;
use super::simd::{self, simd_dispatch};

/// `silu(gate) * up`, elementwise. On the CPU in f32 one op; elsewhere the composite.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if !gate.device().is_cpu() || gate.dtype() != DType::F32 || gate.shape() != up.shape() {
        return (gate * candle_nn::ops::sigmoid(gate)?)? * up;
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}

struct SwiGlu;

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + simd::exp(-x))
}

simd_dispatch! {
    fn forward_chunk(out: &mut [f32], gate: &[f32], up: &[f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            *o = g * sigmoid(g) * u;
        }
    }
}

simd_dispatch! {
    /// The gradients of gate and up (`grads`) from gate, up and the output's gradient.
    fn backward_chunk(grads: (&mut [f32], &mut [f32]), gate: &[f32], up: &[f32], grad: &[f32]) {
        let (dg, du) = grads;
        for i in 0..dg.len().min(du.len()).min(gate.len()).min(up.len()).min(grad.len()) {
            let (g, u, d) = (gate[i], up[i], grad[i]);
            let s = sigmoid(g);
            du[i] = d * g * s;
            // d silu / d g = s (1 + g (1 − s)).
            dg[i] = d * u * s * (1.0 + g * (1.0 - s));
        }
    }
}

/// Elements per task: large enough that the split costs nothing.
const CHUNK: usize = 1 << 14;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (gate, up) = (f32_values(s1, l1, "swiglu")?, f32_values(s2, l2, "swiglu")?);
        let mut out = vec![0f32; gate.len()];
        out.par_chunks_mut(CHUNK)
            .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
            .for_each(|(out, (gate, up))| forward_chunk(out, gate, up));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let values = |t: &Tensor| t.detach().flatten_all()?.to_vec1::<f32>();
        let (g, u, d) = (values(gate)?, values(up)?, values(grad)?);
        let mut grad_gate = vec![0f32; g.len()];
        let mut grad_up = vec![0f32; g.len()];
        grad_gate
            .par_chunks_mut(CHUNK)
            .zip(grad_up.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(chunk, (dg, du))| {
                let at = chunk * CHUNK..chunk * CHUNK + dg.len();
                backward_chunk((dg, du), &g[at.clone()], &u[at.clone()], &d[at]);
            });
        let shape = gate.shape();
        Ok((
            Some(Tensor::from_vec(grad_gate, shape, gate.device())?),
            Some(Tensor::from_vec(grad_up, shape, gate.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_fused_op_equals_the_composite_in_value_and_gradients() {
        let device = Device::Cpu;
        let n = 17 * (3 * CHUNK / 17 + 5);
        let values = |seed: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 31 + seed) % 41) as f32 - 20.0) * 0.2)
                .collect()
        };
        let gate = Var::from_vec(values(1), (n / 17, 17), &device).unwrap();
        let up = Var::from_vec(values(7), (n / 17, 17), &device).unwrap();
        let weights = Tensor::from_vec(values(3), (n / 17, 17), &device).unwrap();
        let fused = swiglu(gate.as_tensor(), up.as_tensor()).unwrap();
        let composite = ((gate.as_tensor() * candle_nn::ops::sigmoid(gate.as_tensor()).unwrap())
            .unwrap()
            * up.as_tensor())
        .unwrap();
        let flat = |x: &Tensor| x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = |a: Vec<f32>, b: Vec<f32>| {
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
                .fold(0f32, f32::max)
        };
        assert!(worst(flat(&fused), flat(&composite)) < 1e-6);
        let grads = |y: &Tensor| {
            let g = (y * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            (
                flat(g.get(gate.as_tensor()).unwrap()),
                flat(g.get(up.as_tensor()).unwrap()),
            )
        };
        let ((fg, fu), (cg, cu)) = (grads(&fused), grads(&composite));
        assert!(worst(fg, cg) < 1e-5);
        assert!(worst(fu, cu) < 1e-5);
    }
}
