//! Judging one simulated (or live) run: every checker over one history, one verdict.
//!
//! The verdict is the worst of its parts: any violated property makes the run a violation
//! (exit 1); otherwise an undecided linearizability search makes it inconclusive (exit 3).

use std::time::{Duration, Instant};

use kvsim_checker::history::History;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::mvcc::{MvccModel, Op, Ret};
use serde::Serialize;

use crate::exit::Exit;

/// One violated property, named the way `kvsim bugs` and reports name it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// e.g. `linearizability`, `raft.invariant`, `watch.reliable`.
    pub property: String,
    pub message: String,
    /// Operation ids involved, when the property is about operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// `ok` | `violation` | `unknown`.
    pub status: &'static str,
    pub findings: Vec<Finding>,
    /// The linearizability search's own result, with its evidence.
    pub linearizability: CheckResult,
    /// Why the linearizability search gave up, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    pub check_ms: u128,
}

impl Verdict {
    pub fn exit(&self) -> Exit {
        match self.status {
            "ok" => Exit::Ok,
            "violation" => Exit::Violation,
            _ => Exit::Inconclusive,
        }
    }

    /// The property names found violated, deduplicated, in first-seen order.
    pub fn properties(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for finding in &self.findings {
            if !names.contains(&finding.property) {
                names.push(finding.property.clone());
            }
        }
        names
    }
}

/// Runs every checker over `history`. `invariant_violations` are what the simulated cluster's own
/// assertions saw (Election Safety, State Machine Safety, HashKV agreement).
pub fn judge(history: &History<Op, Ret>, invariant_violations: &[String], timeout: Duration) -> Verdict {
    let started = Instant::now();
    let mut findings: Vec<Finding> = invariant_violations
        .iter()
        .map(|message| Finding { property: "raft.invariant".into(), message: message.clone(), ops: Vec::new() })
        .collect();

    let mut with_expiries = history.clone();
    kvsim_checker::lease_expiry::add_lease_expiries(&mut with_expiries);
    let budget = Budget { timeout: Some(timeout), memo_entries_max: Some(50_000_000) };
    let (linearizability, _) =
        check_with_stats(&with_expiries, MvccModel::default(), &budget, &CheckOptions { partition: false });
    let mut unknown_reason = None;
    match &linearizability {
        CheckResult::Linearizable => {}
        CheckResult::NotLinearizable(violation) => findings.push(Finding {
            property: "linearizability".into(),
            message: violation.render(&with_expiries),
            ops: violation.stuck.clone(),
        }),
        CheckResult::Unknown(why) => unknown_reason = Some(why.clone()),
    }

    let status = if !findings.is_empty() {
        "violation"
    } else if unknown_reason.is_some() {
        "unknown"
    } else {
        "ok"
    };
    Verdict { status, findings, linearizability, unknown_reason, check_ms: started.elapsed().as_millis() }
}
