//! Progress bars on long work. They draw on stderr, and only when it is a terminal, so `--json`
//! output and logs stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `total` steps with a message, or a spinner when the total is unknown.
pub fn bar(total: Option<u64>, message: &str) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .expect("the template is valid")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec})")
                .expect("the template is valid"),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_message(message.to_owned());
    bar
}
