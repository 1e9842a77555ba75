//! The system under test, as the harness sees it.
//!
//! A **target** is a Raft key-value store that kvsim can put under its simulation: kvsim's own
//! raft-rs store (`targets/raft_rs`), the openraft one (`targets/openraft`), or a user's
//! (docs/bring-your-own-store.md). The harness (scenario, workload, clients and recorder, nemesis, runner, checkers) talks
//! to a store only through this module; a store talks to the simulated world only through what its
//! [`MemberEnv`] hands it. That is the madsim way of testing a store: its production code path runs
//! unchanged on a seeded runtime, and only the runtime (time, tasks, randomness, network, disk) is
//! simulated.
//!
//! # The caller's contract (what a target must do)
//!
//! - **Client API.** Member `id` serves [`crate::rpc::KvCall`] and watch streams ([`crate::rpc::ServerWatchStream`]) on
//!   madsim's network at [`member_client_addr`]`(id)`, with etcd v3 semantics (see `proto.rs` and
//!   ARCHITECTURE.md, "Client protocol"). A request it cannot serve now (no leader, not the leader
//!   and no forwarding) answers an error; a request whose outcome it cannot know simply never
//!   answers (the client times out and records the outcome as unknown).
//! - **Peers.** Members talk to each other only through one [`PeerNet`] built from
//!   [`ClusterEnv::links`]: partitions, loss and latency act on it.
//! - **Durability.** A member keeps what must survive a crash so that [`Member::power_loss`] can drop
//!   exactly what was written but not yet synced (a torn power loss keeps a random prefix of it).
//!   Everything else lives in memory that a crash loses: the harness kills the member's madsim node,
//!   which drops all its tasks at once.
//! - **Clock.** The only wall clock a member reads is [`MemberEnv::clock`], which the nemesis skews.
//!   Randomness comes from `madsim::rand` only; iteration order never depends on a `HashMap` seed.
//! - **Observation.** [`Member::status`] and [`Member::store_state`] answer at any moment, even while
//!   the member is down (its last state). Raft safety facts go to [`MemberEnv::invariants`] as they
//!   happen (a leader elected in a term, an entry applied at an index).
//! - **Capabilities.** [`Target::capabilities`] lists the etcd features and planted bugs the store has;
//!   the runner refuses (exit 2) a scenario that needs more, before simulating anything.
//!
//! # Architecture Invariant
//!
//! A target's code uses the harness only through `crate::target` (and the wire types `crate::proto`
//! and `crate::rpc` it re-exports); it shares no code with `kvsim-model` nor with another target.
//! `sim/tests/architecture.rs` checks the `use` lines.

pub use crate::bugs::{Bug, Bugs};
pub use crate::net::{Links, PeerNet, PeerNetStats};
pub use crate::node_status::{fnv1a, InvariantLog, InvariantViolation, NodeStatus, Role};
pub use crate::proto;
pub use crate::rpc;
/// The `--paranoid` switch's assertion (the process-wide switch is the one thing a target takes
/// from `kvsim-model`: it only reads, and holds no model logic).
pub use kvsim_model::paranoid_assert;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

/// A store kvsim can simulate.
pub trait Target: Send + Sync {
    /// The name scenarios and `--target` use.
    fn name(&self) -> &'static str;

    /// What the store implements; the workload never asks for anything else.
    fn capabilities(&self) -> Capabilities;

    /// The planted bugs this store can switch on.
    fn planted_bugs(&self) -> Vec<Bug>;

    /// Builds members `env.members` (called once per run, inside the simulation, before any boot).
    /// The members outlive their incarnations: the harness boots, kills and reboots them.
    fn members(&self, env: &ClusterEnv) -> Vec<Arc<dyn Member>>;
}

/// One member of a target's cluster, across its incarnations.
pub trait Member: Send + Sync {
    fn id(&self) -> u64;

    /// The body of the member's madsim node: boots from what survived on its disk and serves until
    /// the harness kills the node. Called at the first start and at every restart.
    fn boot(&self) -> Pin<Box<dyn Future<Output = ()>>>;

    /// Power loss (the harness has just killed the node): drop every write not yet synced; if `torn`,
    /// keep a random prefix of them (drawn from `rng`).
    fn power_loss(&self, torn: bool, rng: &mut dyn madsim::rand::RngCore);

    /// Raft status as last published by the running incarnation.
    fn status(&self) -> NodeStatus;

    /// The state machine's current (or, while down, last) state.
    fn store_state(&self) -> StoreState;

    /// etcd's HashKV of the state machine at `revision`, or `None` if it is compacted or in the future.
    fn hash_kv(&self, revision: i64) -> Option<u64>;

    /// Writes waiting for a sync (for reports and tests).
    fn unsynced_writes(&self) -> usize;
}

/// A member's MVCC state, read by the harness at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreState {
    pub revision: i64,
    pub compact_revision: i64,
    /// Live keys, sorted by key.
    pub kvs: Vec<proto::Kv>,
}

/// etcd features a target may lack. The workload draws only operations whose feature is present, and
/// the runner refuses a scenario that names an operation, fault or checker the target cannot serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Lease grant / revoke / keep-alive / time-to-live, puts attached to a lease, expiry.
    pub leases: bool,
    /// Watch from a revision.
    pub watch: bool,
    /// Compaction of old revisions.
    pub compaction: bool,
    /// Multi-operation transactions with compares.
    pub txn: bool,
    /// Serializable (local, possibly stale) reads as well as linearizable ones.
    pub serializable_reads: bool,
}

impl Capabilities {
    /// Everything etcd 3.4 has that kvsim tests.
    pub const ETCD: Capabilities = Capabilities {
        leases: true,
        watch: true,
        compaction: true,
        txn: true,
        serializable_reads: true,
    };

    /// The features this target lacks, by their scenario name.
    pub fn missing(&self) -> Vec<Feature> {
        Feature::ALL
            .iter()
            .copied()
            .filter(|f| !f.present_in(self))
            .collect()
    }
}

/// One entry of [`Capabilities`], named as in scenario files and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    Leases,
    Watch,
    Compaction,
    Txn,
    SerializableReads,
}

impl Feature {
    pub const ALL: [Feature; 5] = [
        Feature::Leases,
        Feature::Watch,
        Feature::Compaction,
        Feature::Txn,
        Feature::SerializableReads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Leases => "leases",
            Feature::Watch => "watch",
            Feature::Compaction => "compaction",
            Feature::Txn => "txn",
            Feature::SerializableReads => "serializable_reads",
        }
    }

    pub fn present_in(self, capabilities: &Capabilities) -> bool {
        match self {
            Feature::Leases => capabilities.leases,
            Feature::Watch => capabilities.watch,
            Feature::Compaction => capabilities.compaction,
            Feature::Txn => capabilities.txn,
            Feature::SerializableReads => capabilities.serializable_reads,
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Raft timing, in etcd's terms: a tick is the unit; elections and heartbeats count ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftTiming {
    pub tick_ms: u64,
    /// Base election timeout in ticks; each boot draws its own in [et, 2 et) (etcd's randomization).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
}

impl RaftTiming {
    pub fn election_timeout_ms(&self) -> u64 {
        self.tick_ms * self.election_tick as u64
    }

    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.tick_ms * self.heartbeat_tick as u64
    }
}

/// What the harness gives a target to build its cluster from.
#[derive(Clone)]
pub struct ClusterEnv {
    /// Member ids, 1..=N.
    pub members: Vec<u64>,
    pub timing: RaftTiming,
    /// Snapshot (and compact the Raft log) every this many applied entries; 0 = never.
    pub snapshot_entries: u64,
    /// How long one sync of the member's disk takes.
    pub fsync_latency_ms: u64,
    /// Planted bugs switched on for this run (only ones in the target's `planted_bugs`).
    pub bugs: Bugs,
    /// The peer network's links; build the cluster's one [`PeerNet`] from it.
    pub links: Links,
    /// Each member's clock, by position in `members`.
    pub clocks: Vec<Clock>,
    /// Each member's disk stall switch, by position in `members`.
    pub disk_stalls: Vec<DiskStall>,
    /// Where members report Raft safety facts.
    pub invariants: Invariants,
}

impl ClusterEnv {
    /// Member `id`'s clock.
    pub fn clock(&self, id: u64) -> Clock {
        self.clocks[self.position(id)].clone()
    }

    /// Member `id`'s disk stall switch: await [`DiskStall::passed`] before an fsync completes.
    pub fn disk_stall(&self, id: u64) -> DiskStall {
        self.disk_stalls[self.position(id)].clone()
    }

    /// Where member `id` is in `members` (and in every per-member list).
    fn position(&self, id: u64) -> usize {
        self.members
            .iter()
            .position(|&m| m == id)
            .unwrap_or_else(|| panic!("no member n{id}"))
    }
}

/// A member's disk as the nemesis holds it (fault `disk_stall_leader`): while it is stalled no fsync
/// completes, as with a device that stops answering (a failing SSD, a saturated cloud volume);
/// writes still land in the page cache, and a crash loses them as usual. A target awaits
/// [`DiskStall::passed`] in its fsync path, after the write and before the data counts as durable;
/// that is all it takes for the fault to apply to it. It survives restarts (the disk is hardware).
///
/// Why this fault: a leader blocked in fsync stops its Raft loop (no heartbeats, so the others
/// elect a new leader) but not its other tasks; whatever a store serves outside the Raft loop
/// (etcd's lease renewals, etcd#15247) is then served by a deposed leader that cannot step down.
#[derive(Clone, Debug, Default)]
pub struct DiskStall {
    inner: Arc<DiskStallInner>,
}

#[derive(Debug, Default)]
struct DiskStallInner {
    stalled: Mutex<bool>,
    /// `tokio::sync::Notify`, not `watch`: madsim-safe (no unseeded waker choice).
    released: tokio::sync::Notify,
}

impl DiskStall {
    pub fn set_stalled(&self, stalled: bool) {
        *lock(&self.inner.stalled) = stalled;
        if !stalled {
            self.inner.released.notify_waiters();
        }
    }

    pub fn is_stalled(&self) -> bool {
        *lock(&self.inner.stalled)
    }

    /// Returns once the disk is not stalled (at once if it is not).
    pub async fn passed(&self) {
        loop {
            // Created before the check: a release between the check and the await still wakes it.
            let released = self.inner.released.notified();
            if !self.is_stalled() {
                return;
            }
            released.await;
        }
    }
}

/// A member's wall clock: simulated time since the run started, plus a skew the nemesis sets. It
/// survives restarts (a machine's clock does).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    skew_ms: Arc<Mutex<i64>>,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        let elapsed_ms = madsim::time::TimeHandle::current().elapsed().as_millis();
        i64::try_from(elapsed_ms)
            .unwrap_or(i64::MAX)
            .saturating_add(*lock(&self.skew_ms))
    }

    pub fn skew_ms(&self) -> i64 {
        *lock(&self.skew_ms)
    }

    pub fn set_skew_ms(&self, skew_ms: i64) {
        *lock(&self.skew_ms) = skew_ms;
    }
}

/// The run's log of Raft safety facts, shared by every member (clones share it).
#[derive(Clone, Debug, Default)]
pub struct Invariants {
    log: Arc<Mutex<InvariantLog>>,
    /// `(term, leader, when)` for the first leader seen in each term, in the order seen: the
    /// history's `leader` records (a report names a deposed leader by them).
    elections: Arc<Mutex<Vec<(u64, u64, madsim::time::Instant)>>>,
}

impl Invariants {
    /// Election Safety: at most one leader per term (Raft §5.2). Records a violation otherwise.
    /// A member may report the same election more than once; the first report counts.
    pub fn leader_elected(&self, term: u64, leader: u64) {
        let mut log = lock(&self.log);
        let first = log.leader_of(term).is_none();
        log.record_leader(term, leader);
        if first {
            lock(&self.elections).push((term, leader, madsim::time::Instant::now()));
        }
    }

    /// The first leader of each term and when it was seen, in the order seen.
    pub fn elections(&self) -> Vec<(u64, u64, madsim::time::Instant)> {
        lock(&self.elections).clone()
    }

    /// State Machine Safety: every member applies the same entry at an index (Raft §5.4.3); `hash`
    /// identifies the entry's payload. Records a violation otherwise.
    pub fn entry_applied(&self, member: u64, index: u64, term: u64, hash: u64) {
        lock(&self.log).record_applied(member, index, term, hash);
    }

    /// A safety violation the target found itself (e.g. its revision went back).
    pub fn violated(&self, violation: InvariantViolation) {
        lock(&self.log).record(violation);
    }

    pub fn violations(&self) -> Vec<InvariantViolation> {
        lock(&self.log).violations().to_vec()
    }

    pub fn leaders(&self) -> Vec<(u64, u64)> {
        lock(&self.log).leaders()
    }

    pub fn committed_entries(&self) -> usize {
        lock(&self.log).committed_entries()
    }
}

/// Member `id` lives at 10.0.0.{id}; clients use other addresses.
pub fn member_ip(id: u64) -> IpAddr {
    assert!(
        (1..=254).contains(&id),
        "member id {id} out of range 1..=254"
    );
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8))
}

/// Where clients reach member `id`.
pub fn member_client_addr(id: u64) -> SocketAddr {
    SocketAddr::new(member_ip(id), rpc::NODE_CLIENT_PORT)
}

/// Locks a mutex shared inside the simulation. Poisoning only follows a panic, which already ends
/// the run.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
