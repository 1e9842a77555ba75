//! openraft's RPCs over the cluster's datagram network ([`PeerNet`]): a request datagram carries a
//! request id; the reply comes back as another datagram naming it. A lost datagram (loss, a cut link,
//! a crashed peer) is noticed by the sender's timeout (openraft's `RPCOption::hard_ttl`) and
//! reported as a `NetworkError`.
//!
//! Never `Unreachable`: openraft 0.9's replication backs off after `Unreachable` in a `tokio::select!`
//! without `biased;`, whose branch order comes from tokio's own RNG (docs/facts.md, "openraft 0.9").

use super::types::{Raft, Snapshot, TypeConfig, Vote};
use crate::target::{lock, PeerNet};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, EmptyNode, RaftNetwork, RaftNetworkFactory};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

/// One datagram between members.
pub enum PeerMsg {
    Request {
        from: u64,
        id: u64,
        body: Box<RequestBody>,
    },
    Reply {
        id: u64,
        body: Box<ReplyBody>,
    },
}

pub enum RequestBody {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    Snapshot { vote: Vote, snapshot: Snapshot },
}

pub enum ReplyBody {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<SnapshotResponse<u64>, Fatal<u64>>),
}

/// The RPCs in flight of one incarnation, by request id.
#[derive(Clone, Default)]
pub struct Pending {
    inner: Arc<Mutex<PendingInner>>,
}

#[derive(Default)]
struct PendingInner {
    next_id: u64,
    waiting: BTreeMap<u64, oneshot::Sender<ReplyBody>>,
}

impl Pending {
    fn register(&self) -> (u64, oneshot::Receiver<ReplyBody>) {
        let mut inner = lock(&self.inner);
        inner.next_id += 1;
        let id = inner.next_id;
        let (tx, rx) = oneshot::channel();
        inner.waiting.insert(id, tx);
        (id, rx)
    }

    fn forget(&self, id: u64) {
        lock(&self.inner).waiting.remove(&id);
    }

    fn complete(&self, id: u64, body: ReplyBody) {
        if let Some(tx) = lock(&self.inner).waiting.remove(&id) {
            let _ = tx.send(body);
        }
    }
}

/// Builds one [`PeerClient`] per target.
pub struct Network {
    pub id: u64,
    pub net: PeerNet<PeerMsg>,
    pub pending: Pending,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, _node: &EmptyNode) -> PeerClient {
        PeerClient {
            from: self.id,
            to: target,
            net: self.net.clone(),
            pending: self.pending.clone(),
        }
    }
}

pub struct PeerClient {
    from: u64,
    to: u64,
    net: PeerNet<PeerMsg>,
    pending: Pending,
}

#[derive(Debug)]
struct Lost(&'static str);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no reply to {} within the RPC's time to live", self.0)
    }
}

impl std::error::Error for Lost {}

impl PeerClient {
    /// Sends `body` and waits for its reply up to `option.hard_ttl()`; `None` if none came.
    async fn call(&self, body: RequestBody, option: &RPCOption) -> Option<ReplyBody> {
        let (id, reply) = self.pending.register();
        self.net.send(
            self.from,
            self.to,
            PeerMsg::Request {
                from: self.from,
                id,
                body: Box::new(body),
            },
            1,
        );
        match madsim::time::timeout(option.hard_ttl(), reply).await {
            Ok(Ok(body)) => Some(body),
            _ => {
                self.pending.forget(id);
                None
            }
        }
    }
}

fn lost<E: std::error::Error>(what: &'static str) -> RPCError<u64, EmptyNode, E> {
    RPCError::Network(NetworkError::new(&AnyError::new(&Lost(what))))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, EmptyNode, RaftError<u64>>> {
        match self.call(RequestBody::Append(rpc), &option).await {
            Some(ReplyBody::Append(Ok(r))) => Ok(r),
            Some(ReplyBody::Append(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.to, e)))
            }
            _ => Err(lost("append_entries")),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, EmptyNode, RaftError<u64>>> {
        match self.call(RequestBody::Vote(rpc), &option).await {
            Some(ReplyBody::Vote(Ok(r))) => Ok(r),
            Some(ReplyBody::Vote(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.to, e)))
            }
            _ => Err(lost("vote")),
        }
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, EmptyNode, RaftError<u64, InstallSnapshotError>>,
    > {
        // Chunked snapshots are never used: `full_snapshot` sends the whole image in one datagram.
        Err(lost("install_snapshot"))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        match self
            .call(RequestBody::Snapshot { vote, snapshot }, &option)
            .await
        {
            Some(ReplyBody::Snapshot(Ok(r))) => Ok(r),
            Some(ReplyBody::Snapshot(Err(e))) => {
                Err(StreamingError::RemoteError(RemoteError::new(self.to, e)))
            }
            _ => Err(StreamingError::Network(NetworkError::new(&AnyError::new(
                &Lost("full_snapshot"),
            )))),
        }
    }
}

/// The incarnation's receiving side: answers requests through `raft` (each in its own task, so a
/// slow one does not hold up the others) and completes replies.
pub async fn serve_inbox(
    id: u64,
    mut inbox: UnboundedReceiver<PeerMsg>,
    raft: Raft,
    net: PeerNet<PeerMsg>,
    pending: Pending,
) {
    while let Some(msg) = inbox.recv().await {
        match msg {
            PeerMsg::Reply { id: request, body } => pending.complete(request, *body),
            PeerMsg::Request {
                from,
                id: request,
                body,
            } => {
                let raft = raft.clone();
                let net = net.clone();
                madsim::task::spawn(async move {
                    let reply = match *body {
                        RequestBody::Append(rpc) => {
                            ReplyBody::Append(raft.append_entries(rpc).await)
                        }
                        RequestBody::Vote(rpc) => ReplyBody::Vote(raft.vote(rpc).await),
                        RequestBody::Snapshot { vote, snapshot } => {
                            ReplyBody::Snapshot(raft.install_full_snapshot(vote, snapshot).await)
                        }
                    };
                    net.send(
                        id,
                        from,
                        PeerMsg::Reply {
                            id: request,
                            body: Box::new(reply),
                        },
                        1,
                    );
                });
            }
        }
    }
}
