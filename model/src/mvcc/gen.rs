//! Random etcd operations with a realistic mix, for workloads, oracle tests and benchmarks.
//!
//! One [`OpGen`] per client. Values and lease ids embed the generator's `tag`, so they are unique
//! across a run as long as tags are (unique values make histories much easier to check and to
//! read). Feeding answers back with [`OpGen::observe`] makes compare-and-swap transactions and
//! historic reads aim at revisions that exist; without it the generator guesses.

use std::collections::BTreeMap;

use rand::Rng;

use crate::mvcc::types::{
    prefix_end, Compare, CompareResult, CompareTarget, DeleteRangeRequest, LeaseId, Op, PutRequest,
    RangeRequest, RequestOp, Response, ResponseOp, Ret, Revision, TxnRequest, FROM_KEY,
};

/// Relative weights of each kind of operation (0 disables it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpMix {
    pub put: u32,
    pub get: u32,
    pub prefix_range: u32,
    pub historic_read: u32,
    pub serializable_get: u32,
    pub delete: u32,
    /// `txn(create_revision(k) == 0 ? put k : get k)`.
    pub txn_create_if_absent: u32,
    /// `txn(mod_revision(k) == last seen ? put k : get k)`.
    pub txn_compare_and_put: u32,
    /// Several keys, both branches, sometimes a nested txn.
    pub txn_multi: u32,
    pub lease_grant: u32,
    pub put_with_lease: u32,
    pub lease_keep_alive: u32,
    pub lease_revoke: u32,
    pub lease_time_to_live: u32,
    pub compact: u32,
}

impl Default for OpMix {
    fn default() -> Self {
        Self {
            put: 25,
            get: 20,
            prefix_range: 6,
            historic_read: 4,
            serializable_get: 3,
            delete: 6,
            txn_create_if_absent: 5,
            txn_compare_and_put: 8,
            txn_multi: 5,
            lease_grant: 3,
            put_with_lease: 4,
            lease_keep_alive: 3,
            lease_revoke: 2,
            lease_time_to_live: 2,
            compact: 1,
        }
    }
}

impl OpMix {
    /// Only puts, gets and deletes: a plain register-per-key workload.
    pub fn kv_only() -> Self {
        Self {
            put: 50,
            get: 40,
            delete: 10,
            prefix_range: 0,
            historic_read: 0,
            serializable_get: 0,
            txn_create_if_absent: 0,
            txn_compare_and_put: 0,
            txn_multi: 0,
            lease_grant: 0,
            put_with_lease: 0,
            lease_keep_alive: 0,
            lease_revoke: 0,
            lease_time_to_live: 0,
            compact: 0,
        }
    }

    fn weights(&self) -> [u32; 15] {
        [
            self.put,
            self.get,
            self.prefix_range,
            self.historic_read,
            self.serializable_get,
            self.delete,
            self.txn_create_if_absent,
            self.txn_compare_and_put,
            self.txn_multi,
            self.lease_grant,
            self.put_with_lease,
            self.lease_keep_alive,
            self.lease_revoke,
            self.lease_time_to_live,
            self.compact,
        ]
    }
}

/// Leases a generator remembers; older ones are forgotten (and so left to expire).
const LEASES_REMEMBERED_MAX: usize = 8;

/// A per-client generator of operations.
#[derive(Clone, Debug)]
pub struct OpGen {
    pub mix: OpMix,
    /// TTLs of granted leases are drawn from this inclusive range.
    pub lease_ttl_s: (i64, i64),
    tag: u64,
    value_seq: u64,
    lease_seq: i64,
    ops_generated: u64,
    /// Highest header revision observed.
    revision_seen: Revision,
    /// Leases this client granted (or believes it did), newest last.
    leases: Vec<LeaseId>,
    /// Last mod revision observed per key (0 = observed missing).
    mod_revisions: BTreeMap<String, Revision>,
}

impl OpGen {
    /// `tag` must be unique per generator within a run, below 2^38.
    pub fn new(tag: u64) -> Self {
        assert!(tag < 1 << 38, "lease ids embed the tag in 38 bits");
        Self {
            mix: OpMix::default(),
            lease_ttl_s: (2, 10),
            tag,
            value_seq: 0,
            lease_seq: 0,
            ops_generated: 0,
            revision_seen: 1,
            leases: Vec::new(),
            mod_revisions: BTreeMap::new(),
        }
    }

    pub fn with_mix(mut self, mix: OpMix) -> Self {
        self.mix = mix;
        self
    }

    /// A fresh value, unique across generators with distinct tags.
    pub fn next_value(&mut self) -> String {
        self.value_seq += 1;
        format!("{}.{}", self.tag, self.value_seq)
    }

    /// A fresh lease id, unique across generators with distinct tags, never 0.
    pub fn next_lease_id(&mut self) -> LeaseId {
        self.lease_seq += 1;
        // Tags below 2^38 and sequences below 2^24 keep ids positive and distinct.
        ((self.tag as i64) << 24) | (self.lease_seq & 0xff_ffff)
    }

    /// Learns revisions, mod revisions and lease fates from an answer to one of its operations.
    pub fn observe(&mut self, op: &Op, ret: &Ret) {
        let Ret::Ok(response) = ret else {
            if let (Op::LeaseKeepAlive { id } | Op::LeaseRevoke { id }, Ret::Err(_)) = (op, ret) {
                self.leases.retain(|l| l != id);
            }
            return;
        };
        self.revision_seen = self.revision_seen.max(header_revision(response));
        match (op, response) {
            (Op::Put(p), Response::Put(resp)) => {
                self.mod_revisions
                    .insert(p.key.clone(), resp.header.revision);
            }
            (Op::Range(r), Response::Range(resp)) if r.revision == 0 && !r.serializable => {
                if r.range_end.is_empty() {
                    let mod_revision = resp.kvs.first().map_or(0, |kv| kv.mod_revision);
                    self.mod_revisions.insert(r.key.clone(), mod_revision);
                } else {
                    for kv in &resp.kvs {
                        self.mod_revisions.insert(kv.key.clone(), kv.mod_revision);
                    }
                }
            }
            (Op::Txn(t), Response::Txn(resp)) => self.observe_txn(t, resp),
            (Op::LeaseRevoke { id }, _) => self.leases.retain(|l| l != id),
            (
                Op::LeaseTimeToLive { id, .. },
                Response::LeaseTimeToLive {
                    granted_ttl_s: 0, ..
                },
            ) => {
                self.leases.retain(|l| l != id);
            }
            _ => {}
        }
    }

    fn observe_txn(&mut self, t: &TxnRequest, resp: &crate::mvcc::types::TxnResponse) {
        let ops = if resp.succeeded {
            &t.success
        } else {
            &t.failure
        };
        for (op, r) in ops.iter().zip(&resp.responses) {
            match (op, r) {
                (RequestOp::Put(p), ResponseOp::Put(_)) => {
                    self.mod_revisions
                        .insert(p.key.clone(), resp.header.revision);
                }
                (RequestOp::Range(q), ResponseOp::Range(rr))
                    if q.range_end.is_empty() && q.revision == 0 =>
                {
                    self.mod_revisions.insert(
                        q.key.clone(),
                        rr.kvs.first().map_or(0, |kv| kv.mod_revision),
                    );
                }
                _ => {}
            }
        }
    }

    /// The next operation on `keys` (which must not be empty: an empty slice yields a put on
    /// the key "k").
    pub fn next_op<R: Rng + ?Sized>(&mut self, rng: &mut R, keys: &[&str]) -> Op {
        self.ops_generated += 1;
        let weights = self.mix.weights();
        let total: u32 = weights.iter().sum();
        if total == 0 || keys.is_empty() {
            let value = self.next_value();
            return Op::Put(PutRequest {
                key: keys.first().unwrap_or(&"k").to_string(),
                value,
                ..Default::default()
            });
        }
        let mut pick = rng.gen_range(0..total);
        let mut kind = 0;
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                kind = i;
                break;
            }
            pick -= w;
        }
        let key = keys[rng.gen_range(0..keys.len())].to_string();
        match kind {
            0 => Op::Put(self.put(rng, key, 0)),
            1 => Op::Range(self.get(rng, key)),
            2 => Op::Range(self.prefix_range(rng, &key)),
            3 => Op::Range(RangeRequest {
                key,
                revision: self.past_revision(rng),
                ..Default::default()
            }),
            4 => Op::Range(RangeRequest {
                key,
                serializable: true,
                ..Default::default()
            }),
            5 => Op::DeleteRange(self.delete(rng, key)),
            6 => Op::Txn(self.txn_create_if_absent(key)),
            7 => Op::Txn(self.txn_compare_and_put(rng, key)),
            8 => self.txn_multi(rng, keys),
            9 => self.lease_grant(rng),
            10 => match self.known_lease(rng) {
                Some(lease) => Op::Put(self.put(rng, key, lease)),
                None => self.lease_grant(rng),
            },
            11 => match self.known_lease(rng) {
                Some(id) => Op::LeaseKeepAlive { id },
                None => self.lease_grant(rng),
            },
            12 => match self.known_lease(rng) {
                Some(id) => {
                    self.leases.retain(|l| *l != id);
                    Op::LeaseRevoke { id }
                }
                None => self.lease_grant(rng),
            },
            13 => match self.known_lease(rng) {
                Some(id) => Op::LeaseTimeToLive {
                    id,
                    keys: rng.gen_bool(0.5),
                },
                None => self.lease_grant(rng),
            },
            _ => Op::Compact {
                revision: self.past_revision(rng),
                physical: false,
            },
        }
    }

    fn put<R: Rng + ?Sized>(&mut self, rng: &mut R, key: String, lease: LeaseId) -> PutRequest {
        PutRequest {
            key,
            value: self.next_value(),
            lease,
            prev_kv: rng.gen_bool(0.2),
            ..Default::default()
        }
    }

    fn get<R: Rng + ?Sized>(&mut self, rng: &mut R, key: String) -> RangeRequest {
        RangeRequest {
            key,
            keys_only: rng.gen_bool(0.05),
            ..Default::default()
        }
    }

    /// A prefix of a key (or every key), sometimes limited, counted or keys only.
    fn prefix_range<R: Rng + ?Sized>(&mut self, rng: &mut R, key: &str) -> RangeRequest {
        let (start, range_end) = if rng.gen_bool(0.1) || key.is_empty() {
            ("\0".to_string(), FROM_KEY.to_string())
        } else {
            let chars = rng.gen_range(1..=key.chars().count());
            let prefix = &key[..key.char_indices().nth(chars).map_or(key.len(), |(i, _)| i)];
            (prefix.to_string(), prefix_end(prefix))
        };
        let limit = if rng.gen_bool(0.2) {
            rng.gen_range(1..4)
        } else {
            0
        };
        RangeRequest {
            key: start,
            range_end,
            limit,
            count_only: rng.gen_bool(0.05),
            keys_only: rng.gen_bool(0.1),
            ..Default::default()
        }
    }

    fn delete<R: Rng + ?Sized>(&mut self, rng: &mut R, key: String) -> DeleteRangeRequest {
        if rng.gen_bool(0.1) {
            let prefix = key.chars().next().map(String::from).unwrap_or_default();
            let range_end = prefix_end(&prefix);
            DeleteRangeRequest {
                key: prefix,
                range_end,
                prev_kv: true,
            }
        } else {
            DeleteRangeRequest {
                key,
                range_end: String::new(),
                prev_kv: rng.gen_bool(0.3),
            }
        }
    }

    fn txn_create_if_absent(&mut self, key: String) -> TxnRequest {
        let value = self.next_value();
        TxnRequest {
            compare: vec![Compare {
                key: key.clone(),
                result: CompareResult::Equal,
                target: CompareTarget::CreateRevision(0),
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: key.clone(),
                value,
                ..Default::default()
            })],
            failure: vec![RequestOp::Range(RangeRequest {
                key,
                ..Default::default()
            })],
        }
    }

    fn txn_compare_and_put<R: Rng + ?Sized>(&mut self, rng: &mut R, key: String) -> TxnRequest {
        let expected = match self.mod_revisions.get(&key) {
            Some(rev) => *rev,
            None => rng.gen_range(0..=self.revision_guess()),
        };
        let value = self.next_value();
        TxnRequest {
            compare: vec![Compare {
                key: key.clone(),
                result: CompareResult::Equal,
                target: CompareTarget::ModRevision(expected),
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: key.clone(),
                value,
                prev_kv: true,
                ..Default::default()
            })],
            failure: vec![RequestOp::Range(RangeRequest {
                key,
                ..Default::default()
            })],
        }
    }

    /// Distinct keys so that etcd's duplicate-key rule is never hit by accident.
    fn txn_multi<R: Rng + ?Sized>(&mut self, rng: &mut R, keys: &[&str]) -> Op {
        if keys.len() < 3 {
            let key = keys[0].to_string();
            return Op::Txn(self.txn_create_if_absent(key));
        }
        let mut chosen: Vec<&str> = Vec::new();
        while chosen.len() < 3 {
            let k = keys[rng.gen_range(0..keys.len())];
            if !chosen.contains(&k) {
                chosen.push(k);
            }
        }
        let [a, b, c] = [
            chosen[0].to_string(),
            chosen[1].to_string(),
            chosen[2].to_string(),
        ];
        let target = match rng.gen_range(0..3) {
            0 => CompareTarget::Version(rng.gen_range(0..3)),
            1 => CompareTarget::Value(format!(
                "{}.{}",
                self.tag,
                rng.gen_range(1..=self.value_seq.max(1))
            )),
            _ => CompareTarget::Lease(0),
        };
        let result = [
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Less,
            CompareResult::Greater,
        ][rng.gen_range(0..4)];
        let compare = vec![Compare {
            key: a.clone(),
            result,
            target,
        }];
        let mut success = vec![
            RequestOp::Put(PutRequest {
                key: b.clone(),
                value: self.next_value(),
                ..Default::default()
            }),
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: c.clone(),
                range_end: String::new(),
                prev_kv: true,
            }),
            RequestOp::Range(RangeRequest {
                key: b.clone(),
                ..Default::default()
            }),
        ];
        if rng.gen_bool(0.3) {
            // Nested: its compare reads the state before the outer txn.
            success.push(RequestOp::Txn(TxnRequest {
                compare: vec![Compare {
                    key: b.clone(),
                    result: CompareResult::Greater,
                    target: CompareTarget::Version(0),
                }],
                success: vec![RequestOp::Range(RangeRequest {
                    key: c.clone(),
                    ..Default::default()
                })],
                failure: vec![RequestOp::Put(PutRequest {
                    key: a.clone(),
                    value: self.next_value(),
                    ..Default::default()
                })],
            }));
        }
        let failure = vec![
            RequestOp::Put(PutRequest {
                key: a.clone(),
                value: self.next_value(),
                ..Default::default()
            }),
            RequestOp::Range(RangeRequest {
                key: a,
                range_end: FROM_KEY.to_string(),
                limit: 2,
                ..Default::default()
            }),
        ];
        Op::Txn(TxnRequest {
            compare,
            success,
            failure,
        })
    }

    fn lease_grant<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Op {
        let id = self.next_lease_id();
        self.leases.push(id);
        if self.leases.len() > LEASES_REMEMBERED_MAX {
            self.leases.remove(0);
        }
        let (low, high) = self.lease_ttl_s;
        Op::LeaseGrant {
            id,
            ttl_s: rng.gen_range(low.min(high)..=high.max(low)),
        }
    }

    fn known_lease<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<LeaseId> {
        if self.leases.is_empty() {
            None
        } else {
            Some(self.leases[rng.gen_range(0..self.leases.len())])
        }
    }

    fn revision_guess(&self) -> Revision {
        if self.revision_seen > 1 {
            self.revision_seen
        } else {
            // Without feedback: each op is a write with some probability; overshooting only
            // yields FutureRevision answers, which are worth testing too.
            (self.ops_generated / 2 + 1) as Revision
        }
    }

    /// A revision a little in the past: historic reads and compactions aim here.
    fn past_revision<R: Rng + ?Sized>(&self, rng: &mut R) -> Revision {
        let top = self.revision_guess().max(1);
        rng.gen_range((top - 10).max(1)..=top)
    }
}

fn header_revision(response: &Response) -> Revision {
    match response {
        Response::Put(r) => r.header.revision,
        Response::Range(r) => r.header.revision,
        Response::DeleteRange(r) => r.header.revision,
        Response::Txn(r) => r.header.revision,
        Response::LeaseGrant { header, .. }
        | Response::LeaseRevoke { header }
        | Response::LeaseKeepAlive { header, .. }
        | Response::LeaseTimeToLive { header, .. }
        | Response::Compact { header } => header.revision,
    }
}

/// Convenience for callers holding one generator: `gen.next_op(rng, keys)`.
pub fn random_op<R: Rng + ?Sized>(rng: &mut R, keys: &[&str], gen: &mut OpGen) -> Op {
    gen.next_op(rng, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::MvccModel;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn op_kind(op: &Op) -> &'static str {
        match op {
            Op::Put(_) => "put",
            Op::Range(_) => "range",
            Op::DeleteRange(_) => "delete",
            Op::Txn(_) => "txn",
            Op::LeaseGrant { .. } => "grant",
            Op::LeaseRevoke { .. } => "revoke",
            Op::LeaseKeepAlive { .. } => "keepalive",
            Op::LeaseTimeToLive { .. } => "ttl",
            Op::LeaseExpire { .. } => "expire",
            Op::Compact { .. } => "compact",
        }
    }

    #[test]
    fn generated_ops_are_mostly_accepted_and_cover_every_kind() {
        let mut rng = SmallRng::seed_from_u64(7);
        let keys = ["a", "b", "c", "d/1", "d/2"];
        let mut model = MvccModel::new();
        let mut gens: Vec<OpGen> = (1..=4).map(OpGen::new).collect();
        let mut errors = 0;
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..4000 {
            let gen = &mut gens[i % 4];
            let op = gen.next_op(&mut rng, &keys);
            let ret = model.apply(&op);
            gen.observe(&op, &ret);
            kinds.insert(op_kind(&op));
            if matches!(ret, Ret::Err(_)) {
                errors += 1;
            }
            if let (Op::Txn(_), Ret::Err(e)) = (&op, &ret) {
                assert_ne!(
                    *e,
                    crate::mvcc::EtcdError::DuplicateKey,
                    "txns never repeat a key"
                );
            }
        }
        model.check_invariants().unwrap();
        assert_eq!(kinds.len(), 9, "every Op kind but LeaseExpire");
        assert!(
            errors < 800,
            "{errors} errors out of 4000: the mix should mostly succeed"
        );
        assert!(
            model.revision() > 1000,
            "writes dominate: revision {}",
            model.revision()
        );
    }

    #[test]
    fn values_and_lease_ids_are_unique_across_tags() {
        let mut a = OpGen::new(1);
        let mut b = OpGen::new(2);
        let values: std::collections::BTreeSet<String> = (0..100)
            .flat_map(|_| [a.next_value(), b.next_value()])
            .collect();
        assert_eq!(values.len(), 200);
        let ids: std::collections::BTreeSet<LeaseId> = (0..100)
            .flat_map(|_| [a.next_lease_id(), b.next_lease_id()])
            .collect();
        assert_eq!(ids.len(), 200);
        assert!(!ids.contains(&0));
    }
}
