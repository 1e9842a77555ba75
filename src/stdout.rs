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
/// The first write error other than a closed pipe.
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Writes one formatted line to stdout (see the module doc); use through [`outln!`].
pub fn write_line(args: std::fmt::Arguments<'_>) {
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
