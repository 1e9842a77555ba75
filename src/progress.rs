//! The progress bar of a long command (`fuzz`, `bugs --measure`, `bench sim`: seeds done of
//! planned; `live`: seconds of workload done), rate, a message, elapsed time and ETA, on stderr. indicatif draws it only when stderr
//! is a terminal; `--json` hides it too.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` seeds; `hidden` (the command's `--json`) draws nothing.
pub fn seeds_bar(len: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  [{elapsed_precise}, ETA {eta}]",
        )
        .expect("valid template"),
    );
    bar
}

/// A bar of `len_s` seconds of a run's workload (`live`), drawn only where stderr is a terminal;
/// [`ProgressBar::is_hidden`] tells the caller to print lines instead.
pub fn seconds_bar(len_s: u64) -> ProgressBar {
    let bar = ProgressBar::new(len_s);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} s  {msg}  [ETA {eta}]")
            .expect("valid template"),
    );
    bar
}
