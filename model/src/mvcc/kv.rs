//! Put, Range and DeleteRange, standalone and as transaction steps (etcd `applierV3backend`).

use std::sync::Arc;

use crate::mvcc::model::MvccModel;
use crate::mvcc::store::{Live, Record};
use crate::mvcc::types::{
    DeleteRangeRequest, DeleteRangeResponse, EtcdError, KeyValue, PutRequest, PutResponse,
    RangeRequest, RangeResponse, ResponseHeader, Revision,
};
use crate::mvcc::validate;

impl MvccModel {
    /// Standalone put. Order of errors as etcd 3.4.23 returns them (verified): the gRPC checks,
    /// then the missing lease, then the missing key for `ignore_value` / `ignore_lease`.
    pub(crate) fn put(&mut self, p: &PutRequest) -> Result<PutResponse, EtcdError> {
        validate::check_put(p)?;
        if p.lease != 0 && !self.leases.contains(p.lease) {
            return Err(EtcdError::LeaseNotFound);
        }
        if (p.ignore_value || p.ignore_lease) && self.store.live(&p.key).is_none() {
            return Err(EtcdError::KeyNotFound);
        }
        let begin = self.revision;
        Ok(self.write_put(p, begin))
    }

    /// The put itself, once every check passed, as a step of the write txn begun at `begin`.
    pub(crate) fn write_put(&mut self, p: &PutRequest, begin: Revision) -> PutResponse {
        let prev: Option<Live> = self.store.live(&p.key).cloned();
        let revision = self.bump(begin);
        // A failed `ignore_*` precondition was rejected by the caller; fall back to the request's
        // own value / lease rather than panic if that invariant is ever broken.
        assert!(!(p.ignore_value || p.ignore_lease) || prev.is_some());
        let value = match (&prev, p.ignore_value) {
            (Some(prev), true) => prev.value.clone(),
            _ => Arc::from(p.value.as_str()),
        };
        let lease = match (&prev, p.ignore_lease) {
            (Some(prev), true) => prev.lease,
            _ => p.lease,
        };
        let (create_revision, version) = match &prev {
            Some(prev) => (prev.create_revision, prev.version + 1),
            None => (revision, 1),
        };
        if let Some(prev) = &prev {
            self.leases.detach(prev.lease, &p.key);
        }
        let live = Live {
            value,
            create_revision,
            mod_revision: revision,
            version,
            lease,
        };
        let key = self.store.write(&p.key, Record::Live(live));
        self.leases.attach(lease, &key);
        PutResponse {
            header: ResponseHeader { revision },
            prev_kv: if p.prev_kv {
                prev.map(|prev| prev.to_key_value(&p.key, false))
            } else {
                None
            },
        }
    }

    /// The revision a range reads, or etcd's error (`mvcc.rangeKeys`): a requested revision above
    /// the current one → FutureRevision; 0 or negative → the current one; below the compacted one
    /// → Compacted (reading exactly at the compacted revision works; verified on 3.4.23).
    pub(crate) fn range_revision(&self, r: &RangeRequest) -> Result<Revision, EtcdError> {
        if r.revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        let revision = if r.revision <= 0 {
            self.revision
        } else {
            r.revision
        };
        if revision < self.compacted {
            return Err(EtcdError::Compacted);
        }
        Ok(revision)
    }

    pub(crate) fn range(&self, r: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        validate::check_range(r)?;
        let revision = self.range_revision(r)?;
        Ok(self.read_range(r, revision))
    }

    /// The response of a range reading at `revision`. The header carries the store's current
    /// revision even for a historic read (etcd `rangeKeys` returns `curRev`; verified on 3.4.23).
    pub(crate) fn read_range(&self, r: &RangeRequest, revision: Revision) -> RangeResponse {
        let take = range_take(r);
        let mut kvs: Vec<KeyValue> = Vec::new();
        let mut count: usize = 0;
        self.store
            .visit_range(&r.key, &r.range_end, revision, |key, live| {
                if count < take {
                    kvs.push(live.to_key_value(key, r.keys_only));
                }
                count += 1;
            });
        RangeResponse {
            header: self.header(),
            kvs,
            more: range_more(r, count),
            count: count as i64,
        }
    }

    /// Whether `resp` is what a range reading at `revision` returns, ignoring its header; does not
    /// allocate (the search checks reads at many candidate states).
    pub(crate) fn range_matches(
        &self,
        r: &RangeRequest,
        revision: Revision,
        resp: &RangeResponse,
    ) -> bool {
        let take = range_take(r);
        let mut count: usize = 0;
        let mut same = true;
        self.store
            .visit_range(&r.key, &r.range_end, revision, |key, live| {
                if count < take {
                    same = same
                        && resp
                            .kvs
                            .get(count)
                            .is_some_and(|kv| live.matches(key, r.keys_only, kv));
                }
                count += 1;
            });
        same && resp.kvs.len() == count.min(take)
            && resp.count == count as i64
            && resp.more == range_more(r, count)
    }

    /// Standalone delete: only the empty-key check can fail.
    pub(crate) fn delete_range(
        &mut self,
        d: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, EtcdError> {
        validate::check_delete(d)?;
        let begin = self.revision;
        Ok(self.write_delete(d, begin))
    }

    /// Deletes every existing key in the range at the revision of the txn begun at `begin`. The
    /// header is the store's revision afterwards: unchanged when nothing was deleted and nothing
    /// earlier in the txn changed (etcd `storeTxnWrite.DeleteRange`; verified on 3.4.23).
    pub(crate) fn write_delete(
        &mut self,
        d: &DeleteRangeRequest,
        begin: Revision,
    ) -> DeleteRangeResponse {
        let mut victims: Vec<(Arc<str>, Live)> = Vec::new();
        self.store
            .visit_range(&d.key, &d.range_end, self.revision, |key, live| {
                victims.push((key.clone(), live.clone()));
            });
        for (key, live) in &victims {
            self.delete_key(key, live.lease, begin);
        }
        DeleteRangeResponse {
            header: self.header(),
            deleted: victims.len() as i64,
            prev_kvs: if d.prev_kv {
                victims
                    .iter()
                    .map(|(key, live)| live.to_key_value(key, false))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// How many entries a range returns: none for `count_only`, at most `limit` when positive.
fn range_take(r: &RangeRequest) -> usize {
    if r.count_only {
        0
    } else if r.limit > 0 {
        usize::try_from(r.limit).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    }
}

/// etcd sets `more` only when `limit` cut real entries: never for `count_only` (verified on
/// 3.4.23: `count_only` with `limit 1` over 3 keys returns `more` false).
fn range_more(r: &RangeRequest, count: usize) -> bool {
    !r.count_only && r.limit > 0 && count > range_take(r)
}
