//! The part of a real cluster one live run owns, and the translation that makes it look like a
//! fresh cluster to the model.
//!
//! The model (and every checker) assumes an empty store at revision 1 with fresh lease ids. A
//! real cluster someone used before has other keys, a higher revision, a compaction and maybe
//! live leases, and judging a run on it as if it were fresh gave false violations (issue 13:
//! "longest linearizable prefix has 0 operations"). So every run works under a key prefix of its
//! own and the client translates at the wire:
//! - keys: `k003` is sent as `<prefix>k003`, a range to the end of the keyspace (`"\0"`) ends at
//!   the end of the prefix, and the prefix is stripped from every key that comes back;
//! - revisions: the run starts at the cluster's revision `base` (after a marker write outside the
//!   prefix, so `base` is above any earlier compaction); revision `r > 0` of the history is
//!   `r + base - 1` on the wire, so the history starts at revision 1 like a fresh cluster's;
//! - lease ids: offset by a per-run amount, so an earlier run's live lease cannot collide.
//!
//! Revisions are global in etcd: a write by anybody else during the run moves them and breaks the
//! translation. [`Keyspace`] cannot prevent that; the run's final checks detect it (writes seen
//! outside the prefix) and make the verdict inconclusive.

use kvsim_model::mvcc::{
    prefix_end, Compare, CompareTarget, DeleteRangeRequest, KeyValue, Op, PutRequest, RangeRequest,
    RequestOp, Response, ResponseHeader, ResponseOp, Ret, TxnRequest, TxnResponse, FROM_KEY,
};

/// One run's share of a cluster (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    /// Every key of the run starts with this, e.g. `/kvsim/<run-id>/`.
    pub prefix: String,
    /// History revision `r > 0` is `r + revision_offset` on the cluster.
    pub revision_offset: i64,
    /// History lease id `l != 0` is `l + lease_offset` on the cluster.
    pub lease_offset: i64,
}

impl Keyspace {
    /// No translation at all: a cluster kvsim spawned empty for this run.
    pub fn identity() -> Keyspace {
        Keyspace {
            prefix: String::new(),
            revision_offset: 0,
            lease_offset: 0,
        }
    }

    // ---- history → cluster --------------------------------------------------------------------

    pub fn key_in(&self, key: &str) -> String {
        // An empty key stays empty: etcd refuses it (`key is not provided`), as the model does.
        if key.is_empty() {
            return String::new();
        }
        format!("{}{key}", self.prefix)
    }

    /// `range_end` for the range starting at `key` (history form, see `FROM_KEY`).
    pub fn range_end_in(&self, key: &str, range_end: &str) -> (String, String) {
        let key_out = if key == FROM_KEY && range_end == FROM_KEY {
            // Every key: every key of the prefix.
            self.prefix.clone()
        } else {
            self.key_in(key)
        };
        let end = if range_end.is_empty() {
            String::new()
        } else if range_end == FROM_KEY {
            if self.prefix.is_empty() {
                FROM_KEY.to_string()
            } else {
                prefix_end(&self.prefix)
            }
        } else {
            self.key_in(range_end)
        };
        (key_out, end)
    }

    pub fn revision_in(&self, revision: i64) -> i64 {
        if revision > 0 {
            revision + self.revision_offset
        } else {
            revision
        }
    }

    pub fn lease_in(&self, lease: i64) -> i64 {
        if lease != 0 {
            lease + self.lease_offset
        } else {
            0
        }
    }

    pub fn op_in(&self, op: &Op) -> Op {
        match op {
            Op::Put(put) => Op::Put(self.put_in(put)),
            Op::Range(range) => Op::Range(self.range_in(range)),
            Op::DeleteRange(delete) => Op::DeleteRange(self.delete_in(delete)),
            Op::Txn(txn) => Op::Txn(self.txn_in(txn)),
            Op::LeaseGrant { id, ttl_s } => Op::LeaseGrant {
                id: self.lease_in(*id),
                ttl_s: *ttl_s,
            },
            Op::LeaseRevoke { id } => Op::LeaseRevoke {
                id: self.lease_in(*id),
            },
            Op::LeaseKeepAlive { id } => Op::LeaseKeepAlive {
                id: self.lease_in(*id),
            },
            Op::LeaseTimeToLive { id, keys } => Op::LeaseTimeToLive {
                id: self.lease_in(*id),
                keys: *keys,
            },
            Op::LeaseExpire { id } => Op::LeaseExpire {
                id: self.lease_in(*id),
            },
            Op::Compact { revision, physical } => Op::Compact {
                revision: self.revision_in(*revision),
                physical: *physical,
            },
        }
    }

    fn put_in(&self, put: &PutRequest) -> PutRequest {
        PutRequest {
            key: self.key_in(&put.key),
            lease: self.lease_in(put.lease),
            ..put.clone()
        }
    }

    fn range_in(&self, range: &RangeRequest) -> RangeRequest {
        let (key, range_end) = self.range_end_in(&range.key, &range.range_end);
        RangeRequest {
            key,
            range_end,
            revision: self.revision_in(range.revision),
            ..range.clone()
        }
    }

    fn delete_in(&self, delete: &DeleteRangeRequest) -> DeleteRangeRequest {
        let (key, range_end) = self.range_end_in(&delete.key, &delete.range_end);
        DeleteRangeRequest {
            key,
            range_end,
            ..delete.clone()
        }
    }

    fn txn_in(&self, txn: &TxnRequest) -> TxnRequest {
        let request_in = |op: &RequestOp| match op {
            RequestOp::Put(put) => RequestOp::Put(self.put_in(put)),
            RequestOp::Range(range) => RequestOp::Range(self.range_in(range)),
            RequestOp::DeleteRange(delete) => RequestOp::DeleteRange(self.delete_in(delete)),
            RequestOp::Txn(txn) => RequestOp::Txn(self.txn_in(txn)),
        };
        TxnRequest {
            compare: txn.compare.iter().map(|c| self.compare_in(c)).collect(),
            success: txn.success.iter().map(request_in).collect(),
            failure: txn.failure.iter().map(request_in).collect(),
        }
    }

    fn compare_in(&self, compare: &Compare) -> Compare {
        // `create_revision == 0` means "absent" and stays 0 (revision_in leaves 0 alone).
        let target = match &compare.target {
            CompareTarget::CreateRevision(r) => CompareTarget::CreateRevision(self.revision_in(*r)),
            CompareTarget::ModRevision(r) => CompareTarget::ModRevision(self.revision_in(*r)),
            CompareTarget::Lease(lease) => CompareTarget::Lease(self.lease_in(*lease)),
            other => other.clone(),
        };
        Compare {
            key: self.key_in(&compare.key),
            result: compare.result,
            target,
        }
    }

    // ---- cluster → history --------------------------------------------------------------------

    pub fn key_out(&self, key: &str) -> String {
        key.strip_prefix(self.prefix.as_str())
            .unwrap_or(key)
            .to_string()
    }

    pub fn revision_out(&self, revision: i64) -> i64 {
        if revision > 0 {
            (revision - self.revision_offset).max(0)
        } else {
            revision
        }
    }

    pub fn lease_out(&self, lease: i64) -> i64 {
        if lease != 0 {
            lease - self.lease_offset
        } else {
            0
        }
    }

    fn header_out(&self, header: &ResponseHeader) -> ResponseHeader {
        ResponseHeader {
            revision: self.revision_out(header.revision),
        }
    }

    pub fn kv_out(&self, kv: &KeyValue) -> KeyValue {
        KeyValue {
            key: self.key_out(&kv.key),
            create_revision: self.revision_out(kv.create_revision),
            mod_revision: self.revision_out(kv.mod_revision),
            lease: self.lease_out(kv.lease),
            ..kv.clone()
        }
    }

    pub fn ret_out(&self, ret: Ret) -> Ret {
        match ret {
            Ret::Ok(response) => Ret::Ok(self.response_out(response)),
            error @ Ret::Err(_) => error,
        }
    }

    fn response_out(&self, response: Response) -> Response {
        match response {
            Response::Put(put) => Response::Put(self.put_response_out(put)),
            Response::Range(range) => Response::Range(self.range_response_out(range)),
            Response::DeleteRange(delete) => {
                Response::DeleteRange(self.delete_response_out(delete))
            }
            Response::Txn(txn) => Response::Txn(self.txn_response_out(txn)),
            Response::LeaseGrant { header, id, ttl_s } => Response::LeaseGrant {
                header: self.header_out(&header),
                id: self.lease_out(id),
                ttl_s,
            },
            Response::LeaseRevoke { header } => Response::LeaseRevoke {
                header: self.header_out(&header),
            },
            Response::LeaseKeepAlive { header, id, ttl_s } => Response::LeaseKeepAlive {
                header: self.header_out(&header),
                id: self.lease_out(id),
                ttl_s,
            },
            Response::LeaseTimeToLive {
                header,
                id,
                ttl_s,
                granted_ttl_s,
                keys,
            } => Response::LeaseTimeToLive {
                header: self.header_out(&header),
                id: self.lease_out(id),
                ttl_s,
                granted_ttl_s,
                keys: keys.iter().map(|key| self.key_out(key)).collect(),
            },
            Response::Compact { header } => Response::Compact {
                header: self.header_out(&header),
            },
        }
    }

    fn put_response_out(
        &self,
        put: kvsim_model::mvcc::PutResponse,
    ) -> kvsim_model::mvcc::PutResponse {
        kvsim_model::mvcc::PutResponse {
            header: self.header_out(&put.header),
            prev_kv: put.prev_kv.as_ref().map(|kv| self.kv_out(kv)),
        }
    }

    fn range_response_out(
        &self,
        range: kvsim_model::mvcc::RangeResponse,
    ) -> kvsim_model::mvcc::RangeResponse {
        kvsim_model::mvcc::RangeResponse {
            header: self.header_out(&range.header),
            kvs: range.kvs.iter().map(|kv| self.kv_out(kv)).collect(),
            ..range
        }
    }

    fn delete_response_out(
        &self,
        delete: kvsim_model::mvcc::DeleteRangeResponse,
    ) -> kvsim_model::mvcc::DeleteRangeResponse {
        kvsim_model::mvcc::DeleteRangeResponse {
            header: self.header_out(&delete.header),
            prev_kvs: delete.prev_kvs.iter().map(|kv| self.kv_out(kv)).collect(),
            ..delete
        }
    }

    fn txn_response_out(&self, txn: TxnResponse) -> TxnResponse {
        TxnResponse {
            header: self.header_out(&txn.header),
            succeeded: txn.succeeded,
            responses: txn
                .responses
                .into_iter()
                .map(|op| match op {
                    ResponseOp::Put(put) => ResponseOp::Put(self.put_response_out(put)),
                    ResponseOp::Range(range) => ResponseOp::Range(self.range_response_out(range)),
                    ResponseOp::DeleteRange(delete) => {
                        ResponseOp::DeleteRange(self.delete_response_out(delete))
                    }
                    ResponseOp::Txn(txn) => ResponseOp::Txn(self.txn_response_out(txn)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Keyspace {
        Keyspace {
            prefix: "/kvsim/r1/".into(),
            revision_offset: 41,
            lease_offset: 1 << 40,
        }
    }

    #[test]
    fn requests_go_under_the_prefix_at_shifted_revisions() {
        let space = space();
        let range = Op::Range(RangeRequest {
            key: FROM_KEY.into(),
            range_end: FROM_KEY.into(),
            revision: 3,
            ..Default::default()
        });
        let Op::Range(sent) = space.op_in(&range) else {
            panic!("a range stays a range")
        };
        assert_eq!(sent.key, "/kvsim/r1/");
        assert_eq!(sent.range_end, "/kvsim/r10");
        assert_eq!(sent.revision, 44);
        let (key, end) = space.range_end_in("k1", FROM_KEY);
        assert_eq!((key.as_str(), end.as_str()), ("/kvsim/r1/k1", "/kvsim/r10"));
        assert_eq!(space.range_end_in("k1", "").1, "");
        assert_eq!(space.key_in(""), "");
        let absent = Compare {
            key: "k".into(),
            result: kvsim_model::mvcc::CompareResult::Equal,
            target: CompareTarget::CreateRevision(0),
        };
        assert_eq!(
            space.compare_in(&absent).target,
            CompareTarget::CreateRevision(0)
        );
        assert_eq!(space.lease_in(0), 0);
        assert_eq!(space.lease_out(space.lease_in(7)), 7);
    }

    #[test]
    fn answers_come_back_as_a_fresh_cluster_would_give_them() {
        let space = space();
        let kv = KeyValue {
            key: "/kvsim/r1/k2".into(),
            value: "v".into(),
            create_revision: 42,
            mod_revision: 45,
            version: 2,
            lease: (1 << 40) + 9,
        };
        let ret = Ret::Ok(Response::Range(kvsim_model::mvcc::RangeResponse {
            header: ResponseHeader { revision: 46 },
            kvs: vec![kv],
            more: false,
            count: 1,
        }));
        let Ret::Ok(Response::Range(range)) = space.ret_out(ret) else {
            panic!("a range answer stays one")
        };
        assert_eq!(range.header.revision, 5);
        assert_eq!(range.kvs[0].key, "k2");
        assert_eq!(range.kvs[0].create_revision, 1);
        assert_eq!(range.kvs[0].mod_revision, 4);
        assert_eq!(range.kvs[0].lease, 9);
    }
}
