//! The client service of an openraft member (contract in `crate::rpc`): writes go through
//! `Raft::client_write` on the leader, linearizable reads through `get_read_log_id` (openraft's
//! ReadIndex) and a wait for the local state machine, serializable reads and watch streams are local.

use super::types::Raft;
use super::MemberState;
use crate::target::proto::{Event, Request};
use crate::target::rpc::{
    KvAnswer, KvCall, KvReply, Served, ServerWatchStream, WatchRequest, WatchResponse,
};
use crate::target::{lock, Bugs, Role};
use madsim::net::Endpoint;
use madsim::rand::Rng;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::ServerState;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a planted watch bug fires on a response where it can.
const WATCH_BUG_PROBABILITY: f64 = 0.25;

#[derive(Clone)]
pub struct Service {
    pub raft: Raft,
    pub state: Arc<Mutex<MemberState>>,
    pub applied: Arc<Notify>,
    pub bugs: Bugs,
    /// The last log index this incarnation found on its disk. openraft restores a member whose
    /// committed vote is its own as leader of the same term, without a new noop entry; its
    /// `get_read_log_id` (max of that leader's noop and the committed index as last persisted) can
    /// then be behind entries the previous incarnation committed and acknowledged, and a read
    /// answered there is stale (found by kvsim: crashes.toml seed 36 on this target). Any entry on
    /// disk at boot may have been committed, so a linearizable read also waits for the state
    /// machine to reach this index. Raising a read index is always safe; it can only make a read
    /// wait (until those indexes are committed, by this leader or another).
    pub boot_log_end_index: u64,
    /// The shortest election timeout (the watch streams' leader monitor looks this often).
    pub election_timeout_ms: u64,
}

pub fn serve(endpoint: &Arc<Endpoint>, service: Service) {
    let kv = service.clone();
    endpoint.add_rpc_handler(move |call: KvCall| {
        let service = kv.clone();
        async move {
            let reply = service.kv(call.request).await;
            KvAnswer {
                reply,
                served: service.served(),
            }
        }
    });
    let endpoint = endpoint.clone();
    madsim::task::spawn(async move {
        while let Ok(stream) = ServerWatchStream::accept(&endpoint).await {
            madsim::task::spawn(service.clone().watch_stream(stream));
        }
    });
}

impl Service {
    /// Who answers now: this member, its term and its role, from openraft's metrics.
    fn served(&self) -> Served {
        let receiver = self.raft.metrics();
        let metrics = receiver.borrow();
        Served {
            member: metrics.id,
            raft_term: metrics.current_term,
            role: match metrics.state {
                ServerState::Leader => Role::Leader,
                ServerState::Candidate => Role::Candidate,
                ServerState::Follower | ServerState::Learner | ServerState::Shutdown => {
                    Role::Follower
                }
            },
        }
    }

    fn leader_hint(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    async fn kv(&self, request: Request) -> KvReply {
        match &request {
            Request::Range(range) if range.serializable => {
                KvReply::Ok(lock(&self.state).machine.mvcc.range(range))
            }
            Request::Range(range) => {
                if self.bugs.stale_read {
                    // Planted bug: whoever believes it leads answers from its own state machine.
                    if !self.is_leader() {
                        return KvReply::NotLeader {
                            leader: self.leader_hint(),
                        };
                    }
                    return KvReply::Ok(lock(&self.state).machine.mvcc.range(range));
                }
                match self.raft.get_read_log_id().await {
                    Ok((read_log_id, _)) => {
                        let index = read_log_id
                            .map_or(0, |l| l.index)
                            .max(self.boot_log_end_index);
                        self.wait_applied(index).await;
                        KvReply::Ok(lock(&self.state).machine.mvcc.range(range))
                    }
                    Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                        KvReply::NotLeader {
                            leader: f.leader_id,
                        }
                    }
                    Err(e) => KvReply::Unavailable {
                        reason: e.to_string(),
                    },
                }
            }
            Request::LeaseGrant { .. }
            | Request::LeaseRevoke { .. }
            | Request::LeaseKeepAlive { .. }
            | Request::LeaseTimeToLive { .. } => KvReply::Unavailable {
                reason: "the openraft target has no leases".into(),
            },
            Request::Put(_)
            | Request::DeleteRange(_)
            | Request::Txn(_)
            | Request::Compact { .. } => {
                if self.bugs.ack_before_commit {
                    return self.write_acked_on_append(request).await;
                }
                // Check quorum before proposing (etcd's raft steps an isolated leader down
                // after an election timeout, `CheckQuorum`; openraft 0.9 never does): a
                // leader cut off from its peers refuses the write at once, definitely not
                // proposed, instead of appending an entry that no quorum will commit while
                // the client times out and must record the outcome unknown. The
                // confirmation is the heartbeat round of a linearizable read, so it fails
                // within one heartbeat interval on an isolated leader. A partition that
                // falls between confirmation and proposal still leaves that one write
                // unknown, as in etcd.
                if let Err(refusal) = self.confirm_leadership().await {
                    return refusal;
                }
                match self.raft.client_write(request).await {
                    Ok(written) => match written.data {
                        Some(response) => KvReply::Ok(response),
                        None => unreachable!("a client write applies to a response"),
                    },
                    // Not the leader, or the entry was truncated: it is not (and will never be)
                    // applied (see docs/facts.md, "openraft 0.9").
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                        KvReply::NotLeader {
                            leader: f.leader_id,
                        }
                    }
                    Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                        unreachable!("a KV write is no membership change: {e}")
                    }
                    // Raft stopped (the node is going down): the outcome is unknown, say nothing.
                    Err(RaftError::Fatal(_)) => std::future::pending().await,
                }
            }
        }
    }

    /// Confirms with a heartbeat round that a quorum still follows this member as leader
    /// (`get_read_log_id`); otherwise the reply that says the request was not proposed.
    async fn confirm_leadership(&self) -> Result<(), KvReply> {
        match self.raft.get_read_log_id().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(KvReply::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(e) => Err(KvReply::Unavailable {
                reason: format!("leadership not confirmed: {e}"),
            }),
        }
    }

    /// Planted bug `ack_before_commit`: the leader proposes the write and answers at once with the
    /// response it would have if applied now, before any quorum has it.
    async fn write_acked_on_append(&self, request: Request) -> KvReply {
        if !self.is_leader() {
            return KvReply::NotLeader {
                leader: self.leader_hint(),
            };
        }
        let guess = {
            let mut copy = lock(&self.state).machine.mvcc.clone();
            copy.apply(&request)
        };
        match self.raft.client_write_ff(request).await {
            Ok(_) => KvReply::Ok(guess),
            Err(_) => std::future::pending().await,
        }
    }

    /// Waits until the state machine has applied `index`.
    async fn wait_applied(&self, index: u64) {
        loop {
            let applied = self.applied.notified();
            tokio::pin!(applied);
            applied.as_mut().enable();
            let now = lock(&self.state)
                .machine
                .last_applied
                .map_or(0, |l| l.index);
            if now >= index {
                return;
            }
            applied.await;
        }
    }

    /// One watch stream, from the local state machine (any member, as etcd; one that knows no
    /// leader refuses it, and ends it after three election timeouts without one, as etcd with
    /// `WithRequireLeader`). There is no sync loop: every time the state machine applies, the
    /// stream is sent every event from its next revision up to the machine's revision, so the
    /// watcher is always caught up when it is sent a progress notification.
    async fn watch_stream(self, mut stream: ServerWatchStream) {
        let Ok(WatchRequest::Create(create)) = stream.recv().await else {
            return;
        };
        if self.leader_hint().is_none() {
            let _ = stream.send(WatchResponse::NoLeader).await;
            return;
        }
        let (mut next, header_revision) = {
            let state = lock(&self.state);
            let revision = state.machine.mvcc.revision();
            let next = if create.start_revision <= 0 {
                revision + 1
            } else {
                create.start_revision
            };
            (next, revision)
        };
        if stream
            .send(WatchResponse::Created { header_revision })
            .await
            .is_err()
        {
            return;
        }
        let progress_every = Duration::from_millis(create.progress_notify_ms);
        let mut progress_due =
            (create.progress_notify_ms > 0).then(|| madsim::time::Instant::now() + progress_every);
        let mut progress_requested = false;
        let mut leaderless_since: Option<madsim::time::Instant> = None;
        let check_every = Duration::from_millis(self.election_timeout_ms);
        loop {
            let applied = self.applied.notified();
            tokio::pin!(applied);
            applied.as_mut().enable();
            let now = madsim::time::Instant::now();
            if self.leader_hint().is_some() {
                leaderless_since = None;
            } else if now.duration_since(*leaderless_since.get_or_insert(now)) >= check_every * 3 {
                let _ = stream.send(WatchResponse::NoLeader).await;
                return;
            }
            let mut out = Vec::new();
            {
                let state = lock(&self.state);
                let mvcc = &state.machine.mvcc;
                let revision = mvcc.revision();
                match mvcc.events_since(next, &create.key, &create.range_end, create.prev_kv) {
                    Err(compact_revision) => {
                        out.push(WatchResponse::Compacted { compact_revision })
                    }
                    Ok(events) => {
                        if !events.is_empty() {
                            let events = if self.bugs.watch_duplicate && next > 2 && fire() {
                                // Planted bug: the revision before the first one due comes again.
                                mvcc.events_since(
                                    next - 1,
                                    &create.key,
                                    &create.range_end,
                                    create.prev_kv,
                                )
                                .unwrap_or(events)
                            } else if self.bugs.watch_gap && next > 1 && fire() {
                                drop_first_revision(events)
                            } else {
                                events
                            };
                            out.push(WatchResponse::Events {
                                header_revision: revision,
                                events,
                            });
                            progress_due = progress_due.map(|_| now + progress_every);
                        }
                        next = next.max(revision + 1);
                        let due = progress_due.is_some_and(|due| now >= due);
                        if due || progress_requested {
                            out.push(WatchResponse::Progress {
                                header_revision: revision,
                            });
                            progress_requested = false;
                            progress_due = progress_due.map(|_| now + progress_every);
                        }
                    }
                }
            }
            let ended = matches!(out.last(), Some(WatchResponse::Compacted { .. }));
            for response in out {
                if stream.send(response).await.is_err() {
                    return;
                }
            }
            if ended {
                return;
            }
            let wake = progress_due.map_or(now + check_every, |due| due.min(now + check_every));
            tokio::select! {
                biased;
                request = stream.recv() => match request {
                    Ok(WatchRequest::Progress) => progress_requested = true,
                    Ok(WatchRequest::Create(_)) => {}
                    Err(_) => return,
                },
                _ = applied => {}
                _ = madsim::time::sleep_until(wake) => {}
            }
        }
    }
}

fn fire() -> bool {
    madsim::rand::thread_rng().gen_bool(WATCH_BUG_PROBABILITY)
}

/// Planted bug `watch_gap`: every event of the first revision is dropped.
fn drop_first_revision(events: Vec<Event>) -> Vec<Event> {
    let first = events[0].kv.mod_revision;
    events
        .into_iter()
        .filter(|e| e.kv.mod_revision != first)
        .collect()
}
