//! The runner end to end: a short default-scenario run records every kind of operation, faults,
//! unknown outcomes, watch responses and the final state; one seed gives the same bytes twice.

use kvsim_checker::history::{MemberRole, Outcome};
use kvsim_model::mvcc::Op;
use kvsim_sim::runner::{self, RunError, RunOutput};
use kvsim_sim::scenario::Scenario;
use kvsim_sim::targets::raft_rs::RaftRs;

/// The default scenario, shortened, with faults often enough that a short run sees several.
const SHORT: &str = r#"
description = "short default run for tests"
[workload]
duration_ms = 8000
[faults]
interval_ms = 1200
start_ms = 1000
duration_min_ms = 500
duration_max_ms = 1500
settle_ms = 2000
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
fn short_run_records_every_kind_of_operation_faults_watches_and_final_state() {
    let output = runner::run(&short(), 7).unwrap_or_else(|error| panic!("{error}"));
    let stats = &output.stats;
    for kind in [
        "put",
        "lease_put",
        "get",
        "get_prefix",
        "get_historic",
        "get_serializable",
        "delete",
        "txn_create",
        "txn_cas",
        "txn_multi",
        "lease_grant",
        "lease_keepalive",
        "lease_revoke",
        "lease_ttl",
        "compact",
    ] {
        assert!(
            stats.ops_by_kind.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in {stats:?}"
        );
    }
    assert!(
        stats.ok > stats.ops / 2,
        "most operations succeed: {stats:?}"
    );
    assert!(
        stats.unknown > 0,
        "a leader crash leaves some outcomes unknown: {stats:?}"
    );
    assert!(
        stats.faults_by_kind.get("crash").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert!(
        stats.faults_by_kind.get("restart").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert_eq!(stats.faults_by_kind.get("heal_all"), Some(&1), "{stats:?}");
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

    // Operations are recorded in call order, with return after call, one in flight per client.
    let history = &output.history;
    for pair in history.ops.windows(2) {
        assert!(pair[0].call_ns <= pair[1].call_ns);
    }
    for op in &history.ops {
        assert!(op.return_ns.is_none_or(|return_ns| return_ns >= op.call_ns));
    }
    // After the final heal and settle every member is up and agrees on revision and hash.
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
    let final_records = history
        .other
        .iter()
        .filter(|record| record["type"] == "final_state")
        .count();
    assert_eq!(final_records, 1);
    assert!(output.simulated_ms >= 8000 + 2000);

    // Every answered operation names the member that answered it, in a Raft role and term; a
    // linearizable one was answered by a member that believed it led.
    let served = history.served_by();
    let leaders = history.leaders_elected();
    assert!(!leaders.is_empty(), "the run saw its leaders elected");
    for pair in leaders.windows(2) {
        assert!(pair[0].term < pair[1].term, "one record per term: {pair:?}");
    }
    for op in &history.ops {
        if !matches!(op.outcome, Outcome::Ok { .. }) {
            assert!(
                !served.contains_key(&op.id),
                "op {}: no answer, no server",
                op.id
            );
            continue;
        }
        let Some(by) = served.get(&op.id) else {
            panic!("op {} was answered but names no server", op.id)
        };
        assert!(["n1", "n2", "n3"].contains(&by.node.as_str()), "{by:?}");
        assert!(by.raft_term >= 1, "{by:?}");
        let serializable = matches!(&op.input, Op::Range(range) if range.serializable);
        if !serializable {
            assert_eq!(by.role, Some(MemberRole::Leader), "op {}: {by:?}", op.id);
        }
    }
}

/// A whole-cluster power loss crashes every member at one instant and restarts them all at its
/// heal; nothing acknowledged is lost, so the cluster comes back with every answered write.
#[test]
fn crash_all_takes_down_every_member_at_once_and_restarts_them_all() {
    let source = r#"
        [workload]
        clients = 4
        duration_ms = 6000
        watchers = 0
        [faults]
        interval_ms = 0
        settle_ms = 2000
        [[faults.timeline]]
        at_ms = 2000
        kind = "crash_all"
        torn = true
        duration_ms = 1000
    "#;
    let scenario =
        Scenario::parse("power-loss.toml", source).unwrap_or_else(|error| panic!("{error}"));
    let output = runner::run(&scenario, 5).unwrap_or_else(|error| panic!("{error}"));
    let faults = &output.history.faults;
    let crashed: Vec<(u64, &str)> = faults
        .iter()
        .filter(|fault| fault.kind == "crash")
        .map(|fault| (fault.t_ns, fault.nodes[0].as_str()))
        .collect();
    assert_eq!(crashed.len(), 3, "{faults:?}");
    assert!(
        crashed.iter().all(|(t_ns, _)| *t_ns == crashed[0].0),
        "{crashed:?}"
    );
    assert_eq!(
        crashed.iter().map(|(_, node)| *node).collect::<Vec<_>>(),
        ["n1", "n2", "n3"]
    );
    let restarts = faults
        .iter()
        .filter(|fault| {
            fault.kind == "restart" && fault.t_ns / 1_000_000 == crashed[0].0 / 1_000_000 + 1_000
        })
        .count();
    assert_eq!(restarts, 3, "all restart at the heal: {faults:?}");
    assert!(
        output.invariant_violations.is_empty(),
        "{:?}",
        output.invariant_violations
    );
    let first = &output.final_state[0];
    for state in &output.final_state {
        assert!(state.up);
        assert_eq!(
            (state.revision, state.hash_kv),
            (first.revision, first.hash_kv)
        );
    }
    // Writes were answered after the power came back.
    let back_ns = crashed[0].0 + 1_000_000_000;
    assert!(output.history.ops.iter().any(|op| {
        matches!(op.input, Op::Put(_))
            && matches!(op.outcome, Outcome::Ok { .. })
            && op.call_ns > back_ns
    }));
}

/// Determinism, for every target: the same seed gives the same bytes, another seed other bytes.
#[test]
fn same_seed_gives_identical_history_bytes_and_other_seeds_differ() {
    let targets = kvsim_sim::targets::all();
    assert!(!targets.is_empty());
    for target in targets {
        let mut scenario = short();
        scenario.target = target.name().to_string();
        let run = |seed| {
            runner::run(&scenario, seed)
                .unwrap_or_else(|error| panic!("target {}: {error}", target.name()))
        };
        let first = run(11);
        let second = run(11);
        let bytes = history_bytes(&first);
        assert!(bytes.len() > 10_000, "target {}", target.name());
        assert!(
            bytes == history_bytes(&second),
            "target {}: seed 11 replays byte for byte",
            target.name()
        );
        assert_eq!(runner::summary(&first), runner::summary(&second));
        let other = run(12);
        assert!(
            bytes != history_bytes(&other),
            "target {}: seed 12 is a different run",
            target.name()
        );
    }
}

fn tiny() -> Scenario {
    Scenario::parse(
        "tiny.toml",
        "[workload]\nclients = 3\nduration_ms = 2500\nwatchers = 1\n\
         [faults]\ninterval_ms = 700\nstart_ms = 500\nduration_min_ms = 200\nduration_max_ms = 600\nsettle_ms = 500\n",
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

async fn tiny_simulation() -> usize {
    let scenario = tiny();
    let config = runner::cluster_config(&scenario).expect("valid");
    runner::simulate(scenario, config, &RaftRs)
        .await
        .history
        .ops
        .len()
}

/// madsim's own check: the second run must draw exactly the same random numbers in the same order.
#[test]
fn madsim_determinism_check_passes() {
    let ops =
        madsim::runtime::Runtime::check_determinism(5, madsim::Config::default(), tiny_simulation);
    assert!(ops > 10, "{ops} operations");
}

#[test]
fn write_run_writes_history_and_summary_with_seed_and_knobs() {
    let output = runner::run(&tiny(), 3).unwrap_or_else(|error| panic!("{error}"));
    let dir = std::env::temp_dir().join(format!("kvsim-runner-test-{}", std::process::id()));
    runner::write_run(&dir, &output).expect("writes");
    let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history.jsonl");
    let header: serde_json::Value =
        serde_json::from_str(history.lines().next().expect("header")).unwrap();
    assert_eq!(header["kvsim_history"], 1);
    assert_eq!(header["model"], "mvcc");
    assert_eq!(header["meta"]["seed"], 3);
    assert_eq!(header["meta"]["scenario"]["workload"]["clients"], 3);
    for kind in [
        "\"type\":\"invoke\"",
        "\"type\":\"ok\"",
        "\"type\":\"fault\"",
        "\"type\":\"watch\"",
        "\"type\":\"final_state\"",
    ] {
        assert!(history.contains(kind), "{kind} in history.jsonl");
    }
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).expect("summary.json"),
    )
    .unwrap();
    assert_eq!(summary["seed"], 3);
    assert_eq!(summary["knobs"]["faults"]["interval_ms"], 700);
    assert_eq!(summary["invariants_ok"], true);
    assert_eq!(summary["stats"]["ops"].as_u64(), Some(output.stats.ops));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn invalid_scenario_is_an_error_not_a_panic() {
    let mut scenario = tiny();
    scenario.cluster.nodes = 4;
    let error = runner::run(&scenario, 1).unwrap_err();
    assert_eq!(
        error,
        RunError::Scenario("cluster.nodes = 4: expected one of 1, 3, 5, 7".to_string())
    );
}

/// Every explicit fault kind fires at its `at_ms` (to the millisecond) and is healed after its
/// `duration_ms`; heals and per-node restarts are recorded too.
#[test]
fn timeline_faults_fire_on_time_and_heal_after_their_duration() {
    let source = r#"
        [cluster]
        nodes = 5
        [workload]
        clients = 3
        duration_ms = 6000
        watchers = 0
        [faults]
        interval_ms = 0
        settle_ms = 500
        [[faults.timeline]]
        at_ms = 300
        kind = "isolate_one"
        nodes = [1]
        duration_ms = 200
        [[faults.timeline]]
        at_ms = 700
        kind = "pause"
        nodes = [2, 3]
        duration_ms = 300
        [[faults.timeline]]
        at_ms = 1200
        kind = "packet_loss"
        rate = 0.3
        duration_ms = 200
        [[faults.timeline]]
        at_ms = 1600
        kind = "latency"
        latency_ms = 80
        duration_ms = 200
        [[faults.timeline]]
        at_ms = 2000
        kind = "clock_skew"
        nodes = [4]
        skew_ms = -700
        duration_ms = 200
        [[faults.timeline]]
        at_ms = 2400
        kind = "bridge"
        nodes = [3]
        duration_ms = 200
        [[faults.timeline]]
        at_ms = 2800
        kind = "one_way"
        nodes = [5]
        duration_ms = 200
        [[faults.timeline]]
        at_ms = 3200
        kind = "crash_majority"
        nodes = [1, 2, 3]
        torn = true
        duration_ms = 400
        [[faults.timeline]]
        at_ms = 4000
        kind = "partition_random"
        nodes = [4, 5]
        [[faults.timeline]]
        at_ms = 4500
        kind = "crash_one"
        nodes = [5]
        torn = false
    "#;
    let scenario =
        Scenario::parse("timeline.toml", source).unwrap_or_else(|error| panic!("{error}"));
    let output = runner::run(&scenario, 21).unwrap_or_else(|error| panic!("{error}"));
    let at = |kind: &str, nodes: &[&str]| -> Vec<u64> {
        output
            .history
            .faults
            .iter()
            .filter(|fault| fault.kind == kind && fault.nodes == nodes)
            .map(|fault| fault.t_ns / 1_000_000)
            .collect()
    };
    assert_eq!(at("partition", &["n1"]), [300]);
    assert_eq!(
        at("heal", &[]),
        [500, 2600, 3000],
        "{:?}",
        output.history.faults
    );
    assert_eq!(at("pause", &["n2", "n3"]), [700]);
    assert_eq!(at("resume", &["n2"]), [1000]);
    assert_eq!(at("resume", &["n3"]), [1000]);
    assert_eq!(at("packet_loss", &[]), [1200, 1400]);
    assert_eq!(at("latency", &[]), [1600, 1800]);
    assert_eq!(at("clock_skew", &["n4"]), [2000, 2200]);
    assert_eq!(at("partition", &["n3"]), [2400]);
    assert_eq!(at("partition_one_way", &["n5"]), [2800]);
    for node in ["n1", "n2", "n3"] {
        assert_eq!(at("crash", &[node]), [3200], "{node}");
        assert_eq!(at("restart", &[node]), [3600], "{node}");
    }
    assert_eq!(at("partition", &["n4", "n5"]), [4000]);
    assert_eq!(at("crash", &["n5"]), [4500]);
    // Unhealed faults end with the workload: one heal_all, and a restart record for n5.
    assert_eq!(at("heal_all", &["n1", "n2", "n3", "n4", "n5"]), [6000]);
    assert_eq!(at("restart", &["n5"]), [6000]);
    let crash = output
        .history
        .faults
        .iter()
        .find(|fault| fault.kind == "crash")
        .expect("a crash");
    assert_eq!(crash.detail["torn"], true);
    assert!(
        output.invariant_violations.is_empty(),
        "{:?}",
        output.invariant_violations
    );
    assert!(output.final_state.iter().all(|state| state.up));
}

/// With reads served without ReadIndex (planted `stale_read`), a deposed leader answers reads:
/// the history names it, in its old term, after its successor's election (what the report calls
/// "deposed"). Raft paper §8: a leader must check it has not been deposed before answering a
/// read-only request.
#[test]
fn the_history_names_the_deposed_leader_that_served_a_stale_read() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/deposed-leader.toml"
    );
    let source = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let source = format!("{source}\n[bugs]\nstale_read = true\n");
    let scenario = Scenario::parse(path, &source).unwrap_or_else(|error| panic!("{error}"));
    let output = runner::run(&scenario, 3).unwrap_or_else(|error| panic!("{error}"));
    let history = &output.history;
    let served = history.served_by();
    let leaders = history.leaders_elected();
    let deposed_reads = history
        .ops
        .iter()
        .filter(|op| matches!(&op.input, Op::Range(range) if !range.serializable))
        .filter_map(|op| served.get(&op.id))
        .filter(|by| {
            by.role == Some(MemberRole::Leader)
                && leaders
                    .iter()
                    .any(|leader| leader.t_ns <= by.t_ns && leader.term > by.raft_term)
        })
        .count();
    assert!(
        deposed_reads > 0,
        "a deposed leader answered linearizable reads in this seed"
    );
}
