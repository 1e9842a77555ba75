//! Linearizability checking: is there a total order of the history's operations that respects
//! real time (Herlihy & Wing 1990) and that the sequential model accepts?
//!
//! Entry point: [`check`]. The search itself is in `wgl.rs`; `zobrist.rs` explains the memo key.
//! Verdicts are deterministic: `Linearizable` and `NotLinearizable` never depend on timing; only
//! running out of budget (time, memo size) gives `Unknown`, never a wrong verdict.

mod absences;
mod pin;
mod read_from;
mod resources;
mod violation;
mod wgl;
mod zobrist;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use kvsim_model::{PartitionKey, Spec};
use serde::Serialize;

pub use violation::Violation;

use crate::history::{History, Operation};

/// Limits on one check. `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock time for the whole check (all partitions together).
    pub timeout: Option<Duration>,
    /// Largest number of memoized search nodes (per partition); ~64 bytes each.
    pub memo_entries_max: Option<usize>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Check each [`Spec::partition_key`] sub-history on its own (P-compositionality: a history is
    /// linearizable iff every per-object sub-history is). Ignored when some operation has no key.
    pub partition: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "detail", rename_all = "snake_case")]
pub enum CheckResult {
    Linearizable,
    NotLinearizable(Violation),
    /// The budget ran out first; the string says which limit (it begins `timed out` or `memo`),
    /// the flag that raises it, and how far the search got (answered operations in the longest
    /// linearizable prefix found, and how many were left).
    Unknown(String),
}

/// Work done, for benchmarks and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Search nodes entered, over all partitions.
    pub steps: u64,
    /// Largest memo of any partition.
    pub memo_entries_max: usize,
    /// Sub-histories checked (1 when not partitioned).
    pub partitions: usize,
}

/// Checks `history` against the model starting in state `init`.
pub fn check<S>(
    history: &History<S::Op, S::Ret>,
    init: S,
    budget: &Budget,
    opts: &CheckOptions,
) -> CheckResult
where
    S: Spec,
    S::Op: Clone + Debug,
    S::Ret: Clone + Debug,
{
    check_with_stats(history, init, budget, opts).0
}

/// [`check`], also returning how much work the search did.
pub fn check_with_stats<S>(
    history: &History<S::Op, S::Ret>,
    init: S,
    budget: &Budget,
    opts: &CheckOptions,
) -> (CheckResult, Stats)
where
    S: Spec,
    S::Op: Clone + Debug,
    S::Ret: Clone + Debug,
{
    let limits = Limits::start(budget);
    let mut stats = Stats::default();
    let recorded: Vec<&Operation<S::Op, S::Ret>> = history.ops.iter().collect();
    // Unknown-outcome writes that an answer proves applied become answered (`pin.rs`): the
    // same verdict, without trying every place for them.
    let pinned = pin::pin_observed_writes(&recorded, &init);
    let all: Vec<&Operation<S::Op, S::Ret>> = match &pinned {
        Some(ops) => ops.iter().collect(),
        None => recorded,
    };
    let parts = if opts.partition {
        split::<S>(&all)
    } else {
        None
    };
    let Some(parts) = parts else {
        stats.partitions = 1;
        let result = wgl::PartCheck::new(all, init).advance(&limits, None, &mut stats);
        assert!(
            result.is_some(),
            "search: no step cap, so a verdict or Unknown"
        );
        let result = result.unwrap_or_else(|| CheckResult::Unknown("search stopped".into()));
        return (result, stats);
    };
    stats.partitions = parts.len();
    // Parts are checked in rounds of growing step caps, like porcupine's parallel partitions that
    // stop as soon as one fails: a part that is quick to refute should not wait behind a part
    // that is slow to explore. A part that reaches the cap pauses and later continues where it
    // stopped, so the rounds cost no extra steps — unless the paused parts' memos together
    // would exceed `PAUSED_MEMO_ENTRIES_MAX`: then a part's search is dropped and re-run from
    // scratch next round, which with caps growing 8x costs at most 1/7 more steps. Step counts
    // and memo sizes (not time) decide all this, so verdicts stay deterministic.
    let mut undecided: Vec<(PartitionKey, wgl::PartCheck<S>)> = parts
        .into_iter()
        .map(|(key, ops)| (key, wgl::PartCheck::new(ops, init.clone())))
        .collect();
    let mut unknown: Option<String> = None;
    let mut steps_cap = Some(PARTITION_FIRST_ROUND_STEPS);
    while !undecided.is_empty() {
        let mut still = Vec::new();
        let mut paused_memo_entries = 0usize;
        for (key, mut part) in undecided {
            match part.advance(&limits, steps_cap, &mut stats) {
                None => {
                    paused_memo_entries += part.memo_len();
                    if paused_memo_entries > PAUSED_MEMO_ENTRIES_MAX {
                        paused_memo_entries -= part.memo_len();
                        part.discard_progress();
                    }
                    still.push((key, part));
                }
                Some(CheckResult::Linearizable) => {}
                Some(CheckResult::NotLinearizable(mut violation)) => {
                    violation.partition = Some(key);
                    return (CheckResult::NotLinearizable(violation), stats);
                }
                // Every part is still tried: a later one may prove a violation, a definite verdict.
                Some(CheckResult::Unknown(why)) => {
                    // The budget's words first: `kvsim` classifies the budget by them.
                    unknown.get_or_insert_with(|| format!("{why} (partition {key:?})"));
                }
            }
        }
        undecided = still;
        steps_cap = steps_cap
            .and_then(|cap| cap.checked_mul(8))
            .filter(|cap| *cap <= PARTITION_LAST_ROUND_STEPS);
    }
    let result = unknown.map_or(CheckResult::Linearizable, CheckResult::Unknown);
    (result, stats)
}

/// Step cap of the first round over partitions, and the largest cap before rounds stop capping.
const PARTITION_FIRST_ROUND_STEPS: u64 = 1 << 14;
const PARTITION_LAST_ROUND_STEPS: u64 = 1 << 26;
/// Largest number of memo entries that paused parts keep between rounds, all parts together
/// (~32 bytes each, so ~100 MB with the hash table's slack).
const PAUSED_MEMO_ENTRIES_MAX: usize = 1 << 21;

/// One partition: its key and its operations.
type Part<'a, I, O> = (PartitionKey, Vec<&'a Operation<I, O>>);

/// Groups operations by partition key, in key order (deterministic); `None` if any op has none.
fn split<'a, S>(ops: &[&'a Operation<S::Op, S::Ret>]) -> Option<Vec<Part<'a, S::Op, S::Ret>>>
where
    S: Spec,
    S::Op: Clone + Debug,
    S::Ret: Clone + Debug,
{
    let mut parts: BTreeMap<PartitionKey, Vec<_>> = BTreeMap::new();
    for op in ops {
        parts
            .entry(S::partition_key(&op.input)?)
            .or_default()
            .push(*op);
    }
    Some(parts.into_iter().collect())
}

/// A running budget.
pub(crate) struct Limits {
    started: Instant,
    timeout: Option<Duration>,
    memo_entries_max: Option<usize>,
}

impl Limits {
    fn start(budget: &Budget) -> Self {
        Self {
            started: Instant::now(),
            timeout: budget.timeout,
            memo_entries_max: budget.memo_entries_max,
        }
    }

    /// Why the search must stop now, if it must. Reads the clock only every `clock_every` steps.
    pub(crate) fn exceeded(
        &self,
        steps: u64,
        clock_every: u64,
        memo_entries: usize,
    ) -> Option<String> {
        if let Some(max) = self.memo_entries_max {
            if memo_entries > max {
                return Some(format!(
                    "memo reached {memo_entries} entries (budget {max}; raise it with \
                     `--memory-max`)"
                ));
            }
        }
        if let Some(timeout) = self.timeout {
            if steps % clock_every == 1 && self.started.elapsed() > timeout {
                // The flags of the commands that check: `kvsim check` has `--timeout`, the
                // commands that run seeds (run, fuzz, replay, bugs, live) `--check-timeout`.
                return Some(format!(
                    "timed out after {:.3} s (raise it with `--timeout`, or `--check-timeout` \
                     when running seeds)",
                    timeout.as_secs_f64()
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
