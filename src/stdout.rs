//! Standard output that survives a closed pipe.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`kvsim check DIR | head -1`):
//! Rust ignores SIGPIPE, so the write fails with EPIPE and the macro panics. [`outln!`] writes the
//! same line, and on EPIPE drops this and every later line quietly: the command goes on, writes
//! its files and exits with its usual code (a fuzz campaign piped into `head` still writes its
//! summary). Any other write error (disk full behind a redirect) is remembered and turns the exit
//! code into [`crate::exit::Exit::Internal`] with the error printed, see [`failure`].

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The reader of stdout has gone: later lines are dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// `--json`: stdout carries one JSON document, so human lines go to stderr.
static HUMAN_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Switches this process to `--json` output: every later [`outln!`] line goes to stderr, and
/// [`write_json`] writes the one document stdout carries.
pub fn json_mode() {
    HUMAN_TO_STDERR.store(true, Ordering::Relaxed);
}

/// Writes `value` as one JSON line to stdout, with [`write_line`]'s rules for a closed pipe.
pub fn write_json(value: &serde_json::Value) {
    write_stdout(format_args!("{value}"));
}
/// The first write error other than a closed pipe.
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Writes one formatted line to stdout (see the module doc); use through [`outln!`].
pub fn write_line(args: std::fmt::Arguments<'_>) {
    if HUMAN_TO_STDERR.load(Ordering::Relaxed) {
        let mut err = std::io::stderr().lock();
        // stderr is where errors go: a failed write there has nowhere to be reported.
        let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
        return;
    }
    write_stdout(args);
}

fn write_stdout(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    if let Err(error) = written {
        // Either way no later line can be written whole.
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let mut failure = FAILURE.lock().unwrap_or_else(|poison| poison.into_inner());
            failure.get_or_insert_with(|| format!("cannot write to standard output: {error}"));
        }
    }
}

/// Flushes stdout at exit with the same rules as [`write_line`].
pub fn flush() {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(error) = std::io::stdout().lock().flush() {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let mut failure = FAILURE.lock().unwrap_or_else(|poison| poison.into_inner());
            failure.get_or_insert_with(|| format!("cannot write to standard output: {error}"));
        }
    }
}

/// The first stdout write error that was not a closed pipe, if any.
pub fn failure() -> Option<String> {
    FAILURE
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone()
}

/// `println!` that never panics on a closed pipe: see [`crate::stdout`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write_line(format_args!($($arg)*))
    };
}
