//! The client RPC service (contract in `crate::rpc`): serializable reads and watches are answered from the
//! local store on any member; keepalives by the primary lessor; everything else goes to the Raft loop, which
//! answers `NotLeader` on a follower.

use super::lessor::{KeepAliveRefused, Lessor};
use super::raft_loop::Input;
use super::{lock, watch, NodeShared};
use crate::proto::{Request, Response, StoreError};
use crate::rpc::{KvCall, KvReply, WatchPoll};
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
    /// Notified after each apply round, to wake waiting watch polls.
    pub apply_notify: Arc<Notify>,
    pub bugs: Bugs,
}

pub(crate) fn serve(endpoint: Arc<Endpoint>, ctx: ServerContext) {
    let kv_ctx = ctx.clone();
    endpoint.add_rpc_handler(move |call: KvCall| {
        let ctx = kv_ctx.clone();
        async move { handle_kv(ctx, call.request).await }
    });
    endpoint.add_rpc_handler(move |poll: WatchPoll| {
        let ctx = ctx.clone();
        async move { watch::handle_poll(&ctx, poll).await }
    });
}

async fn handle_kv(ctx: ServerContext, request: Request) -> KvReply {
    match &request {
        Request::Range(range) if range.serializable => {
            return KvReply::Ok(lock(&ctx.shared).store.range(range));
        }
        Request::LeaseKeepAlive { id } => return keep_alive(&ctx, *id),
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

/// etcd's `LeaseRenew`: only the leader's lessor renews, without going through Raft.
fn keep_alive(ctx: &ServerContext, id: i64) -> KvReply {
    let shared = lock(&ctx.shared);
    let mut lessor = lock(&ctx.lessor);
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
