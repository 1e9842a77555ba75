//! The openraft target's state machine: an etcd v3 MVCC key-value store, written for this target
//! alone (it shares nothing with the raft-rs target's store nor with `kvsim-model`, so that a bug in
//! one of them cannot hide behind the same bug in another).
//!
//! Layout (deliberately unlike etcd's keyIndex/backend split): every key owns a list of versions in
//! revision order, each version either a value or a tombstone; a journal lists every change as
//! `(revision, sub-revision, key)` in order, which is what watches replay. A read at revision `r`
//! takes, for each key, the last version at or below `r`.
//!
//! Compaction at `c` drops every version below `c` except the one a read at `c` sees (the last at or
//! below `c`) when it is a live value, and drops the journal below `c`. Reads below `c` answer
//! `Compacted`, reads above the current revision `FutureRevision` (etcd's `ErrCompacted`,
//! `ErrFutureRev`).
//!
//! Semantics follow etcd 3.4's applier (`etcdserver/apply.go`) and API checks
//! (`etcdserver/api/v3rpc/key.go`): see the comments at each rule.

use crate::target::proto::{
    Cmp, CmpResult, CmpTarget, DeleteRangeReq, Event, EventKind, Kv, PutReq, RangeReq, Request,
    Response, StoreError, TxnOp, TxnReq,
};
use std::collections::{BTreeMap, BTreeSet};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// One version of a key: a value, or a tombstone (`kv == None`) left by a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    revision: i64,
    sub: i64,
    kv: Option<Kv>,
}

/// An etcd-style multi-version key-value store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mvcc {
    /// The current (main) revision; a fresh store is at 1, like a fresh etcd cluster.
    revision: i64,
    /// The revision of the last compaction (0: never compacted).
    compact_revision: i64,
    keys: BTreeMap<Vec<u8>, Vec<Version>>,
    /// Every change not compacted away, in (revision, sub-revision) order.
    journal: Vec<(i64, i64, Vec<u8>)>,
}

impl Default for Mvcc {
    fn default() -> Self {
        Mvcc::new()
    }
}

/// A key range in etcd's encoding: `end` empty = the single key, `[0]` = every key >= `start`.
#[derive(Clone, Copy, Debug)]
struct KeyRange<'a> {
    start: &'a [u8],
    end: &'a [u8],
}

impl KeyRange<'_> {
    fn contains(&self, key: &[u8]) -> bool {
        if self.end.is_empty() {
            key == self.start
        } else if self.end == [0] {
            key >= self.start
        } else {
            key >= self.start && key < self.end
        }
    }
}

fn key_range<'a>(key: &'a [u8], range_end: &'a [u8]) -> KeyRange<'a> {
    KeyRange {
        start: key,
        end: range_end,
    }
}

impl Mvcc {
    pub fn new() -> Mvcc {
        Mvcc {
            revision: 1,
            compact_revision: 0,
            keys: BTreeMap::new(),
            journal: Vec::new(),
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// The version of `key` a read at `revision` sees (live values only).
    fn get_at(&self, key: &[u8], revision: i64) -> Option<&Kv> {
        let versions = self.keys.get(key)?;
        let after = versions.partition_point(|v| v.revision <= revision);
        versions[..after].last()?.kv.as_ref()
    }

    /// Every live key of `range` at `revision`, in key order.
    fn live_at<'a>(&'a self, range: KeyRange<'_>, revision: i64) -> Vec<&'a Kv> {
        let mut out = Vec::new();
        if range.end.is_empty() {
            if let Some(kv) = self.get_at(range.start, revision) {
                out.push(kv);
            }
            return out;
        }
        for (key, _) in self.keys.range(range.start.to_vec()..) {
            if !range.contains(key) {
                break;
            }
            if let Some(kv) = self.get_at(key, revision) {
                out.push(kv);
            }
        }
        out
    }

    /// Applies one request that went through Raft (every request kind; reads too, since a read
    /// inside a linearizable path is answered here as well).
    pub fn apply(&mut self, request: &Request) -> Response {
        match request {
            Request::Put(put) => {
                if let Err(e) = check_put(put) {
                    return Response::Error(e);
                }
                self.write(|w| w.put(put))
            }
            Request::DeleteRange(del) => {
                if del.key.is_empty() {
                    return Response::Error(StoreError::EmptyKey);
                }
                self.write(|w| Ok(w.delete_range(del)))
            }
            Request::Txn(txn) => self.txn(txn),
            Request::Range(range) => self.range(range),
            Request::Compact { revision, .. } => self.compact(*revision),
            // Leases are not implemented by this target (Capabilities::leases = false).
            Request::LeaseGrant { .. }
            | Request::LeaseRevoke { .. }
            | Request::LeaseKeepAlive { .. }
            | Request::LeaseTimeToLive { .. } => Response::Error(StoreError::LeaseNotFound),
        }
    }

    /// A read-only range (etcd `Range`, also what serializable reads use).
    pub fn range(&self, range: &RangeReq) -> Response {
        if range.key.is_empty() {
            return Response::Error(StoreError::EmptyKey);
        }
        self.range_at(range, self.revision)
    }

    /// A range where the current revision is `current` (a txn's reads see its own earlier writes).
    fn range_at(&self, range: &RangeReq, current: i64) -> Response {
        // mvcc/kvstore_txn.go rangeKeys: future, then compacted.
        let at = if range.revision <= 0 {
            current
        } else {
            range.revision
        };
        if at > current {
            return Response::Error(StoreError::FutureRevision);
        }
        if at < self.compact_revision {
            return Response::Error(StoreError::Compacted);
        }
        let live = self.live_at(key_range(&range.key, &range.range_end), at);
        let count = live.len() as i64;
        if range.count_only {
            return Response::Range {
                revision: current,
                kvs: Vec::new(),
                more: false,
                count,
            };
        }
        let mut kvs: Vec<Kv> = live.into_iter().cloned().collect();
        let mut more = false;
        if range.limit > 0 && kvs.len() > range.limit as usize {
            kvs.truncate(range.limit as usize);
            more = true;
        }
        if range.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Response::Range {
            revision: current,
            kvs,
            more,
            count,
        }
    }

    /// Runs `f` as one write transaction: every change it makes gets revision `self.revision + 1`
    /// with increasing sub-revisions; the revision moves only if something changed.
    fn write(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<Response, StoreError>,
    ) -> Response {
        let mut writer = Writer {
            store: self,
            sub: 0,
        };
        let result = f(&mut writer);
        let changed = writer.sub > 0;
        if changed {
            self.revision += 1;
        }
        match result {
            Ok(response) => response,
            Err(e) => {
                assert!(!changed, "mvcc: a failed write leaves the store unchanged");
                Response::Error(e)
            }
        }
    }

    fn txn(&mut self, txn: &TxnReq) -> Response {
        // API checks first (v3rpc checkTxnRequest, then checkIntervals on both branches).
        if let Err(e) = check_txn(txn) {
            return Response::Error(e);
        }
        for branch in [&txn.success, &txn.failure] {
            if let Err(e) = check_intervals(branch) {
                return Response::Error(e);
            }
        }
        // Every compare of the txn and of the nested txns on the path is decided on the state
        // before the txn (apply.go compareToPath).
        let path = self.txn_path(txn);
        // Then the chosen requests are checked against that state (checkRequests: puts, ranges).
        if let Err(e) = self.check_requests(txn, &path) {
            return Response::Error(e);
        }
        self.write(|w| w.txn(txn, &path))
    }

    /// The branch (true = success) each txn on the path takes, outermost first, depth-first in op
    /// order for nested txns.
    fn txn_path(&self, txn: &TxnReq) -> Vec<bool> {
        let mut path = Vec::new();
        self.txn_path_into(txn, &mut path);
        path
    }

    fn txn_path_into(&self, txn: &TxnReq, path: &mut Vec<bool>) {
        let ok = txn.compare.iter().all(|c| self.compare(c));
        path.push(ok);
        let ops = if ok { &txn.success } else { &txn.failure };
        for op in ops {
            if let TxnOp::Txn(nested) = op {
                self.txn_path_into(nested, path);
            }
        }
    }

    /// apply.go applyCompare: a missing key fails every value compare and compares as zero otherwise.
    fn compare(&self, cmp: &Cmp) -> bool {
        let kv = self.get_at(&cmp.key, self.revision);
        let ordering = match (&cmp.target, kv) {
            (CmpTarget::Value(_), None) => return false,
            (CmpTarget::Value(v), Some(kv)) => kv.value.as_slice().cmp(v.as_slice()),
            (CmpTarget::Version(t), kv) => kv.map_or(0, |kv| kv.version).cmp(t),
            (CmpTarget::CreateRevision(t), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(t),
            (CmpTarget::ModRevision(t), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(t),
            (CmpTarget::Lease(t), kv) => kv.map_or(0, |kv| kv.lease).cmp(t),
        };
        match cmp.result {
            CmpResult::Equal => ordering.is_eq(),
            CmpResult::NotEqual => ordering.is_ne(),
            CmpResult::Less => ordering.is_lt(),
            CmpResult::Greater => ordering.is_gt(),
        }
    }

    /// apply.go checkRequests with checkRequestPut then checkRequestRange, on the pre-txn state.
    fn check_requests(&self, txn: &TxnReq, path: &[bool]) -> Result<(), StoreError> {
        let mut position = 0;
        self.check_puts(txn, path, &mut position)?;
        let mut position = 0;
        self.check_ranges(txn, path, &mut position)
    }

    fn check_puts(
        &self,
        txn: &TxnReq,
        path: &[bool],
        position: &mut usize,
    ) -> Result<(), StoreError> {
        let ops = if path[*position] {
            &txn.success
        } else {
            &txn.failure
        };
        *position += 1;
        for op in ops {
            match op {
                TxnOp::Put(put) => {
                    if put.lease != 0 {
                        return Err(StoreError::LeaseNotFound);
                    }
                    if (put.ignore_value || put.ignore_lease)
                        && self.get_at(&put.key, self.revision).is_none()
                    {
                        return Err(StoreError::KeyNotFound);
                    }
                }
                TxnOp::Txn(nested) => self.check_puts(nested, path, position)?,
                TxnOp::Range(_) | TxnOp::DeleteRange(_) => {}
            }
        }
        Ok(())
    }

    fn check_ranges(
        &self,
        txn: &TxnReq,
        path: &[bool],
        position: &mut usize,
    ) -> Result<(), StoreError> {
        let ops = if path[*position] {
            &txn.success
        } else {
            &txn.failure
        };
        *position += 1;
        for op in ops {
            match op {
                TxnOp::Range(range) if range.revision > 0 => {
                    if range.revision > self.revision {
                        return Err(StoreError::FutureRevision);
                    }
                    if range.revision < self.compact_revision {
                        return Err(StoreError::Compacted);
                    }
                }
                TxnOp::Txn(nested) => self.check_ranges(nested, path, position)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// etcd `Compact` (mvcc/kvstore.go): at or below the last compaction is `Compacted`, above the
    /// current revision `FutureRevision`. It does not change the revision.
    pub fn compact(&mut self, revision: i64) -> Response {
        if revision <= self.compact_revision {
            return Response::Error(StoreError::Compacted);
        }
        if revision > self.revision {
            return Response::Error(StoreError::FutureRevision);
        }
        self.compact_revision = revision;
        let mut emptied = Vec::new();
        for (key, versions) in self.keys.iter_mut() {
            let seen = versions.partition_point(|v| v.revision <= revision);
            // versions[seen - 1] is what a read at `revision` sees: keep it unless it is an old
            // tombstone (a tombstone at `revision` itself stays: the watch journal still names it).
            let keep_from = if seen == 0 {
                0
            } else {
                let seen_version = &versions[seen - 1];
                if seen_version.revision == revision || seen_version.kv.is_some() {
                    seen - 1
                } else {
                    seen
                }
            };
            versions.drain(..keep_from);
            if versions.is_empty() {
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.keys.remove(&key);
        }
        let cut = self.journal.partition_point(|(r, _, _)| *r < revision);
        self.journal.drain(..cut);
        Response::Compact {
            revision: self.revision,
        }
    }

    /// The watch events on `[key, range_end)` with revision >= `start`, in revision order, or
    /// `Err(compact_revision)` if `start` is below the compaction (etcd: `minRev < compactRev`).
    pub fn events_since(
        &self,
        start: i64,
        key: &[u8],
        range_end: &[u8],
        prev_kv: bool,
    ) -> Result<Vec<Event>, i64> {
        if start < self.compact_revision {
            return Err(self.compact_revision);
        }
        let range = key_range(key, range_end);
        let from = self.journal.partition_point(|(r, _, _)| *r < start);
        let mut events = Vec::new();
        for (revision, sub, changed) in &self.journal[from..] {
            if !range.contains(changed) {
                continue;
            }
            let versions = &self.keys[changed];
            let version = versions
                .iter()
                .find(|v| v.revision == *revision && v.sub == *sub)
                .expect("the journal names a version the key keeps");
            // etcd's watch server reads prev_kv at mod_revision - 1, which fails once compacted.
            let prev = if prev_kv && *revision > self.compact_revision {
                self.get_at(changed, revision - 1).cloned()
            } else {
                None
            };
            events.push(match &version.kv {
                Some(kv) => Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev_kv: prev,
                },
                None => Event {
                    kind: EventKind::Delete,
                    kv: Kv {
                        key: changed.clone(),
                        mod_revision: *revision,
                        ..Kv::default()
                    },
                    prev_kv: prev,
                },
            });
        }
        Ok(events)
    }

    /// etcd's HashKV at `revision` (0 = current): a hash of every version kept at or below it, or
    /// `None` if `revision` is compacted or in the future. Equal on members that applied the same
    /// entries.
    pub fn hash_kv(&self, revision: i64) -> Option<u64> {
        let at = if revision <= 0 {
            self.revision
        } else {
            revision
        };
        if at > self.revision || at < self.compact_revision {
            return None;
        }
        let mut h = Fnv::new();
        h.write_i64(self.compact_revision);
        for (key, versions) in &self.keys {
            for v in versions.iter().take_while(|v| v.revision <= at) {
                h.write_bytes(key);
                h.write_i64(v.revision);
                h.write_i64(v.sub);
                match &v.kv {
                    None => h.write_bytes(b"tombstone"),
                    Some(kv) => {
                        h.write_bytes(&kv.value);
                        h.write_i64(kv.create_revision);
                        h.write_i64(kv.version);
                        h.write_i64(kv.lease);
                    }
                }
            }
        }
        Some(h.finish())
    }

    /// Every live key at the current revision, sorted by key.
    pub fn live_kvs(&self) -> Vec<Kv> {
        self.keys
            .values()
            .filter_map(|versions| versions.last().and_then(|v| v.kv.clone()))
            .collect()
    }
}

/// A write transaction in progress: changes land at `store.revision + 1`.
struct Writer<'a> {
    store: &'a mut Mvcc,
    /// Changes made so far (the next change's sub-revision).
    sub: i64,
}

impl Writer<'_> {
    fn next_revision(&self) -> i64 {
        self.store.revision + 1
    }

    /// The revision reads inside this transaction see as current.
    fn current(&self) -> i64 {
        if self.sub > 0 {
            self.next_revision()
        } else {
            self.store.revision
        }
    }

    fn record(&mut self, key: &[u8], kv: Option<Kv>) {
        let revision = self.next_revision();
        let sub = self.sub;
        self.sub += 1;
        self.store
            .keys
            .entry(key.to_vec())
            .or_default()
            .push(Version { revision, sub, kv });
        self.store.journal.push((revision, sub, key.to_vec()));
    }

    /// apply.go put: lease lookup, then ignore_value / ignore_lease need the key to exist.
    fn put(&mut self, put: &PutReq) -> Result<Response, StoreError> {
        if put.lease != 0 {
            return Err(StoreError::LeaseNotFound);
        }
        let current = self.current();
        let prev = self.store.get_at(&put.key, current).cloned();
        if (put.ignore_value || put.ignore_lease) && prev.is_none() {
            return Err(StoreError::KeyNotFound);
        }
        let revision = self.next_revision();
        let kv = Kv {
            key: put.key.clone(),
            value: if put.ignore_value {
                prev.as_ref().map(|p| p.value.clone()).unwrap_or_default()
            } else {
                put.value.clone()
            },
            create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
            mod_revision: revision,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease: if put.ignore_lease {
                prev.as_ref().map_or(0, |p| p.lease)
            } else {
                put.lease
            },
        };
        self.record(&put.key, Some(kv));
        Ok(Response::Put {
            revision,
            prev_kv: if put.prev_kv { prev } else { None },
        })
    }

    fn delete_range(&mut self, del: &DeleteRangeReq) -> Response {
        let current = self.current();
        let doomed: Vec<Kv> = self
            .store
            .live_at(key_range(&del.key, &del.range_end), current)
            .into_iter()
            .cloned()
            .collect();
        for kv in &doomed {
            self.record(&kv.key, None);
        }
        Response::DeleteRange {
            revision: self.current(),
            deleted: doomed.len() as i64,
            prev_kvs: if del.prev_kv { doomed } else { Vec::new() },
        }
    }

    fn txn(&mut self, txn: &TxnReq, path: &[bool]) -> Result<Response, StoreError> {
        let mut position = 0;
        let (succeeded, mut responses) = self.txn_ops(txn, path, &mut position)?;
        // The txn's header revision goes to its writes (see `set_revision`).
        let revision = self.current();
        set_revision(&mut responses, revision);
        Ok(Response::Txn {
            revision,
            succeeded,
            responses,
        })
    }

    fn txn_ops(
        &mut self,
        txn: &TxnReq,
        path: &[bool],
        position: &mut usize,
    ) -> Result<(bool, Vec<Response>), StoreError> {
        let succeeded = path[*position];
        *position += 1;
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(match op {
                TxnOp::Put(put) => self.put(put)?,
                TxnOp::DeleteRange(del) => self.delete_range(del),
                TxnOp::Range(range) => {
                    let current = self.current();
                    self.store.range_at(range, current)
                }
                TxnOp::Txn(nested) => {
                    let (ok, inner) = self.txn_ops(nested, path, position)?;
                    Response::Txn {
                        revision: 0,
                        succeeded: ok,
                        responses: inner,
                    }
                }
            });
        }
        Ok((succeeded, responses))
    }
}

/// etcd 3.4's txn headers: a put or delete carries the txn's revision, a range the revision it
/// read at (before the txn's later writes), and a nested txn's own header is 0 (only its inner
/// responses are filled in), as `kvsim conformance` shows against a real etcd.
fn set_revision(responses: &mut [Response], revision: i64) {
    for response in responses {
        match response {
            Response::Put { revision: r, .. } | Response::DeleteRange { revision: r, .. } => {
                *r = revision
            }
            Response::Txn {
                responses: inner, ..
            } => set_revision(inner, revision),
            _ => {}
        }
    }
}

/// v3rpc checkPutRequest.
fn check_put(put: &PutReq) -> Result<(), StoreError> {
    if put.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if put.ignore_value && !put.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if put.ignore_lease && put.lease != 0 {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

/// v3rpc checkTxnRequest: sizes, empty keys, put flags, recursively.
fn check_txn(txn: &TxnReq) -> Result<(), StoreError> {
    if txn.compare.len() > MAX_TXN_OPS
        || txn.success.len() > MAX_TXN_OPS
        || txn.failure.len() > MAX_TXN_OPS
    {
        return Err(StoreError::TooManyOps);
    }
    if txn.compare.iter().any(|c| c.key.is_empty()) {
        return Err(StoreError::EmptyKey);
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            TxnOp::Range(r) if r.key.is_empty() => return Err(StoreError::EmptyKey),
            TxnOp::DeleteRange(d) if d.key.is_empty() => return Err(StoreError::EmptyKey),
            TxnOp::Put(p) => check_put(p)?,
            TxnOp::Txn(nested) => check_txn(nested)?,
            _ => {}
        }
    }
    Ok(())
}

/// A delete's key range as a half-open interval (`None` end = unbounded).
#[derive(Clone, Debug)]
struct Interval {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    fn of(del: &DeleteRangeReq) -> Interval {
        let end = if del.range_end.is_empty() {
            let mut next = del.key.clone();
            next.push(0);
            Some(next)
        } else if del.range_end == [0] {
            None
        } else {
            Some(del.range_end.clone())
        };
        Interval {
            start: del.key.clone(),
            end,
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_ref().is_none_or(|e| key < e.as_slice())
    }
}

/// v3rpc checkIntervals: within one branch (nested txns included) no key is put twice, and no put
/// key lies in a deleted range; the two branches of a nested txn may put the same key.
fn check_intervals(ops: &[TxnOp]) -> Result<(BTreeSet<Vec<u8>>, Vec<Interval>), StoreError> {
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match op {
            TxnOp::DeleteRange(d) => Some(Interval::of(d)),
            _ => None,
        })
        .collect();
    let mut puts: BTreeSet<Vec<u8>> = BTreeSet::new();
    for op in ops {
        let TxnOp::Txn(nested) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&nested.success)?;
        let (puts_else, dels_else) = check_intervals(&nested.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.iter().any(|d| d.contains(k)) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || dels.iter().any(|d| d.contains(k)) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let TxnOp::Put(put) = op else { continue };
        if puts.contains(&put.key) || dels.iter().any(|d| d.contains(&put.key)) {
            return Err(StoreError::DuplicateKey);
        }
        puts.insert(put.key.clone());
    }
    Ok((puts, dels))
}

/// 64-bit FNV-1a, enough to compare replicas.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_i64(bytes.len() as i64);
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_i64(&mut self, value: i64) {
        for b in value.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Request {
        Request::Put(PutReq {
            key: key.into(),
            value: value.into(),
            ..PutReq::default()
        })
    }

    fn put_op(key: &str, value: &str) -> TxnOp {
        TxnOp::Put(PutReq {
            key: key.into(),
            value: value.into(),
            ..PutReq::default()
        })
    }

    fn range(key: &str, range_end: &[u8], revision: i64) -> RangeReq {
        RangeReq {
            key: key.into(),
            range_end: range_end.to_vec(),
            revision,
            ..RangeReq::default()
        }
    }

    fn delete(key: &str, range_end: &[u8], prev_kv: bool) -> Request {
        Request::DeleteRange(DeleteRangeReq {
            key: key.into(),
            range_end: range_end.to_vec(),
            prev_kv,
        })
    }

    fn kvs(response: &Response) -> Vec<(String, String, i64, i64, i64)> {
        let Response::Range { kvs, .. } = response else {
            panic!("not a range: {response:?}")
        };
        kvs.iter()
            .map(|kv| {
                (
                    String::from_utf8(kv.key.clone()).unwrap(),
                    String::from_utf8(kv.value.clone()).unwrap(),
                    kv.create_revision,
                    kv.mod_revision,
                    kv.version,
                )
            })
            .collect()
    }

    fn cmp(key: &str, result: CmpResult, target: CmpTarget) -> Cmp {
        Cmp {
            key: key.into(),
            result,
            target,
        }
    }

    #[test]
    fn revisions_versions_and_historic_reads() {
        let mut s = Mvcc::new();
        assert_eq!(s.revision(), 1, "a fresh store is at revision 1");
        assert_eq!(
            s.apply(&put("a", "1")),
            Response::Put {
                revision: 2,
                prev_kv: None
            }
        );
        s.apply(&put("b", "1"));
        let Response::Put { revision, prev_kv } = s.apply(&Request::Put(PutReq {
            key: "a".into(),
            value: "2".into(),
            prev_kv: true,
            ..PutReq::default()
        })) else {
            panic!()
        };
        assert_eq!(revision, 4);
        assert_eq!(prev_kv.unwrap().value, b"1".to_vec());
        assert_eq!(
            kvs(&s.range(&range("a", b"", 0))),
            vec![("a".into(), "2".into(), 2, 4, 2)]
        );
        assert_eq!(
            kvs(&s.range(&range("a", b"", 3))),
            vec![("a".into(), "1".into(), 2, 2, 1)]
        );
        assert_eq!(kvs(&s.range(&range("a", b"", 1))), vec![]);
        // The header revision is the store's, whatever revision was read.
        let Response::Range { revision, .. } = s.range(&range("a", b"", 2)) else {
            panic!()
        };
        assert_eq!(revision, 4);
        assert_eq!(
            s.range(&range("a", b"", 5)),
            Response::Error(StoreError::FutureRevision)
        );
        // A delete of nothing does not move the revision; a delete of a key does, and a put after
        // it starts a new generation.
        assert_eq!(
            s.apply(&delete("zz", b"", false)),
            Response::DeleteRange {
                revision: 4,
                deleted: 0,
                prev_kvs: vec![]
            }
        );
        let Response::DeleteRange {
            revision, deleted, ..
        } = s.apply(&delete("a", b"", false))
        else {
            panic!()
        };
        assert_eq!((revision, deleted), (5, 1));
        s.apply(&put("a", "3"));
        assert_eq!(
            kvs(&s.range(&range("a", b"", 0))),
            vec![("a".into(), "3".into(), 6, 6, 1)]
        );
        assert_eq!(kvs(&s.range(&range("a", b"", 5))), vec![]);
    }

    #[test]
    fn ranges_limit_count_keys_only_and_prefixes() {
        let mut s = Mvcc::new();
        for k in ["p/a", "p/b", "p/c", "q"] {
            s.apply(&put(k, "v"));
        }
        let all = s.range(&range("p/", b"p0", 0));
        assert_eq!(kvs(&all).len(), 3);
        let mut limited = range("p/", b"p0", 0);
        limited.limit = 2;
        let Response::Range {
            kvs: got,
            more,
            count,
            ..
        } = s.range(&limited)
        else {
            panic!()
        };
        assert_eq!((got.len(), more, count), (2, true, 3));
        limited.limit = 3;
        let Response::Range { more, .. } = s.range(&limited) else {
            panic!()
        };
        assert!(!more);
        let mut count_only = range("p/", b"p0", 0);
        count_only.count_only = true;
        let Response::Range {
            kvs: got, count, ..
        } = s.range(&count_only)
        else {
            panic!()
        };
        assert_eq!((got.len(), count), (0, 3));
        let mut keys_only = range("p/", b"p0", 0);
        keys_only.keys_only = true;
        let Response::Range { kvs: got, .. } = s.range(&keys_only) else {
            panic!()
        };
        assert!(got.iter().all(|kv| kv.value.is_empty() && kv.version == 1));
        // [0] as range_end: every key from `key` on.
        assert_eq!(kvs(&s.range(&range("p/b", &[0], 0))).len(), 3);
        assert_eq!(
            s.range(&range("", b"", 0)),
            Response::Error(StoreError::EmptyKey)
        );
        // Prefix delete with prev_kv.
        let Response::DeleteRange {
            deleted, prev_kvs, ..
        } = s.apply(&delete("p/", b"p0", true))
        else {
            panic!()
        };
        assert_eq!((deleted, prev_kvs.len()), (3, 3));
    }

    #[test]
    fn compaction_errors_and_what_survives() {
        let mut s = Mvcc::new();
        s.apply(&put("a", "1")); // 2
        s.apply(&put("a", "2")); // 3
        s.apply(&put("b", "1")); // 4
        s.apply(&delete("b", b"", false)); // 5
        s.apply(&put("c", "1")); // 6
        assert_eq!(
            s.apply(&Request::Compact {
                revision: 7,
                physical: false
            }),
            Response::Error(StoreError::FutureRevision)
        );
        assert_eq!(
            s.apply(&Request::Compact {
                revision: 5,
                physical: false
            }),
            Response::Compact { revision: 6 }
        );
        assert_eq!(s.compact_revision(), 5);
        assert_eq!(s.revision(), 6, "compaction is no write");
        for at in [2, 4] {
            assert_eq!(
                s.range(&range("a", b"", at)),
                Response::Error(StoreError::Compacted),
                "at {at}"
            );
        }
        // Reading at the compaction revision still works.
        assert_eq!(
            kvs(&s.range(&range("a", &[0], 5))),
            vec![("a".into(), "2".into(), 2, 3, 2)]
        );
        assert_eq!(
            s.apply(&Request::Compact {
                revision: 5,
                physical: false
            }),
            Response::Error(StoreError::Compacted)
        );
        assert_eq!(s.events_since(4, b"a", &[0], false), Err(5));
        let events = s.events_since(5, b"a", &[0], false).unwrap();
        let revisions: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
        assert_eq!(revisions, vec![5, 6]);
        assert_eq!(events[0].kind, EventKind::Delete);
        assert_eq!(s.hash_kv(4), None);
        assert_eq!(s.hash_kv(7), None);
        assert!(s.hash_kv(5).is_some());
        // A txn reading below the compaction fails as a whole, without a write.
        let txn = Request::Txn(TxnReq {
            compare: vec![],
            success: vec![put_op("d", "1"), TxnOp::Range(range("a", b"", 3))],
            failure: vec![],
        });
        assert_eq!(s.apply(&txn), Response::Error(StoreError::Compacted));
        assert_eq!(s.revision(), 6);
    }

    #[test]
    fn txn_compares_branches_and_checks() {
        let mut s = Mvcc::new();
        s.apply(&put("k", "v1")); // 2
        s.apply(&put("k", "v2")); // 3
        let txn = |compare: Vec<Cmp>| {
            Request::Txn(TxnReq {
                compare,
                success: vec![put_op("ok", "yes")],
                failure: vec![TxnOp::Range(range("k", b"", 0))],
            })
        };
        let cases = [
            (
                cmp("k", CmpResult::Equal, CmpTarget::Value("v2".into())),
                true,
            ),
            (
                cmp("k", CmpResult::Less, CmpTarget::Value("v3".into())),
                true,
            ),
            (
                cmp("k", CmpResult::Greater, CmpTarget::Value("v3".into())),
                false,
            ),
            (cmp("k", CmpResult::Equal, CmpTarget::Version(2)), true),
            (
                cmp("k", CmpResult::Equal, CmpTarget::CreateRevision(2)),
                true,
            ),
            (cmp("k", CmpResult::Equal, CmpTarget::ModRevision(3)), true),
            (
                cmp("k", CmpResult::NotEqual, CmpTarget::ModRevision(3)),
                false,
            ),
            (cmp("k", CmpResult::Greater, CmpTarget::Version(2)), false),
            // A missing key: every value compare fails, the rest compare as zero.
            (
                cmp("none", CmpResult::NotEqual, CmpTarget::Value("x".into())),
                false,
            ),
            (
                cmp("none", CmpResult::Equal, CmpTarget::CreateRevision(0)),
                true,
            ),
            (cmp("none", CmpResult::Equal, CmpTarget::Version(0)), true),
        ];
        for (c, expected) in cases {
            let mut copy = s.clone();
            let Response::Txn {
                succeeded,
                revision,
                responses,
            } = copy.apply(&txn(vec![c.clone()]))
            else {
                panic!()
            };
            assert_eq!(succeeded, expected, "{c:?}");
            assert_eq!(revision, if expected { 4 } else { 3 }, "{c:?}");
            assert_eq!(responses.len(), 1);
        }
        // The success branch's writes share one revision, with sub-revisions in op order; reads
        // inside see earlier writes.
        let Response::Txn { responses, .. } = s.apply(&Request::Txn(TxnReq {
            compare: vec![],
            success: vec![
                put_op("x", "1"),
                put_op("y", "1"),
                TxnOp::Range(range("x", b"", 0)),
            ],
            failure: vec![],
        })) else {
            panic!()
        };
        assert_eq!(kvs(&responses[2]), vec![("x".into(), "1".into(), 4, 4, 1)]);
        assert_eq!(s.revision(), 4);
        let events = s.events_since(4, b"x", b"z", false).unwrap();
        assert_eq!(events.len(), 2);
        // Checks.
        let dup = Request::Txn(TxnReq {
            compare: vec![],
            success: vec![put_op("d", "1"), put_op("d", "2")],
            failure: vec![],
        });
        assert_eq!(s.apply(&dup), Response::Error(StoreError::DuplicateKey));
        let put_in_deleted = Request::Txn(TxnReq {
            compare: vec![],
            success: vec![
                TxnOp::DeleteRange(DeleteRangeReq {
                    key: "a".into(),
                    range_end: "m".into(),
                    prev_kv: false,
                }),
                put_op("d", "1"),
            ],
            failure: vec![],
        });
        assert_eq!(
            s.apply(&put_in_deleted),
            Response::Error(StoreError::DuplicateKey)
        );
        let nested_branches = Request::Txn(TxnReq {
            compare: vec![],
            success: vec![TxnOp::Txn(TxnReq {
                compare: vec![],
                success: vec![put_op("d", "1")],
                failure: vec![put_op("d", "2")],
            })],
            failure: vec![],
        });
        assert!(matches!(s.apply(&nested_branches), Response::Txn { .. }));
        let too_many = Request::Txn(TxnReq {
            compare: vec![],
            success: (0..=MAX_TXN_OPS)
                .map(|i| put_op(&format!("m{i}"), "1"))
                .collect(),
            failure: vec![],
        });
        assert_eq!(s.apply(&too_many), Response::Error(StoreError::TooManyOps));
        let ignore_missing = Request::Put(PutReq {
            key: "missing".into(),
            ignore_value: true,
            ..PutReq::default()
        });
        assert_eq!(
            s.apply(&ignore_missing),
            Response::Error(StoreError::KeyNotFound)
        );
        let value_provided = Request::Put(PutReq {
            key: "k".into(),
            value: "v".into(),
            ignore_value: true,
            ..PutReq::default()
        });
        assert_eq!(
            s.apply(&value_provided),
            Response::Error(StoreError::ValueProvided)
        );
        let keep_value = Request::Put(PutReq {
            key: "k".into(),
            ignore_value: true,
            ..PutReq::default()
        });
        s.apply(&keep_value);
        let got = kvs(&s.range(&range("k", b"", 0)));
        assert_eq!(got[0].1, "v2");
        assert_eq!(got[0].4, 3);
    }

    #[test]
    fn watch_events_with_prev_kv() {
        let mut s = Mvcc::new();
        s.apply(&put("w/a", "1")); // 2
        s.apply(&put("other", "1")); // 3
        s.apply(&put("w/a", "2")); // 4
        s.apply(&delete("w/a", b"", false)); // 5
        let events = s.events_since(2, b"w/", b"w0", true).unwrap();
        let kinds: Vec<(EventKind, i64)> =
            events.iter().map(|e| (e.kind, e.kv.mod_revision)).collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::Put, 2),
                (EventKind::Put, 4),
                (EventKind::Delete, 5)
            ]
        );
        assert_eq!(events[0].prev_kv, None);
        assert_eq!(events[1].prev_kv.as_ref().unwrap().value, b"1".to_vec());
        assert_eq!(events[2].prev_kv.as_ref().unwrap().value, b"2".to_vec());
        // A delete event carries only the key and its revision.
        assert_eq!(
            events[2].kv,
            Kv {
                key: "w/a".into(),
                mod_revision: 5,
                ..Kv::default()
            }
        );
        assert_eq!(s.events_since(6, b"w/", b"w0", true).unwrap(), vec![]);
        let single = s.events_since(0, b"other", b"", false).unwrap();
        assert_eq!(single.len(), 1);
    }

    #[test]
    fn hash_kv_is_equal_on_stores_fed_the_same_ops_and_differs_otherwise() {
        let ops: Vec<Request> = (0..40)
            .map(|i| match i % 7 {
                3 => delete(&format!("k{}", i % 5), b"", false),
                5 => Request::Compact {
                    revision: i / 2,
                    physical: false,
                },
                _ => put(&format!("k{}", i % 5), &format!("v{i}")),
            })
            .collect();
        let mut a = Mvcc::new();
        let mut b = Mvcc::new();
        for op in &ops {
            assert_eq!(a.apply(op), b.apply(op));
        }
        assert_eq!(a, b);
        for rev in a.compact_revision()..=a.revision() {
            assert_eq!(a.hash_kv(rev), b.hash_kv(rev), "at {rev}");
            assert!(a.hash_kv(rev).is_some());
        }
        let before = a.hash_kv(0);
        a.apply(&put("k1", "different"));
        b.apply(&put("k1", "other"));
        assert_ne!(a.hash_kv(0), b.hash_kv(0));
        assert_eq!(
            a.hash_kv(a.revision() - 1),
            before,
            "history up to a revision is fixed"
        );
    }
}
