//! The simulated server's own wire types: what a client sends to a node and what comes back.
//!
//! Architecture invariant: these are deliberately NOT the history types of `kvsim-model`.
//! The server and the model must share no code, so that a bug in one cannot hide in the other;
//! the client (`client.rs`) converts these into `kvsim_model::mvcc` types when it records.
//! Keys and values are bytes here, as on etcd's wire.

use serde::{Deserialize, Serialize};

pub type Bytes = Vec<u8>;

/// A request that goes through Raft (or, for reads, through ReadIndex) and is applied by the
/// node's [`crate::store`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Put(PutReq),
    Range(RangeReq),
    DeleteRange(DeleteRangeReq),
    Txn(TxnReq),
    LeaseGrant { id: i64, ttl_s: i64 },
    LeaseRevoke { id: i64 },
    LeaseKeepAlive { id: i64 },
    LeaseTimeToLive { id: i64, keys: bool },
    Compact { revision: i64, physical: bool },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutReq {
    pub key: Bytes,
    pub value: Bytes,
    pub lease: i64,
    pub prev_kv: bool,
    pub ignore_value: bool,
    pub ignore_lease: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeReq {
    pub key: Bytes,
    /// etcd encoding: empty = single key, `[0]` = all keys >= key, else `[key, range_end)`.
    pub range_end: Bytes,
    pub revision: i64,
    pub limit: i64,
    pub count_only: bool,
    pub keys_only: bool,
    pub serializable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeReq {
    pub key: Bytes,
    pub range_end: Bytes,
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnReq {
    pub compare: Vec<Cmp>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmp {
    pub key: Bytes,
    pub result: CmpResult,
    pub target: CmpTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpResult {
    Equal,
    NotEqual,
    Less,
    Greater,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpTarget {
    Value(Bytes),
    Version(i64),
    CreateRevision(i64),
    ModRevision(i64),
    Lease(i64),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Put(PutReq),
    Range(RangeReq),
    DeleteRange(DeleteRangeReq),
    Txn(TxnReq),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    pub key: Bytes,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Put {
        revision: i64,
        prev_kv: Option<Kv>,
    },
    Range {
        revision: i64,
        kvs: Vec<Kv>,
        more: bool,
        count: i64,
    },
    DeleteRange {
        revision: i64,
        deleted: i64,
        prev_kvs: Vec<Kv>,
    },
    Txn {
        revision: i64,
        succeeded: bool,
        responses: Vec<Response>,
    },
    LeaseGrant {
        revision: i64,
        id: i64,
        ttl_s: i64,
    },
    LeaseRevoke {
        revision: i64,
    },
    LeaseKeepAlive {
        revision: i64,
        id: i64,
        ttl_s: i64,
    },
    LeaseTimeToLive {
        revision: i64,
        id: i64,
        ttl_s: i64,
        granted_ttl_s: i64,
        keys: Vec<Bytes>,
    },
    Compact {
        revision: i64,
    },
    /// An etcd error the client must record as a definite response (see `StoreError`).
    Error(StoreError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreError {
    Compacted,
    FutureRevision,
    LeaseNotFound,
    LeaseExists,
    DuplicateKey,
    KeyNotFound,
    EmptyKey,
    TooManyOps,
    ValueProvided,
    LeaseProvided,
}

/// One change as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// For a delete: only key and mod_revision (the delete's revision) are set, as in etcd.
    pub kv: Kv,
    pub prev_kv: Option<Kv>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}
