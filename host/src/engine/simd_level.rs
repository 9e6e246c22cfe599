//! The SIMD level of the host's own kernels (decode products, softmax rows, attention): the
//! widest the CPU runs, detected once per process at run time, at most the level `SPAR_MAX_SIMD`
//! names (so one machine can measure the paths a less capable CPU takes), and forced per thread
//! in tests that compare every path.

use std::cell::Cell;

/// A SIMD level: the host kernels compiled for it run where the CPU has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Avx512,
    Avx2,
    Portable,
}

/// The environment variable that caps the SIMD level of the host's own kernels (decode products,
/// softmax rows, attention), so that one machine can measure the paths a less capable CPU takes.
pub const MAX_SIMD_VAR: &str = "SPAR_MAX_SIMD";

impl Kernel {
    /// The fastest kernel this CPU runs, at most the level [`MAX_SIMD_VAR`] names (an unknown
    /// name counts as no cap here; [`Kernel::check_cap`] reports it).
    pub fn detected() -> Kernel {
        let cap = Kernel::cap_from_env().ok().flatten();
        Kernel::best_up_to(cap.unwrap_or(Kernel::Avx512))
    }

    /// The level [`MAX_SIMD_VAR`] names, if it is set; an error naming it if it names none.
    fn cap_from_env() -> std::result::Result<Option<Kernel>, String> {
        let Ok(name) = std::env::var(MAX_SIMD_VAR) else {
            return Ok(None);
        };
        Kernel::named(&name).map(Some).ok_or_else(|| {
            format!("{MAX_SIMD_VAR}={name:?} is not a SIMD level: use avx512, avx2 or portable")
        })
    }

    /// The fastest kernel this CPU runs at or below `cap`.
    fn best_up_to(cap: Kernel) -> Kernel {
        [Kernel::Avx512, Kernel::Avx2, Kernel::Portable]
            .into_iter()
            .find(|&k| k.rank() <= cap.rank() && k.available())
            .unwrap_or(Kernel::Portable)
    }

    /// [`Kernel::detected`], worked out once per process.
    pub fn detected_once() -> Kernel {
        *DETECTED.get_or_init(Kernel::detected)
    }

    /// An error naming [`MAX_SIMD_VAR`] when it is set to something other than a level's name.
    pub fn check_cap() -> std::result::Result<(), String> {
        Kernel::cap_from_env().map(|_| ())
    }

    fn named(name: &str) -> Option<Kernel> {
        match name.to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" => Some(Kernel::Avx512),
            "avx2" => Some(Kernel::Avx2),
            "portable" | "none" => Some(Kernel::Portable),
            _ => None,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Kernel::Portable => 0,
            Kernel::Avx2 => 1,
            Kernel::Avx512 => 2,
        }
    }

    /// How reports name the level.
    pub fn label(self) -> &'static str {
        match self {
            Kernel::Avx512 => "AVX-512",
            Kernel::Avx2 => "AVX2+FMA",
            Kernel::Portable => "portable",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

thread_local! {
    /// The kernel forced on this thread (tests compare every path against the GEMM).
    static FORCED: Cell<Option<Option<Kernel>>> = const { Cell::new(None) };
}

/// Run `f` with decode-sized products on this thread taking `kernel` (`None`: the GEMM, the
/// reference path). Panics if the CPU cannot run the kernel.
pub fn with_kernel<R>(kernel: Option<Kernel>, f: impl FnOnce() -> R) -> R {
    if let Some(k) = kernel {
        assert!(k.available(), "this CPU cannot run the {k:?} kernel");
    }
    let before = FORCED.replace(Some(kernel));
    let result = f();
    FORCED.set(before);
    result
}

/// The kernel forced on this thread (`None`: the GEMM), else the detected one.
pub(super) fn forced_or_detected() -> Option<Kernel> {
    FORCED
        .get()
        .unwrap_or_else(|| Some(Kernel::detected_once()))
}

/// The SIMD level decode kernels use on this thread: the forced one (the GEMM counts as the
/// detected level), else the CPU's.
pub fn simd_level() -> Kernel {
    forced_or_detected().unwrap_or_else(Kernel::detected_once)
}

static DETECTED: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    /// A cap never raises the level above what the CPU runs and never lets it exceed the cap.
    #[test]
    fn a_simd_cap_lowers_the_level_and_names_parse() {
        assert_eq!(Kernel::best_up_to(Kernel::Portable), Kernel::Portable);
        let avx2 = Kernel::best_up_to(Kernel::Avx2);
        assert_eq!(
            avx2,
            if Kernel::Avx2.available() {
                Kernel::Avx2
            } else {
                Kernel::Portable
            }
        );
        let top = Kernel::best_up_to(Kernel::Avx512);
        assert!(top.available() && top.rank() >= avx2.rank());
        if Kernel::Avx512.available() {
            assert_eq!(top, Kernel::Avx512);
        }
        for (name, kernel) in [
            ("AVX512", Kernel::Avx512),
            ("avx2", Kernel::Avx2),
            ("none", Kernel::Portable),
        ] {
            assert_eq!(Kernel::named(name), Some(kernel));
        }
        assert_eq!(Kernel::named("avx3"), None);
    }
}
