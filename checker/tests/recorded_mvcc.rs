//! Recorded MVCC histories that once made the search run out of budget (vendored in
//! `checker/tests/data/mvcc`, see its README): each must now be decided, quickly and rightly.
//! They are prepared as `kvsim` prepares a run's history for the search (observed unknown puts
//! pinned, synthetic lease expiries with the clock error the faults imply).

use std::path::Path;
use std::time::{Duration, Instant};

use kvsim_checker::format::jsonl::read_jsonl;
use kvsim_checker::history::History;
use kvsim_checker::lease_expiry::add_lease_expiries_under_faults;
use kvsim_checker::observed_puts::pin_observed_puts;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::mvcc::{MvccModel, Op, Ret};

fn prepared(name: &str) -> History<Op, Ret> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mvcc")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (vendored in the repository)", path.display()));
    let (_, mut history) = read_jsonl::<Op, Ret>(name, &text, "mvcc").expect("a kvsim history");
    pin_observed_puts(&mut history);
    add_lease_expiries_under_faults(&mut history);
    history
}

/// `kvsim run --scenario scenarios/default.toml --seed 177` (watch records and the final state
/// left out): 1673 ops, 53 of them unknown, most from two leader isolations and a majority crash.
/// Revisions 546..554 were made only by unknown-outcome writes, and the search tried every way
/// of filling them, each refuted only at revision 556 or later: `unknown` after 60 s (225 s to
/// decide). Two rules cut it to a fraction of a second: a range showing a key version the
/// store has already passed is dead at once (`Spec::read_refuted`), and a txn whose answer
/// shows a write ran at its header's revision minus one (`MvccModel::revision_before_max`).
#[test]
fn default_seed_177_is_linearizable_within_seconds() {
    let history = prepared("default-seed-177.jsonl");
    let budget = Budget {
        timeout: Some(Duration::from_secs(20)),
        memo_entries_max: None,
    };
    let started = Instant::now();
    let (result, stats) = check_with_stats(
        &history,
        MvccModel::default(),
        &budget,
        &CheckOptions { partition: false },
    );
    assert_eq!(
        result,
        CheckResult::Linearizable,
        "after {:?} and {} steps",
        started.elapsed(),
        stats.steps
    );
    // Was hundreds of millions of steps' worth of budget; a few thousand now.
    assert!(stats.steps < 1_000_000, "{} search steps", stats.steps);
}
