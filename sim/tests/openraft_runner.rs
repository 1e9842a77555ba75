//! The openraft target through the runner (`target = "openraft"`): a short run with faults records
//! operations, watches and a converged final state; the same seed gives the same bytes.

use kvsim_sim::runner::{self, RunOutput};
use kvsim_sim::scenario::Scenario;

const SHORT: &str = r#"
description = "short openraft run for tests"
target = "openraft"
[workload]
duration_ms = 8000
[faults]
interval_ms = 1200
start_ms = 1000
duration_min_ms = 500
duration_max_ms = 1500
settle_ms = 3000
[[faults.timeline]]
at_ms = 3000
kind = "crash_leader"
duration_ms = 1000
"#;

fn short() -> Scenario {
    Scenario::parse("short.toml", SHORT).unwrap_or_else(|error| panic!("{error}"))
}

fn history_bytes(output: &RunOutput) -> Vec<u8> {
    let mut bytes = Vec::new();
    runner::write_history(&mut bytes, output).expect("writing to memory");
    bytes
}

#[test]
fn a_short_openraft_run_records_operations_faults_and_a_converged_final_state() {
    let output = runner::run(&short(), 7).unwrap_or_else(|error| panic!("{error}"));
    let stats = &output.stats;
    for kind in [
        "put",
        "get",
        "get_prefix",
        "get_historic",
        "get_serializable",
        "delete",
        "txn_create",
        "txn_cas",
        "compact",
    ] {
        assert!(
            stats.ops_by_kind.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in {stats:?}"
        );
    }
    assert_eq!(
        stats.ops_by_kind.get("lease_grant"),
        None,
        "no leases: {stats:?}"
    );
    assert!(
        stats.ok > stats.ops / 2,
        "most operations succeed: {stats:?}"
    );
    assert!(
        stats.faults_by_kind.get("crash").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert!(
        stats.watch_responses > 0 && stats.watch_events > 0,
        "{stats:?}"
    );
    assert_eq!(stats.malformed_responses, 0);
    assert!(
        output.invariant_violations.is_empty(),
        "{:?}",
        output.invariant_violations
    );
    assert_eq!(output.final_state.len(), 3);
    let first = &output.final_state[0];
    for state in &output.final_state {
        assert!(state.up, "n{} is up", state.id);
        assert_eq!(
            (state.revision, state.hash_kv),
            (first.revision, first.hash_kv),
            "n{}",
            state.id
        );
    }
}

#[test]
fn the_same_seed_gives_identical_openraft_history_bytes() {
    let scenario = short();
    let first = runner::run(&scenario, 11).unwrap_or_else(|error| panic!("{error}"));
    let second = runner::run(&scenario, 11).unwrap_or_else(|error| panic!("{error}"));
    let bytes = history_bytes(&first);
    assert!(bytes.len() > 10_000);
    assert!(
        bytes == history_bytes(&second),
        "seed 11 replays byte for byte"
    );
    let other = runner::run(&scenario, 12).unwrap_or_else(|error| panic!("{error}"));
    assert!(bytes != history_bytes(&other), "seed 12 is a different run");
}
