//! The vocabulary of etcd's v3 KV, lease and maintenance APIs, as histories record it.
//!
//! Field names follow etcd's protobufs (`etcdserverpb`, `mvccpb`) so that a history reads like
//! etcd's own JSON. Keys and values are UTF-8 strings: the simulator and the live workloads only
//! generate printable keys, and strings keep histories readable by humans.
//!
//! Architecture invariant: these are plain data. The simulated server has its own wire types; its
//! client converts them into these when it records a history.

use serde::{Deserialize, Serialize};

pub type Key = String;
pub type Value = String;
/// etcd's main revision: 1 on an empty store, +1 for every write transaction that changed something.
pub type Revision = i64;
pub type LeaseId = i64;

/// `range_end` as etcd encodes it: empty = the single key `key`; `"\0"` = every key `>= key`;
/// otherwise the half-open interval `[key, range_end)`. A prefix `p` is `[p, prefix_end(p))`.
pub const FROM_KEY: &str = "\0";

/// The `range_end` that selects every key with prefix `prefix` (etcd's `clientv3.GetPrefixRangeEnd`).
pub fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            // Only ASCII keys are generated; an ASCII byte + 1 (< 0x80) keeps the string valid UTF-8.
            return String::from_utf8(bytes).expect("ASCII prefix");
        }
    }
    FROM_KEY.to_string()
}

/// One operation a client (or the server's lessor, for [`Op::LeaseExpire`]) performed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Put(PutRequest),
    Range(RangeRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    LeaseGrant {
        /// Client-chosen lease ID (etcd allows it; it makes grants with unknown outcome identifiable).
        id: LeaseId,
        ttl_s: i64,
    },
    LeaseRevoke {
        id: LeaseId,
    },
    LeaseKeepAlive {
        id: LeaseId,
    },
    LeaseTimeToLive {
        id: LeaseId,
        keys: bool,
    },
    /// Synthetic: the leader's lessor expired lease `id`, deleting its keys at one revision. Never
    /// returns (outcome unknown): it may take effect at any moment after `ttl_s` past the last
    /// successful grant or keep-alive, or never. See ARCHITECTURE.md, "Lease expiry".
    LeaseExpire {
        id: LeaseId,
    },
    Compact {
        revision: Revision,
        #[serde(default)]
        physical: bool,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PutRequest {
    pub key: Key,
    pub value: Value,
    /// 0 = no lease.
    #[serde(default)]
    pub lease: LeaseId,
    #[serde(default)]
    pub prev_kv: bool,
    #[serde(default)]
    pub ignore_value: bool,
    #[serde(default)]
    pub ignore_lease: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RangeRequest {
    pub key: Key,
    /// See [`FROM_KEY`] and [`prefix_end`]; empty = single key.
    #[serde(default)]
    pub range_end: Key,
    /// 0 = the current revision.
    #[serde(default)]
    pub revision: Revision,
    /// 0 = no limit.
    #[serde(default)]
    pub limit: i64,
    #[serde(default)]
    pub count_only: bool,
    #[serde(default)]
    pub keys_only: bool,
    /// Served from the local replica without a ReadIndex round: not linearizable, only a
    /// consistent snapshot at the header's revision.
    #[serde(default)]
    pub serializable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    pub key: Key,
    #[serde(default)]
    pub range_end: Key,
    #[serde(default)]
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnRequest {
    #[serde(default)]
    pub compare: Vec<Compare>,
    #[serde(default)]
    pub success: Vec<RequestOp>,
    #[serde(default)]
    pub failure: Vec<RequestOp>,
}

impl TxnRequest {
    /// The branch a txn answered `succeeded` took.
    pub fn branch(&self, succeeded: bool) -> &[RequestOp] {
        if succeeded {
            &self.success
        } else {
            &self.failure
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Compare {
    pub key: Key,
    pub result: CompareResult,
    pub target: CompareTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareResult {
    Equal,
    NotEqual,
    Less,
    Greater,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareTarget {
    Value(Value),
    Version(i64),
    CreateRevision(Revision),
    ModRevision(Revision),
    Lease(LeaseId),
}

/// One operation inside a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RequestOp {
    Put(PutRequest),
    Range(RangeRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
}

/// What came back: a response or one of etcd's errors. Both are definite outcomes the model must
/// reproduce; an operation whose outcome is unknown has no `Ret` at all.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ret {
    Ok(Response),
    Err(EtcdError),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Response {
    Put(PutResponse),
    Range(RangeResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    LeaseGrant {
        header: ResponseHeader,
        id: LeaseId,
        ttl_s: i64,
    },
    LeaseRevoke {
        header: ResponseHeader,
    },
    LeaseKeepAlive {
        header: ResponseHeader,
        id: LeaseId,
        ttl_s: i64,
    },
    LeaseTimeToLive {
        header: ResponseHeader,
        id: LeaseId,
        /// Remaining seconds; time-dependent, so the model only checks `-1` (no such lease)
        /// against `>= 0`.
        ttl_s: i64,
        granted_ttl_s: i64,
        /// Sorted; empty unless the request asked for keys.
        #[serde(default)]
        keys: Vec<Key>,
    },
    Compact {
        header: ResponseHeader,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResponseHeader {
    /// The store's revision when the request was served (after it, for a write that changed something).
    pub revision: Revision,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Key,
    /// Empty when the request was `keys_only`.
    #[serde(default)]
    pub value: Value,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    #[serde(default)]
    pub lease: LeaseId,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PutResponse {
    pub header: ResponseHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RangeResponse {
    pub header: ResponseHeader,
    /// Sorted by key; at most `limit` entries; empty when `count_only`.
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
    /// True when `limit` cut the result short.
    #[serde(default)]
    pub more: bool,
    /// Number of keys in the range, regardless of `limit`.
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    pub header: ResponseHeader,
    pub deleted: i64,
    /// Sorted by key; filled only when the request asked for `prev_kv`.
    #[serde(default)]
    pub prev_kvs: Vec<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnResponse {
    pub header: ResponseHeader,
    pub succeeded: bool,
    /// One per operation of the branch taken, in order. Their headers are etcd's (verified on
    /// 3.4.23): a put carries the txn's new revision; a range or delete the store's revision at
    /// that point (the old one before the txn's first change, the new one after); a nested txn
    /// an empty header (revision 0).
    #[serde(default)]
    pub responses: Vec<ResponseOp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ResponseOp {
    Put(PutResponse),
    Range(RangeResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

impl Response {
    /// Calls `visit` on every key-value the response shows: range results, previous values of
    /// puts and deletes, and everything inside txn responses.
    pub fn for_each_kv(&self, visit: &mut impl FnMut(&KeyValue)) {
        match self {
            Response::Put(put) => put.prev_kv.iter().for_each(visit),
            Response::Range(range) => range.kvs.iter().for_each(visit),
            Response::DeleteRange(delete) => delete.prev_kvs.iter().for_each(visit),
            Response::Txn(txn) => txn.for_each_kv(visit),
            Response::LeaseGrant { .. }
            | Response::LeaseRevoke { .. }
            | Response::LeaseKeepAlive { .. }
            | Response::LeaseTimeToLive { .. }
            | Response::Compact { .. } => {}
        }
    }
}

impl TxnResponse {
    /// [`Response::for_each_kv`] over every response of the taken branch, nested ones too.
    pub fn for_each_kv(&self, visit: &mut impl FnMut(&KeyValue)) {
        for response in &self.responses {
            match response {
                ResponseOp::Put(put) => put.prev_kv.iter().for_each(&mut *visit),
                ResponseOp::Range(range) => range.kvs.iter().for_each(&mut *visit),
                ResponseOp::DeleteRange(delete) => delete.prev_kvs.iter().for_each(&mut *visit),
                ResponseOp::Txn(nested) => nested.for_each_kv(visit),
            }
        }
    }
}

/// Which of the key-values an answer shows [`for_each_shown_kv`] visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Every one: ranges of any revision, serializable ones too.
    Anywhere,
    /// Only those that show the store at the op's own linearization point (or, for a txn's range
    /// after its own puts, later): linearizable ranges of the current revision, previous values
    /// of puts and deletes. Serializable ranges (possibly stale) and ranges of a past revision
    /// show other points.
    AtItsPoint,
}

/// Calls `visit` on each key-value `op`'s answer `response` shows (range results, previous
/// values of puts and deletes, the same inside the taken branches of txns, nested ones too),
/// with whether its value was left out (a `keys_only` range), as far as `shown` says.
pub fn for_each_shown_kv(
    op: &Op,
    response: &Response,
    shown: Shown,
    visit: &mut impl FnMut(&KeyValue, bool),
) {
    match (op, response) {
        (Op::Range(r), Response::Range(resp))
            if shown == Shown::Anywhere || (!r.serializable && r.revision == 0) =>
        {
            resp.kvs.iter().for_each(|kv| visit(kv, r.keys_only))
        }
        (Op::Put(_), Response::Put(resp)) => resp.prev_kv.iter().for_each(|kv| visit(kv, false)),
        (Op::DeleteRange(_), Response::DeleteRange(resp)) => {
            resp.prev_kvs.iter().for_each(|kv| visit(kv, false))
        }
        (Op::Txn(t), Response::Txn(resp)) => txn_shown_kvs(t, resp, shown, visit),
        _ => {}
    }
}

/// [`for_each_shown_kv`] of a txn: a range inside one reads the txn's own revision whatever its
/// `serializable` flag says.
fn txn_shown_kvs(
    t: &TxnRequest,
    resp: &TxnResponse,
    shown: Shown,
    visit: &mut impl FnMut(&KeyValue, bool),
) {
    for (request, response) in t.branch(resp.succeeded).iter().zip(&resp.responses) {
        match (request, response) {
            (RequestOp::Range(r), ResponseOp::Range(range))
                if shown == Shown::Anywhere || r.revision == 0 =>
            {
                range.kvs.iter().for_each(|kv| visit(kv, r.keys_only))
            }
            (RequestOp::Put(_), ResponseOp::Put(put)) => {
                put.prev_kv.iter().for_each(|kv| visit(kv, false))
            }
            (RequestOp::DeleteRange(_), ResponseOp::DeleteRange(delete)) => {
                delete.prev_kvs.iter().for_each(|kv| visit(kv, false))
            }
            (RequestOp::Txn(nested), ResponseOp::Txn(nested_resp)) => {
                txn_shown_kvs(nested, nested_resp, shown, visit)
            }
            _ => {}
        }
    }
}

/// The errors etcd returns that a model can predict. Transport failures are not here: they make an
/// outcome unknown (or a definite failure), they are not responses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtcdError {
    /// `mvcc: required revision has been compacted`
    Compacted,
    /// `mvcc: required revision is a future revision`
    FutureRevision,
    /// `etcdserver: requested lease not found`
    LeaseNotFound,
    /// `etcdserver: lease already exists`
    LeaseExists,
    /// `etcdserver: duplicate key given in txn request`
    DuplicateKey,
    /// `etcdserver: key not found` (put with ignore_value / ignore_lease on a missing key)
    KeyNotFound,
    /// `etcdserver: key is not provided`
    EmptyKey,
    /// `etcdserver: too many operations in txn request`
    TooManyOps,
    /// `etcdserver: value is provided` / `lease is provided` with the matching ignore flag.
    ValueProvided,
    LeaseProvided,
}
