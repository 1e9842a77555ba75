//! The client service of an openraft member (contract in `crate::rpc`): writes go through
//! `Raft::client_write` on the leader, linearizable reads through `get_read_log_id` (openraft's
//! ReadIndex) and a wait for the local state machine, serializable reads and watches are local.

use super::types::Raft;
use super::MemberState;
use crate::target::proto::{Event, Request};
use crate::target::rpc::{KvAnswer, KvCall, KvReply, Served, WatchPoll, WatchReply};
use crate::target::{lock, Bugs, Role};
use madsim::net::Endpoint;
use madsim::rand::Rng;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::ServerState;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a planted watch bug fires on a poll where it can.
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
}

pub fn serve(endpoint: &Endpoint, service: Service) {
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
    endpoint.add_rpc_handler(move |poll: WatchPoll| {
        let service = service.clone();
        async move { service.watch(poll).await }
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

    /// One watch poll, from the local state machine (any member, as etcd; one that knows no leader
    /// answers `NotLeader`, as etcd with `WithRequireLeader`).
    async fn watch(&self, poll: WatchPoll) -> WatchReply {
        let deadline = madsim::time::Instant::now() + Duration::from_millis(poll.wait_ms);
        let mut start = poll.start_revision;
        loop {
            let applied = self.applied.notified();
            tokio::pin!(applied);
            applied.as_mut().enable();
            if self.leader_hint().is_none() {
                return WatchReply::NotLeader { leader: None };
            }
            {
                let state = lock(&self.state);
                let mvcc = &state.machine.mvcc;
                if start <= 0 {
                    start = mvcc.revision() + 1;
                }
                let header_revision = mvcc.revision();
                match mvcc.events_since(start, &poll.key, &poll.range_end, poll.prev_kv) {
                    Err(compact_revision) => return WatchReply::Compacted { compact_revision },
                    Ok(events) if !events.is_empty() => {
                        let events = if self.bugs.watch_duplicate && start > 2 && fire() {
                            // Planted bug: the revision before the first asked for comes again.
                            mvcc.events_since(start - 1, &poll.key, &poll.range_end, poll.prev_kv)
                                .unwrap_or(events)
                        } else if self.bugs.watch_gap && start > 1 && fire() {
                            drop_first_revision(events)
                        } else {
                            events
                        };
                        return WatchReply::Events {
                            header_revision,
                            events,
                        };
                    }
                    Ok(events) if madsim::time::Instant::now() >= deadline => {
                        return WatchReply::Events {
                            header_revision,
                            events,
                        };
                    }
                    Ok(_) => {}
                }
            }
            let left = deadline.saturating_duration_since(madsim::time::Instant::now());
            let _ = madsim::time::timeout(left, applied).await;
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
