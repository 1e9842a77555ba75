//! Judging one simulated (or live) run: every checker over one history, one verdict.
//!
//! The verdict is the worst of its parts: any violated property makes the run a violation
//! (exit 1); otherwise an undecided linearizability search, or a run that tested too little to
//! mean anything, makes it inconclusive (exit 3) with its [`InconclusiveReason`]s; else ok.
//! Beside it, [`Coverage`] says what each checker judged (so a checker that had nothing to judge
//! never reads as a pass).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use kvsim_checker::durability::{check_durability, liveness_windows_judged, DurabilityOptions};
use kvsim_checker::history::History;
use kvsim_checker::lease_bound::{check_early_expiries, check_lease_bounds};
use kvsim_checker::property::Property;
use kvsim_checker::recipes::check_recipes;
use kvsim_checker::watch::check_watches;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::mvcc::{MvccModel, Op, Ret};
use kvsim_sim::runner::RunOutput;
use serde::{Deserialize, Serialize};

use crate::exit::Exit;

/// A run's overall outcome. Serialized (JSON, summaries) and printed as `ok` | `violation` |
/// `inconclusive`; [`Status::from_str`] also reads `unknown`, the spelling kvsim wrote before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Violation,
    Inconclusive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Violation => "violation",
            Status::Inconclusive => "inconclusive",
        }
    }

    pub fn exit(self) -> Exit {
        match self {
            Status::Ok => Exit::Ok,
            Status::Violation => Exit::Violation,
            Status::Inconclusive => Exit::Inconclusive,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Status, String> {
        match text {
            "ok" => Ok(Status::Ok),
            "violation" => Ok(Status::Violation),
            // `unknown` is how verdict.json / summary.json spelled it before `inconclusive`.
            "inconclusive" | "unknown" => Ok(Status::Inconclusive),
            other => Err(format!(
                "expected a status (ok, violation, inconclusive), found {other:?}"
            )),
        }
    }
}

/// Which limit of the linearizability search ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchBudget {
    /// `--timeout` / `--check-timeout`.
    Time,
    /// The memo's entry limit.
    Memory,
    /// A limit the search named in words kvsim does not classify (kept verbatim in `message`).
    Other,
}

impl SearchBudget {
    /// Classifies the search's own message (`kvsim_checker::Budget::exhausted` words it
    /// "timed out after …" / "memo reached … entries").
    fn of_message(message: &str) -> SearchBudget {
        if message.starts_with("timed out") {
            SearchBudget::Time
        } else if message.starts_with("memo") {
            SearchBudget::Memory
        } else {
            SearchBudget::Other
        }
    }
}

/// Why a verdict is inconclusive: each says what was not established.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InconclusiveReason {
    /// The linearizability search ran out of `budget` before deciding.
    SearchBudget {
        budget: SearchBudget,
        message: String,
    },
    /// The run exercised too little for a pass to mean anything (an operation kind that never
    /// succeeded, too few successful operations).
    TooLittleTested { message: String },
    /// The members never agreed on one revision, so their final states could not be compared.
    MembersNeverAgreed { message: String },
    /// Somebody else changed the (live) cluster during the run, so its revisions are not the
    /// run's alone and the model's cannot be compared with them.
    ClusterChangedByOthers { message: String },
}

impl fmt::Display for InconclusiveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InconclusiveReason::SearchBudget { budget, message } => {
                let which = match budget {
                    SearchBudget::Time => "time",
                    SearchBudget::Memory => "memory",
                    SearchBudget::Other => "search",
                };
                write!(
                    f,
                    "linearizability search {which} budget ran out: {message}"
                )
            }
            InconclusiveReason::TooLittleTested { message } => {
                write!(f, "too little tested: {message}")
            }
            InconclusiveReason::MembersNeverAgreed { message } => {
                write!(f, "members never agreed: {message}")
            }
            InconclusiveReason::ClusterChangedByOthers { message } => {
                write!(f, "cluster changed by others: {message}")
            }
        }
    }
}

/// What one checker (or, for `liveness`, one part of the durability checker) judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coverage {
    /// `linearizability`, `watch`, `durability`, `liveness`, `recipes`, `raft`.
    pub checker: &'static str,
    /// How much it judged, e.g. `3,812 ops`, `2 healed windows`; 0 means it judged nothing.
    pub judged: usize,
    /// The unit of `judged`: `ops`, `watch responses`, `healed windows`, ...
    pub unit: &'static str,
    /// Why it judged nothing, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
}

impl Coverage {
    fn of(checker: &'static str, judged: usize, unit: &'static str, why_none: &str) -> Coverage {
        Coverage {
            checker,
            judged,
            unit,
            not_checked: (judged == 0).then(|| why_none.to_string()),
        }
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.not_checked {
            Some(why) => write!(f, "{}: not checked — {why}", self.checker),
            None => write!(f, "{}: {} {}", self.checker, self.judged, self.unit),
        }
    }
}

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
    pub fn of_property(property: Property) -> Checker {
        let name = property.as_str();
        let family = name.split('.').next().unwrap_or(name);
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
    pub property: Property,
    pub message: String,
    /// Operation ids involved, when the property is about operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub status: Status,
    pub findings: Vec<Finding>,
    /// The linearizability search's own result, with its evidence.
    pub linearizability: CheckResult,
    /// Why the verdict is inconclusive (also listed when a violation outranks them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inconclusive: Vec<InconclusiveReason>,
    /// What each checker that ran judged, in [`Checker::ALL`] order (`liveness` after
    /// `durability`).
    pub coverage: Vec<Coverage>,
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
        self.status.exit()
    }

    /// Adds a reason the run proves less than a pass claims: an `ok` becomes `inconclusive`;
    /// a violation stays one (a violation found is real however little else was tested).
    pub fn add_inconclusive(&mut self, reason: InconclusiveReason) {
        self.inconclusive.push(reason);
        if self.status == Status::Ok {
            self.status = Status::Inconclusive;
        }
    }

    /// Marks `checker`'s coverage as not checked, with why (e.g. real etcd reports no Raft
    /// invariants).
    pub fn mark_not_checked(&mut self, checker: &'static str, why: &str) {
        for coverage in self.coverage.iter_mut().filter(|c| c.checker == checker) {
            coverage.judged = 0;
            coverage.not_checked = Some(why.to_string());
        }
    }

    /// The inconclusive reasons as one line, `; `-separated.
    pub fn inconclusive_line(&self) -> String {
        let reasons: Vec<String> = self.inconclusive.iter().map(ToString::to_string).collect();
        reasons.join("; ")
    }

    /// The property names found violated, deduplicated, in first-seen order.
    pub fn properties(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for finding in &self.findings {
            let name = finding.property.as_str();
            if !names.iter().any(|known| known == name) {
                names.push(name.to_string());
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
            property: Property::RaftInvariant,
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
        properties.extend(check_early_expiries(history));
    }
    if options.runs(Checker::Recipes) {
        properties.extend(check_recipes(history));
    }
    findings.extend(properties.into_iter().map(|violation| Finding {
        property: violation.property,
        message: violation.to_string(),
        ops: violation.ops,
    }));

    let (with_expiries, pinned_puts) = prepared_for_search(history);
    // The time budget covers the whole judgement: the search gets what the other checkers left
    // (at least a millisecond, so a spent budget ends the search at once as `unknown`).
    let mut search_budget = options.budget;
    search_budget.timeout = search_budget.timeout.map(|timeout| {
        timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1))
    });
    let linearizability = if options.runs(Checker::Linearizability) {
        check_with_stats(
            &with_expiries,
            MvccModel::default(),
            &search_budget,
            &CheckOptions { partition: false },
        )
        .0
    } else {
        CheckResult::Linearizable
    };
    let mut inconclusive = Vec::new();
    match &linearizability {
        CheckResult::Linearizable => {}
        CheckResult::NotLinearizable(violation) => findings.push(Finding {
            property: Property::Linearizability,
            message: violation.render(&with_expiries),
            ops: violation.stuck.clone(),
        }),
        CheckResult::Unknown(why) => inconclusive.push(InconclusiveReason::SearchBudget {
            budget: SearchBudget::of_message(why),
            message: why.clone(),
        }),
    }

    let status = if !findings.is_empty() {
        Status::Violation
    } else if !inconclusive.is_empty() {
        Status::Inconclusive
    } else {
        Status::Ok
    };
    Verdict {
        status,
        findings,
        linearizability,
        inconclusive,
        coverage: coverage_of(history, &with_expiries, options),
        check_ms: started.elapsed().as_millis(),
        checkers,
        pinned_puts,
    }
}

/// What each checker that ran had to judge (see [`Coverage`]).
fn coverage_of(
    history: &History<Op, Ret>,
    searched: &History<Op, Ret>,
    options: &JudgeOptions,
) -> Vec<Coverage> {
    let records = |kind: &str| {
        history
            .other
            .iter()
            .filter(|record| record["type"] == kind)
            .count()
    };
    let watch_responses = history
        .other
        .iter()
        .filter(|record| record["type"] == "watch" && record["action"] == "response")
        .count();
    let mut coverage = Vec::new();
    for checker in Checker::ALL.into_iter().filter(|c| options.runs(*c)) {
        match checker {
            Checker::Linearizability => coverage.push(Coverage::of(
                "linearizability",
                searched.ops.len(),
                "ops",
                "the history has no operations",
            )),
            Checker::Watch => coverage.push(Coverage::of(
                "watch",
                watch_responses,
                "watch responses",
                "no watch response recorded",
            )),
            Checker::Durability => {
                let final_states = records("final_state");
                coverage.push(Coverage::of(
                    "durability",
                    if final_states > 0 {
                        history.ops.len()
                    } else {
                        0
                    },
                    "ops against the final state",
                    "no final_state record",
                ));
                let bound_s = options.durability.liveness_bound_ns as f64 / 1e9;
                coverage.push(Coverage::of(
                    "liveness",
                    liveness_windows_judged(history, &options.durability),
                    "healed windows",
                    &format!("no whole-cluster window ≥ {bound_s} s with clients working"),
                ));
            }
            Checker::Recipes => coverage.push(Coverage::of(
                "recipes",
                records("recipe"),
                "recipe declarations",
                "no lock or election recipe ran",
            )),
            // The cluster asserts its invariants as it runs; the history carries only breaks, so
            // what was judged is the one run (live marks it not checked: etcd reports none).
            Checker::Raft => coverage.push(Coverage::of("raft", 1, "cluster run", "")),
        }
    }
    coverage
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
    use kvsim_checker::lease_expiry::add_lease_expiries_under_faults;
    use kvsim_checker::observed_puts::pin_observed_puts;
    let mut prepared = history.clone();
    let pinned = pin_observed_puts(&mut prepared);
    add_lease_expiries_under_faults(&mut prepared);
    (prepared, pinned)
}
