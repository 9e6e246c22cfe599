//! Crash injection for the resume tests: `SPAR_CRASH_AT=<point>:<n>` kills the process (abort:
//! no destructors, no flushing, like a SIGKILL) the n-th time `<point>` is reached. Points:
//! `samples-batch`, `judge-batch`, `search-round`, `train-step`. Unset, a call costs one
//! already-initialised lookup.

use std::sync::{Mutex, OnceLock};

/// The configured point and count, read once.
fn target() -> &'static Option<(String, usize)> {
    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    TARGET.get_or_init(|| {
        let spec = std::env::var("SPAR_CRASH_AT").ok()?;
        let (point, n) = spec.rsplit_once(':')?;
        Some((point.to_string(), n.parse().ok()?))
    })
}

/// Count a pass through `point`; abort the process if this is the configured crash.
pub fn hit(point: &'static str) {
    let Some((wanted, n)) = target() else { return };
    if wanted != point {
        return;
    }
    // Only the configured point is counted.
    static HITS: Mutex<usize> = Mutex::new(0);
    let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
    *hits += 1;
    if *hits == *n {
        eprintln!("SPAR_CRASH_AT: crashing at {point} #{n}");
        std::process::abort();
    }
}
