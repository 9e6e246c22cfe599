//! Vector code for softmax rows: an `exp` the compiler can vectorise (libm's `expf` is a call per
//! element: a softmax over 1,024 keys in 30 layers made `exp` a tenth of a DPO step), lane-wise
//! reductions, and [`simd_dispatch!`], which compiles a function for AVX-512, for AVX2 and for
//! baseline x86-64 and calls the widest the CPU has. The crate is built for baseline x86-64, where
//! the compiler vectorises only 4 lanes wide. No path contracts a multiply and an add into an
//! FMA, so every path computes exactly the same IEEE operations and the same result.

/// Lanes of the reductions: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// e^x in f32 for x ≤ 88 (softmax takes it of values ≤ 0), within 2 ulp of libm's where the
/// result is a normal number, and exactly 0 below −87.3 (masked attention scores of about −1e9
/// get no weight). Cephes' `expf`:
/// x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by a degree-7 polynomial, 2^n by the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so n · LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer, kept in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.3, 88.0);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // n sits in the low bits of `shifted`; move it into the exponent field and add the bias.
    let scale = f32::from_bits((shifted.to_bits() << 23).wrapping_add(127 << 23));
    if x < -87.3 { 0.0 } else { e_r * scale }
}

/// The largest value of `xs` (−∞ for none), lane-wise.
#[inline(always)]
pub fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let whole = xs.len() / LANES * LANES;
    for chunk in xs[..whole].chunks_exact(LANES) {
        for l in 0..LANES {
            lanes[l] = if chunk[l] > lanes[l] {
                chunk[l]
            } else {
                lanes[l]
            };
        }
    }
    let tail = xs[whole..].iter().copied();
    lanes
        .into_iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, f32::max)
}

/// Replaces each x of `xs` by e^(x − shift) and returns their sum, added lane-wise.
#[inline(always)]
pub fn exp_shifted_sum(xs: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let whole = xs.len() / LANES * LANES;
    let (body, tail) = xs.split_at_mut(whole);
    for chunk in body.chunks_exact_mut(LANES) {
        for l in 0..LANES {
            chunk[l] = exp(chunk[l] - shift);
            lanes[l] += chunk[l];
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for x in tail {
        *x = exp(*x - shift);
        sum += *x;
    }
    sum
}

/// Defines `fn $name(...)` that runs `$body` compiled for AVX-512, for AVX2 (+FMA) or for
/// baseline x86-64, the widest this CPU has (as [`super::simd_level::simd_level`] says, so a
/// test can force a level).
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            use $crate::engine::simd_level::Kernel;
            match $crate::engine::simd_level::simd_level() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `simd_level` names a SIMD level only when the CPU has it.
                Kernel::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Kernel::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use simd_dispatch;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::simd_level::{Kernel, with_kernel};

    simd_dispatch! {
        fn exps(xs: &mut [f32]) -> f32 {
            exp_shifted_sum(xs, 0.0)
        }
    }

    /// Within 2 ulp of libm's `expf` (itself within 1 ulp) over the whole useful range, 0 for
    /// masked scores, and every SIMD level gives exactly the same bits.
    #[test]
    fn exp_is_within_two_ulp_and_the_same_on_every_simd_level() {
        let xs: Vec<f32> = (0..200_001)
            .map(|i| -90.0 + 178.0 * i as f32 / 200_000.0)
            .chain([0.0, -0.0, 1e-8, -1e-8, -1e9, f32::NEG_INFINITY])
            .collect();
        for &x in &xs {
            let (ours, libm) = (exp(x), x.exp());
            if libm < f32::MIN_POSITIVE || x < -87.3 {
                assert!(ours < 1.2e-38, "exp({x}) = {ours}");
                continue;
            }
            let ulps = (ours.to_bits() as i64 - libm.to_bits() as i64).abs();
            assert!(ulps <= 2, "exp({x}) = {ours}, libm {libm}: {ulps} ulp");
        }
        assert_eq!(exp(-1e9), 0.0);
        let at = |kernel: Kernel| {
            with_kernel(Some(kernel), || {
                let mut ys = xs[..xs.len() - 2].to_vec();
                let sum = exps(&mut ys);
                (ys, sum)
            })
        };
        let portable = at(Kernel::Portable);
        for kernel in [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .filter(|k| k.available())
        {
            let got = at(kernel);
            assert!(
                got.0
                    .iter()
                    .zip(&portable.0)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{kernel:?}"
            );
            assert_eq!(got.1.to_bits(), portable.1.to_bits(), "{kernel:?}");
        }
        let mut row = vec![3.0f32, -1.0, 7.5, 2.0, 7.25];
        assert_eq!(max(&row), 7.5);
        row.extend(std::iter::repeat_n(-4.0, 40));
        row[33] = 9.0;
        assert_eq!(max(&row), 9.0);
    }
}
