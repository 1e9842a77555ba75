//! Judging observed answers: `SequentialSpec` and kvsim's [`Spec`] for [`MvccModel`].
//!
//! Most answers must equal what [`MvccModel::apply`] returns. The exceptions are where etcd itself
//! is not a sequential object, each documented at its check:
//! - serializable ranges (a consistent snapshot of some member, possibly stale);
//! - `LeaseTimeToLive`'s remaining TTL (clock-dependent);
//! - the header of `LeaseKeepAlive` (the serving member's local revision, read before the renewal:
//!   it may lag, never lead);
//! - the header of `LeaseTimeToLive` (read *after* the lookup: it bounds nothing).
//!
//! Every check starts with the header revision, which costs nothing and rejects almost every
//! wrong placement before the state is cloned: that is what keeps the search fast.

use crate::mvcc::compare::compare_shows_present;
use crate::mvcc::model::MvccModel;
use crate::mvcc::store::range_bounds;
use crate::mvcc::types::{
    for_each_shown_kv, CompareResult, CompareTarget, EtcdError, KeyValue, LeaseId, Op,
    RangeRequest, RangeResponse, RequestOp, Response, ResponseOp, Ret, Revision, Shown, TxnRequest,
    TxnResponse,
};
use crate::{
    fingerprint_of, KeyAbsence, KeyPresence, KeyView, Mention, PartitionKey, ResourceUse,
    SequentialSpec, Spec, ValueTwin,
};

impl SequentialSpec for MvccModel {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        self.apply(op)
    }

    /// On an invalid step the state is left unchanged.
    fn is_valid_step(&mut self, op: &Op, ret: &Ret) -> bool {
        match self.check_step(op, ret) {
            Some(next) => {
                *self = next;
                true
            }
            None => false,
        }
    }
}

impl Spec for MvccModel {
    const NAME: &'static str = "mvcc";

    fn fingerprint(&self) -> u128 {
        MvccModel::fingerprint(self)
    }

    fn step(&self, op: &Op, ret: &Ret) -> Option<Self> {
        self.check_step(op, ret)
    }

    /// `None` when the op would change nothing here (an error, a read, a delete of nothing, an
    /// expiry of a lease already gone): linearizing it would only duplicate the current state.
    /// A grant with id 0 gets an id nobody can know, so no later op can depend on that lease:
    /// it is treated as never taking effect.
    fn step_unknown(&self, op: &Op) -> Option<Self> {
        if matches!(op, Op::LeaseGrant { id: 0, .. }) || !may_write(op) {
            return None;
        }
        if let Op::LeaseRevoke { id } | Op::LeaseExpire { id } = op {
            if !self.leases.contains(*id) {
                return None;
            }
        }
        let mut next = self.clone();
        next.apply(op);
        // Every mutation changes the fingerprint (the state is exactly its facts).
        (MvccModel::fingerprint(&next) != MvccModel::fingerprint(self)).then_some(next)
    }

    /// The revision: no step ever lowers it.
    fn progress(&self) -> Option<i64> {
        Some(self.revision)
    }

    /// [`MvccModel::revision_before_max`].
    fn progress_max(op: &Op, ret: &Ret) -> Option<i64> {
        MvccModel::revision_before_max(op, ret)
    }

    /// The expiry of a lease with no keys removes only the lease: only operations naming that
    /// lease can tell whether it happened.
    fn unknown_effect_tag(&self, op: &Op) -> Option<u64> {
        match op {
            Op::LeaseExpire { id } if self.lease_is_keyless(*id) => Some(*id as u64),
            _ => None,
        }
    }

    /// A revoke of a lease and its expiry both end the lease and delete its keys
    /// (`MvccModel::lease_revoke`); two deletes of one range delete the same keys (whether
    /// they ask for the previous values changes only their answers).
    fn unknown_effect_class(op: &Op) -> Option<u128> {
        match op {
            Op::LeaseRevoke { id } | Op::LeaseExpire { id } => {
                Some(fingerprint_of(&("lease end", *id)))
            }
            Op::DeleteRange(delete) => {
                Some(fingerprint_of(&("delete", &delete.key, &delete.range_end)))
            }
            _ => None,
        }
    }

    /// A put: its class is the key, the lease and the two `ignore_*` flags; from any state,
    /// two puts of one class set the key's create revision, mod revision, version and lease
    /// alike (`MvccModel::put`), and differ only in the value stored at that revision. A put
    /// that keeps the old value (`ignore_value`) stores none of its own: its value tag is one
    /// no read can name, so such puts are twins of each other whatever they carry.
    fn value_twin(op: &Op) -> Option<ValueTwin> {
        let Op::Put(put) = op else {
            return None;
        };
        let key = key_tag(&put.key);
        Some(ValueTwin {
            class: fingerprint_of(&(
                "put",
                &put.key,
                put.lease,
                put.ignore_value,
                put.ignore_lease,
            )),
            key,
            value: if put.ignore_value {
                fingerprint_of(&("kept value", &put.key))
            } else {
                value_tag(&put.key, &put.value)
            },
        })
    }

    /// The values in the answer (every key-value pair, previous ones included, nested
    /// transactions too) and in the compares of the request (equality names a value; an
    /// ordered comparison can tell apart any two values of its key).
    fn mentions(op: &Op, ret: Option<&Ret>, out: &mut Vec<Mention>) {
        if let Op::Txn(txn) = op {
            txn_compare_mentions(txn, out);
        }
        if let Some(Ret::Ok(response)) = ret {
            response.for_each_kv(&mut |kv| out.push(Mention::Value(value_tag(&kv.key, &kv.value))));
        }
    }

    /// [`for_each_view`]: what a linearizable read of the current revision shows.
    fn views(op: &Op, ret: &Ret, out: &mut Vec<KeyView>) {
        for_each_view(op, ret, &mut |kv, _| {
            out.push(KeyView {
                key: kv.key.clone(),
                since: kv.create_revision,
                at: kv.mod_revision,
            })
        });
    }

    /// What the store holds at or below its revision never changes, and every change takes a
    /// new revision (one per key at most: etcd refuses a txn that writes a key twice). A view
    /// (k, created c, modified m, version v) of the store at a revision not below the current
    /// one r: if m <= r, nothing changes k in (m, r], so k is that version now; if c <= r < m,
    /// the life of k begun at c lasts past r, so k is live now with create revision c, and the
    /// writes still to come in (r, m], one revision each, take its version to v: it is below v
    /// by 1 to m - r.
    fn view_possible(&self, op: &Op, ret: &Ret, view: usize) -> bool {
        let mut possible = true;
        let mut index = 0;
        for_each_view(op, ret, &mut |kv, keys_only| {
            if index == view {
                let live = self.store.live(&kv.key);
                possible = if kv.mod_revision <= self.revision {
                    live.is_some_and(|live| live.matches(&kv.key, keys_only, kv))
                } else if kv.create_revision <= self.revision {
                    live.is_some_and(|live| {
                        live.create_revision == kv.create_revision
                            && live.version < kv.version
                            && kv.version - live.version <= kv.mod_revision - self.revision
                    })
                } else {
                    true
                };
            }
            index += 1;
        });
        assert!(index > view, "mvcc: a view the op's answer shows");
        possible
    }

    /// A linearizable range of one key at the current revision, or a range of one key at a
    /// past revision, that found nothing: absent at its revision. A put asked for its previous
    /// value that got none: absent at the revision before its own. A delete of one key that
    /// deleted nothing: absent at its revision. Every shown key's life ([`Spec::views`]) began
    /// at its create revision c, so the key was absent at c - 1 (a txn cannot delete and put
    /// one key: etcd refuses it, `validate`). A txn compare whose known outcome only a missing
    /// key gives (`create_revision = 0` held, `version > 0` failed alone): absent at the
    /// revision the compares read (`for_each_compare_shown`).
    fn absences(op: &Op, ret: &Ret, out: &mut Vec<KeyAbsence>) {
        let Ret::Ok(response) = ret else { return };
        match (op, response) {
            (Op::Range(r), Response::Range(resp))
                if r.range_end.is_empty() && resp.count == 0 && resp.kvs.is_empty() =>
            {
                let at = if r.revision == 0 && !r.serializable {
                    Some(resp.header.revision)
                } else if r.revision > 0 {
                    Some(r.revision)
                } else {
                    None
                };
                if let Some(at) = at {
                    out.push(KeyAbsence {
                        key: r.key.clone(),
                        at,
                    });
                }
            }
            (Op::Put(p), Response::Put(resp)) if p.prev_kv && resp.prev_kv.is_none() => {
                out.push(KeyAbsence {
                    key: p.key.clone(),
                    at: resp.header.revision - 1,
                })
            }
            (Op::DeleteRange(d), Response::DeleteRange(resp))
                if d.range_end.is_empty() && resp.deleted == 0 =>
            {
                out.push(KeyAbsence {
                    key: d.key.clone(),
                    at: resp.header.revision,
                })
            }
            (Op::Txn(txn), Response::Txn(resp)) => {
                for_each_compare_shown(txn, resp, &mut |key, present, at| {
                    if !present {
                        out.push(KeyAbsence {
                            key: key.to_owned(),
                            at,
                        });
                    }
                });
            }
            _ => {}
        }
        for_each_view(op, ret, &mut |kv, _| {
            if kv.create_revision > 1 {
                out.push(KeyAbsence {
                    key: kv.key.clone(),
                    at: kv.create_revision - 1,
                })
            }
        });
    }

    /// A put answered at revision r: its key is present at r. A txn answered at r: the keys
    /// its taken branch puts (not those of nested txns), present at r (a txn cannot put and
    /// delete one key, `validate`). A linearizable range answered at r: every key it returned.
    fn presences(op: &Op, ret: &Ret, out: &mut Vec<KeyPresence>) {
        let Ret::Ok(response) = ret else { return };
        let mut present = |key: &str, at: i64| {
            out.push(KeyPresence {
                key: key.to_owned(),
                at,
            })
        };
        match (op, response) {
            (Op::Put(put), Response::Put(resp)) => present(&put.key, resp.header.revision),
            (Op::Txn(txn), Response::Txn(resp)) => {
                for request in txn.branch(resp.succeeded) {
                    if let RequestOp::Put(put) = request {
                        present(&put.key, resp.header.revision);
                    }
                }
                for_each_compare_shown(txn, resp, &mut |key, shown, at| {
                    if shown {
                        present(key, at);
                    }
                });
            }
            (Op::Range(range), Response::Range(resp))
                if range.revision == 0 && !range.serializable =>
            {
                for kv in &resp.kvs {
                    present(&kv.key, resp.header.revision);
                }
            }
            _ => {}
        }
    }

    fn present(&self, key: &PartitionKey) -> bool {
        self.store.live(key).is_some()
    }

    /// A delete whose range holds the key (answered: one that deleted something, at its
    /// revision), a txn with such a delete in a branch it may take (answered: the branch taken,
    /// at its revision), a revoke or an expiry (of whatever lease the key has then).
    fn may_remove(op: &Op, ret: Option<&Ret>, keys: &[PartitionKey], out: &mut Vec<(u32, i64)>) {
        let mut found = Vec::new();
        let mut at = i64::MIN;
        match (op, ret) {
            (_, Some(Ret::Err(_))) => {}
            (Op::DeleteRange(d), Some(Ret::Ok(Response::DeleteRange(resp))))
                if resp.deleted > 0 =>
            {
                at = resp.header.revision;
                keys_in_range(&d.key, &d.range_end, keys, &mut found);
            }
            (Op::DeleteRange(_), Some(_)) => {}
            (Op::DeleteRange(d), None) => keys_in_range(&d.key, &d.range_end, keys, &mut found),
            (Op::Txn(t), Some(Ret::Ok(Response::Txn(resp)))) => {
                at = resp.header.revision;
                branch_removals(t.branch(resp.succeeded), keys, &mut found);
            }
            (Op::Txn(t), _) => {
                branch_removals(&t.success, keys, &mut found);
                branch_removals(&t.failure, keys, &mut found);
            }
            (Op::LeaseRevoke { .. } | Op::LeaseExpire { .. }, _) => {
                found.extend(0..keys.len() as u32)
            }
            _ => {}
        }
        found.sort_unstable();
        found.dedup();
        out.extend(found.into_iter().map(|key| (key, at)));
    }

    /// Leases. An answered put under lease l (alone or in a txn's taken branch), an answered
    /// keep-alive of l and an answered time-to-live of l with a granted TTL all need l to
    /// exist (`MvccModel::put`, `check_put_on_path`, `check_ok`); a revoke and the lessor's
    /// expiry end it (`lease_revoke`); a grant of l, or answered with l, starts it. A grant
    /// with id 0 and no answer starts nothing: `step_unknown` never applies it.
    fn resources(op: &Op, ret: Option<&Ret>, out: &mut Vec<ResourceUse>) {
        let lease = |id: LeaseId| id as u64 as u128;
        let response = match ret {
            Some(Ret::Ok(response)) => Some(response),
            Some(Ret::Err(_)) => return,
            None => None,
        };
        match (op, response) {
            (Op::Put(put), Some(_)) if put.lease != 0 => {
                out.push(ResourceUse::Needs(lease(put.lease)))
            }
            (Op::Txn(txn), Some(Response::Txn(resp))) => {
                txn_leases_needed(txn, resp, &mut |id| out.push(ResourceUse::Needs(lease(id))))
            }
            (Op::LeaseKeepAlive { id }, Some(_)) => out.push(ResourceUse::Needs(lease(*id))),
            (
                Op::LeaseTimeToLive { id, .. },
                Some(Response::LeaseTimeToLive { granted_ttl_s, .. }),
            ) if *granted_ttl_s != 0 => out.push(ResourceUse::Needs(lease(*id))),
            (Op::LeaseRevoke { id }, answer) => {
                if answer.is_some() {
                    out.push(ResourceUse::Needs(lease(*id)));
                }
                out.push(ResourceUse::Ends(lease(*id)));
            }
            (Op::LeaseExpire { id }, _) => out.push(ResourceUse::Ends(lease(*id))),
            (Op::LeaseGrant { id, .. }, None) if *id != 0 => {
                out.push(ResourceUse::Starts(lease(*id)))
            }
            (Op::LeaseGrant { .. }, Some(Response::LeaseGrant { id, .. })) => {
                out.push(ResourceUse::Starts(lease(*id)))
            }
            _ => {}
        }
    }

    fn touches(op: &Op, tag: u64) -> bool {
        op_names_lease(op, tag as LeaseId)
    }

    /// [`MvccModel::range_refuted`]: linearizable ranges only.
    fn read_refuted(&self, op: &Op, ret: &Ret) -> bool {
        match (op, ret) {
            (Op::Range(r), Ret::Ok(Response::Range(resp))) if !r.serializable => {
                self.range_refuted(r, resp)
            }
            _ => false,
        }
    }

    /// [`MvccModel::changes_state_only_by_revision`].
    fn changes_only_with_progress(op: &Op) -> bool {
        MvccModel::changes_state_only_by_revision(op)
    }

    fn is_read_only(op: &Op, ret: &Ret) -> bool {
        match (op, ret) {
            // etcd checks everything before writing: an error never changes the store.
            (_, Ret::Err(_)) => true,
            (Op::Range(_), _)
            | (Op::LeaseKeepAlive { .. }, _)
            | (Op::LeaseTimeToLive { .. }, _) => true,
            (Op::DeleteRange(_), Ret::Ok(Response::DeleteRange(d))) => d.deleted == 0,
            (Op::Txn(t), Ret::Ok(Response::Txn(resp))) => txn_is_read_only(t, resp),
            // Grants and revokes change the lease table even when the revision stays.
            _ => false,
        }
    }
}

/// False for operations that can never change the state, whatever it is: the search offers
/// every pending unknown operation at every node, so rejecting these must cost nothing.
fn may_write(op: &Op) -> bool {
    match op {
        Op::Range(_) | Op::LeaseKeepAlive { .. } | Op::LeaseTimeToLive { .. } => false,
        Op::Txn(t) => t.success.iter().chain(&t.failure).any(request_may_write),
        _ => true,
    }
}

fn request_may_write(op: &RequestOp) -> bool {
    match op {
        RequestOp::Range(_) => false,
        RequestOp::Put(_) | RequestOp::DeleteRange(_) => true,
        RequestOp::Txn(t) => t.success.iter().chain(&t.failure).any(request_may_write),
    }
}

/// The taken branch (as the response reports it) holds only ranges, deletes that deleted
/// nothing and nested transactions of the same kind. Any shape mismatch: not read-only (the
/// step will reject it anyway).
fn txn_is_read_only(t: &TxnRequest, resp: &TxnResponse) -> bool {
    let ops = if resp.succeeded {
        &t.success
    } else {
        &t.failure
    };
    ops.len() == resp.responses.len()
        && ops
            .iter()
            .zip(&resp.responses)
            .all(|(op, r)| match (op, r) {
                (RequestOp::Range(_), ResponseOp::Range(_)) => true,
                (RequestOp::DeleteRange(_), ResponseOp::DeleteRange(d)) => d.deleted == 0,
                (RequestOp::Txn(nested), ResponseOp::Txn(nested_resp)) => {
                    txn_is_read_only(nested, nested_resp)
                }
                _ => false,
            })
}

impl MvccModel {
    /// The successor state if `op` answered `ret` may be linearized now.
    pub fn check_step(&self, op: &Op, ret: &Ret) -> Option<Self> {
        match ret {
            Ret::Err(error) => self.error_is_valid(op, error).then(|| self.clone()),
            Ret::Ok(response) => self.check_ok(op, response),
        }
    }

    /// The answer `apply` would give, on a throwaway clone (O(1)); errors never change state.
    fn expected(&self, op: &Op) -> (Self, Ret) {
        let mut next = self.clone();
        let ret = next.apply(op);
        (next, ret)
    }

    fn error_is_valid(&self, op: &Op, error: &EtcdError) -> bool {
        match op {
            Op::Range(r) if r.serializable => self.serializable_error_is_valid(r, error),
            Op::LeaseExpire { .. } => false,
            _ => self.expected(op).1 == Ret::Err(error.clone()),
        }
    }

    fn check_ok(&self, op: &Op, response: &Response) -> Option<Self> {
        let revision = self.revision;
        match (op, response) {
            (Op::Range(r), Response::Range(resp)) if r.serializable => self
                .serializable_range_is_valid(r, resp)
                .then(|| self.clone()),
            (Op::Range(r), Response::Range(resp)) => {
                let valid = resp.header.revision == revision
                    && !r.key.is_empty()
                    && self
                        .range_revision(r)
                        .is_ok_and(|at| self.range_matches(r, at, resp));
                valid.then(|| self.clone())
            }
            (Op::Put(_), Response::Put(resp)) if resp.header.revision != revision + 1 => None,
            (Op::DeleteRange(_), Response::DeleteRange(resp))
                if resp.header.revision != revision + i64::from(resp.deleted > 0) =>
            {
                None
            }
            (Op::Txn(_), Response::Txn(resp))
                if !is_now_or_next(resp.header.revision, revision) =>
            {
                None
            }
            (Op::LeaseRevoke { .. }, Response::LeaseRevoke { header })
                if !is_now_or_next(header.revision, revision) =>
            {
                None
            }
            (Op::LeaseGrant { .. }, Response::LeaseGrant { header, .. })
                if header.revision != revision =>
            {
                None
            }
            // etcd reads a compaction's header revision when it answers (v3_server.go
            // `Compact`: `resp.Header.Revision = s.kv.Rev()`, after waiting for the physical
            // compaction), not when it applies it: any revision from now on. Seen on a live
            // 3.4.23 cluster: two concurrent compactions, the one applied first answered with the
            // higher header.
            (Op::Compact { .. }, Response::Compact { header }) => {
                let (next, expected) = self.expected(op);
                let applies = matches!(expected, Ret::Ok(Response::Compact { .. }));
                (applies && header.revision >= revision).then_some(next)
            }
            (
                Op::LeaseGrant { id: 0, ttl_s },
                Response::LeaseGrant {
                    id: granted_id,
                    ttl_s: granted_ttl_s,
                    ..
                },
            ) => self.check_grant_of_unknown_id(*ttl_s, *granted_id, *granted_ttl_s),
            (
                Op::LeaseKeepAlive { id },
                Response::LeaseKeepAlive {
                    header,
                    id: resp_id,
                    ttl_s,
                },
            ) => {
                let valid = local_header_is_valid(header.revision, revision)
                    && resp_id == id
                    && self
                        .leases
                        .get(*id)
                        .is_some_and(|lease| lease.ttl_s == *ttl_s);
                valid.then(|| self.clone())
            }
            (
                Op::LeaseTimeToLive { id, keys },
                Response::LeaseTimeToLive {
                    header,
                    id: resp_id,
                    ttl_s,
                    granted_ttl_s,
                    keys: resp_keys,
                },
            ) => {
                // etcd 3.4 fills this header after the lookup (`v3rpc.LeaseServer.LeaseTimeToLive`
                // calls `hdr.fill` once `EtcdServer.LeaseTimeToLive` has returned, and a follower
                // fills it with its own revision around the leader's answer): writes applied in
                // between raise it. So it does not bound the state the keys were read from; a
                // real etcd run answered keys of revision 2289 under header 2290.
                let valid = header.revision >= 1
                    && resp_id == id
                    && self.time_to_live_is_valid(*id, *keys, *ttl_s, *granted_ttl_s, resp_keys);
                valid.then(|| self.clone())
            }
            (Op::LeaseExpire { .. }, _) => None,
            _ => {
                let (next, expected) = self.expected(op);
                (expected == Ret::Ok(response.clone())).then_some(next)
            }
        }
    }

    /// etcd chose the id; it must be new and non-zero. The id is then known to everyone who
    /// reads this history, so the lease is modelled under it.
    fn check_grant_of_unknown_id(
        &self,
        ttl_s: i64,
        granted_id: LeaseId,
        granted_ttl_s: i64,
    ) -> Option<Self> {
        if granted_id == 0
            || self.leases.contains(granted_id)
            || granted_ttl_s != ttl_s.max(self.min_lease_ttl_s)
        {
            return None;
        }
        let mut next = self.clone();
        next.leases.grant(granted_id, granted_ttl_s);
        Some(next)
    }

    /// The remaining TTL is not checked beyond `>= -1`: etcd computes it from the leader's clock,
    /// extends leases when a new leader takes over (`lessor.Promote`), and a lease past its
    /// deadline whose revoke has not committed yet reports a negative remaining time truncated
    /// to whole seconds. Only existence, granted TTL and attached keys are consistency facts.
    /// Keys compare as a set: etcd lists them from a Go map, in no particular order.
    fn time_to_live_is_valid(
        &self,
        id: LeaseId,
        keys: bool,
        ttl_s: i64,
        granted_ttl_s: i64,
        resp_keys: &[String],
    ) -> bool {
        match self.leases.get(id) {
            None => ttl_s == -1 && granted_ttl_s == 0 && resp_keys.is_empty(),
            Some(lease) => {
                let keys_ok = if !keys {
                    resp_keys.is_empty()
                } else if resp_keys.windows(2).all(|w| w[0] < w[1]) {
                    resp_keys.len() == lease.keys.len()
                        && resp_keys
                            .iter()
                            .zip(lease.keys.iter())
                            .all(|(a, b)| **a == **b)
                } else {
                    let mut sorted = resp_keys.to_vec();
                    sorted.sort();
                    sorted.len() == lease.keys.len()
                        && sorted
                            .iter()
                            .zip(lease.keys.iter())
                            .all(|(a, b)| **a == **b)
                };
                ttl_s >= -1 && granted_ttl_s == lease.ttl_s && keys_ok
            }
        }
    }

    /// A serializable range is served from one member's applied state, which is the state of
    /// some revision `h` at or below the current one, `h` being the header's revision. So the
    /// answer is valid iff `h <= current` and it equals a read of the state at `h` (or at the
    /// requested revision, which must not exceed `h`). If that revision is below the compacted
    /// one the model no longer knows the content and accepts it (the member may not have applied
    /// the compaction yet). Read-only: it never constrains the placement of writes beyond that.
    fn serializable_range_is_valid(&self, r: &RangeRequest, resp: &RangeResponse) -> bool {
        let member_revision = resp.header.revision;
        if r.key.is_empty()
            || member_revision < 1
            || member_revision > self.revision
            || r.revision > member_revision
        {
            return false;
        }
        let at: Revision = if r.revision > 0 {
            r.revision
        } else {
            member_revision
        };
        at < self.compacted || self.range_matches(r, at, resp)
    }

    /// The member's compacted revision is at most the cluster's and its revision is at least 1.
    fn serializable_error_is_valid(&self, r: &RangeRequest, error: &EtcdError) -> bool {
        if r.key.is_empty() {
            return *error == EtcdError::EmptyKey;
        }
        match error {
            EtcdError::FutureRevision => r.revision > 1,
            EtcdError::Compacted => r.revision > 0 && r.revision < self.compacted,
            _ => false,
        }
    }
}

/// Whether a txn answer shows a write: a put, or a delete that deleted something, in the taken
/// branch or a nested one.
fn txn_response_writes(resp: &TxnResponse) -> bool {
    resp.responses.iter().any(|op| match op {
        ResponseOp::Put(_) => true,
        ResponseOp::DeleteRange(d) => d.deleted > 0,
        ResponseOp::Range(_) => false,
        ResponseOp::Txn(nested) => txn_response_writes(nested),
    })
}

impl MvccModel {
    /// Whether the linearizable range `r` answered `resp` is valid in no state reachable from
    /// this one ([`Spec::read_refuted`]). What it rests on: every step that changes a key (put,
    /// delete, txn, a revoke or expiry deleting a lease's keys) writes it at a revision above the
    /// current one (`bump`), so the records at or below the current revision `c` never change;
    /// compaction only drops what reads at or above the compacted revision cannot see (and the
    /// compacted revision never decreases); the revision never decreases. So:
    /// - a header below `c` can never be the revision the range is answered at;
    /// - a historic read at `0 < rv <= c` reads records that are fixed: it is refuted if it is
    ///   below the compacted revision (Compacted, now and forever) or its answer differs now;
    /// - otherwise (the current revision, or `rv > c`) it reads at some `at >= c`; a key it shows
    ///   with `mod_revision <= c` was last written at that revision as of `at`, so nothing wrote
    ///   the key between there and `at`, and its version as of `c` (the key's latest record now)
    ///   must already be exactly that one. Keys it does not show say nothing (they may be
    ///   deleted later), nor do shown keys written above `c`.
    pub fn range_refuted(&self, r: &RangeRequest, resp: &RangeResponse) -> bool {
        let current = self.revision;
        if resp.header.revision < current {
            return true;
        }
        if r.revision > 0 && r.revision <= current {
            return r.revision < self.compacted || !self.range_matches(r, r.revision, resp);
        }
        resp.kvs.iter().any(|kv| {
            kv.mod_revision <= current
                && !self
                    .store
                    .live(&kv.key)
                    .is_some_and(|live| live.matches(&kv.key, r.keys_only, kv))
        })
    }
}

fn is_now_or_next(header_revision: Revision, revision: Revision) -> bool {
    header_revision == revision || header_revision == revision + 1
}

/// etcd fills a keep-alive's header from the serving member's own store before it forwards the
/// renewal to the leader (`v3rpc/lease.go`, `leaseKeepAlive`: "the revision is strictly smaller
/// or equal to when the keepalive happened"), and the leader renews only after applying all it
/// had committed (`waitAppliedIndex`): the header may lag the renewal's state, never lead it.
fn local_header_is_valid(header_revision: Revision, revision: Revision) -> bool {
    (1..=revision).contains(&header_revision)
}

impl MvccModel {
    /// An upper bound on the store's revision just before `op`, answered `ret`, can take effect;
    /// `None` when the answer does not bound it (errors, serializable ranges, keep-alive and
    /// time-to-live, whose headers may lag; `LeaseExpire`, which never answers).
    ///
    /// This is `Spec::progress_max` (with `Spec::progress` = the revision). Pruning rule: an
    /// unknown-outcome operation that raises the revision to `r` may be linearized only where
    /// every answered operation not yet linearized has no bound or a bound `>= r`. Soundness: in any valid linearization, every
    /// operation placed after it runs at revision `>= r` (revisions never decrease), and the
    /// not-yet-linearized answered operations are all placed after it. Effect: unknown writes
    /// are tried only at the revision gaps the answers leave. Where no gap is open, operations
    /// for which [`MvccModel::changes_state_only_by_revision`] holds need not even be applied.
    pub fn revision_before_max(op: &Op, ret: &Ret) -> Option<Revision> {
        let Ret::Ok(response) = ret else { return None };
        match (op, response) {
            (Op::Range(r), Response::Range(resp)) if !r.serializable => Some(resp.header.revision),
            (Op::Put(_), Response::Put(resp)) => Some(resp.header.revision - 1),
            (Op::DeleteRange(_), Response::DeleteRange(resp)) => {
                Some(resp.header.revision - i64::from(resp.deleted > 0))
            }
            // A txn whose answer shows a write (a put, or a delete that deleted something, in
            // any nested branch) took a new revision: it ran at header - 1. The model's answer
            // shows a put exactly where `write_put` ran, which always bumps (`bump`), and a
            // positive `deleted` exactly where `delete_key` ran; an answer of another shape is
            // valid nowhere, so any bound holds for it. Otherwise it may have changed nothing
            // and ran at the header's revision: the larger bound.
            (Op::Txn(_), Response::Txn(resp)) => {
                Some(resp.header.revision - i64::from(txn_response_writes(resp)))
            }
            (Op::LeaseGrant { .. }, Response::LeaseGrant { header, .. })
            | (Op::LeaseRevoke { .. }, Response::LeaseRevoke { header })
            | (Op::Compact { .. }, Response::Compact { header }) => Some(header.revision),
            _ => None,
        }
    }
}

impl MvccModel {
    /// True if every state change `op` can make raises the revision (puts, deletes, txns):
    /// where [`MvccModel::revision_before_max`] forbids raising it, such an unknown operation
    /// can be skipped without applying it. Grants, revokes, expiries and compactions may change
    /// the state at the same revision.
    pub fn changes_state_only_by_revision(op: &Op) -> bool {
        matches!(
            op,
            Op::Put(_) | Op::DeleteRange(_) | Op::Txn(_) | Op::Range(_)
        ) || matches!(op, Op::LeaseKeepAlive { .. } | Op::LeaseTimeToLive { .. })
    }
}

/// The key-values `op`'s answer shows of the store at the op's own point, with whether values
/// were left out: [`Shown::AtItsPoint`].
fn for_each_view(op: &Op, ret: &Ret, visit: &mut impl FnMut(&KeyValue, bool)) {
    if let Ret::Ok(response) = ret {
        for_each_shown_kv(op, response, Shown::AtItsPoint, visit);
    }
}

/// Calls `visit(key, present, revision)` for each compare of an answered txn whose known
/// outcome shows its key present or absent (`compare_shows_present`) at the revision the
/// compares read: the one before the txn's if the txn changed the store (it takes one new
/// revision at its first change, `txn.rs`), else the txn's own. Every compare held if the txn
/// succeeded; if it failed, only a lone compare is known to have failed.
fn for_each_compare_shown(
    txn: &TxnRequest,
    resp: &TxnResponse,
    visit: &mut impl FnMut(&str, bool, i64),
) {
    let known = resp.succeeded || txn.compare.len() == 1;
    if !known {
        return;
    }
    let at = resp.header.revision - i64::from(txn_changed(&resp.responses));
    for compare in &txn.compare {
        if let Some(present) = compare_shows_present(compare, resp.succeeded) {
            visit(&compare.key, present, at);
        }
    }
}

/// Whether the taken branches (nested ones included) changed the store: a put, or a delete
/// that deleted something.
fn txn_changed(responses: &[ResponseOp]) -> bool {
    responses.iter().any(|response| match response {
        ResponseOp::Put(_) => true,
        ResponseOp::DeleteRange(delete) => delete.deleted > 0,
        ResponseOp::Txn(nested) => txn_changed(&nested.responses),
        ResponseOp::Range(_) => false,
    })
}

/// The indices of the sorted `keys` that `(from, range_end)` selects.
fn keys_in_range(from: &str, range_end: &str, keys: &[PartitionKey], out: &mut Vec<u32>) {
    use std::ops::Bound;
    let Some((low, high)) = range_bounds(from, range_end) else {
        return;
    };
    let first = match low {
        Bound::Included(low) => keys.partition_point(|key| key.as_str() < low),
        Bound::Excluded(low) => keys.partition_point(|key| key.as_str() <= low),
        Bound::Unbounded => 0,
    };
    let end = match high {
        Bound::Included(high) => keys.partition_point(|key| key.as_str() <= high),
        Bound::Excluded(high) => keys.partition_point(|key| key.as_str() < high),
        Bound::Unbounded => keys.len(),
    };
    out.extend(first as u32..end.max(first) as u32);
}

/// The keys a delete in `requests`, or in any branch of a txn nested there, may remove.
fn branch_removals(requests: &[RequestOp], keys: &[PartitionKey], out: &mut Vec<u32>) {
    for request in requests {
        match request {
            RequestOp::DeleteRange(d) => keys_in_range(&d.key, &d.range_end, keys, out),
            RequestOp::Txn(nested) => {
                branch_removals(&nested.success, keys, out);
                branch_removals(&nested.failure, keys, out);
            }
            RequestOp::Put(_) | RequestOp::Range(_) => {}
        }
    }
}

/// Calls `visit` on the lease of every put, with a lease, of the branches `resp` shows taken.
fn txn_leases_needed(t: &TxnRequest, resp: &TxnResponse, visit: &mut impl FnMut(LeaseId)) {
    for (request, response) in t.branch(resp.succeeded).iter().zip(&resp.responses) {
        match (request, response) {
            (RequestOp::Put(put), _) if put.lease != 0 => visit(put.lease),
            (RequestOp::Txn(nested), ResponseOp::Txn(nested_resp)) => {
                txn_leases_needed(nested, nested_resp, visit)
            }
            _ => {}
        }
    }
}

/// The tag of a key, as [`ValueTwin::key`] and [`Mention::AnyValueOf`] name it.
fn key_tag(key: &str) -> u128 {
    fingerprint_of(&("key", key))
}

/// The tag of `value` stored under `key`, as [`ValueTwin::value`] and [`Mention::Value`] name it.
fn value_tag(key: &str, value: &str) -> u128 {
    fingerprint_of(&("value", key, value))
}

fn txn_compare_mentions(txn: &TxnRequest, out: &mut Vec<Mention>) {
    for compare in &txn.compare {
        if let CompareTarget::Value(value) = &compare.target {
            out.push(match compare.result {
                CompareResult::Equal | CompareResult::NotEqual => {
                    Mention::Value(value_tag(&compare.key, value))
                }
                CompareResult::Less | CompareResult::Greater => {
                    Mention::AnyValueOf(key_tag(&compare.key))
                }
            });
        }
    }
    for request in txn.success.iter().chain(&txn.failure) {
        if let RequestOp::Txn(nested) = request {
            txn_compare_mentions(nested, out);
        }
    }
}

/// Whether `op` names lease `lease` anywhere (a put's lease, a lease operation, a txn branch).
fn op_names_lease(op: &Op, lease: LeaseId) -> bool {
    match op {
        Op::Put(put) => put.lease == lease,
        Op::Txn(txn) => txn_names_lease(txn, lease),
        Op::LeaseGrant { id, .. }
        | Op::LeaseRevoke { id }
        | Op::LeaseKeepAlive { id }
        | Op::LeaseTimeToLive { id, .. }
        | Op::LeaseExpire { id } => *id == lease,
        Op::Range(_) | Op::DeleteRange(_) | Op::Compact { .. } => false,
    }
}

fn txn_names_lease(txn: &TxnRequest, lease: LeaseId) -> bool {
    txn.compare
        .iter()
        .any(|compare| matches!(compare.target, CompareTarget::Lease(id) if id == lease))
        || txn
            .success
            .iter()
            .chain(&txn.failure)
            .any(|request| match request {
                RequestOp::Put(put) => put.lease == lease,
                RequestOp::Txn(nested) => txn_names_lease(nested, lease),
                RequestOp::Range(_) | RequestOp::DeleteRange(_) => false,
            })
}
