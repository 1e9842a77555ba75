//! Client ↔ node RPCs (madsim `Endpoint` RPC; messages are passed unserialized in simulation).
//!
//! Contract between the node (`node/`) and the client library (`client.rs`):
//! - Every node serves these on `NODE_CLIENT_PORT`.
//! - A node that is not the leader answers writes and linearizable reads with `NotLeader` (with the leader
//!   it believes in, if any); it never forwards. The client follows the hint or tries the next node.
//! - `Unavailable` means the request was definitely not proposed (e.g. no leader known, node shutting down):
//!   the client may retry it safely. Any transport error or timeout means the outcome is unknown.
//! - Serializable reads are answered from the local store whatever the node's role.
//! - Watches are streams ([`ClientWatchStream`] / [`ServerWatchStream`], accepted on the same
//!   endpoint), served from the local store by any member that knows a leader, as etcd serves its
//!   `Watch` gRPC stream: [`WatchResponse`] says what each message promises.
//! - Every answer says who gave it ([`KvAnswer::served`]: the member, its Raft term and the role it
//!   believed it held when it answered), as etcd's response header carries `member_id` and
//!   `raft_term`. Read it when the answer is sent, not when the request arrived.

use crate::node_status::Role;
use crate::proto::{Event, Request as KvRequest, Response as KvResponse};
use madsim::net::rpc::Request;
use serde::{Deserialize, Serialize};

/// The port every node serves client RPCs on.
pub const NODE_CLIENT_PORT: u16 = 2379;

/// A KV request (put, range, delete, txn, lease, compact).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvCall {
    pub request: KvRequest,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvReply {
    Ok(KvResponse),
    /// Not the leader; `leader` is the node id (1-based) it last heard from, if any.
    NotLeader {
        leader: Option<u64>,
    },
    /// Definitely not applied; safe to retry.
    Unavailable {
        reason: String,
    },
}

/// A member's answer to a [`KvCall`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvAnswer {
    pub reply: KvReply,
    pub served: Served,
}

/// Who answered: the member, its current Raft term, and the role it believed it held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub member: u64,
    pub raft_term: u64,
    pub role: Role,
}

impl Request for KvCall {
    const ID: u64 = 0x6b76_0001;
    type Response = KvAnswer;
}

/// What a watcher sends on its watch stream (etcd's `WatchRequest`). One watch per stream: the first
/// message is a [`WatchRequest::Create`]; a stream ends when either side drops it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WatchRequest {
    Create(WatchCreate),
    /// etcd's `WatchProgressRequest`: a progress notification as soon as the watcher has been sent
    /// every event up to the member's revision (at once if it has, later if not; etcd #15220).
    Progress,
}

/// etcd's `WatchCreateRequest`: the events on `[key, range_end)` from `start_revision` on
/// (`<= 0`: from the member's next revision).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WatchCreate {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub start_revision: i64,
    pub prev_kv: bool,
    /// Ask for a progress notification every `progress_notify_ms` of simulated time while nothing
    /// is sent (etcd's `progress_notify` and `--experimental-watch-progress-notify-interval`); 0:
    /// none.
    pub progress_notify_ms: u64,
}

/// What a member sends on a watch stream (etcd's `WatchResponse`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WatchResponse {
    /// The watch exists; `header_revision` is the member's revision when it was created.
    Created { header_revision: i64 },
    /// Every event of each revision in it (a revision's events are never split), in revision
    /// order, each revision after those of earlier responses; `header_revision` is the member's
    /// revision when it was sent (at least the last event's).
    Events {
        header_revision: i64,
        events: Vec<Event>,
    },
    /// A progress notification: the watcher has been sent every event up to `header_revision`.
    Progress { header_revision: i64 },
    /// The watch is canceled: its next revision was compacted away (etcd's `compact_revision` on
    /// a canceled response). The member sends nothing more.
    Compacted { compact_revision: i64 },
    /// The member knows no leader (etcd's `ErrGRPCNoLeader` for a watch opened with
    /// `WithRequireLeader`, at creation or after three election timeouts without one). The
    /// member sends nothing more.
    NoLeader,
}

/// One end of a watch stream over madsim's reliable, ordered connections (`Endpoint::connect1` /
/// `accept1`): what is sent arrives in order unless the connection breaks (a member crash, the
/// other side gone), and a partition only delays it, as TCP retransmits. `S` is what this end
/// sends, `R` what it receives.
pub struct Duplex<S, R> {
    sender: madsim::net::Sender,
    receiver: madsim::net::Receiver,
    _types: std::marker::PhantomData<fn(S) -> R>,
}

/// A member's end of a watch stream.
pub type ServerWatchStream = Duplex<WatchResponse, WatchRequest>;
/// A watcher's end of a watch stream.
pub type ClientWatchStream = Duplex<WatchRequest, WatchResponse>;

impl<S: Send + Sync + 'static, R: Send + Sync + 'static> Duplex<S, R> {
    /// Sends one message; an error means the stream is broken (nothing more will arrive there).
    pub async fn send(&mut self, message: S) -> std::io::Result<()> {
        self.sender.send(Box::new(message)).await
    }

    /// The next message; an error means the stream is broken or the other side closed it.
    pub async fn recv(&mut self) -> std::io::Result<R> {
        let payload = self.receiver.recv().await?;
        match payload.downcast::<R>() {
            Ok(message) => Ok(*message),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a watch stream carried a message of another type",
            )),
        }
    }
}

impl ServerWatchStream {
    /// Waits for the next watch stream a watcher opens to `endpoint`.
    pub async fn accept(endpoint: &madsim::net::Endpoint) -> std::io::Result<Self> {
        let (sender, receiver, _) = endpoint.accept1().await?;
        Ok(Self {
            sender,
            receiver,
            _types: std::marker::PhantomData,
        })
    }
}

impl ClientWatchStream {
    /// Opens a watch stream from `endpoint` to the member at `member` and sends `create`.
    pub async fn open(
        endpoint: &madsim::net::Endpoint,
        member: std::net::SocketAddr,
        create: WatchCreate,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = endpoint.connect1(member).await?;
        let mut stream = Self {
            sender,
            receiver,
            _types: std::marker::PhantomData,
        };
        stream.send(WatchRequest::Create(create)).await?;
        Ok(stream)
    }
}
