//! Judging one simulated (or live) run: every checker over one history, one verdict.
//!
//! The verdict is the worst of its parts: any violated property makes the run a violation
//! (exit 1); otherwise an undecided linearizability search makes it inconclusive (exit 3).

use std::time::{Duration, Instant};

use clap::ValueEnum;
use kvsim_checker::durability::{check_durability, DurabilityOptions};
use kvsim_checker::history::History;
use kvsim_checker::lease_bound::check_lease_bounds;
use kvsim_checker::recipes::check_recipes;
use kvsim_checker::watch::check_watches;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::mvcc::{MvccModel, Op, Ret};
use kvsim_sim::runner::RunOutput;
use serde::Serialize;

use crate::exit::Exit;

/// The checkers a verdict may run, as `kvsim check --only` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Checker {
    /// The linearizability search against the MVCC model (with lease expiries).
    Linearizability,
    /// The watch checker: `watch.*`.
    Watch,
    /// Durability, quorum, convergence and liveness: `durability.*`, `quorum.*`,
    /// `replicas.*`, `liveness`.
    Durability,
    /// The lock and election recipes: `lock.*`, `election.*`.
    Recipes,
    /// The cluster's own Raft invariants, as the run recorded them: `raft.invariant`.
    Raft,
}

impl Checker {
    pub const ALL: [Checker; 5] = [
        Checker::Linearizability,
        Checker::Watch,
        Checker::Durability,
        Checker::Recipes,
        Checker::Raft,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Checker::Linearizability => "linearizability",
            Checker::Watch => "watch",
            Checker::Durability => "durability",
            Checker::Recipes => "recipes",
            Checker::Raft => "raft",
        }
    }

    /// The checker that reports a property (`watch.reliable` → watch).
    pub fn of_property(property: &str) -> Checker {
        let family = property.split('.').next().unwrap_or(property);
        match family {
            "linearizability" => Checker::Linearizability,
            "watch" => Checker::Watch,
            "lock" | "election" => Checker::Recipes,
            "raft" | "simulation" => Checker::Raft,
            _ => Checker::Durability,
        }
    }
}

/// How to judge a history: the search's budget, the liveness bound, and which checkers run.
#[derive(Clone, Debug)]
pub struct JudgeOptions {
    pub budget: Budget,
    pub durability: DurabilityOptions,
    /// The checkers to run; all of them when empty.
    pub only: Vec<Checker>,
}

impl JudgeOptions {
    fn runs(&self, checker: Checker) -> bool {
        self.only.is_empty() || self.only.contains(&checker)
    }
}

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
    /// The checkers that ran, in [`Checker::ALL`] order (a skipped linearizability check leaves
    /// `linearizability` at `Linearizable`).
    pub checkers: Vec<Checker>,
    /// Unknown-outcome puts that a later response proved happened, pinned before the search
    /// (`kvsim_checker::observed_puts`).
    pub pinned_puts: usize,
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
    let options = JudgeOptions {
        budget: Budget {
            timeout: Some(timeout),
            memo_entries_max: Some(50_000_000),
        },
        durability: durability.clone(),
        only: Vec::new(),
    };
    judge_with(history, invariant_violations, &options)
}

/// [`judge`] with an explicit budget and a choice of checkers (`kvsim check --only`).
pub fn judge_with(
    history: &History<Op, Ret>,
    invariant_violations: &[String],
    options: &JudgeOptions,
) -> Verdict {
    let started = Instant::now();
    let checkers: Vec<Checker> = Checker::ALL
        .into_iter()
        .filter(|checker| options.runs(*checker))
        .collect();
    let mut findings: Vec<Finding> = Vec::new();
    if options.runs(Checker::Raft) {
        findings.extend(invariant_violations.iter().map(|message| Finding {
            property: "raft.invariant".into(),
            message: message.clone(),
            ops: Vec::new(),
        }));
    }
    let mut properties = Vec::new();
    if options.runs(Checker::Watch) {
        properties.extend(check_watches(history));
    }
    if options.runs(Checker::Durability) {
        properties.extend(check_durability(history, &options.durability));
        properties.extend(check_lease_bounds(history, &options.durability));
    }
    if options.runs(Checker::Recipes) {
        properties.extend(check_recipes(history));
    }
    findings.extend(properties.into_iter().map(|violation| Finding {
        property: violation.property.to_string(),
        message: violation.to_string(),
        ops: violation.ops,
    }));

    let (with_expiries, pinned_puts) = prepared_for_search(history);
    let linearizability = if options.runs(Checker::Linearizability) {
        check_with_stats(
            &with_expiries,
            MvccModel::default(),
            &options.budget,
            &CheckOptions { partition: false },
        )
        .0
    } else {
        CheckResult::Linearizable
    };
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
        checkers,
        pinned_puts,
    }
}

/// The history the linearizability search judges: `history` plus the synthetic lease expiries
/// it needs, allowing for the clock error the history's own clock-skew faults introduced (see
/// `docs/lease-expiry.md`), with the unknown-outcome puts that later responses prove happened
/// pinned (`kvsim_checker::observed_puts`; the verdict is the same, the search much smaller).
/// The verdict's operation ids refer to this history.
pub fn with_lease_expiries(history: &History<Op, Ret>) -> History<Op, Ret> {
    prepared_for_search(history).0
}

/// [`with_lease_expiries`], also returning how many puts were pinned.
fn prepared_for_search(history: &History<Op, Ret>) -> (History<Op, Ret>, usize) {
    use kvsim_checker::lease_expiry::{add_lease_expiries_with_clock_error, clock_error_ns};
    use kvsim_checker::observed_puts::pin_observed_puts;
    let mut prepared = history.clone();
    let pinned = pin_observed_puts(&mut prepared);
    add_lease_expiries_with_clock_error(&mut prepared, clock_error_ns(&history.faults));
    (prepared, pinned)
}
