//! The harness: starts an N-member cluster inside a madsim runtime and injects faults into it.
//!
//! Member `id` (1..=N) runs on a madsim node named `n{id}` at 10.0.0.{id}; clients must use other
//! addresses (e.g. 10.0.1.x). Faults are deterministic and instantaneous. Partitions cut only the PEER
//! traffic between members (clients keep reaching every member, like Jepsen clients bound to a node):
//! members talk to each other only over the cluster's peer network (`node::PeerNet`), which partitions
//! cut; packet loss and latency apply to both that network and madsim's (the client traffic).

use crate::bugs::Bugs;
use crate::proto::Kv;
use crate::target::{
    lock, member_client_addr, member_ip, Clock, ClusterEnv, DiskStall, InvariantViolation,
    Invariants, Links, Member as TargetMember, NodeStatus, PeerNetStats, RaftTiming, Role, Target,
};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// 1, 3, 5 or 7 members.
    pub nodes: usize,
    pub tick_ms: u64,
    /// Election timeout in ticks (each boot draws its own in [et, 2 et)).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Snapshot + log compaction every this many applied entries (0 = never).
    pub snapshot_entries: u64,
    pub fsync_latency_ms: u64,
    pub bugs: Bugs,
}

impl Default for ClusterConfig {
    /// etcd's defaults scaled for simulation: 100 ms ticks, election after 10 ticks, heartbeat every tick.
    fn default() -> Self {
        ClusterConfig {
            nodes: 3,
            tick_ms: 100,
            election_tick: 10,
            heartbeat_tick: 1,
            snapshot_entries: 1_000,
            fsync_latency_ms: 1,
            bugs: Bugs::default(),
        }
    }
}

impl ClusterConfig {
    /// Checks the knobs; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if ![1, 3, 5, 7].contains(&self.nodes) {
            return Err(format!(
                "cluster.nodes = {}: expected one of 1, 3, 5, 7",
                self.nodes
            ));
        }
        if self.tick_ms == 0 {
            return Err("cluster.tick_ms = 0: expected at least 1".into());
        }
        if self.heartbeat_tick == 0 {
            return Err("cluster.heartbeat_tick = 0: expected at least 1".into());
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(format!(
                "cluster.election_tick = {}: expected more than heartbeat_tick ({})",
                self.election_tick, self.heartbeat_tick
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Liveness {
    Up,
    Paused,
    Down,
}

struct Member {
    id: u64,
    node: NodeId,
    target: Arc<dyn TargetMember>,
    clock: Clock,
    disk_stall: DiskStall,
    liveness: Mutex<Liveness>,
    /// `status().boots` when the harness last restarted the member: until the new incarnation
    /// publishes its own status it is a follower that knows nothing new, so convergence waits for
    /// it instead of skipping it as down.
    restarted_at_boots: Mutex<Option<u64>>,
}

/// A member's state at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFinalState {
    pub id: u64,
    /// False if the member was down or paused when the state was read (its store is its last state).
    pub up: bool,
    pub status: NodeStatus,
    pub revision: i64,
    pub compact_revision: i64,
    /// etcd's HashKV at `revision`.
    pub hash_kv: Option<u64>,
    /// Live keys, sorted.
    pub kvs: Vec<Kv>,
}

pub struct Cluster {
    config: ClusterConfig,
    handle: Handle,
    members: Vec<Member>,
    invariants: Invariants,
    /// The members' peer network links; partitions cut them.
    net: Links,
    /// The target's name.
    target: &'static str,
}

/// How long `final_state` waits for live members to converge.
const SETTLE_MS: u64 = 20_000;

impl Cluster {
    /// Starts members 1..=N of `target` (call inside a madsim runtime). Panics on an invalid config:
    /// validate first.
    pub async fn start(config: ClusterConfig, target: &dyn Target) -> Cluster {
        if let Err(e) = config.validate() {
            panic!("invalid cluster config: {e}");
        }
        let handle = Handle::current();
        let ids: Vec<u64> = (1..=config.nodes as u64).collect();
        let invariants = Invariants::default();
        // Deliveries run on a node of their own that faults never touch.
        let net = Links::new(&handle.create_node().name("peer-net").build());
        let clocks: Vec<Clock> = ids.iter().map(|_| Clock::default()).collect();
        let disk_stalls: Vec<DiskStall> = ids.iter().map(|_| DiskStall::default()).collect();
        let env = ClusterEnv {
            members: ids.clone(),
            timing: RaftTiming {
                tick_ms: config.tick_ms,
                election_tick: config.election_tick,
                heartbeat_tick: config.heartbeat_tick,
            },
            snapshot_entries: config.snapshot_entries,
            fsync_latency_ms: config.fsync_latency_ms,
            bugs: config.bugs,
            links: net.clone(),
            clocks: clocks.clone(),
            disk_stalls: disk_stalls.clone(),
            invariants: invariants.clone(),
        };
        let built = target.members(&env);
        assert_eq!(
            built.len(),
            config.nodes,
            "cluster: the target built as many members as config.nodes"
        );
        assert_eq!(
            built.iter().map(|m| m.id()).collect::<Vec<_>>(),
            ids,
            "target {} built other members than asked",
            target.name()
        );
        let mut members = Vec::new();
        for ((member, clock), disk_stall) in built.into_iter().zip(clocks).zip(disk_stalls) {
            let id = member.id();
            assert!(
                (1..=config.nodes as u64).contains(&id),
                "cluster: member ids are 1..=nodes"
            );
            let boot = member.clone();
            let node = handle
                .create_node()
                .name(format!("n{id}"))
                .ip(member_ip(id))
                .init(move || boot.boot())
                .build();
            members.push(Member {
                id,
                node: node.id(),
                target: member,
                clock,
                disk_stall,
                liveness: Mutex::new(Liveness::Up),
                restarted_at_boots: Mutex::new(None),
            });
        }
        Cluster {
            config,
            handle,
            members,
            invariants,
            net,
            target: target.name(),
        }
    }

    /// The name of the target under test.
    pub fn target_name(&self) -> &'static str {
        self.target
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn node_ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// Where clients reach member `id`: 10.0.0.{id}:NODE_CLIENT_PORT.
    pub fn client_addr(&self, id: u64) -> SocketAddr {
        member_client_addr(id)
    }

    fn member(&self, id: u64) -> &Member {
        self.members
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no member n{id} in a {}-node cluster", self.members.len()))
    }

    fn madsim_id(&self, id: u64) -> NodeId {
        self.member(id).node
    }

    fn liveness(&self, id: u64) -> Liveness {
        *lock(&self.member(id).liveness)
    }

    fn set_liveness(&self, id: u64, liveness: Liveness) {
        *lock(&self.member(id).liveness) = liveness;
    }

    // ---- network faults ----

    fn cut(&self, from: u64, to: u64) {
        // Validates the ids: a fault plan naming a non-member is a harness bug.
        let _ = (self.member(from), self.member(to));
        self.net.cut(from, to);
    }

    /// Splits the members into `groups` that cannot reach each other (replacing any earlier cut). Members
    /// not listed are each isolated on their own.
    pub fn partition(&self, groups: &[Vec<u64>]) {
        self.heal_network();
        let mut group_of = BTreeMap::new();
        for (g, group) in groups.iter().enumerate() {
            for &id in group {
                group_of.insert(id, g);
            }
        }
        let ids = self.node_ids();
        let mut next_alone = groups.len();
        for &id in &ids {
            group_of.entry(id).or_insert_with(|| {
                next_alone += 1;
                next_alone
            });
        }
        for &a in &ids {
            for &b in &ids {
                if group_of[&a] != group_of[&b] {
                    self.cut(a, b);
                }
            }
        }
    }

    /// Drops every message from a member of `from` to a member of `to` (in addition to earlier cuts).
    pub fn partition_one_way(&self, from: &[u64], to: &[u64]) {
        for &a in from {
            for &b in to {
                self.cut(a, b);
            }
        }
    }

    /// Restores every member link (packet loss and latency settings stay).
    pub fn heal_network(&self) {
        self.net.heal();
    }

    /// Directed member links currently cut (from, to).
    pub fn cut_links(&self) -> BTreeSet<(u64, u64)> {
        self.net.cut_links()
    }

    /// Loss rate for every message (peer and client), clamped to [0, 1].
    pub fn set_packet_loss(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        madsim::net::NetSim::current().update_config(|c| c.packet_loss_rate = rate);
        self.net.set_loss_rate(rate);
    }

    /// One-way latency drawn from [min, max] ms for every message (madsim's default is 1–10 ms).
    pub fn set_latency_ms(&self, min_ms: u64, max_ms: u64) {
        let min = Duration::from_millis(min_ms);
        let max = Duration::from_millis(max_ms.max(min_ms)) + Duration::from_micros(1);
        madsim::net::NetSim::current().update_config(|c| c.send_latency = min..max);
        self.net.set_latency(min..max);
    }

    // ---- process faults ----

    /// Power loss: kills the member and drops its unsynced writes (`torn`: a random prefix survives).
    pub fn crash(&self, id: u64, torn: bool) {
        if self.liveness(id) == Liveness::Down {
            return;
        }
        let member = self.member(id);
        self.handle.kill(member.node);
        member
            .target
            .power_loss(torn, &mut madsim::rand::thread_rng());
        self.set_liveness(id, Liveness::Down);
    }

    /// Starts the member again from its durable disk. Restarting a running member crashes it first.
    pub fn restart(&self, id: u64) {
        if self.liveness(id) != Liveness::Down {
            self.crash(id, false);
        }
        let member = self.member(id);
        assert_eq!(
            self.liveness(id),
            Liveness::Down,
            "cluster: a member is down before it boots again"
        );
        *lock(&member.restarted_at_boots) = Some(member.target.status().boots);
        self.handle.restart(self.madsim_id(id));
        self.set_liveness(id, Liveness::Up);
    }

    /// Stops the member's tasks (like SIGSTOP); its timers and messages wait until `resume`.
    pub fn pause(&self, id: u64) {
        if self.liveness(id) == Liveness::Up {
            self.handle.pause(self.madsim_id(id));
            self.set_liveness(id, Liveness::Paused);
        }
    }

    pub fn resume(&self, id: u64) {
        if self.liveness(id) == Liveness::Paused {
            self.handle.resume(self.madsim_id(id));
            self.set_liveness(id, Liveness::Up);
        }
    }

    /// Offsets member `id`'s clock (only its lessor reads it); survives restarts.
    pub fn set_clock_skew_ms(&self, id: u64, skew_ms: i64) {
        self.member(id).clock.set_skew_ms(skew_ms);
    }

    /// Stalls member `id`'s disk (no fsync completes) or releases it; survives restarts.
    pub fn set_disk_stalled(&self, id: u64, stalled: bool) {
        self.member(id).disk_stall.set_stalled(stalled);
    }

    // ---- observation ----

    pub fn status(&self) -> Vec<NodeStatus> {
        self.members
            .iter()
            .map(|m| {
                let mut status = m.target.status();
                let mut restarted = lock(&m.restarted_at_boots);
                match *restarted {
                    Some(boots) if status.boots <= boots => {
                        status.role = Role::Follower;
                        status.leader = None;
                    }
                    Some(_) => *restarted = None,
                    None => {}
                }
                match *lock(&m.liveness) {
                    Liveness::Up => {}
                    Liveness::Paused => status.role = Role::Paused,
                    Liveness::Down => status.role = Role::Down,
                }
                status
            })
            .collect()
    }

    /// The running member that believes it leads in the highest term.
    pub fn leader(&self) -> Option<u64> {
        self.status()
            .into_iter()
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    /// Polls every tick until a leader is known (or `timeout_ms` of simulated time passed).
    pub async fn wait_for_leader(&self, timeout_ms: u64) -> Option<u64> {
        let deadline = madsim::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            if madsim::time::Instant::now() >= deadline {
                return None;
            }
            madsim::time::sleep(Duration::from_millis(self.config.tick_ms)).await;
        }
    }

    /// Writes member `id` has not synced yet.
    pub fn unsynced_writes(&self, id: u64) -> usize {
        self.member(id).target.unsynced_writes()
    }

    /// Raft traffic so far (datagrams, messages, drops).
    pub fn peer_net_stats(&self) -> PeerNetStats {
        self.net.stats()
    }

    /// The first leader of each term and when it was seen, in the order seen.
    pub fn elections(&self) -> Vec<(u64, u64, madsim::time::Instant)> {
        self.invariants.elections()
    }

    /// Every (term, leader) seen so far.
    pub fn leaders_seen(&self) -> Vec<(u64, u64)> {
        self.invariants.leaders()
    }

    /// All violations found so far (recorded as they happen, plus a store hash comparison now).
    pub fn violations(&self) -> Vec<InvariantViolation> {
        let mut violations = self.invariants.violations();
        violations.extend(self.compare_store_hashes());
        violations
    }

    /// Election Safety, State Machine Safety (same committed entry at each index on every member) and equal
    /// store hashes at equal revisions. Returns the first violation.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        match self.violations().into_iter().next() {
            Some(violation) => Err(violation),
            None => Ok(()),
        }
    }

    /// etcd's HashKV check: members with the same compaction point must agree on the hash of every revision
    /// they all have; compare at the lowest revision among them.
    fn compare_store_hashes(&self) -> Vec<InvariantViolation> {
        let mut by_compaction: BTreeMap<i64, Vec<(u64, i64)>> = BTreeMap::new();
        for m in &self.members {
            let state = m.target.store_state();
            by_compaction
                .entry(state.compact_revision)
                .or_default()
                .push((m.id, state.revision));
        }
        let mut violations = Vec::new();
        for group in by_compaction.values() {
            let Some(revision) = group.iter().map(|&(_, r)| r).min() else {
                continue;
            };
            let mut first: Option<(u64, u64)> = None;
            for &(id, _) in group {
                let Some(hash) = self.member(id).target.hash_kv(revision) else {
                    continue;
                };
                match first {
                    None => first = Some((id, hash)),
                    Some(f) if f.1 != hash => {
                        violations.push(InvariantViolation::HashMismatch {
                            revision,
                            first: f,
                            second: (id, hash),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        violations
    }

    /// Waits (up to 20 simulated seconds) until the running members have applied the same index, then
    /// reads every member's revision, hash and live keys. Heal faults first for a meaningful result.
    pub async fn final_state(&self) -> Vec<NodeFinalState> {
        let deadline = madsim::time::Instant::now() + Duration::from_millis(SETTLE_MS);
        while madsim::time::Instant::now() < deadline && !self.converged() {
            madsim::time::sleep(Duration::from_millis(self.config.tick_ms)).await;
        }
        let statuses = self.status();
        self.members
            .iter()
            .zip(statuses)
            .map(|(m, status)| {
                let state = m.target.store_state();
                NodeFinalState {
                    id: m.id,
                    up: *lock(&m.liveness) == Liveness::Up,
                    revision: state.revision,
                    compact_revision: state.compact_revision,
                    hash_kv: m.target.hash_kv(state.revision),
                    kvs: state.kvs,
                    status,
                }
            })
            .collect()
    }

    /// A leader exists and every running member has applied everything the leader committed.
    fn converged(&self) -> bool {
        let statuses = self.status();
        let Some(leader) = self.leader() else {
            return false;
        };
        let Some(commit) = statuses
            .iter()
            .find(|s| s.id == leader)
            .map(|s| s.commit_index)
        else {
            return false;
        };
        statuses
            .iter()
            .filter(|s| !matches!(s.role, Role::Down | Role::Paused))
            .all(|s| s.applied_index == commit)
    }
}
