//! Judging one simulated (or live) run: every checker over one history, one verdict.
//!
//! The verdict is the worst of its parts: any violated property makes the run a violation
//! (exit 1); otherwise an undecided linearizability search makes it inconclusive (exit 3).

use std::time::{Duration, Instant};

use kvsim_checker::durability::{check_durability, DurabilityOptions};
use kvsim_checker::history::History;
use kvsim_checker::recipes::check_recipes;
use kvsim_checker::watch::check_watches;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::mvcc::{MvccModel, Op, Ret};
use kvsim_sim::runner::RunOutput;
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

/// Judges a simulated run, with the liveness bound its scenario implies.
pub fn judge_run(output: &RunOutput, timeout: Duration) -> Verdict {
    let cluster = &output.scenario.cluster;
    // Five election timeouts: room for pre-vote, a split vote and the clients' retry backoff.
    let election_timeout_ns = cluster.election_tick as u64 * cluster.tick_ms * 1_000_000;
    let options = DurabilityOptions {
        liveness_bound_ns: 5 * election_timeout_ns,
    };
    judge(
        &output.history,
        &output.invariant_violations,
        timeout,
        &options,
    )
}

/// Runs every checker over `history`: the cluster's own invariants, watch, durability / quorum /
/// liveness, the lock and election recipes, and linearizability. `invariant_violations` are what the simulated cluster's own
/// assertions saw (Election Safety, State Machine Safety, HashKV agreement).
pub fn judge(
    history: &History<Op, Ret>,
    invariant_violations: &[String],
    timeout: Duration,
    durability: &DurabilityOptions,
) -> Verdict {
    let started = Instant::now();
    let mut findings: Vec<Finding> = invariant_violations
        .iter()
        .map(|message| Finding {
            property: "raft.invariant".into(),
            message: message.clone(),
            ops: Vec::new(),
        })
        .collect();
    let properties = check_watches(history)
        .into_iter()
        .chain(check_durability(history, durability))
        .chain(check_recipes(history));
    findings.extend(properties.map(|violation| Finding {
        property: violation.property.to_string(),
        message: violation.to_string(),
        ops: violation.ops,
    }));

    let with_expiries = with_lease_expiries(history);
    let budget = Budget {
        timeout: Some(timeout),
        memo_entries_max: Some(50_000_000),
    };
    let (linearizability, _) = check_with_stats(
        &with_expiries,
        MvccModel::default(),
        &budget,
        &CheckOptions { partition: false },
    );
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
    Verdict {
        status,
        findings,
        linearizability,
        unknown_reason,
        check_ms: started.elapsed().as_millis(),
    }
}

/// `history` plus the synthetic lease expiries the linearizability check needs, allowing for the
/// clock error the history's own clock-skew faults introduced (see `docs/lease-expiry.md`). The
/// verdict's operation ids refer to this history.
pub fn with_lease_expiries(history: &History<Op, Ret>) -> History<Op, Ret> {
    use kvsim_checker::lease_expiry::{add_lease_expiries_with_clock_error, clock_error_ns};
    let mut with_expiries = history.clone();
    add_lease_expiries_with_clock_error(&mut with_expiries, clock_error_ns(&history.faults));
    with_expiries
}
