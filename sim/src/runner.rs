//! One seed of one scenario, start to finish: start the cluster, run clients, watchers and the
//! nemesis for `workload.duration_ms`, heal everything, let the cluster settle, read every node's
//! final state, and hand back the history plus what the Raft invariant checks found.
//!
//! Each run gets a fresh OS thread and a fresh madsim runtime seeded with the seed: no state leaks
//! between seeds run in one process, and the same seed gives the same `history.jsonl`, byte for
//! byte (tests/runner.rs checks it).

use crate::client::{Client, ClientConfig, Recorder};
use crate::cluster::{Cluster, ClusterConfig, NodeFinalState};
use crate::fit::SkippedOpKind;
use crate::nemesis::Nemesis;
use crate::recipes;
use crate::scenario::Scenario;
use crate::target::Target;
use crate::workload::{self, Shared};
use kvsim_checker::history::{History, Outcome};
use kvsim_model::mvcc::{KeyValue, Op, Ret};
use madsim::runtime::{Handle, Runtime};
use madsim::time::{sleep, Instant};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

/// The address of the simulated machine all clients and watchers run on (members are 10.0.0.x).
const CLIENT_HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);

/// How long the run waits for the first leader before the workload starts anyway.
const LEADER_WAIT_MS: u64 = 30_000;

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    pub seed: u64,
    pub scenario: Scenario,
    /// Operations, faults, and (in `other`) the `watch` and `final_state` records.
    pub history: History<Op, Ret>,
    /// Raft / store invariant violations the cluster observed (Election Safety, State Machine
    /// Safety, HashKV agreement), rendered; empty when all held.
    pub invariant_violations: Vec<String>,
    /// Every node's state after the final heal and settle.
    pub final_state: Vec<NodeFinalState>,
    /// Simulated time from the first leader (the run's time 0) to the final-state read.
    pub simulated_ms: u64,
    pub stats: RunStats,
    /// Operation kinds of the mix the target cannot serve, not drawn (see [`crate::fit`]).
    pub skipped_op_kinds: Vec<SkippedOpKind>,
}

/// Counts for the summary (all derived from the history, so deterministic).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
    /// Operations by kind (`put`, `range`, `txn`, ...).
    pub ops_by_kind: BTreeMap<String, u64>,
    /// Fault records by kind (`partition`, `crash`, `heal`, ...).
    pub faults_by_kind: BTreeMap<String, u64>,
    pub watch_responses: u64,
    pub watch_events: u64,
    /// Server responses the client could not map to the model (a server bug if ever above 0).
    pub malformed_responses: u64,
}

/// A run that could not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The scenario is invalid (see [`Scenario::validate`]).
    Scenario(String),
    /// The simulation panicked: a node assertion, or the simulated time limit (a hang).
    Panicked { seed: u64, message: String },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Scenario(message) => write!(f, "invalid scenario: {message}"),
            RunError::Panicked { seed, message } => {
                write!(f, "simulation of seed {seed} panicked: {message}")
            }
        }
    }
}

impl std::error::Error for RunError {}

/// The cluster configuration a scenario asks for.
pub fn cluster_config(scenario: &Scenario) -> Result<ClusterConfig, RunError> {
    let c = &scenario.cluster;
    let config = ClusterConfig {
        nodes: c.nodes,
        tick_ms: c.tick_ms,
        election_tick: c.election_tick,
        heartbeat_tick: c.heartbeat_tick,
        snapshot_entries: c.snapshot_entries,
        fsync_latency_ms: c.fsync_latency_ms,
        bugs: scenario.bugs().map_err(RunError::Scenario)?,
    };
    config.validate().map_err(RunError::Scenario)?;
    Ok(config)
}

/// A generous bound on simulated time: past it the runtime panics, which turns a hang (a task
/// that never finishes) into an error instead of an endless run.
pub fn time_limit(scenario: &Scenario) -> Duration {
    let w = &scenario.workload;
    let op_ms_max = u64::from(w.attempts_max) * (w.request_timeout_ms + w.retry_backoff_ms);
    let watch_ms_max = w.watch_progress_notify_ms + w.request_timeout_ms;
    // The first election, final_state's 20 s wait for convergence, and one more minute of slack.
    let slack_ms = LEADER_WAIT_MS + 20_000 + 60_000;
    Duration::from_millis(
        w.duration_ms
            + op_ms_max
            + watch_ms_max
            + w.think_ms_max
            + scenario.faults.settle_ms
            + slack_ms,
    )
}

/// Runs `seed` of `scenario` on a fresh thread with a fresh madsim runtime.
pub fn run(scenario: &Scenario, seed: u64) -> Result<RunOutput, RunError> {
    scenario.validate().map_err(|invalid| {
        RunError::Scenario(format!(
            "{} = {}: {}",
            invalid.field, invalid.value, invalid.expected
        ))
    })?;
    scenario.assert_validated();
    let config = cluster_config(scenario)?;
    let target = crate::targets::by_name(&scenario.target).map_err(RunError::Scenario)?;
    let (fitted, skipped_op_kinds) = crate::fit::fit(scenario, target).map_err(|invalid| {
        RunError::Scenario(format!(
            "{} = {}: {}",
            invalid.field, invalid.value, invalid.expected
        ))
    })?;
    let scenario = scenario.clone();
    let thread = std::thread::Builder::new()
        .name(format!("kvsim-seed-{seed}"))
        .spawn(move || {
            let mut runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
            runtime.set_time_limit(time_limit(&scenario));
            let simulated = runtime.block_on(simulate(fitted, config, target));
            (scenario, simulated)
        })
        .map_err(|error| RunError::Panicked {
            seed,
            message: format!("cannot spawn the simulation thread: {error}"),
        })?;
    let (scenario, simulated) = thread.join().map_err(|payload| RunError::Panicked {
        seed,
        message: payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_else(|| "(non-string panic payload)".to_string()),
    })?;
    let stats = stats_of(&simulated.history, simulated.malformed_responses);
    Ok(RunOutput {
        seed,
        scenario,
        history: simulated.history,
        invariant_violations: simulated.invariant_violations,
        final_state: simulated.final_state,
        simulated_ms: simulated.simulated_ms,
        stats,
        skipped_op_kinds,
    })
}

/// What the simulation hands back to the thread that started it.
pub struct Simulated {
    pub history: History<Op, Ret>,
    pub invariant_violations: Vec<String>,
    pub final_state: Vec<NodeFinalState>,
    pub simulated_ms: u64,
    pub malformed_responses: u64,
}

/// The whole run, inside a madsim runtime (public for madsim's determinism check in tests).
pub async fn simulate(scenario: Scenario, config: ClusterConfig, target: &dyn Target) -> Simulated {
    let lock_unfenced = config.bugs.lock_unfenced;
    let cluster = Cluster::start(config, target).await;
    let c = &scenario.cluster;
    cluster.set_latency_ms(c.net_latency_min_ms, c.net_latency_max_ms);
    // The run's clock starts once the first leader is elected: the first election is not what a
    // scenario tests, and timeline faults are placed relative to a working cluster. If no leader
    // shows up the clients find out (and record it) themselves.
    let _ = cluster.wait_for_leader(LEADER_WAIT_MS).await;
    let recorder = Recorder::new();

    let w = &scenario.workload;
    let servers: Vec<_> = cluster
        .node_ids()
        .into_iter()
        .map(|id| (id, cluster.client_addr(id)))
        .collect();
    let shared = Arc::new(Shared {
        knobs: w.clone(),
        recorder: recorder.clone(),
        deadline: Instant::now() + Duration::from_millis(w.duration_ms),
        revision_seen_max: AtomicI64::new(1),
    });
    let client_config = ClientConfig {
        request_timeout_ms: w.request_timeout_ms,
        attempts_max: w.attempts_max,
        retry_backoff_ms: w.retry_backoff_ms,
        balancer: w.balancer,
    };
    let host = Handle::current()
        .create_node()
        .name("clients")
        .ip(IpAddr::V4(CLIENT_HOST_IP))
        .build();
    let mut tasks = Vec::new();
    for index in 0..w.clients {
        let (servers, recorder, shared) = (servers.clone(), recorder.clone(), shared.clone());
        tasks.push(host.spawn(async move {
            match Client::connect(servers, recorder, client_config).await {
                Ok(client) => workload::run_client(index, client, shared).await,
                Err(error) => panic!("client {index} cannot bind an endpoint: {error}"),
            }
        }));
    }
    for index in 0..w.watchers {
        let (servers, recorder, shared) = (servers.clone(), recorder.clone(), shared.clone());
        tasks.push(host.spawn(async move {
            match Client::connect(servers, recorder, client_config).await {
                Ok(client) => workload::run_watcher(index, client, shared).await,
                Err(error) => panic!("watcher {index} cannot bind an endpoint: {error}"),
            }
        }));
    }
    for index in 0..w.lockers {
        let (servers, recorder, shared) = (servers.clone(), recorder.clone(), shared.clone());
        tasks.push(host.spawn(async move {
            match Client::connect(servers, recorder, client_config).await {
                Ok(client) => recipes::run_locker(index, client, shared, lock_unfenced).await,
                Err(error) => panic!("locker {index} cannot bind an endpoint: {error}"),
            }
        }));
    }
    for index in 0..w.campaigners {
        let (servers, recorder, shared) = (servers.clone(), recorder.clone(), shared.clone());
        tasks.push(host.spawn(async move {
            match Client::connect(servers, recorder, client_config).await {
                Ok(client) => recipes::run_campaigner(index, client, shared).await,
                Err(error) => panic!("campaigner {index} cannot bind an endpoint: {error}"),
            }
        }));
    }

    let mut nemesis = Nemesis::new(
        &cluster,
        recorder.clone(),
        &scenario.faults,
        &scenario.cluster,
    );
    // Ends with the schedule's heal-all as the workload ends, so operations still in flight can
    // complete.
    nemesis.run(w.duration_ms).await;
    for task in tasks {
        // A join error means the task panicked; the runtime has already failed the run.
        let _ = task.await;
    }
    sleep(Duration::from_millis(scenario.faults.settle_ms)).await;
    let final_state = cluster.final_state().await;
    assert_eq!(
        final_state.len(),
        scenario.cluster.nodes,
        "final state: one entry per member"
    );
    recorder.other(
        "final_state",
        json!({ "nodes": final_state.iter().map(final_state_record).collect::<Vec<_>>() }),
    );
    for (term, leader, at) in cluster.elections() {
        recorder.leader_elected(recorder.ns_at(at), leader, term);
    }
    let invariant_violations: Vec<String> = cluster
        .violations()
        .iter()
        .map(|violation| violation.to_string())
        .collect();
    // In the history too, so that `kvsim check history.jsonl` alone judges the Raft invariants.
    for message in &invariant_violations {
        recorder.other("raft_invariant", json!({ "message": message }));
    }
    let simulated_ms = recorder.now_ns() / 1_000_000;
    Simulated {
        history: recorder.take_history(),
        invariant_violations,
        final_state,
        simulated_ms,
        malformed_responses: recorder.malformed_responses(),
    }
}

/// A node's final state with keys and values as text, the way the history shows them.
fn final_state_record(state: &NodeFinalState) -> serde_json::Value {
    let kvs: Vec<KeyValue> = state
        .kvs
        .iter()
        .map(|kv| KeyValue {
            key: String::from_utf8_lossy(&kv.key).into_owned(),
            value: String::from_utf8_lossy(&kv.value).into_owned(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        })
        .collect();
    json!({
        "node": format!("n{}", state.id),
        "up": state.up,
        "role": state.status.role,
        "term": state.status.term,
        "applied_index": state.status.applied_index,
        "revision": state.revision,
        "compact_revision": state.compact_revision,
        "hash_kv": state.hash_kv,
        "kvs": kvs,
    })
}

/// The summary counts of a history: operations by outcome and kind, faults, watch traffic.
pub fn stats_of(history: &History<Op, Ret>, malformed_responses: u64) -> RunStats {
    let mut stats = RunStats {
        malformed_responses,
        ..RunStats::default()
    };
    for op in &history.ops {
        stats.ops += 1;
        match op.outcome {
            Outcome::Ok { .. } => stats.ok += 1,
            Outcome::Fail { .. } => stats.fail += 1,
            Outcome::Unknown { .. } => stats.unknown += 1,
        }
        *stats
            .ops_by_kind
            .entry(kvsim_model::mvcc::gen::kind_name(&op.input).to_string())
            .or_default() += 1;
    }
    for fault in &history.faults {
        *stats.faults_by_kind.entry(fault.kind.clone()).or_default() += 1;
    }
    for record in &history.other {
        if record["type"] == "watch" && record["action"] == "response" {
            stats.watch_responses += 1;
            stats.watch_events += record["events"]
                .as_array()
                .map_or(0, |events| events.len() as u64);
        }
    }
    stats
}

/// The header's `meta`: the seed beside every knob that shaped the run (TigerBeetle VOPR style),
/// so one line of output is enough to reproduce it.
pub fn meta(output: &RunOutput) -> serde_json::Value {
    json!({
        "seed": output.seed,
        "simulator": "kvsim-sim",
        "target": output.scenario.target,
        "scenario": output.scenario,
    })
}

/// Writes `history.jsonl` (the checker's input; byte-identical for one seed) and `summary.json`
/// (seed, knobs, counts, invariant results, final state) into `dir`, creating it.
pub fn write_run(dir: &Path, output: &RunOutput) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut history = io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?);
    write_history(&mut history, output)?;
    history.flush()?;
    let summary = summary(output);
    let mut file = io::BufWriter::new(std::fs::File::create(dir.join("summary.json"))?);
    serde_json::to_writer_pretty(&mut file, &summary)?;
    file.write_all(b"\n")?;
    file.flush()
}

/// The history in kvsim's JSONL format (docs/history-format.md).
pub fn write_history<W: Write>(w: &mut W, output: &RunOutput) -> io::Result<()> {
    kvsim_checker::format::jsonl::write_jsonl(w, "mvcc", &meta(output), &output.history)
}

/// The summary as JSON.
pub fn summary(output: &RunOutput) -> serde_json::Value {
    json!({
        "seed": output.seed,
        "knobs": output.scenario,
        "simulated_ms": output.simulated_ms,
        "stats": output.stats,
        "skipped_op_kinds": output.skipped_op_kinds,
        "invariants_ok": output.invariant_violations.is_empty(),
        "invariant_violations": output.invariant_violations,
        "final_state": output.final_state.iter().map(|state| json!({
            "node": format!("n{}", state.id),
            "up": state.up,
            "revision": state.revision,
            "compact_revision": state.compact_revision,
            "hash_kv": state.hash_kv,
            "keys": state.kvs.len(),
        })).collect::<Vec<_>>(),
    })
}
