//! The one exit-code convention shared by every command.
//!
//! 0 ok, 1 violation, 2 bad usage or input, 3 inconclusive, 4 internal error (kvsim could not
//! write its output: a full disk, a report directory it may not create; never the user's input),
//! 130 / 143 interrupted by SIGINT / SIGTERM after writing what ran (see [`crate::interrupt`]).

use std::fmt;

/// Process exit codes. [`Exit::worst`] ranks them by severity, so that a run over many inputs
/// exits with the worst (not by code: a derived order would follow the discriminants and rank
/// inconclusive, 3, above a violation, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything checked and found correct.
    Ok = 0,
    /// Inconclusive: a time or memory budget ran out before a verdict. Ranked below a violation
    /// (a definite finding beats a shrug) and below bad input.
    Inconclusive = 3,
    /// A violation was found.
    Violation = 1,
    /// Bad usage or input (unreadable file, malformed history, invalid scenario).
    BadInput = 2,
    /// kvsim failed on its own side: writing output or a report failed.
    Internal = 4,
    /// Stopped by SIGINT after writing what ran (128 + 2).
    Interrupted = 130,
    /// Stopped by SIGTERM after writing what ran (128 + 15).
    Terminated = 143,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The exit code for a set of per-item results: internal errors dominate, then bad input,
    /// then violations, then inconclusive results.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Inconclusive => 1,
            Exit::Violation => 2,
            Exit::BadInput => 3,
            Exit::Internal => 4,
            Exit::Interrupted => 5,
            Exit::Terminated => 6,
        }
    }
}

impl From<crate::interrupt::Signal> for Exit {
    fn from(signal: crate::interrupt::Signal) -> Exit {
        match signal {
            crate::interrupt::Signal::Interrupt => Exit::Interrupted,
            crate::interrupt::Signal::Terminate => Exit::Terminated,
        }
    }
}

/// An error that is kvsim's, not the input's: the CLI exits [`Exit::Internal`] on it. Wrap I/O
/// failures on kvsim's own output in it (`.map_err(Internal::from)` or [`internal`]).
#[derive(Debug)]
pub struct Internal(pub anyhow::Error);

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Internal {}

impl From<anyhow::Error> for Internal {
    fn from(error: anyhow::Error) -> Internal {
        Internal(error)
    }
}

/// Marks `result`'s error as kvsim's own (exit 4), not bad input.
pub fn internal<T>(result: anyhow::Result<T>) -> anyhow::Result<T> {
    result.map_err(|error| anyhow::Error::new(Internal(error)))
}

/// The exit code of an error a command returned: [`Exit::Internal`] for [`Internal`], else
/// [`Exit::BadInput`].
pub fn of_error(error: &anyhow::Error) -> Exit {
    if error.chain().any(|cause| cause.is::<Internal>()) {
        Exit::Internal
    } else {
        Exit::BadInput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_failures_are_internal_and_worst() {
        let io = anyhow::anyhow!("disk full");
        assert_eq!(
            of_error(&internal::<()>(Err(io)).unwrap_err()),
            Exit::Internal
        );
        let wrapped = internal::<()>(Err(anyhow::anyhow!("x")))
            .map_err(|e| e.context("writing the report"))
            .unwrap_err();
        assert_eq!(of_error(&wrapped), Exit::Internal);
        assert_eq!(of_error(&anyhow::anyhow!("bad line")), Exit::BadInput);
        assert_eq!(Exit::BadInput.worst(Exit::Internal), Exit::Internal);
        assert_eq!(Exit::Violation.worst(Exit::Inconclusive), Exit::Violation);
        assert_eq!(Exit::Inconclusive.worst(Exit::Violation), Exit::Violation);
        assert_eq!(Exit::Inconclusive.worst(Exit::BadInput), Exit::BadInput);
        assert_eq!(Exit::Ok.worst(Exit::Inconclusive), Exit::Inconclusive);
        for signal in [
            crate::interrupt::Signal::Interrupt,
            crate::interrupt::Signal::Terminate,
        ] {
            assert_eq!(Exit::from(signal) as i32, signal.exit_code());
        }
    }
}
