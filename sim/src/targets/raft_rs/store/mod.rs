//! The simulated server's MVCC store, following etcd 3.4's mvcc package: a key index of per-key
//! generations (`index`, `key_index`), a revision-ordered record backend (`backend`), a lease table
//! (`lessor`), and write transactions that stamp every change of one request with one main revision
//! (`txn`). Request validation that etcd does in its gRPC layer (`validate`) runs here too, since the
//! simulated server has no gRPC layer.
//!
//! Architecture invariant: this module shares no code with `kvsim-model`; the checker compares the
//! two, so a bug common to both would be invisible.

mod backend;
mod hash;
mod index;
mod key_index;
mod key_range;
mod lessor;
mod revision;
mod txn;
mod validate;

use crate::proto::{
    Bytes, DeleteRangeReq, Event, EventKind, Kv, PutReq, RangeReq, Request, Response, StoreError,
    TxnReq,
};
use backend::{Backend, Record};
use hash::Fnv1a;
use index::TreeIndex;
pub use key_range::KeyRange;
use lessor::Lessor;
pub use revision::Revision;
use serde::{Deserialize, Serialize};
use txn::Writer;

/// etcd's default --max-txn-ops.
pub const TXN_OPS_MAX: usize = 128;

/// etcd's minimum lease TTL, ceil(1.5 x election timeout) with the default 1 s election timeout:
/// a grant below it is raised to it (3.4.23 answers `grant 1` with TTL 2).
pub const LEASE_TTL_MIN_S: i64 = 2;

/// Bugs planted on purpose so that the checkers can be shown to catch them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreBugs {
    /// A range at a compacted revision returns the oldest data still held (the state at the compact
    /// revision) instead of ErrCompacted.
    pub compacted_read: bool,
    /// A txn whose taken branch writes more than once applies all its writes but the last put,
    /// and answers as if it had applied that one too.
    pub txn_partial: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Store {
    /// etcd's currentRev: the main revision of the last write transaction that changed something.
    current_rev: i64,
    /// etcd's compactMainRev: -1 until the first compaction.
    compact_main_rev: i64,
    index: TreeIndex,
    backend: Backend,
    lessor: Lessor,
    #[serde(skip)]
    bugs: StoreBugs,
    /// Events of the applies since the last `take_events`; not part of snapshots.
    #[serde(skip)]
    pending_events: Vec<Event>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// One evaluated range.
struct RangeResult {
    kvs: Vec<Kv>,
    count: i64,
    more: bool,
}

impl Store {
    pub fn new() -> Self {
        Store {
            current_rev: 1,
            compact_main_rev: -1,
            index: TreeIndex::default(),
            backend: Backend::default(),
            lessor: Lessor::default(),
            bugs: StoreBugs::default(),
            pending_events: Vec::new(),
        }
    }

    pub fn with_bugs(mut self, bugs: StoreBugs) -> Self {
        self.bugs = bugs;
        self
    }

    pub fn revision(&self) -> i64 {
        self.current_rev
    }

    /// The last compaction's revision, 0 before any.
    pub fn compact_revision(&self) -> i64 {
        self.compact_main_rev.max(0)
    }

    pub fn apply(&mut self, req: &Request) -> Response {
        let response = match req {
            Request::Put(put) => self.apply_put(put),
            Request::Range(range) => return self.range(range),
            Request::DeleteRange(delete) => self.apply_delete_range(delete),
            Request::Txn(txn) => self.apply_txn(txn),
            Request::LeaseGrant { id, ttl_s } => self.lease_grant(*id, *ttl_s),
            Request::LeaseRevoke { id } => self.lease_revoke(*id),
            Request::LeaseKeepAlive { id } => match self.lessor.get(*id) {
                Some(lease) => Ok(Response::LeaseKeepAlive {
                    revision: self.current_rev,
                    id: *id,
                    ttl_s: lease.ttl_s,
                }),
                None => Err(StoreError::LeaseNotFound),
            },
            Request::LeaseTimeToLive { id, keys } => Ok(self.lease_time_to_live(*id, *keys)),
            Request::Compact { revision, .. } => self.compact(*revision),
        };
        response.unwrap_or_else(Response::Error)
    }

    /// The read-only path (ReadIndex or serializable reads): a range at the current state.
    pub fn range(&self, req: &RangeReq) -> Response {
        let result = validate::check_range(req).and_then(|()| self.range_at(req, self.current_rev));
        match result {
            Ok(result) => Response::Range {
                revision: self.current_rev,
                kvs: result.kvs,
                more: result.more,
                count: result.count,
            },
            Err(error) => Response::Error(error),
        }
    }

    fn apply_put(&mut self, req: &PutReq) -> Result<Response, StoreError> {
        validate::check_put(req)?;
        if req.lease != 0 && !self.lessor.contains(req.lease) {
            return Err(StoreError::LeaseNotFound);
        }
        let mut writer = Writer::begin(self);
        let response = writer.put(req);
        writer.end();
        response
    }

    fn apply_delete_range(&mut self, req: &DeleteRangeReq) -> Result<Response, StoreError> {
        validate::check_delete_range(req)?;
        let mut writer = Writer::begin(self);
        let response = writer.delete_range(req);
        writer.end();
        Ok(response)
    }

    fn apply_txn(&mut self, req: &TxnReq) -> Result<Response, StoreError> {
        validate::check_txn(req, TXN_OPS_MAX)?;
        validate::check_intervals(&req.success)?;
        validate::check_intervals(&req.failure)?;
        txn::apply(self, req)
    }

    fn lease_grant(&mut self, id: i64, ttl_s: i64) -> Result<Response, StoreError> {
        // etcd's lessor.Grant refuses the reserved NoLease id 0 with ErrLeaseNotFound.
        if id == 0 {
            return Err(StoreError::LeaseNotFound);
        }
        let ttl_s = ttl_s.max(LEASE_TTL_MIN_S);
        if !self.lessor.grant(id, ttl_s) {
            return Err(StoreError::LeaseExists);
        }
        Ok(Response::LeaseGrant {
            revision: self.current_rev,
            id,
            ttl_s,
        })
    }

    /// etcd's lessor.Revoke: deletes the attached keys, in key order, in one write transaction.
    fn lease_revoke(&mut self, id: i64) -> Result<Response, StoreError> {
        let keys: Vec<Bytes> = match self.lessor.get(id) {
            Some(lease) => lease.keys.iter().cloned().collect(),
            None => return Err(StoreError::LeaseNotFound),
        };
        let mut writer = Writer::begin(self);
        for key in keys {
            writer.delete_range(&DeleteRangeReq {
                key,
                range_end: Vec::new(),
                prev_kv: false,
            });
        }
        writer.end();
        self.lessor.remove(id);
        Ok(Response::LeaseRevoke {
            revision: self.current_rev,
        })
    }

    /// etcd's v3rpc turns a missing lease into TTL -1 rather than an error.
    fn lease_time_to_live(&self, id: i64, with_keys: bool) -> Response {
        match self.lessor.get(id) {
            Some(lease) => Response::LeaseTimeToLive {
                revision: self.current_rev,
                id,
                ttl_s: lease.ttl_s,
                granted_ttl_s: lease.ttl_s,
                keys: if with_keys {
                    lease.keys.iter().cloned().collect()
                } else {
                    Vec::new()
                },
            },
            None => Response::LeaseTimeToLive {
                revision: self.current_rev,
                id,
                ttl_s: -1,
                granted_ttl_s: 0,
                keys: Vec::new(),
            },
        }
    }

    /// etcd's store.Compact: index and backend compacted at once (etcd's backend deletion is
    /// asynchronous, but reads below the compact revision are refused either way).
    fn compact(&mut self, revision: i64) -> Result<Response, StoreError> {
        if revision <= self.compact_main_rev {
            return Err(StoreError::Compacted);
        }
        if revision > self.current_rev {
            return Err(StoreError::FutureRevision);
        }
        self.compact_main_rev = revision;
        let keep = self.index.compact(revision);
        self.backend.compact(revision, &keep);
        Ok(Response::Compact {
            revision: self.current_rev,
        })
    }

    /// Range evaluation at `read_rev` (the revision the reader's view is at), as etcd's rangeKeys
    /// followed by applierV3backend.Range's limit handling.
    fn range_at(&self, req: &RangeReq, read_rev: i64) -> Result<RangeResult, StoreError> {
        if req.revision > read_rev {
            return Err(StoreError::FutureRevision);
        }
        let mut rev = if req.revision <= 0 {
            read_rev
        } else {
            req.revision
        };
        if rev < self.compact_main_rev {
            if !self.bugs.compacted_read {
                return Err(StoreError::Compacted);
            }
            rev = self.compact_main_rev;
        }
        let found = self
            .index
            .range(&KeyRange::parse(&req.key, &req.range_end), rev);
        let count = found.len() as i64;
        if req.count_only {
            return Ok(RangeResult {
                kvs: Vec::new(),
                count,
                more: false,
            });
        }
        let limit = if req.limit > 0 {
            req.limit as usize
        } else {
            found.len()
        };
        let kvs = found
            .iter()
            .take(limit)
            .map(|(_, found)| {
                let mut kv = self.record(found.modified).kv.clone();
                if req.keys_only {
                    kv.value.clear();
                }
                kv
            })
            .collect();
        Ok(RangeResult {
            kvs,
            count,
            more: found.len() > limit,
        })
    }

    fn record(&self, rev: Revision) -> &Record {
        self.backend
            .get(rev)
            .unwrap_or_else(|| panic!("index points at {rev:?}, missing from the backend"))
    }

    /// The live key-value of `key` at main revision `at_rev`.
    fn kv_at(&self, key: &[u8], at_rev: i64) -> Option<Kv> {
        let found = self.index.get(key, at_rev)?;
        let record = self.record(found.modified);
        assert!(!record.tombstone);
        Some(record.kv.clone())
    }

    /// The watch event for one backend record. `prev_kv` is looked up at the previous revision, as
    /// etcd's watch server does (none for a creation, none if that revision is compacted).
    fn event_of(&self, rev: Revision, record: &Record, prev_kv: bool) -> Event {
        let kind = if record.tombstone {
            EventKind::Delete
        } else {
            EventKind::Put
        };
        let creation = kind == EventKind::Put && record.kv.version == 1;
        let prev_kv = (prev_kv && !creation && rev.main > self.compact_main_rev)
            .then(|| self.kv_at(&record.kv.key, rev.main - 1))
            .flatten();
        Event {
            kind,
            kv: record.kv.clone(),
            prev_kv,
        }
    }

    /// Events produced by the applies since the last call, in revision order, with prev_kv filled.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending_events)
    }

    /// Watch catch-up: every change at main revision >= `start_revision` in the key range, from the
    /// backend as etcd's syncWatchers reads it. Err(compact revision) if `start_revision` is below it.
    pub fn events_since(
        &self,
        start_revision: i64,
        key: &[u8],
        range_end: &[u8],
        prev_kv: bool,
    ) -> Result<Vec<Event>, i64> {
        if start_revision < self.compact_main_rev {
            return Err(self.compact_main_rev);
        }
        let range = KeyRange::parse(key, range_end);
        let events: Vec<Event> = self
            .backend
            .since(start_revision)
            .filter(|(_, record)| range.contains(&record.kv.key))
            .map(|(rev, record)| self.event_of(*rev, record, prev_kv))
            .collect();
        assert!(events
            .windows(2)
            .all(|pair| pair[0].kv.mod_revision <= pair[1].kv.mod_revision));
        Ok(events)
    }

    /// Like etcd's HashKV: a hash of every backend record at or below `revision` (0 = current), which
    /// after a compaction is the kept revisions plus everything after the compact revision.
    pub fn hash_kv(&self, revision: i64) -> Result<u64, StoreError> {
        let revision = if revision <= 0 {
            self.current_rev
        } else {
            revision
        };
        if revision < self.compact_main_rev {
            return Err(StoreError::Compacted);
        }
        if revision > self.current_rev {
            return Err(StoreError::FutureRevision);
        }
        let mut hasher = Fnv1a::new();
        hasher.write_i64(self.compact_main_rev);
        for (rev, record) in self
            .backend
            .iter()
            .take_while(|(rev, _)| rev.main <= revision)
        {
            hasher.write_i64(rev.main);
            hasher.write_i64(rev.sub);
            hasher.write(&[u8::from(record.tombstone)]);
            hasher.write_bytes(&record.kv.key);
            hasher.write_bytes(&record.kv.value);
            hasher.write_i64(record.kv.create_revision);
            hasher.write_i64(record.kv.mod_revision);
            hasher.write_i64(record.kv.version);
            hasher.write_i64(record.kv.lease);
        }
        Ok(hasher.finish())
    }

    /// (id, granted ttl) of every lease, sorted by id.
    pub fn leases(&self) -> Vec<(i64, i64)> {
        self.lessor
            .iter()
            .map(|(id, lease)| (*id, lease.ttl_s))
            .collect()
    }

    /// Keys attached to lease `id`, sorted; empty for a missing lease.
    pub fn lease_keys(&self, id: i64) -> Vec<Bytes> {
        self.lessor
            .get(id)
            .map(|lease| lease.keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every live key-value at the current revision, sorted by key.
    pub fn dump(&self) -> Vec<Kv> {
        let all = KeyRange::Interval {
            start: Vec::new(),
            end: None,
        };
        self.index
            .range(&all, self.current_rev)
            .iter()
            .map(|(_, found)| self.record(found.modified).kv.clone())
            .collect()
    }

    /// The snapshot image (etcd's backend file). bincode: a snapshot never leaves the simulation, and
    /// JSON spells every key and value byte as a decimal number.
    pub fn to_bytes(&self) -> Vec<u8> {
        bincode::serialize(self).expect("a store always serializes")
    }

    /// Restores a snapshot made by `to_bytes` (planted bugs are not part of it: set them again).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let store: Store =
            bincode::deserialize(bytes).map_err(|e| format!("store snapshot: {e}"))?;
        store.check().map_err(|e| format!("store snapshot: {e}"))?;
        Ok(store)
    }

    /// Full consistency check of index, backend and lessor against each other (O(size); for
    /// snapshots and tests).
    pub fn check(&self) -> Result<(), String> {
        if self.current_rev < 1 {
            return Err(format!("revision {} below 1", self.current_rev));
        }
        if self.compact_main_rev > self.current_rev {
            return Err(format!(
                "compact revision {} above revision {}",
                self.compact_main_rev, self.current_rev
            ));
        }
        self.index.check()?;
        if let Some((last, _)) = self.backend.iter().next_back() {
            if last.main > self.current_rev {
                return Err(format!(
                    "backend record {last:?} above revision {}",
                    self.current_rev
                ));
            }
        }
        let mut indexed = 0usize;
        for ki in self.index.key_indexes() {
            for rev in ki.generations.iter().flat_map(|g| g.revs.iter()) {
                let record = self
                    .backend
                    .get(*rev)
                    .ok_or_else(|| format!("index rev {rev:?} not in backend"))?;
                if record.kv.key != ki.key {
                    return Err(format!(
                        "backend {rev:?} holds key {:?}, index says {:?}",
                        record.kv.key, ki.key
                    ));
                }
                indexed += 1;
            }
        }
        if indexed != self.backend.len() {
            return Err(format!(
                "backend holds {} records, index references {indexed}",
                self.backend.len()
            ));
        }
        for (id, lease) in self.lessor.iter() {
            for key in &lease.keys {
                match self.kv_at(key, self.current_rev) {
                    Some(kv) if kv.lease == *id => {}
                    other => {
                        return Err(format!(
                            "lease {id} holds key {key:?} whose live kv is {other:?}"
                        ))
                    }
                }
            }
        }
        for kv in self.dump() {
            if kv.lease != 0 && self.lessor.lease_of(&kv.key) != Some(kv.lease) {
                return Err(format!(
                    "key {:?} has lease {} but the lessor disagrees",
                    kv.key, kv.lease
                ));
            }
        }
        Ok(())
    }
}
