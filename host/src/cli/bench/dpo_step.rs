//! The DPO step the benchmarks time: the trainer's own step code (`train::step`) on a fixed
//! seeded pair, phase by phase.

use std::time::Instant;

use crate::engine::device::Precision;

/// One DPO step on a fixed seeded pair of random token sequences, as the PyTorch peer measures
/// it (shared by `bench dpo` and `bench parity`).
pub struct DpoStep<'d> {
    t: crate::train::trainer::Trainable,
    /// A frozen copy of the start; `None` with LoRA, whose reference is the policy with its
    /// adapters off (no second model in memory).
    reference: Option<crate::engine::model::Transformer>,
    pair: [crate::train::data::Sequence; 2],
    optimizer: crate::train::optim::AdamW,
    lr: f64,
    device: &'d candle_core::Device,
}

impl<'d> DpoStep<'d> {
    pub fn new(
        model_path: &std::path::Path,
        (seq, prompt_len): (usize, usize),
        lr: f64,
        device: &'d candle_core::Device,
        dtype: Precision,
        lora: Option<&crate::train::lora::LoraSettings>,
    ) -> anyhow::Result<Self> {
        use crate::train::data::Sequence;
        use crate::train::optim::{AdamW, AdamWConfig};
        use crate::train::trainer::{trainable, trainable_lora};
        let t = match lora {
            Some(settings) => trainable_lora(model_path, device, settings, 0)?,
            None => trainable(model_path, device)?,
        }
        .computing_in(dtype);
        // The frozen reference holds its weights in the compute dtype.
        let reference = match lora {
            Some(_) => None,
            None => Some(t.loaded.transformer(dtype.dtype(), device)?),
        };
        let vocab = t.loaded.config.vocab_size as u64;
        let mut rng = crate::engine::sampling::Rng::new(0);
        let mut random = |n: usize| -> Vec<u32> {
            (0..n)
                .map(|_| 3 + (rng.next_u64() % (vocab - 3)) as u32)
                .collect()
        };
        let chosen = random(seq);
        let mut rejected = random(seq);
        rejected[..prompt_len].copy_from_slice(&chosen[..prompt_len]);
        let trained: Vec<bool> = (0..seq).map(|i| i >= prompt_len).collect();
        let pair = [
            Sequence {
                ids: chosen,
                trained: trained.clone(),
            },
            Sequence {
                ids: rejected,
                trained,
            },
        ];
        let optimizer = AdamW::new(
            t.params.clone(),
            AdamWConfig {
                lr,
                ..AdamWConfig::default()
            },
        )?;
        Ok(Self {
            t,
            reference,
            pair,
            optimizer,
            lr,
            device,
        })
    }

    /// One step: the seconds of (reference forward, policy forward, backward, AdamW, total) and
    /// the loss.
    pub fn run(&mut self) -> anyhow::Result<([f64; 5], f32)> {
        use crate::train::dpo::LossType;
        use crate::train::logprobs::sequence_logps;
        use crate::train::step::{grads_by_name, pair_loss};
        let device = self.device;
        // GPU work is asynchronous: each phase ends when the device has finished it.
        let now = || -> anyhow::Result<Instant> {
            device.synchronize()?;
            Ok(Instant::now())
        };
        let batch: Vec<&crate::train::data::Sequence> = self.pair.iter().collect();
        let t0 = now()?;
        let reference: Vec<f32> = match &self.reference {
            Some(reference) => sequence_logps(reference, &batch, device)?,
            None => {
                self.t.model.set_adapters_enabled(false);
                let logps = sequence_logps(&self.t.model, &batch, device);
                self.t.model.set_adapters_enabled(true);
                logps?
            }
        }
        .sums
        .to_vec1()?;
        let t1 = now()?;
        // The trainer's own step: policy forward and loss.
        let out = pair_loss(
            &self.t.model,
            &[(&self.pair[0], &self.pair[1])],
            &[(reference[0], reference[1])],
            (0.1, 0.0, LossType::Sigmoid),
            device,
        )?;
        let t2 = now()?;
        let grads = out.loss.backward()?;
        let t3 = now()?;
        let by_name = grads_by_name(&self.t.params, &grads);
        self.optimizer.step(&by_name, self.lr)?;
        let t4 = now()?;
        let loss = out
            .loss
            .to_dtype(candle_core::DType::F32)?
            .to_scalar::<f32>()?;
        let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
        Ok((
            [s(t0, t1), s(t1, t2), s(t2, t3), s(t3, t4), s(t0, t4)],
            loss,
        ))
    }

    /// The current weights, on the CPU in f32.
    pub fn weights(&self) -> anyhow::Result<Vec<(String, candle_core::Tensor)>> {
        self.t
            .params
            .iter()
            .map(|(n, v)| {
                Ok((
                    n.clone(),
                    v.as_tensor()
                        .to_dtype(candle_core::DType::F32)?
                        .to_device(&candle_core::Device::Cpu)?,
                ))
            })
            .collect()
    }
}
