//! The one exit-code convention shared by every command.

/// Process exit codes. Ordered by severity so that a run over many inputs exits with the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
}

impl Exit {
    /// The exit code for a set of per-item results: bad input dominates, then violations, then
    /// inconclusive results.
    pub fn worst(self, other: Exit) -> Exit {
        self.max(other)
    }
}
