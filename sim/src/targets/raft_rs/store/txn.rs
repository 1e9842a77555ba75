//! Write transactions (etcd's storeTxnWrite) and the Txn request (etcdserver/apply.go): every change
//! of one request gets main revision `begin + 1` and a growing sub revision; the store revision moves
//! only if something changed. Reads inside a write transaction see its earlier changes.

use super::backend::Record;
use super::key_range::KeyRange;
use super::revision::Revision;
use super::Store;
use crate::proto::{
    Cmp, CmpResult, CmpTarget, DeleteRangeReq, Kv, PutReq, RangeReq, Response, StoreError, TxnOp,
    TxnReq,
};
use std::cmp::Ordering;

pub(super) struct Writer<'s> {
    store: &'s mut Store,
    begin_rev: i64,
    changes: i64,
}

impl<'s> Writer<'s> {
    pub fn begin(store: &'s mut Store) -> Self {
        let begin_rev = store.current_rev;
        Writer {
            store,
            begin_rev,
            changes: 0,
        }
    }

    /// The revision this transaction's reads see (etcd: beginRev, or beginRev + 1 once it changed
    /// something).
    fn read_rev(&self) -> i64 {
        if self.changes > 0 {
            self.begin_rev + 1
        } else {
            self.begin_rev
        }
    }

    fn next_rev(&mut self) -> Revision {
        let rev = Revision::new(self.begin_rev + 1, self.changes);
        self.changes += 1;
        rev
    }

    pub fn range(&self, req: &RangeReq) -> Result<Response, StoreError> {
        let read_rev = self.read_rev();
        let result = self.store.range_at(req, read_rev)?;
        Ok(Response::Range {
            revision: read_rev,
            kvs: result.kvs,
            more: result.more,
            count: result.count,
        })
    }

    /// applierV3backend.Put; the lease's existence was checked by the caller.
    pub fn put(&mut self, req: &PutReq) -> Result<Response, StoreError> {
        let prev = self.store.kv_at(&req.key, self.read_rev());
        let (value, lease) = match (&prev, req.ignore_value || req.ignore_lease) {
            (None, true) => return Err(StoreError::KeyNotFound),
            (Some(prev), _) => (
                if req.ignore_value {
                    prev.value.clone()
                } else {
                    req.value.clone()
                },
                if req.ignore_lease {
                    prev.lease
                } else {
                    req.lease
                },
            ),
            (None, false) => (req.value.clone(), req.lease),
        };
        self.write_put(&req.key, value, lease);
        Ok(Response::Put {
            revision: self.begin_rev + 1,
            prev_kv: if req.prev_kv { prev } else { None },
        })
    }

    /// storeTxnWrite.put: keeps the create revision of a live key, bumps its version, moves the key
    /// from its old lease to the new one.
    fn write_put(&mut self, key: &[u8], value: Vec<u8>, lease: i64) {
        let rev = self.next_rev();
        let existing = self.store.index.get(key, rev.main);
        let (create_revision, version) = match existing {
            Some(found) => (found.created.main, found.version + 1),
            None => (rev.main, 1),
        };
        let kv = Kv {
            key: key.to_vec(),
            value,
            create_revision,
            mod_revision: rev.main,
            version,
            lease,
        };
        self.store.backend.append(
            rev,
            Record {
                kv,
                tombstone: false,
            },
        );
        self.store.index.put(key, rev);
        self.store.lessor.detach(key);
        if lease != 0 {
            self.store.lessor.attach(lease, key);
        }
    }

    /// applierV3backend.DeleteRange + storeTxnWrite.deleteRange.
    pub fn delete_range(&mut self, req: &DeleteRangeReq) -> Response {
        let range = KeyRange::parse(&req.key, &req.range_end);
        let live = self.store.index.range(&range, self.read_rev());
        let prev_kvs = if req.prev_kv {
            live.iter()
                .map(|(_, found)| self.store.record(found.modified).kv.clone())
                .collect()
        } else {
            Vec::new()
        };
        for (key, _) in &live {
            let rev = self.next_rev();
            let kv = Kv {
                key: key.clone(),
                mod_revision: rev.main,
                ..Kv::default()
            };
            self.store.backend.append(
                rev,
                Record {
                    kv,
                    tombstone: true,
                },
            );
            self.store.index.tombstone(key, rev);
            self.store.lessor.detach(key);
        }
        Response::DeleteRange {
            revision: self.read_rev(),
            deleted: live.len() as i64,
            prev_kvs,
        }
    }

    /// applyTxn: runs the branch `path` chose; nested txns follow their own precomputed paths.
    fn txn(&mut self, req: &TxnReq, path: &Path) -> Result<Response, StoreError> {
        let ops = if path.succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested_paths = path.nested.iter();
        let mut responses = Vec::with_capacity(ops.len());
        // Planted bug `txn_partial`: the branch's last put is answered but not applied when the
        // branch writes more than once.
        let dropped_put = if self.store.bugs.txn_partial {
            let writes = ops
                .iter()
                .filter(|op| matches!(op, TxnOp::Put(_) | TxnOp::DeleteRange(_)))
                .count();
            (writes >= 2)
                .then(|| ops.iter().rposition(|op| matches!(op, TxnOp::Put(_))))
                .flatten()
        } else {
            None
        };
        for (index, op) in ops.iter().enumerate() {
            let response = match op {
                TxnOp::Range(range) => self.range(range)?,
                TxnOp::Put(_) if dropped_put == Some(index) => Response::Put {
                    revision: self.begin_rev + 1,
                    prev_kv: None,
                },
                TxnOp::Put(put) => self.put(put)?,
                TxnOp::DeleteRange(delete) => self.delete_range(delete),
                TxnOp::Txn(nested) => {
                    let nested_path = nested_paths
                        .next()
                        .expect("one path per nested txn of the branch");
                    // etcd leaves a nested txn's header empty (revision 0; seen on 3.4.23).
                    match self.txn(nested, nested_path)? {
                        Response::Txn {
                            succeeded,
                            responses,
                            ..
                        } => Response::Txn {
                            revision: 0,
                            succeeded,
                            responses,
                        },
                        other => unreachable!("a txn answers with a txn response, got {other:?}"),
                    }
                }
            };
            responses.push(response);
        }
        Ok(Response::Txn {
            revision: self.read_rev(),
            succeeded: path.succeeded,
            responses,
        })
    }

    /// Commits: the store revision becomes `begin + 1` iff something changed; the changes become
    /// events. Returns the store revision.
    pub fn end(self) -> i64 {
        if self.changes == 0 {
            return self.store.current_rev;
        }
        let main = self.begin_rev + 1;
        self.store.current_rev = main;
        for sub in 0..self.changes {
            let rev = Revision::new(main, sub);
            let record = self.store.record(rev).clone();
            let event = self.store.event_of(rev, &record, true);
            self.store.pending_events.push(event);
        }
        assert!(self
            .store
            .pending_events
            .windows(2)
            .all(|pair| pair[0].kv.mod_revision <= pair[1].kv.mod_revision));
        main
    }
}

/// The branch each (nested) txn takes, decided before anything runs: etcd's compareToPath evaluates
/// every compare, nested ones included, against the state before the transaction.
pub(super) struct Path {
    succeeded: bool,
    /// One per nested txn of the chosen branch, in order.
    nested: Vec<Path>,
}

fn compare_to_path(store: &Store, req: &TxnReq) -> Path {
    let succeeded = req.compare.iter().all(|cmp| compare(store, cmp));
    let ops = if succeeded {
        &req.success
    } else {
        &req.failure
    };
    let nested = ops
        .iter()
        .filter_map(|op| match op {
            TxnOp::Txn(nested) => Some(compare_to_path(store, nested)),
            _ => None,
        })
        .collect();
    Path { succeeded, nested }
}

/// applyCompare: a missing key compares as a zero key-value, except that a value compare on a
/// missing key is always false (gRPC cannot tell a missing value from an empty one).
fn compare(store: &Store, cmp: &Cmp) -> bool {
    let kv = match store.kv_at(&cmp.key, store.current_rev) {
        Some(kv) => kv,
        None if matches!(cmp.target, CmpTarget::Value(_)) => return false,
        None => Kv::default(),
    };
    let ordering = match &cmp.target {
        CmpTarget::Value(value) => kv.value.as_slice().cmp(value.as_slice()),
        CmpTarget::Version(version) => kv.version.cmp(version),
        CmpTarget::CreateRevision(revision) => kv.create_revision.cmp(revision),
        CmpTarget::ModRevision(revision) => kv.mod_revision.cmp(revision),
        CmpTarget::Lease(lease) => kv.lease.cmp(lease),
    };
    match cmp.result {
        CmpResult::Equal => ordering == Ordering::Equal,
        CmpResult::NotEqual => ordering != Ordering::Equal,
        CmpResult::Less => ordering == Ordering::Less,
        CmpResult::Greater => ordering == Ordering::Greater,
    }
}

/// checkRequests: runs `check` on every non-txn op along the chosen path.
fn check_requests(
    store: &Store,
    req: &TxnReq,
    path: &Path,
    check: &dyn Fn(&Store, &TxnOp) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let ops = if path.succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut nested_paths = path.nested.iter();
    for op in ops {
        match op {
            TxnOp::Txn(nested) => {
                let nested_path = nested_paths
                    .next()
                    .expect("one path per nested txn of the branch");
                check_requests(store, nested, nested_path, check)?;
            }
            _ => check(store, op)?,
        }
    }
    Ok(())
}

/// checkPut: ignore_value / ignore_lease need the key to exist, a lease must exist.
fn check_put(store: &Store, op: &TxnOp) -> Result<(), StoreError> {
    let TxnOp::Put(put) = op else { return Ok(()) };
    if (put.ignore_value || put.ignore_lease) && store.kv_at(&put.key, store.current_rev).is_none()
    {
        return Err(StoreError::KeyNotFound);
    }
    if put.lease != 0 && !store.lessor.contains(put.lease) {
        return Err(StoreError::LeaseNotFound);
    }
    Ok(())
}

/// checkRange: against the state before the txn; note that etcd compares any non-zero revision,
/// negative ones included, with the compact revision.
fn check_range(store: &Store, op: &TxnOp) -> Result<(), StoreError> {
    let TxnOp::Range(range) = op else {
        return Ok(());
    };
    if range.revision == 0 {
        Ok(())
    } else if range.revision > store.current_rev {
        Err(StoreError::FutureRevision)
    } else if range.revision < store.compact_main_rev && !store.bugs.compacted_read {
        Err(StoreError::Compacted)
    } else {
        Ok(())
    }
}

fn path_has_ignore_put(req: &TxnReq, path: &Path) -> bool {
    let ops = if path.succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut nested_paths = path.nested.iter();
    ops.iter().any(|op| match op {
        TxnOp::Put(put) => put.ignore_value || put.ignore_lease,
        TxnOp::Txn(nested) => nested_paths
            .next()
            .is_some_and(|nested_path| path_has_ignore_put(nested, nested_path)),
        _ => false,
    })
}

/// applierV3backend.Txn, after the request-only checks.
pub(super) fn apply(store: &mut Store, req: &TxnReq) -> Result<Response, StoreError> {
    let path = compare_to_path(store, req);
    check_requests(store, req, &path, &check_put)?;
    check_requests(store, req, &path, &check_range)?;
    // checkPut looked at the state before the txn; a from-key delete earlier in the same txn (which
    // checkIntervals lets through) can still remove the key an ignore_value put needs. etcd panics
    // there; the simulated server instead refuses the whole txn with KeyNotFound, so it keeps a copy.
    let backup = path_has_ignore_put(req, &path).then(|| store.clone());
    let mut writer = Writer::begin(store);
    match writer.txn(req, &path) {
        Ok(Response::Txn {
            succeeded,
            responses,
            ..
        }) => {
            let revision = writer.end();
            Ok(Response::Txn {
                revision,
                succeeded,
                responses,
            })
        }
        Ok(other) => unreachable!("a txn answers with a txn response, got {other:?}"),
        Err(error) => {
            *store =
                backup.expect("only ignore_* puts fail after the checks, and they take a backup");
            Err(error)
        }
    }
}
