//! The second target: an etcd-like KV store built on crates.io `openraft` 0.9 instead of kvsim's
//! raft-rs store, sharing no code with it (nor with `kvsim-model`).
//!
//! - [`runtime`]: openraft's `AsyncRuntime` on madsim.
//! - [`network`]: openraft's RPCs as request / reply datagrams on the cluster's `PeerNet`.
//! - [`disk`], [`store`]: the simulated disk, openraft's storage v2 over it (log and vote durable
//!   after a sync; state machine in memory, rebuilt at boot from the last snapshot plus openraft's
//!   re-apply of the committed log).
//! - [`mvcc`]: the state machine, an etcd v3 MVCC store written for this target.
//! - [`server`]: the client service (`KvCall`, watch streams).
//!
//! Membership: every member calls `Raft::initialize` with the full member set when it boots with an
//! empty disk. openraft accepts the same initial membership on every node (and refuses it once a
//! node has a log or a vote), so no member is special: the cluster forms even if member 1 is slow
//! or down, and a member whose disk lost everything rejoins with the same configuration.
//!
//! Elections: one leader per term (feature `single-term-leader`); each incarnation starts at a
//! random phase of openraft's tick and a candidate that stays one backs off for a random time
//! (`break_split_votes`), because openraft 0.9 draws an election timeout only once per `Raft`.
//! Snapshots every `snapshot_entries` applied entries (none if 0), kept on the disk; they travel
//! to a lagging follower as one datagram (`full_snapshot`).
//!
//! Planted bugs: `stale_read`, `ack_before_commit`, `lost_fsync`, `watch_gap`, `watch_duplicate`
//! ([`Target::planted_bugs`]).

pub mod disk;
pub mod mvcc;
pub mod network;
pub mod runtime;
pub mod server;
pub mod store;
pub mod types;

use crate::target::{
    lock, member_client_addr, Bugs, Capabilities, Clock, ClusterEnv, DiskStall, Invariants, Member,
    NodeStatus, PeerNet, RaftTiming, Role, StoreState, Target,
};
use disk::Disk;
use madsim::rand::Rng;
use network::{Network, PeerMsg, Pending};
use openraft::{ServerState, SnapshotPolicy};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{LogMem, LogStore, Machine, StateMachine, Syncer};
use tokio::sync::Notify;

/// The openraft target.
pub struct OpenRaft;

impl Target for OpenRaft {
    fn name(&self) -> &'static str {
        "openraft"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            leases: false,
            ..Capabilities::ETCD
        }
    }

    fn planted_bugs(&self) -> Vec<crate::target::Bug> {
        use crate::target::Bug;
        vec![
            Bug::StaleRead,
            Bug::AckBeforeCommit,
            Bug::LostFsync,
            Bug::WatchGap,
            Bug::WatchDuplicate,
        ]
    }

    fn members(&self, env: &ClusterEnv) -> Vec<Arc<dyn Member>> {
        let net: PeerNet<PeerMsg> = PeerNet::new(&env.links);
        env.members
            .iter()
            .map(|&id| {
                Arc::new(OpenRaftMember {
                    id,
                    members: env.members.clone(),
                    timing: env.timing,
                    snapshot_entries: env.snapshot_entries,
                    fsync_latency_ms: env.fsync_latency_ms,
                    bugs: env.bugs,
                    net: net.clone(),
                    clock: env.clock(id),
                    disk_stall: env.disk_stall(id),
                    invariants: env.invariants.clone(),
                    disk: Disk::new(env.bugs.lost_fsync),
                    state: Arc::new(Mutex::new(MemberState::new(id))),
                }) as Arc<dyn Member>
            })
            .collect()
    }
}

/// What the harness reads of a member, kept across incarnations (its last state while down).
#[derive(Debug)]
pub struct MemberState {
    pub status: NodeStatus,
    pub machine: Machine,
}

impl MemberState {
    fn new(id: u64) -> MemberState {
        MemberState {
            status: NodeStatus {
                id,
                ..NodeStatus::default()
            },
            machine: Machine::default(),
        }
    }

    /// Copies the state machine's progress into the status.
    pub fn publish_machine(&mut self) {
        self.status.applied_index = self.machine.last_applied.map_or(0, |l| l.index);
        self.status.revision = self.machine.mvcc.revision();
        self.status.compact_revision = self.machine.mvcc.compact_revision();
    }
}

/// One openraft member.
pub struct OpenRaftMember {
    id: u64,
    members: Vec<u64>,
    timing: RaftTiming,
    snapshot_entries: u64,
    fsync_latency_ms: u64,
    bugs: Bugs,
    net: PeerNet<PeerMsg>,
    /// Unused: without leases nothing in this target reads a wall clock.
    #[allow(dead_code)]
    clock: Clock,
    disk_stall: DiskStall,
    invariants: Invariants,
    disk: Disk,
    state: Arc<Mutex<MemberState>>,
}

/// Everything one incarnation needs (the member's parts, cloned).
#[derive(Clone)]
struct Incarnation {
    id: u64,
    members: Vec<u64>,
    timing: RaftTiming,
    snapshot_entries: u64,
    fsync_latency_ms: u64,
    bugs: Bugs,
    net: PeerNet<PeerMsg>,
    invariants: Invariants,
    disk: Disk,
    disk_stall: DiskStall,
    state: Arc<Mutex<MemberState>>,
}

impl Member for OpenRaftMember {
    fn id(&self) -> u64 {
        self.id
    }

    fn boot(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let incarnation = Incarnation {
            id: self.id,
            members: self.members.clone(),
            timing: self.timing,
            snapshot_entries: self.snapshot_entries,
            fsync_latency_ms: self.fsync_latency_ms,
            bugs: self.bugs,
            net: self.net.clone(),
            invariants: self.invariants.clone(),
            disk: self.disk.clone(),
            disk_stall: self.disk_stall.clone(),
            state: self.state.clone(),
        };
        Box::pin(incarnation.run())
    }

    fn power_loss(&self, torn: bool, rng: &mut dyn madsim::rand::RngCore) {
        self.disk.power_loss(torn, rng);
    }

    fn status(&self) -> NodeStatus {
        lock(&self.state).status.clone()
    }

    fn store_state(&self) -> StoreState {
        let state = lock(&self.state);
        let mvcc = &state.machine.mvcc;
        StoreState {
            revision: mvcc.revision(),
            compact_revision: mvcc.compact_revision(),
            kvs: mvcc.live_kvs(),
        }
    }

    fn hash_kv(&self, revision: i64) -> Option<u64> {
        lock(&self.state).machine.mvcc.hash_kv(revision)
    }

    fn unsynced_writes(&self) -> usize {
        self.disk.unsynced()
    }
}

impl Incarnation {
    fn config(&self) -> openraft::Config {
        let election = self.timing.election_timeout_ms().max(2);
        let heartbeat = self
            .timing
            .heartbeat_interval_ms()
            .clamp(1, election.saturating_sub(1));
        openraft::Config {
            cluster_name: "kvsim".to_string(),
            heartbeat_interval: heartbeat,
            // etcd's randomization: each election timeout drawn in [et, 2 et) (openraft draws it
            // from the runtime's RNG, madsim's).
            election_timeout_min: election,
            election_timeout_max: 2 * election,
            snapshot_policy: if self.snapshot_entries == 0 {
                SnapshotPolicy::Never
            } else {
                SnapshotPolicy::LogsSinceLast(self.snapshot_entries)
            },
            max_in_snapshot_log_to_keep: self.snapshot_entries.min(1000),
            ..openraft::Config::default()
        }
        .validate()
        .unwrap_or_else(|e| panic!("n{}: bad openraft config: {e}", self.id))
    }

    async fn run(self) {
        let id = self.id;
        let config = self.config();
        // Start at a random phase of openraft's tick: see `break_split_votes`.
        let tick_ms = (config.heartbeat_interval * 3 / 2).max(2);
        let phase = madsim::rand::thread_rng().gen_range(1..tick_ms);
        madsim::time::sleep(Duration::from_millis(phase)).await;
        let recovered = self.disk.recover();
        let summary = format!(
            "vote {:?}, entries {:?}..={:?}, purged {:?}, committed {:?}, snapshot {:?}",
            recovered.vote,
            recovered.entries.keys().next(),
            recovered.entries.keys().next_back(),
            recovered.purged,
            recovered.committed,
            recovered
                .snapshot
                .as_ref()
                .map(|(meta, _)| meta.last_log_id),
        );
        let fresh = recovered.vote.is_none()
            && recovered.entries.is_empty()
            && recovered.snapshot.is_none();
        {
            let mut state = lock(&self.state);
            state.status.boots += 1;
            state.status.role = Role::Follower;
            state.status.leader = None;
            state.status.commit_index = recovered.committed.map_or(0, |c| c.index);
            state.status.snapshot_index = recovered
                .snapshot
                .as_ref()
                .and_then(|(meta, _)| meta.last_log_id)
                .map_or(0, |l| l.index);
            state.machine = match &recovered.snapshot {
                Some((meta, image)) => Machine {
                    mvcc: image.mvcc.clone(),
                    last_applied: meta.last_log_id,
                    membership: meta.last_membership.clone(),
                    snapshot: Some((meta.clone(), image.clone())),
                },
                None => Machine::default(),
            };
            state.publish_machine();
        }
        let boot_log_end_index = recovered.entries.keys().next_back().copied().unwrap_or(0);
        let mem = Arc::new(Mutex::new(LogMem {
            vote: recovered.vote,
            entries: recovered.entries,
            purged: recovered.purged,
            committed: recovered.committed,
        }));

        let (inbox_tx, inbox) = tokio::sync::mpsc::unbounded_channel();
        self.net.register(id, inbox_tx);
        let syncer = Syncer::new(self.disk.clone());
        madsim::task::spawn(syncer.clone().run(
            Duration::from_millis(self.fsync_latency_ms),
            self.disk_stall.clone(),
        ));
        let applied = Arc::new(Notify::new());
        let pending = Pending::default();
        let log_store = LogStore {
            mem,
            disk: self.disk.clone(),
            syncer,
            state: self.state.clone(),
        };
        let machine = StateMachine {
            id,
            state: self.state.clone(),
            disk: self.disk.clone(),
            invariants: self.invariants.clone(),
            applied: applied.clone(),
        };
        let network = Network {
            id,
            net: self.net.clone(),
            pending: pending.clone(),
        };
        let election_timeout_ms = config.election_timeout_min;
        let raft = types::Raft::new(id, Arc::new(config), network, log_store, machine)
            .await
            .unwrap_or_else(|e| {
                panic!("n{id}: openraft refused to start from its disk ({summary}): {e}")
            });
        madsim::task::spawn(network::serve_inbox(
            id,
            inbox,
            raft.clone(),
            self.net.clone(),
            pending,
        ));
        if fresh {
            let members: BTreeSet<u64> = self.members.iter().copied().collect();
            // Refused (NotAllowed) only if the node already has a log or a vote: nothing to do.
            let _ = raft.initialize(members).await;
        }
        madsim::task::spawn(break_split_votes(raft.clone(), election_timeout_ms));
        madsim::task::spawn(publish_status(
            id,
            raft.clone(),
            self.state.clone(),
            self.invariants.clone(),
        ));
        let endpoint = Arc::new(
            madsim::net::Endpoint::bind(member_client_addr(id))
                .await
                .unwrap_or_else(|e| panic!("n{id}: cannot bind the client port: {e}")),
        );
        server::serve(
            &endpoint,
            server::Service {
                raft,
                state: self.state.clone(),
                applied,
                bugs: self.bugs,
                boot_log_end_index,
                election_timeout_ms,
            },
        );
        std::future::pending::<()>().await;
    }
}

/// openraft 0.9 draws a member's election timeout once, when its `Raft` starts, and looks at it
/// only on ticks (every 1.5 heartbeats): members that start together and drew timeouts in the
/// same tick slot time out in lockstep and split the vote in every term, forever (seen on 2 of
/// 60 seeds with 3 members; docs/facts.md, "openraft 0.9"). Raft's remedy is a fresh random
/// timeout per election; this task gets the same effect from outside: a member that is still a
/// candidate one election timeout later sits out elections for a random part of another one
/// (it keeps granting votes meanwhile). Each incarnation also starts at a random tick phase.
async fn break_split_votes(raft: types::Raft, election_timeout_ms: u64) {
    let metrics = raft.metrics();
    let mut last_candidate_term = None;
    loop {
        madsim::time::sleep(Duration::from_millis(election_timeout_ms)).await;
        let (state, term) = {
            let m = metrics.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Candidate {
            last_candidate_term = None;
            continue;
        }
        if last_candidate_term.is_some_and(|t| t != term) {
            let pause = madsim::rand::thread_rng().gen_range(1..=election_timeout_ms);
            raft.runtime_config().elect(false);
            madsim::time::sleep(Duration::from_millis(pause)).await;
            raft.runtime_config().elect(true);
        }
        last_candidate_term = Some(term);
    }
}

/// Copies openraft's metrics into the member's status as they change and reports every leader it
/// sees elected. The only task waiting on openraft's metrics `watch` channel (one waiter, so
/// tokio's random waker-slot choice cannot reorder wake-ups; docs/facts.md, "openraft 0.9").
async fn publish_status(
    id: u64,
    raft: types::Raft,
    state: Arc<Mutex<MemberState>>,
    invariants: Invariants,
) {
    let mut metrics = raft.metrics();
    let mut reported: Option<u64> = None;
    loop {
        {
            let m = metrics.borrow_and_update();
            let role = match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Candidate => Role::Candidate,
                ServerState::Follower | ServerState::Learner | ServerState::Shutdown => {
                    Role::Follower
                }
            };
            if role == Role::Leader && reported != Some(m.current_term) {
                reported = Some(m.current_term);
                invariants.leader_elected(m.current_term, id);
            }
            let mut s = lock(&state);
            s.status.role = role;
            s.status.term = m.current_term;
            s.status.leader = m.current_leader;
            if let Some(snapshot) = m.snapshot {
                s.status.snapshot_index = snapshot.index;
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
