//! The client RPC service (contract in `crate::rpc`): serializable reads and watches are answered from the
//! local store on any member; everything else goes to the Raft loop, which answers `NotLeader` on a
//! follower. Keep-alives go there too: the leader confirms its leadership with a ReadIndex round
//! before its lessor renews (etcd's `ensureLeadership`, etcd #15247), so a deposed leader that has
//! not stepped down yet cannot deny a lease its successor granted.

use super::lessor::{KeepAliveRefused, Lessor};
use super::raft_loop::Input;
use super::{lock, watch, NodeShared};
use crate::proto::{Request, Response, StoreError};
use crate::rpc::{KvAnswer, KvCall, KvReply, Served};
use crate::target::Bugs;
use madsim::net::Endpoint;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, Notify};

#[derive(Clone)]
pub(crate) struct ServerContext {
    pub shared: Arc<Mutex<NodeShared>>,
    pub lessor: Arc<Mutex<Lessor>>,
    pub input: UnboundedSender<Input>,
    /// Notified after each apply round, to wake the watch streams.
    pub apply_notify: Arc<Notify>,
    /// This member's base election timeout (the watch streams' leader monitor).
    pub election_timeout_ms: u64,
    pub bugs: Bugs,
}

pub(crate) fn serve(endpoint: Arc<Endpoint>, ctx: ServerContext) {
    let kv_ctx = ctx.clone();
    endpoint.add_rpc_handler(move |call: KvCall| {
        let ctx = kv_ctx.clone();
        async move {
            let reply = handle_kv(ctx.clone(), call.request).await;
            let served = {
                let status = &lock(&ctx.shared).status;
                Served {
                    member: status.id,
                    raft_term: status.term,
                    role: status.role,
                }
            };
            KvAnswer { reply, served }
        }
    });
    madsim::task::spawn(watch::serve_streams(endpoint, ctx));
}

async fn handle_kv(ctx: ServerContext, request: Request) -> KvReply {
    match &request {
        Request::Range(range) if range.serializable => {
            return KvReply::Ok(lock(&ctx.shared).store.range(range));
        }
        // Planted bug: renew from the local lessor without confirming leadership.
        Request::LeaseKeepAlive { id } if ctx.bugs.lease_renew_unconfirmed => {
            return keep_alive_unconfirmed(&ctx, *id)
        }
        _ => {}
    }
    let (reply, answer) = oneshot::channel();
    if ctx.input.send(Input::Client { request, reply }).is_err() {
        return KvReply::Unavailable {
            reason: "server is shutting down".into(),
        };
    }
    match answer.await {
        Ok(reply) => reply,
        // The Raft loop dropped the request without an answer: its outcome is unknown (e.g. a snapshot
        // overtook the proposal). Say nothing, so the client times out and records "unknown".
        Err(_) => std::future::pending().await,
    }
}

/// etcd 3.4.24's `LeaseRenew` (planted bug `lease_renew_unconfirmed`): the local lessor answers if
/// it is primary, without asking whether this member is still the leader.
fn keep_alive_unconfirmed(ctx: &ServerContext, id: i64) -> KvReply {
    let shared = lock(&ctx.shared);
    let mut lessor = lock(&ctx.lessor);
    renew(&shared, &mut lessor, id)
}

/// `lessor.Renew` on this member: only the primary lessor renews, without going through Raft. The
/// caller has confirmed leadership (ReadIndex) unless a planted bug skips that.
pub(crate) fn renew(shared: &NodeShared, lessor: &mut Lessor, id: i64) -> KvReply {
    if !lessor.is_primary() {
        return KvReply::NotLeader {
            leader: shared.status.leader,
        };
    }
    let revision = shared.store.revision();
    match lessor.keep_alive(shared.clock_ms(), id) {
        Ok(ttl_s) => KvReply::Ok(Response::LeaseKeepAlive {
            revision,
            id,
            ttl_s,
        }),
        Err(KeepAliveRefused::NotFound) => KvReply::Ok(Response::Error(StoreError::LeaseNotFound)),
        // Nothing was renewed, so the client may retry; by then the revoke is applied.
        Err(KeepAliveRefused::Expiring) => KvReply::Unavailable {
            reason: "lease expired, revoke not applied yet".to_string(),
        },
    }
}
