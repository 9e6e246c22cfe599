//! Progress bars for long stages: drawn on a terminal only; elsewhere (logs, CI, tests) they are
//! hidden and each stage reports one structured line when it ends instead.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar for `stage` over `total` items, `done` of them finished before (a resumed stage).
pub fn bar(stage: &str, total: usize, done: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total as u64),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:<8} {bar:40} {pos}/{len} {msg}  {per_sec}  eta {eta}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(stage.to_string());
    bar.set_position(done as u64);
    // Items finished by an earlier process would skew the rate and ETA.
    bar.reset_eta();
    bar
}
