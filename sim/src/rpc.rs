//! Client ↔ node RPCs (madsim `Endpoint` RPC; messages are passed unserialized in simulation).
//!
//! Contract between the node (`node/`) and the client library (`client.rs`):
//! - Every node serves these on `NODE_CLIENT_PORT`.
//! - A node that is not the leader answers writes and linearizable reads with `NotLeader` (with the leader
//!   it believes in, if any); it never forwards. The client follows the hint or tries the next node.
//! - `Unavailable` means the request was definitely not proposed (e.g. no leader known, node shutting down):
//!   the client may retry it safely. Any transport error or timeout means the outcome is unknown.
//! - Serializable reads are answered from the local store whatever the node's role.
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

/// One poll of a watch: returns the events on `[key, range_end)` with revision >= `start_revision`
/// (all events of one revision together), waiting up to `wait_ms` of simulated time for at least one.
/// A stream of polls, each starting after the last revision seen, is the simulated watch stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WatchPoll {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub start_revision: i64,
    pub prev_kv: bool,
    pub wait_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WatchReply {
    /// `events` may be empty (a progress notification: nothing up to `header_revision`).
    Events {
        header_revision: i64,
        events: Vec<Event>,
    },
    /// `start_revision` is below the compacted revision.
    Compacted {
        compact_revision: i64,
    },
    NotLeader {
        leader: Option<u64>,
    },
    Unavailable {
        reason: String,
    },
}

impl Request for WatchPoll {
    const ID: u64 = 0x6b76_0002;
    type Response = WatchReply;
}
