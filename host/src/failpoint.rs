//! Crash injection for the resume tests: `SPAR_CRASH_AT=<point>:<n>` kills the process (abort:
//! no destructors, no flushing, like a SIGKILL) the n-th time `<point>` is reached. Points:
//! `samples-batch`, `judge-batch`, `search-round`, `train-step`. Unset, it costs one env lookup per
//! call site per process.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

static HITS: Mutex<Vec<(&'static str, usize)>> = Mutex::new(Vec::new());
static ARMED: AtomicUsize = AtomicUsize::new(usize::MAX);

fn target() -> Option<(String, usize)> {
    let spec = std::env::var("SPAR_CRASH_AT").ok()?;
    let (point, n) = spec.rsplit_once(':')?;
    Some((point.to_string(), n.parse().ok()?))
}

/// Count a pass through `point`; abort the process if this is the configured crash.
pub fn hit(point: &'static str) {
    // 0: unarmed, 1: armed; usize::MAX: not yet read.
    if ARMED.load(Ordering::Relaxed) == usize::MAX {
        ARMED.store(usize::from(target().is_some()), Ordering::Relaxed);
    }
    if ARMED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Some((wanted, n)) = target() else { return };
    if wanted != point {
        return;
    }
    let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
    let count = match hits.iter_mut().find(|(p, _)| *p == point) {
        Some((_, c)) => {
            *c += 1;
            *c
        }
        None => {
            hits.push((point, 1));
            1
        }
    };
    if count == n {
        eprintln!("SPAR_CRASH_AT: crashing at {point} #{n}");
        std::process::abort();
    }
}
