//! The Raft loop: owns the `RawNode`, persists, sends, applies, answers proposers.
//!
//! Ready handling follows raft-rs' contract (and etcd's `raftNode.start`): messages a leader may send
//! before persisting go out first (Raft thesis §10.2.1), then snapshot / entries / hard state are written
//! and SYNCED before the messages that depend on them (votes, append responses) are sent, and before any
//! client is answered from them.

use super::super::store::{Store, StoreBugs};
use super::lessor::Lessor;
use super::payload::{self, Payload, ProposalId};
use super::{lock, server, NodeContext};
use crate::proto::{RangeReq, Request, Response};
use crate::rpc::KvReply;
use crate::target::fnv1a;
use crate::target::{InvariantViolation, Role};
use madsim::net::Endpoint;
use madsim::rand::Rng;
use raft::eraftpb::{Entry, EntryType, Message, MessageType, Snapshot};
use raft::{RawNode, SnapshotStatus, StateRole};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, Notify};

/// Inputs handled at most this many at a time between two Ready rounds, so ticks keep their pace.
const INPUT_BATCH_MAX: usize = 256;

pub(crate) enum Input {
    Tick,
    /// One datagram from a peer: its messages in the order the peer sent them.
    Peer(Vec<Message>),
    /// A request that needs the leader: a write (proposed) or a linearizable read (ReadIndex).
    Client {
        request: Request,
        reply: oneshot::Sender<KvReply>,
    },
}

/// A client waiting for its proposal at `index` to be applied.
struct Waiter {
    id: ProposalId,
    request: Request,
    /// `None` once answered early (planted bug `ack_before_commit`).
    reply: Option<oneshot::Sender<KvReply>>,
}

/// What waits for a ReadIndex round: the leader has confirmed it still leads (a heartbeat quorum)
/// and has applied up to the read index before it answers.
enum ReadWork {
    /// A linearizable range.
    Range(RangeReq),
    /// A keep-alive: the lessor renews only once leadership is confirmed (etcd's `ensureLeadership`
    /// then `waitAppliedIndex` before `lessor.Renew`, etcd #15247).
    Renew { id: i64 },
}

struct PendingRead {
    work: ReadWork,
    reply: oneshot::Sender<KvReply>,
}

struct RaftLoop {
    ctx: NodeContext,
    raw: RawNode<super::super::disk::DiskStorage>,
    election_timer: ElectionTimer,
    lessor: Arc<Mutex<Lessor>>,
    /// Wakes watch polls after every apply round.
    apply_notify: Arc<Notify>,
    nonce: u64,
    seq: u64,
    waiters: BTreeMap<u64, Waiter>,
    /// ReadIndex requests by context, until Raft returns their read index.
    reads: BTreeMap<Vec<u8>, PendingRead>,
    /// Reads whose read index is known, waiting for apply to reach it.
    ready_reads: Vec<(u64, PendingRead)>,
    applied: u64,
    last_snapshot_index: u64,
    role: StateRole,
}

/// Boots the node from its disk, starts its tasks and runs the Raft loop until the node is killed.
pub(crate) async fn boot_and_run(ctx: NodeContext) {
    let id = ctx.config.id;
    let boot = ctx.disk.boot_state();
    let bugs = ctx.config.bugs;
    let store_bugs = StoreBugs {
        compacted_read: bugs.compacted_read,
        txn_partial: bugs.txn_partial,
    };

    // Rebuild the state machine: the snapshot, then the committed entries after it (etcd replays its WAL
    // on restart the same way, from the backend's consistent index).
    let snapshot_index = boot.snapshot.get_metadata().index;
    let mut store = if boot.snapshot.data.is_empty() {
        Store::new()
    } else {
        Store::from_bytes(&boot.snapshot.data)
            .unwrap_or_else(|e| panic!("n{id}: snapshot {snapshot_index} on disk is corrupt: {e}"))
    }
    .with_bugs(store_bugs);
    let mut applied = snapshot_index;
    let replay_end = boot
        .committed_after_snapshot
        .last()
        .map_or(snapshot_index, |e| e.index);
    if bugs.revision_regress_after_restart {
        // Planted bug: pretend the replay happened.
        applied = replay_end;
    } else {
        for entry in &boot.committed_after_snapshot {
            apply_to_store(&ctx, &mut store, entry, None);
            applied = entry.index;
        }
    }
    assert_eq!(applied, replay_end);

    let applied_notify = Arc::new(Notify::new());
    let lessor = Arc::new(Mutex::new(Lessor::new(
        bugs.lease_early_expiry,
        bugs.lease_late_expiry,
    )));
    {
        let mut shared = ctx.shared();
        shared.status.boots += 1;
        shared.status.role = Role::Follower;
        shared.status.leader = None;
        shared.status.term = boot.hard_state.term;
        shared.status.commit_index = boot.hard_state.commit;
        shared.status.applied_index = applied;
        shared.status.snapshot_index = snapshot_index;
        shared.status.revision = store.revision();
        shared.status.compact_revision = store.compact_revision();
        shared.store = store;
    }

    // Raft §5.2: every election timeout is drawn afresh from [et, 2·et) whenever a node resets its term
    // state, so split votes are rare and short. raft-rs draws it from an unseeded RNG; `ElectionTimer`
    // overwrites every such draw with one from the seeded RNG before a tick can read it.
    let et = ctx.config.election_tick;
    let config = raft::Config {
        id,
        election_tick: et,
        heartbeat_tick: ctx.config.heartbeat_tick,
        min_election_tick: et,
        max_election_tick: 2 * et,
        applied,
        pre_vote: true,
        check_quorum: true,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        ..raft::Config::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let mut raw = RawNode::new(&config, ctx.disk.storage(), &logger)
        .unwrap_or_else(|e| panic!("n{id}: raft refused to start from its disk: {e}"));
    let mut election_timer = ElectionTimer::new(et);
    election_timer.pin(&mut raw.raft);

    let (input_tx, input_rx) = unbounded_channel();
    ctx.net.register(id, input_tx.clone());
    let client_ep = Endpoint::bind(crate::target::member_client_addr(id))
        .await
        .unwrap_or_else(|e| panic!("n{id}: cannot bind the client port: {e}"));
    server::serve(
        Arc::new(client_ep),
        server::ServerContext {
            shared: ctx.shared.clone(),
            lessor: lessor.clone(),
            input: input_tx.clone(),
            apply_notify: applied_notify.clone(),
            election_timeout_ms: ctx.config.tick_ms * et as u64,
            bugs,
        },
    );
    // A random phase, as real nodes' clocks have: nodes restarted at the same instant must not tick in
    // lockstep (with equal timeouts they would split every vote).
    let tick_phase_ms = madsim::rand::thread_rng().gen_range(0..ctx.config.tick_ms);
    spawn_ticker(ctx.config.tick_ms, tick_phase_ms, input_tx);

    let mut rl = RaftLoop {
        ctx,
        raw,
        election_timer,
        lessor,
        apply_notify: applied_notify,
        nonce: madsim::rand::random(),
        seq: 0,
        waiters: BTreeMap::new(),
        reads: BTreeMap::new(),
        ready_reads: Vec::new(),
        applied,
        last_snapshot_index: snapshot_index,
        role: StateRole::Follower,
    };
    rl.publish_status();
    rl.run(input_rx).await;
}

/// The randomized election timeout, drawn from the seeded RNG.
///
/// raft-rs redraws its timeout (`reset_randomized_election_timeout`) from `rand::thread_rng()` every time
/// it resets its term state: on becoming follower, pre-candidate, candidate or leader. Each of those
/// changes the (term, role) pair, so `pin`, called after every input Raft handles, sees each reset and
/// replaces raft-rs' draw with one from madsim's seeded RNG. raft-rs reads the timeout only in
/// `tick_election`, which runs after `pin`, so an unseeded draw never decides anything.
///
/// Pinning one timeout per boot instead (min = max − 1) is not Raft: two nodes that drew the same value
/// and restarted together split every vote forever, and a third with a longer timeout is reset by their
/// vote requests before it fires (seed 1677 of `crashes` had no leader for 5 s this way).
struct ElectionTimer {
    election_tick: usize,
    /// The (term, role) at the last draw.
    drawn_for: Option<(u64, StateRole)>,
    timeout_ticks: usize,
}

impl ElectionTimer {
    fn new(election_tick: usize) -> ElectionTimer {
        ElectionTimer {
            election_tick,
            drawn_for: None,
            timeout_ticks: election_tick,
        }
    }

    fn pin<S: raft::Storage>(&mut self, raft: &mut raft::Raft<S>) {
        let key = (raft.term, raft.state);
        if self.drawn_for != Some(key) {
            self.drawn_for = Some(key);
            let et = self.election_tick;
            self.timeout_ticks = madsim::rand::thread_rng().gen_range(et..2 * et);
        }
        // Also undoes a reset that left (term, role) unchanged, should raft-rs ever make one: the value
        // raft-rs drew is unseeded and must not reach a tick.
        if raft.randomized_election_timeout() != self.timeout_ticks {
            raft.set_randomized_election_timeout(self.timeout_ticks);
        }
    }
}

fn spawn_ticker(tick_ms: u64, phase_ms: u64, input: UnboundedSender<Input>) {
    madsim::task::spawn(async move {
        madsim::time::sleep(Duration::from_millis(phase_ms)).await;
        loop {
            madsim::time::sleep(Duration::from_millis(tick_ms)).await;
            if input.send(Input::Tick).is_err() {
                return;
            }
        }
    });
}

/// Applies one committed entry to `store`, records it in the invariant log and returns the proposal's
/// id and response (None for entries without a request, e.g. a new leader's empty entry).
/// The caller holds the shared lock (the store lives there), so the clock is passed in.
fn apply_to_store(
    ctx: &NodeContext,
    store: &mut Store,
    entry: &Entry,
    lessor: Option<(&mut Lessor, i64)>,
) -> Option<(ProposalId, Request, Response)> {
    let id = ctx.config.id;
    let hash = fnv1a(&entry.data) ^ (entry.get_entry_type() as u64);
    ctx.invariants()
        .entry_applied(id, entry.index, entry.term, hash);
    if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
        return None;
    }
    let Payload { proposer, request } = payload::decode(&entry.data)
        .unwrap_or_else(|e| panic!("n{id}: entry {}: {e}", entry.index));
    let response = store.apply(&request);
    // Watches read history through `events_since`; the per-apply event buffer is not needed.
    store.take_events();
    if let Some((lessor, now_ms)) = lessor {
        match (&request, &response) {
            (Request::LeaseGrant { .. }, Response::LeaseGrant { id, ttl_s, .. }) => {
                lessor.granted(now_ms, *id, *ttl_s);
            }
            (Request::LeaseRevoke { id }, _) => lessor.revoked(*id),
            _ => {}
        }
    }
    Some((proposer, request, response))
}

impl RaftLoop {
    async fn run(&mut self, mut input: UnboundedReceiver<Input>) {
        while let Some(first) = input.recv().await {
            self.handle(first);
            for _ in 1..INPUT_BATCH_MAX {
                match input.try_recv() {
                    Ok(next) => self.handle(next),
                    Err(_) => break,
                }
            }
            while self.raw.has_ready() {
                self.on_ready().await;
            }
        }
    }

    fn handle(&mut self, input: Input) {
        self.handle_raft(input);
        self.election_timer.pin(&mut self.raw.raft);
    }

    fn handle_raft(&mut self, input: Input) {
        match input {
            Input::Tick => {
                self.raw.tick();
                self.expire_leases();
            }
            Input::Peer(batch) => {
                for msg in batch {
                    // Errors are stale or foreign messages (e.g. from a removed incarnation); Raft drops them.
                    let _ = self.raw.step(msg);
                }
            }
            Input::Client { request, reply } => self.on_client(request, reply),
        }
    }

    fn leader_hint(&self) -> Option<u64> {
        let leader = self.raw.raft.leader_id;
        (leader != raft::INVALID_ID).then_some(leader)
    }

    fn on_client(&mut self, request: Request, reply: oneshot::Sender<KvReply>) {
        if self.raw.raft.state != StateRole::Leader {
            let _ = reply.send(KvReply::NotLeader {
                leader: self.leader_hint(),
            });
            return;
        }
        match request {
            Request::Range(range) if !range.serializable => {
                if self.ctx.config.bugs.stale_read {
                    // Planted bug: no ReadIndex, trust that we are still the leader.
                    let response = self.ctx.shared().store.range(&range);
                    let _ = reply.send(KvReply::Ok(response));
                    return;
                }
                self.read_index(ReadWork::Range(range), reply);
            }
            Request::LeaseKeepAlive { id } => self.read_index(ReadWork::Renew { id }, reply),
            request => self.propose(request, Some(reply)),
        }
    }

    /// Starts a ReadIndex round; `work` is done once Raft returns the read index and the store has
    /// applied up to it (`serve_reads`).
    fn read_index(&mut self, work: ReadWork, reply: oneshot::Sender<KvReply>) {
        self.seq += 1;
        let mut rctx = self.nonce.to_be_bytes().to_vec();
        rctx.extend_from_slice(&self.seq.to_be_bytes());
        self.raw.read_index(rctx.clone());
        let replaced = self.reads.insert(rctx, PendingRead { work, reply });
        assert!(
            replaced.is_none(),
            "ReadIndex contexts are unique (nonce, seq)"
        );
    }

    fn propose(&mut self, request: Request, reply: Option<oneshot::Sender<KvReply>>) {
        self.seq += 1;
        let id = ProposalId {
            node: self.ctx.config.id,
            nonce: self.nonce,
            seq: self.seq,
        };
        let data = payload::encode(&Payload {
            proposer: id,
            request: request.clone(),
        });
        if let Err(e) = self.raw.propose(vec![], data) {
            if let Some(reply) = reply {
                let _ = reply.send(KvReply::Unavailable {
                    reason: format!("proposal dropped: {e}"),
                });
            }
            return;
        }
        let Some(reply) = reply else { return };
        let index = self.raw.raft.raft_log.last_index();
        let waiter = Waiter {
            id,
            request,
            reply: Some(reply),
        };
        if let Some(old) = self.waiters.insert(index, waiter) {
            // A leader appends at its last index + 1, so the entry an older waiter was waiting for has been
            // truncated from our log: it was never committed and never will be.
            answer(old.reply, dropped());
        }
    }

    fn expire_leases(&mut self) {
        if self.raw.raft.state != StateRole::Leader {
            return;
        }
        let now_ms = self.ctx.shared().clock_ms();
        let expired = lock(&self.lessor).expired(now_ms);
        for id in expired {
            self.propose(Request::LeaseRevoke { id }, None);
        }
    }

    /// Sends one datagram per peer, its messages in Raft's order.
    fn send(&mut self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        let id = self.ctx.config.id;
        let mut snapshot_targets = Vec::new();
        let mut by_peer: BTreeMap<u64, Vec<Message>> = BTreeMap::new();
        for msg in msgs {
            if msg.get_msg_type() == MessageType::MsgSnapshot {
                snapshot_targets.push(msg.to);
            }
            // raft-rs handles its own messages in place; one addressed to itself would be a Raft bug.
            assert_ne!(msg.to, id, "n{id}: a message to itself");
            if msg.to == id {
                continue;
            }
            by_peer.entry(msg.to).or_default().push(msg);
        }
        for (to, batch) in by_peer {
            let messages = batch.len();
            self.ctx.net.send(id, to, Input::Peer(batch), messages);
        }
        // The transport cannot know whether a snapshot arrived; reporting it as sent moves the follower to
        // probing, and a follower that lost it simply asks again (etcd's rafthttp reports the same way).
        for to in snapshot_targets {
            self.raw.report_snapshot(to, SnapshotStatus::Finish);
        }
    }

    async fn on_ready(&mut self) {
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            self.on_soft_state(ss.raft_state);
        }
        let early = rd.take_messages();
        self.send(early);

        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone());
        }
        let committed = rd.take_committed_entries();
        self.apply(committed);

        let entries = rd.take_entries();
        self.ctx.disk.append(&entries);
        if let Some(hs) = rd.hs() {
            self.ctx.disk.set_hard_state(hs);
        }
        // must_sync: new entries, a snapshot, or a changed term / vote (etcd's raft.MustSync).
        if rd.must_sync() {
            self.ctx.disk.sync().await;
        }
        if self.ctx.config.bugs.ack_before_commit {
            self.ack_early(&entries);
        }
        let persisted = rd.take_persisted_messages();
        self.send(persisted);
        for rs in rd.take_read_states() {
            if let Some(read) = self.reads.remove(&rs.request_ctx) {
                self.ready_reads.push((rs.index, read));
            }
        }

        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.raw.raft.hard_state();
            hs.commit = commit;
            // Commit-only changes need no fsync (etcd does not sync them either).
            self.ctx.disk.set_hard_state(&hs);
        }
        let msgs = light.take_messages();
        self.send(msgs);
        let committed = light.take_committed_entries();
        self.apply(committed);
        self.raw.advance_apply();
        self.serve_reads();
        self.maybe_snapshot();
        self.publish_status();
    }

    fn on_soft_state(&mut self, role: StateRole) {
        let was_leader = self.role == StateRole::Leader;
        self.role = role;
        let id = self.ctx.config.id;
        if role == StateRole::Leader {
            self.ctx.invariants().leader_elected(self.raw.raft.term, id);
            if !was_leader {
                let (now_ms, leases) = {
                    let shared = self.ctx.shared();
                    (shared.clock_ms(), shared.store.leases())
                };
                // etcd promotes with one (base) election timeout: ElectionTicks × TickMs.
                let election_timeout_ms =
                    self.ctx.config.election_tick as i64 * self.ctx.config.tick_ms as i64;
                lock(&self.lessor).promote(now_ms, election_timeout_ms, &leases);
            }
        } else if was_leader {
            lock(&self.lessor).demote();
            // Reads and keep-alives waiting for their read index have had no effect yet, so telling
            // their clients to retry is always safe.
            for (_, read) in std::mem::take(&mut self.reads) {
                answer(Some(read.reply), not_leader_unavailable());
            }
            for (_, read) in std::mem::take(&mut self.ready_reads) {
                answer(Some(read.reply), not_leader_unavailable());
            }
        }
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let id = self.ctx.config.id;
        let index = snapshot.get_metadata().index;
        assert!(
            index > self.applied,
            "n{id}: snapshot {index} not ahead of applied {}",
            self.applied
        );
        let store = Store::from_bytes(&snapshot.data)
            .unwrap_or_else(|e| panic!("n{id}: snapshot {index} from the leader is corrupt: {e}"))
            .with_bugs(StoreBugs {
                compacted_read: self.ctx.config.bugs.compacted_read,
                txn_partial: self.ctx.config.bugs.txn_partial,
            });
        self.ctx.disk.install_snapshot(&snapshot);
        self.ctx.shared().store = store;
        self.applied = index;
        self.last_snapshot_index = index;
        // Proposals inside the snapshot may or may not be in it: their outcome is unknown to us, so their
        // clients get no answer (a timeout = unknown outcome), never a wrong one.
        self.waiters = self.waiters.split_off(&(index + 1));
        self.notify_revision();
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        for entry in &entries {
            if entry.index <= self.applied {
                continue;
            }
            assert_eq!(entry.index, self.applied + 1, "applying out of order");
            let applied = {
                let mut shared = self.ctx.shared();
                let now_ms = shared.clock_ms();
                let mut lessor = lock(&self.lessor);
                apply_to_store(
                    &self.ctx,
                    &mut shared.store,
                    entry,
                    Some((&mut lessor, now_ms)),
                )
            };
            self.applied = entry.index;
            if let Some(waiter) = self.waiters.remove(&entry.index) {
                match applied {
                    Some((id, request, response)) if id == waiter.id => {
                        let response = self.adjust_response(&request, response);
                        answer(waiter.reply, KvReply::Ok(response));
                    }
                    // Another entry was committed at our index: ours is gone for good.
                    _ => answer(waiter.reply, dropped()),
                }
            }
        }
        self.notify_revision();
    }

    /// `LeaseTimeToLive` reports the remaining TTL from the primary lessor's clock, as etcd's leader does.
    fn adjust_response(&self, request: &Request, response: Response) -> Response {
        match (request, response) {
            (
                Request::LeaseTimeToLive { id, .. },
                Response::LeaseTimeToLive {
                    revision,
                    id: rid,
                    ttl_s,
                    granted_ttl_s,
                    keys,
                },
            ) => {
                let now_ms = self.ctx.shared().clock_ms();
                let remaining = lock(&self.lessor).remaining_s(now_ms, *id);
                Response::LeaseTimeToLive {
                    revision,
                    id: rid,
                    ttl_s: if ttl_s > 0 {
                        remaining.unwrap_or(ttl_s)
                    } else {
                        ttl_s
                    },
                    granted_ttl_s,
                    keys,
                }
            }
            (_, response) => response,
        }
    }

    /// Planted bug `ack_before_commit`: answer writes once they are in our own log.
    fn ack_early(&mut self, entries: &[Entry]) {
        for entry in entries {
            let Some(waiter) = self.waiters.get_mut(&entry.index) else {
                continue;
            };
            let Some(reply) = waiter.reply.take() else {
                continue;
            };
            let mut speculative = self.ctx.shared().store.clone();
            let response = speculative.apply(&waiter.request);
            let _ = reply.send(KvReply::Ok(response));
        }
    }

    fn serve_reads(&mut self) {
        if self.ready_reads.is_empty() {
            return;
        }
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready_reads)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.ready_reads = waiting;
        let shared = self.ctx.shared();
        for (_, read) in ready {
            let answer = match read.work {
                ReadWork::Range(range) => KvReply::Ok(shared.store.range(&range)),
                ReadWork::Renew { id } => {
                    super::server::renew(&shared, &mut lock(&self.lessor), id)
                }
            };
            let _ = read.reply.send(answer);
        }
    }

    fn maybe_snapshot(&mut self) {
        let every = self.ctx.config.snapshot_entries;
        if every == 0 || self.applied < self.last_snapshot_index + every {
            return;
        }
        let data = self.ctx.shared().store.to_bytes();
        // Keep a tail of the log so a follower that is only slightly behind catches up by appends, not by
        // a snapshot transfer (etcd keeps SnapshotCatchUpEntries for the same reason).
        let compact_to = self.applied.saturating_sub(every / 2);
        self.ctx.disk.save_snapshot(self.applied, data, compact_to);
        self.last_snapshot_index = self.applied;
    }

    /// tokio's `watch` channel picks a notification shard with an unseeded RNG, which breaks replay;
    /// `Notify` wakes its waiters in registration order.
    fn notify_revision(&self) {
        self.apply_notify.notify_waiters();
    }

    fn publish_status(&self) {
        let raft = &self.raw.raft;
        let commit = raft.raft_log.committed;
        let id = self.ctx.config.id;
        if self.applied > commit {
            self.ctx
                .invariants()
                .violated(InvariantViolation::AppliedBeyondCommit {
                    node: id,
                    applied: self.applied,
                    commit,
                });
        }
        let mut shared = self.ctx.shared();
        let revision = shared.store.revision();
        let compact_revision = shared.store.compact_revision();
        let status = &mut shared.status;
        status.role = role_of(raft.state);
        status.term = raft.term;
        status.leader = self.leader_hint();
        status.commit_index = commit;
        status.applied_index = self.applied;
        status.revision = revision;
        status.compact_revision = compact_revision;
        status.snapshot_index = self.last_snapshot_index;
    }
}

fn answer(reply: Option<oneshot::Sender<KvReply>>, value: KvReply) {
    if let Some(reply) = reply {
        let _ = reply.send(value);
    }
}

fn dropped() -> KvReply {
    KvReply::Unavailable {
        reason: "proposal dropped: another entry was committed at its index".into(),
    }
}

fn not_leader_unavailable() -> KvReply {
    KvReply::Unavailable {
        reason: "leader changed before the read index was confirmed".into(),
    }
}

fn role_of(role: raft::StateRole) -> Role {
    match role {
        raft::StateRole::Follower => Role::Follower,
        raft::StateRole::PreCandidate => Role::PreCandidate,
        raft::StateRole::Candidate => Role::Candidate,
        raft::StateRole::Leader => Role::Leader,
    }
}

#[cfg(test)]
mod tests {
    use super::ElectionTimer;
    use raft::storage::MemStorage;
    use raft::{RawNode, StateRole};

    const ELECTION_TICK: usize = 10;

    /// One node of a 3-voter cluster that campaigns `elections` times (it never wins: no peer answers)
    /// and returns the election timeout in force after each campaign.
    fn timeouts_over_elections(seed: u64, elections: usize) -> Vec<usize> {
        std::thread::spawn(move || {
            let rt =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            rt.block_on(async move {
                let config = raft::Config {
                    id: 1,
                    election_tick: ELECTION_TICK,
                    heartbeat_tick: 2,
                    min_election_tick: ELECTION_TICK,
                    max_election_tick: 2 * ELECTION_TICK,
                    pre_vote: true,
                    ..raft::Config::default()
                };
                let storage = MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]));
                let logger = slog::Logger::root(slog::Discard, slog::o!());
                let mut raw = RawNode::new(&config, storage, &logger).unwrap();
                let mut timer = ElectionTimer::new(ELECTION_TICK);
                timer.pin(&mut raw.raft);
                let mut timeouts = Vec::new();
                for _ in 0..elections {
                    // A timeout ends: the node campaigns (pre-vote first, Raft thesis §9.6).
                    raw.campaign().unwrap();
                    timer.pin(&mut raw.raft);
                    assert_eq!(raw.raft.state, StateRole::PreCandidate);
                    timeouts.push(raw.raft.randomized_election_timeout());
                    // No answer: it stays pre-candidate; a higher-term message makes it a follower.
                    raw.raft
                        .become_follower(raw.raft.term + 1, raft::INVALID_ID);
                    timer.pin(&mut raw.raft);
                    timeouts.push(raw.raft.randomized_election_timeout());
                }
                timeouts
            })
        })
        .join()
        .unwrap()
    }

    /// Raft §5.2: each election restarts a randomized timeout, so two nodes that split a vote are
    /// unlikely to split the next one. A timeout fixed for a whole boot let two nodes split forever.
    #[test]
    fn every_election_draws_a_fresh_timeout_from_the_seeded_rng() {
        let timeouts = timeouts_over_elections(7, 40);
        assert!(timeouts
            .iter()
            .all(|t| (ELECTION_TICK..2 * ELECTION_TICK).contains(t)));
        let distinct: std::collections::BTreeSet<_> = timeouts.iter().collect();
        assert!(
            distinct.len() >= 8,
            "80 draws from 10 values should cover most of them: {timeouts:?}"
        );
        // raft-rs' own draws come from an unseeded RNG; none of them survives a `pin`.
        assert_eq!(
            timeouts,
            timeouts_over_elections(7, 40),
            "same seed, same timeouts"
        );
        assert_ne!(
            timeouts,
            timeouts_over_elections(8, 40),
            "another seed, other timeouts"
        );
    }
}
