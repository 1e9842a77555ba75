//! The request checks etcd 3.4 makes in its gRPC layer before a request reaches Raft
//! (etcdserver/api/v3rpc/key.go: checkPutRequest, checkTxnRequest, checkIntervals, ...). They depend
//! only on the request, never on the store's state.

use crate::proto::{Bytes, DeleteRangeReq, PutReq, RangeReq, StoreError, TxnOp, TxnReq};
use std::collections::BTreeSet;

pub fn check_range(req: &RangeReq) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    Ok(())
}

pub fn check_put(req: &PutReq) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

pub fn check_delete_range(req: &DeleteRangeReq) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    Ok(())
}

/// checkTxnRequest: the longest of compare/success/failure must not exceed `ops_max`, and a nested
/// txn gets what its parent left of the budget (`ops_max - opc`), as in etcd.
pub fn check_txn(req: &TxnReq, ops_max: usize) -> Result<(), StoreError> {
    let opc = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    if opc > ops_max {
        return Err(StoreError::TooManyOps);
    }
    if req.compare.iter().any(|cmp| cmp.key.is_empty()) {
        return Err(StoreError::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            TxnOp::Range(range) => check_range(range)?,
            TxnOp::Put(put) => check_put(put)?,
            TxnOp::DeleteRange(delete) => check_delete_range(delete)?,
            TxnOp::Txn(nested) => check_txn(nested, ops_max - opc)?,
        }
    }
    Ok(())
}

/// Deleted intervals as etcd's adt interval tree compares them: `[begin, end)` with byte-string
/// order. A single-key delete is the point `[key, key\0)`. A from-key delete keeps its literal end
/// "\0" here (etcd does not apply mkGteRange in checkIntervals), so it overlaps no key at all.
#[derive(Clone, Debug, Default)]
pub struct Deletes {
    intervals: Vec<(Bytes, Bytes)>,
}

impl Deletes {
    fn insert(&mut self, key: &[u8], range_end: &[u8]) {
        let end = if range_end.is_empty() {
            let mut point_end = key.to_vec();
            point_end.push(0);
            point_end
        } else {
            range_end.to_vec()
        };
        self.intervals.push((key.to_vec(), end));
    }

    fn intersects(&self, key: &[u8]) -> bool {
        self.intervals
            .iter()
            .any(|(begin, end)| begin.as_slice() <= key && key < end.as_slice())
    }

    fn union(&mut self, other: Deletes) {
        self.intervals.extend(other.intervals);
    }
}

/// checkIntervals: a key may be written at most once per transaction (puts vs puts, puts vs
/// deletes; deletes may overlap each other). Puts of the two branches of one nested txn may name the
/// same key since only one branch runs. Checked for both branches regardless of the compares.
pub fn check_intervals(ops: &[TxnOp]) -> Result<(BTreeSet<Bytes>, Deletes), StoreError> {
    let mut deletes = Deletes::default();
    for op in ops {
        if let TxnOp::DeleteRange(delete) = op {
            deletes.insert(&delete.key, &delete.range_end);
        }
    }
    let mut puts = BTreeSet::new();
    for op in ops {
        let TxnOp::Txn(nested) = op else { continue };
        let (puts_then, deletes_then) = check_intervals(&nested.success)?;
        let (puts_else, deletes_else) = check_intervals(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || deletes.intersects(key) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in puts_else {
            if (puts.contains(&key) && !puts_then.contains(&key)) || deletes.intersects(&key) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(key);
        }
        deletes.union(deletes_then);
        deletes.union(deletes_else);
    }
    for op in ops {
        let TxnOp::Put(put) = op else { continue };
        if puts.contains(&put.key) || deletes.intersects(&put.key) {
            return Err(StoreError::DuplicateKey);
        }
        puts.insert(put.key.clone());
    }
    Ok((puts, deletes))
}
