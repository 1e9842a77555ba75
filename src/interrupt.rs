//! SIGINT / SIGTERM for long commands (`fuzz`, `bugs --measure`): the first signal asks the
//! command to stop taking work; it finishes what is in flight, writes its summary and exits with
//! 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process
//! killed by that signal. A second signal kills at once (the handler is reset after the first:
//! `SA_RESETHAND`), for a user who does not want to wait.
//!
//! Plain `sigaction` rather than the `ctrlc` crate: the exit code needs to know which signal came,
//! and `ctrlc` calls one handler for both.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal received, 0 while none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // Async-signal-safe: one atomic store.
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// A stop request a command received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// 128 + the signal number, what a shell shows for a process the signal killed.
    pub fn exit_code(self) -> i32 {
        128 + match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// Installs the handler for SIGINT and SIGTERM for the rest of the process.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            let installed = libc::sigaction(signal, &action, std::ptr::null_mut());
            assert_eq!(installed, 0, "sigaction of a standard signal cannot fail");
        }
    }
}

/// The stop request received so far, if any.
pub fn requested() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some(Signal::Interrupt),
        _ => Some(Signal::Terminate),
    }
}
