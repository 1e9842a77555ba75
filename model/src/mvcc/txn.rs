//! Transactions, as etcd 3.4's `applierV3backend.Txn` runs them:
//! 1. static checks (`checkTxnRequest`, `checkIntervals`: see `validate.rs`);
//! 2. every compare — nested transactions' included — is evaluated against the state BEFORE the
//!    transaction (`compareToPath`; verified on 3.4.23: `put c; txn(c.version = 1 ? put d=then :
//!    put d=else)` stores `else`), giving the path of taken branches in pre-order;
//! 3. the puts, then the ranges, on that path are checked against the state before the
//!    transaction (`checkRequests`): KeyNotFound for `ignore_*` on a missing key (even if an
//!    earlier op of the same txn creates it; verified), LeaseNotFound, FutureRevision, Compacted;
//! 4. the ops run in order; reads see earlier writes of the same transaction; all writes share
//!    one new revision, taken at the first change. Inner headers are etcd's: a range or delete
//!    reports the store's revision at that point (begin, or begin + 1 after a change), a put the
//!    new revision, a nested txn an empty header (revision 0); verified on 3.4.23.

use crate::mvcc::compare::compare_holds;
use crate::mvcc::model::MvccModel;
use crate::mvcc::types::{
    EtcdError, RangeRequest, RequestOp, ResponseHeader, ResponseOp, Revision, TxnRequest,
    TxnResponse,
};
use crate::mvcc::validate;

impl MvccModel {
    pub(crate) fn txn(&mut self, t: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        validate::check_txn(t)?;
        let mut path = Vec::new();
        self.compare_to_path(t, &mut path);
        self.check_path(t, &path, &mut 0, &|model: &Self, op: &RequestOp| {
            model.check_put_on_path(op)
        })?;
        self.check_path(t, &path, &mut 0, &|model: &Self, op: &RequestOp| {
            model.check_range_on_path(op)
        })?;
        let begin = self.revision;
        let mut response = self.run_branch(t, &path, &mut 0, begin);
        response.header = self.header();
        Ok(response)
    }

    fn compare_to_path(&self, t: &TxnRequest, path: &mut Vec<bool>) {
        let succeeded = t
            .compare
            .iter()
            .all(|c| compare_holds(c, self.store.live(&c.key)));
        path.push(succeeded);
        for op in branch(t, succeeded) {
            if let RequestOp::Txn(nested) = op {
                self.compare_to_path(nested, path);
            }
        }
    }

    /// etcd `checkRequests`: `check` on every non-txn op of the taken branches, in pre-order.
    fn check_path(
        &self,
        t: &TxnRequest,
        path: &[bool],
        cursor: &mut usize,
        check: &dyn Fn(&Self, &RequestOp) -> Result<(), EtcdError>,
    ) -> Result<(), EtcdError> {
        let succeeded = path.get(*cursor).copied().unwrap_or(false);
        *cursor += 1;
        for op in branch(t, succeeded) {
            match op {
                RequestOp::Txn(nested) => self.check_path(nested, path, cursor, check)?,
                _ => check(self, op)?,
            }
        }
        Ok(())
    }

    /// etcd `checkRequestPut`: the key first, then the lease (the reverse of a standalone put).
    fn check_put_on_path(&self, op: &RequestOp) -> Result<(), EtcdError> {
        let RequestOp::Put(p) = op else { return Ok(()) };
        if (p.ignore_value || p.ignore_lease) && self.store.live(&p.key).is_none() {
            return Err(EtcdError::KeyNotFound);
        }
        if p.lease != 0 && !self.leases.contains(p.lease) {
            return Err(EtcdError::LeaseNotFound);
        }
        Ok(())
    }

    /// etcd `checkRequestRange`. Unlike a standalone range, a negative revision is compared with
    /// the compacted revision (verified on 3.4.23: `txn(get x --rev=-5)` after a compaction
    /// returns Compacted while a plain `get x --rev=-5` reads the current revision).
    fn check_range_on_path(&self, op: &RequestOp) -> Result<(), EtcdError> {
        let RequestOp::Range(r) = op else {
            return Ok(());
        };
        if r.revision == 0 {
            Ok(())
        } else if r.revision > self.revision {
            Err(EtcdError::FutureRevision)
        } else if r.revision < self.compacted {
            Err(EtcdError::Compacted)
        } else {
            Ok(())
        }
    }

    fn run_branch(
        &mut self,
        t: &TxnRequest,
        path: &[bool],
        cursor: &mut usize,
        begin: Revision,
    ) -> TxnResponse {
        let succeeded = path.get(*cursor).copied().unwrap_or(false);
        *cursor += 1;
        let mut responses = Vec::new();
        for op in branch(t, succeeded) {
            let response = match op {
                RequestOp::Range(r) => {
                    ResponseOp::Range(self.read_range(r, self.txn_range_revision(r)))
                }
                RequestOp::Put(p) => ResponseOp::Put(self.write_put(p, begin)),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.write_delete(d, begin)),
                RequestOp::Txn(nested) => {
                    let mut response = self.run_branch(nested, path, cursor, begin);
                    response.header = ResponseHeader { revision: 0 };
                    ResponseOp::Txn(response)
                }
            };
            responses.push(response);
        }
        TxnResponse {
            header: ResponseHeader::default(),
            succeeded,
            responses,
        }
    }

    /// Checked on the path already, so it cannot fail here: a positive revision is at most the
    /// revision before the txn and at least the compacted one; anything else reads the current one.
    fn txn_range_revision(&self, r: &RangeRequest) -> Revision {
        assert!(r.revision <= self.revision);
        if r.revision > 0 {
            r.revision
        } else {
            self.revision
        }
    }
}

fn branch(t: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &t.success
    } else {
        &t.failure
    }
}
