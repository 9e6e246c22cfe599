//! Choosing the next token: temperature, top-k, top-p, with a per-sequence seeded generator so
//! that a request's output depends on its seed alone, not on what it was batched with.

use super::simd::{self, simd_dispatch};

/// How to pick tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: f64,
    /// 0 means no top-k cut.
    pub top_k: usize,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

/// SplitMix64: small, fast, and identical everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A sampler for one sequence.
#[derive(Clone, Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Sampler {
        let rng = Rng::new(params.seed);
        Sampler { params, rng }
    }

    /// The next token from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature <= 0.0 {
            return argmax(logits);
        }
        let t = self.params.temperature as f32;
        if self.params.top_k == 0 && self.params.top_p >= 1.0 {
            return draw(logits, t, self.rng.uniform() as f32);
        }
        // Candidates sorted by probability, as few as top-k and top-p need.
        let mut weights = unnormalised_weights(logits, t);
        let mut keep = if self.params.top_k > 0 {
            self.params.top_k.min(weights.len())
        } else {
            weights.len()
        };
        // top-p is measured against what top-k kept (renormalised), as HF and vLLM do.
        let total: f32 = if keep < weights.len() {
            sort_head(&mut weights, keep);
            weights[..keep].iter().map(|w| w.1).sum()
        } else {
            weights.iter().map(|w| w.1).sum()
        };
        let mut head = 64.min(keep);
        if self.params.top_p < 1.0 {
            // Grow the sorted head until it holds top_p of the mass (usually a few dozen tokens).
            loop {
                sort_head(&mut weights, head);
                let mut cumulative = 0.0;
                let target = self.params.top_p as f32 * total;
                let found = weights[..head].iter().position(|w| {
                    cumulative += w.1;
                    cumulative >= target
                });
                if let Some(i) = found {
                    keep = keep.min(i + 1);
                    break;
                }
                if head >= keep {
                    break;
                }
                head = (head * 8).min(keep);
            }
        }
        let mass: f32 = if keep == weights.len() {
            total
        } else {
            weights[..keep].iter().map(|w| w.1).sum()
        };
        // Walk the candidates from the most probable, sorting only as far as the draw reaches
        // (a full sort of the vocabulary for every token of every sequence cost milliseconds).
        let mut target = self.rng.uniform() as f32 * mass;
        let mut walked = 0;
        loop {
            head = head.min(keep);
            sort_head(&mut weights[walked..keep], head - walked);
            for (id, w) in &weights[walked..head] {
                if target < *w {
                    return *id;
                }
                target -= w;
            }
            if head == keep {
                break;
            }
            (walked, head) = (head, head * 8);
        }
        weights[..keep].last().map_or(0, |w| w.0)
    }
}

/// (logit − max) / t for every token: the exponents of the unnormalised weights.
#[inline(always)]
fn tempered(logits: &[f32], t: f32) -> Vec<f32> {
    let max = simd::max(logits);
    logits.iter().map(|l| (l - max) / t).collect()
}

/// Tokens per block of the untruncated draw's walk.
const BLOCK: usize = 16;

simd_dispatch! {
    /// A draw from the whole of softmax(logits / t) at `u` in [0, 1): the first token whose
    /// cumulative weight passes u · total, in token order. No order of the tokens is needed to draw
    /// from a distribution, so nothing is sorted: the walk skips whole blocks by their sums.
    fn draw(logits: &[f32], t: f32, u: f32) -> u32 {
        let mut weights = tempered(logits, t);
        let sums: Vec<f32> = weights
            .chunks_mut(BLOCK)
            .map(|block| simd::exp_shifted_sum(block, 0.0))
            .collect();
        let mut target = u * sums.iter().sum::<f32>();
        let last_drawable = |weights: &[f32]| weights.iter().rposition(|&w| w > 0.0);
        for (b, &sum) in sums.iter().enumerate() {
            if target < sum {
                let block = &weights[b * BLOCK..weights.len().min((b + 1) * BLOCK)];
                for (i, &w) in block.iter().enumerate() {
                    if target < w {
                        return (b * BLOCK + i) as u32;
                    }
                    target -= w;
                }
                // The block's sum and the walk round differently in the last bit.
                return (b * BLOCK + last_drawable(block).unwrap_or(0)) as u32;
            }
            target -= sum;
        }
        last_drawable(&weights).unwrap_or(0) as u32
    }
}

simd_dispatch! {
    /// (token, e^((logit − max) / t)) for every token.
    fn unnormalised_weights(logits: &[f32], t: f32) -> Vec<(u32, f32)> {
        let mut exps = tempered(logits, t);
        simd::exp_shifted_sum(&mut exps, 0.0);
        (0u32..).zip(exps).collect()
    }
}

/// Put the `n` largest weights first, sorted descending (ties by token id, for determinism).
fn sort_head(weights: &mut [(u32, f32)], n: usize) {
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if n < weights.len() && n > 0 {
        weights.select_nth_unstable_by(n - 1, order);
    }
    weights[..n].sort_unstable_by(order);
}

pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_maximum() {
        let mut s = Sampler::new(SamplingParams {
            temperature: 0.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9]), 1);
    }

    #[test]
    fn top_p_is_measured_within_what_top_k_kept() {
        // Probabilities 0.4, 0.3, 0.3: top-k 2 keeps 0.57/0.43 (renormalised), so top-p 0.5
        // keeps token 0 alone. Measured against all tokens (0.4 < 0.5) it would keep two.
        let logits = [0.4f32.ln(), 0.3f32.ln(), 0.3f32.ln()];
        for seed in 0..200 {
            let mut s = Sampler::new(SamplingParams {
                temperature: 1.0,
                top_k: 2,
                top_p: 0.5,
                seed,
            });
            assert_eq!(s.sample(&logits), 0, "seed {seed}");
        }
    }

    #[test]
    fn same_seed_same_choices_and_top_k_one_is_greedy() {
        let logits: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 101) as f32 / 10.0)
            .collect();
        let params = SamplingParams {
            temperature: 0.9,
            top_p: 0.9,
            top_k: 0,
            seed: 42,
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(params.clone());
            (0..50).map(|_| s.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(params.clone());
            (0..50).map(|_| s.sample(&logits)).collect()
        };
        assert_eq!(a, b);
        let mut s = Sampler::new(SamplingParams { top_k: 1, ..params });
        assert!((0..20).all(|_| s.sample(&logits) == argmax(&logits)));
    }

    /// The untruncated draw follows softmax(logits / t) across blocks, and a masked token is
    /// never drawn.
    #[test]
    fn the_untruncated_draw_follows_the_distribution() {
        let mut logits = vec![f32::NEG_INFINITY; 40];
        let probabilities = [(3usize, 0.5f32), (17, 0.3), (39, 0.2)];
        for (token, p) in probabilities {
            logits[token] = 2.0 * p.ln();
        }
        let mut s = Sampler::new(SamplingParams {
            temperature: 2.0,
            top_p: 1.0,
            top_k: 0,
            seed: 9,
        });
        let draws = 20_000;
        let mut counts = [0usize; 40];
        for _ in 0..draws {
            counts[s.sample(&logits) as usize] += 1;
        }
        for (token, p) in probabilities {
            let share = counts[token] as f32 / draws as f32;
            assert!(
                (share - p).abs() < 0.015,
                "token {token}: {share} against {p}"
            );
        }
        assert_eq!(
            counts.iter().sum::<usize>(),
            counts[3] + counts[17] + counts[39]
        );
    }

    #[test]
    fn top_p_excludes_the_tail() {
        // One token holds ~88% of the mass: with top_p 0.5 only it can be drawn.
        let mut logits = vec![0.0f32; 100];
        logits[7] = 9.0;
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            top_k: 0,
            seed: 1,
        });
        assert!((0..200).all(|_| s.sample(&logits) == 7));
    }
}
