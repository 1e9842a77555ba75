//! What `kvsim check` reports for one file ([`FileReport`], one JSON line with `--json`), and the
//! totals over every file.

use serde::Serialize;

use crate::exit::Exit;
use crate::verdict::Finding;

/// One file's outcome, as printed with `--json`.
#[derive(Serialize)]
pub struct FileReport {
    pub file: String,
    pub model: String,
    /// The linearizability verdict: `linearizable` | `not-linearizable` | `unknown` | `error`
    /// (`skipped` when `--only` left it out).
    pub verdict: &'static str,
    /// Every checker together: `ok` | `violation` | `inconclusive` (a
    /// [`crate::verdict::Status`]) | `error`.
    pub status: &'static str,
    pub ops: usize,
    pub elapsed_ms: u128,
    /// Each checker that applies, in order: `ok` | `violated` | `unknown` | `not-recorded`.
    pub properties: Vec<PropertyVerdict>,
    /// Violated properties of the checkers other than linearizability.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Unknown-outcome puts a later response proved happened, pinned before the search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_puts: Option<usize>,
    /// What `--lenient` dropped: one line per kind, with a count and its first line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One checker's verdict on a file.
#[derive(Serialize)]
pub struct PropertyVerdict {
    pub checker: &'static str,
    pub verdict: &'static str,
    /// The violated property names (`watch.reliable`, ...), or why it is unknown / absent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl FileReport {
    /// An `error` report of `file`, before anything was read.
    pub fn new(file: String) -> FileReport {
        FileReport {
            file,
            model: String::new(),
            verdict: "error",
            status: "error",
            ops: 0,
            elapsed_ms: 0,
            properties: Vec::new(),
            findings: Vec::new(),
            pinned_puts: None,
            dropped: Vec::new(),
            detail: None,
            error: None,
        }
    }

    /// The exit code this file alone calls for (an error is bad input).
    pub fn exit(&self) -> Exit {
        match self.status {
            "ok" => Exit::Ok,
            "violation" => Exit::Violation,
            "inconclusive" => Exit::Inconclusive,
            _ => Exit::BadInput,
        }
    }
}

/// Counts over every file checked, for the closing `total:` line.
#[derive(Default)]
pub struct Totals {
    pub ops: usize,
    pub linearizable: usize,
    pub violations: usize,
    pub unknown: usize,
    pub errors: usize,
    /// Files with a property other than linearizability violated.
    pub property_violations: usize,
}

impl Totals {
    pub fn add(&mut self, report: &FileReport) {
        self.ops += report.ops;
        self.property_violations += usize::from(!report.findings.is_empty());
        match report.verdict {
            "linearizable" => self.linearizable += 1,
            "not-linearizable" => self.violations += 1,
            "unknown" => self.unknown += 1,
            "skipped" => {}
            _ => self.errors += 1,
        }
    }
}
