//! One live run start to finish: clients, watchers and the nemesis against a real etcd cluster
//! for the scenario's duration, then heal everything, let the cluster settle, and read every
//! member's final state, like the simulator's runner (sim/src/runner.rs) does with its nodes.
//!
//! The history has the simulator's shape (operations, `watch`, fault and `final_state` records),
//! with wall-clock times from the start of the workload, so every checker judges it unchanged.
//! Unlike a simulated run it is not reproducible from its seed: the seed fixes what clients ask
//! and which faults the nemesis draws, not how etcd and the OS schedule them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvsim_checker::history::History;
use kvsim_model::mvcc::{Op, Ret};
use kvsim_sim::client::Recorder;
use kvsim_sim::scenario::{Scenario, WorkloadKnobs};
use kvsim_sim::workload::GeneratorContext;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::etcd_process::EtcdCluster;
use super::final_state::{read_final_state, FinalState};
use super::journal::Journal;
use super::keyspace::Keyspace;
use super::nemesis::LiveNemesis;
use super::{client, recipes, watch};

/// What every live client, watcher and the nemesis share.
pub struct LiveShared {
    pub knobs: WorkloadKnobs,
    pub recorder: Recorder,
    /// Client URLs, member `i` is node `n{i+1}` in the history.
    pub endpoints: Vec<String>,
    /// Clients and watchers stop issuing requests at this instant: the scenario's duration (the
    /// faults' window), plus the quiet window when faults can be injected.
    pub deadline: Instant,
    /// The run's prefix, revision and lease-id translation (keyspace.rs).
    pub keyspace: Keyspace,
    revision_seen_max: AtomicI64,
}

impl LiveShared {
    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Time until the deadline, `None` once it has passed.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }

    /// The history's name for member index `member` (0-based): `n1`, `n2`, ...
    pub fn node_name(&self, member: usize) -> String {
        format!("n{}", member + 1)
    }
}

impl GeneratorContext for LiveShared {
    fn knobs(&self) -> &WorkloadKnobs {
        &self.knobs
    }

    fn revision_seen(&self) -> i64 {
        self.revision_seen_max.load(Ordering::Relaxed)
    }

    fn observe_revision(&self, revision: i64) {
        self.revision_seen_max
            .fetch_max(revision, Ordering::Relaxed);
    }
}

/// The seeded random stream of one task: `role` separates clients, watchers and the nemesis, so
/// adding a watcher does not change what the clients draw.
pub fn task_rng(seed: u64, role: u64, index: usize) -> StdRng {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(role.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .wrapping_add(index as u64);
    StdRng::seed_from_u64(mixed)
}

const ROLE_CLIENT: u64 = 1;
const ROLE_WATCHER: u64 = 2;
const ROLE_NEMESIS: u64 = 3;
const ROLE_LOCKER: u64 = 4;
const ROLE_CAMPAIGNER: u64 = 5;

/// Everything a live run produced.
pub struct LiveOutput {
    pub history: History<Op, Ret>,
    pub final_state: FinalState,
    /// Wall time from the start of the workload to the final-state read.
    pub elapsed_ms: u64,
    /// Fault kinds the nemesis could not inject here, with the reason (printed and summarised).
    pub skipped_faults: Vec<String>,
    /// Tasks (clients, watchers) that panicked: a kvsim bug; the history is incomplete.
    pub task_panics: Vec<String>,
    /// Keys outside the run's prefix written during the run (`claim::foreign_writes`; set by
    /// the caller, which knows the cluster).
    pub foreign_writes: usize,
}

/// Runs `scenario` against the members at `endpoints`, under `keyspace`. `cluster` is the
/// spawned cluster the nemesis may kill, pause and partition; `None` (an existing cluster) runs
/// without faults. With a cluster, the clients keep running [`super::QUIET_WINDOW_MS`] after the
/// faults' window (the scenario's duration), so liveness has a healed window to judge.
pub async fn run(
    scenario: &Scenario,
    seed: u64,
    endpoints: Vec<String>,
    keyspace: Keyspace,
    cluster: Option<Arc<Mutex<EtcdCluster>>>,
    partitions_unavailable: Option<String>,
    journal: Journal,
) -> LiveOutput {
    let knobs = scenario.workload.clone();
    let recorder = journal.recorder().clone();
    let started = Instant::now();
    let quiet_ms = if cluster.is_some() {
        super::QUIET_WINDOW_MS
    } else {
        0
    };
    let shared = Arc::new(LiveShared {
        knobs: knobs.clone(),
        recorder: recorder.clone(),
        endpoints: endpoints.clone(),
        deadline: started + Duration::from_millis(knobs.duration_ms + quiet_ms),
        keyspace: keyspace.clone(),
        revision_seen_max: AtomicI64::new(1),
    });
    let saver = tokio::spawn(journal.keep_saving(started, shared.deadline));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..knobs.clients {
        let rng = task_rng(seed, ROLE_CLIENT, index);
        tasks.spawn(client::run_client(index, index, shared.clone(), rng));
    }
    for index in 0..knobs.watchers {
        let rng = task_rng(seed, ROLE_WATCHER, index);
        tasks.spawn(watch::run_watcher(index, index, shared.clone(), rng));
    }
    for index in 0..knobs.lockers {
        let rng = task_rng(seed, ROLE_LOCKER, index);
        tasks.spawn(recipes::run_locker(index, index, shared.clone(), rng));
    }
    for index in 0..knobs.campaigners {
        let rng = task_rng(seed, ROLE_CAMPAIGNER, index);
        tasks.spawn(recipes::run_campaigner(index, index, shared.clone(), rng));
    }
    let mut nemesis = LiveNemesis::new(
        cluster,
        recorder.clone(),
        &scenario.faults,
        endpoints.clone(),
        task_rng(seed, ROLE_NEMESIS, 0),
        partitions_unavailable,
    );
    // Ends with the schedule's heal-all as the faults' window ends, then the quiet window.
    nemesis.run(&shared).await;
    let mut task_panics = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            task_panics.push(error.to_string());
        }
    }
    tokio::time::sleep(Duration::from_millis(scenario.faults.settle_ms)).await;
    let final_state = read_final_state(&endpoints, &knobs, &keyspace).await;
    recorder.other("final_state", final_state.record());
    saver.abort();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    LiveOutput {
        history: recorder.history(),
        final_state,
        elapsed_ms,
        skipped_faults: nemesis.skipped(),
        task_panics,
        foreign_writes: 0,
    }
}
