//! A one-line panic message for commands that run many seeds (`fuzz`, `bugs`, `shrink`).
//!
//! A panic inside a simulation is a finding (`simulation.panic`: a node's assertion fired, or the
//! simulated-time limit caught a hang), reported in the summary with its seed. With
//! `RUST_BACKTRACE` set, the default hook would print a 30-line backtrace per failing seed in the
//! middle of the progress bar; `kvsim run --seed N` on that seed shows the full backtrace.

use std::panic::PanicHookInfo;

/// Replaces the panic hook for the rest of the process.
pub fn install_one_line() {
    std::panic::set_hook(Box::new(|info: &PanicHookInfo| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "<unknown location>".to_string());
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".to_string());
        let first_line = message.lines().next().unwrap_or("");
        eprintln!("kvsim: thread '{name}' panicked at {location}: {first_line}");
    }));
}
