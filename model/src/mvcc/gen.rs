//! The operation drawer: random etcd operations from a weighted mix, one [`OpDrawer`] per client.
//! The simulator's and live mode's workload clients (sim/src/workload.rs, src/live/client.rs),
//! the conformance test, the checker's generated histories and the model's own tests all draw
//! through it.
//!
//! A drawer takes its RNG and the highest revision any client has seen as parameters (the
//! simulation passes madsim's seeded RNG, live mode a seeded `StdRng`), so what it draws depends
//! only on them, its [`DrawKnobs`] and what it learned from its own answers
//! ([`OpDrawer::observe`]: the mod_revisions its compare-and-swap txns guess, the leases it holds,
//! the revisions its historic reads and compactions aim below).
//!
//! Every write is identifiable: put values are `c<index>-<counter>` and lease ids are
//! `(index + 1) * 10^9 + counter`, unique in a run as long as indices are, so a checker can tell
//! which write a read saw even when the write's own outcome is unknown.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::mvcc::types::{
    prefix_end, Compare, CompareResult, CompareTarget, DeleteRangeRequest, EtcdError, LeaseId, Op,
    PutRequest, RangeRequest, RequestOp, Response, ResponseOp, Ret, Revision, TxnRequest, FROM_KEY,
};

/// The kinds of operation a drawer draws; [`OpKind::name`] is the scenario files' name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Put,
    Get,
    /// A prefix range, sometimes limited, counted or keys only.
    GetPrefix,
    /// A key or prefix at a past revision.
    GetHistoric,
    GetSerializable,
    /// A key, sometimes a prefix.
    Delete,
    /// `txn(create_revision(k) == 0 ? put k : get k)`: the lock / election recipe's first step.
    TxnCreate,
    /// `txn(mod_revision(k) == last seen ? put k : get k)`: optimistic concurrency (etcd's STM).
    TxnCas,
    /// Several keys: compare one, write two and delete a third, or read a prefix.
    TxnMulti,
    LeaseGrant,
    /// A put under a lease this client holds (a grant if it holds none; likewise below).
    LeasePut,
    LeaseKeepalive,
    LeaseRevoke,
    LeaseTtl,
    Compact,
}

impl OpKind {
    pub const ALL: [OpKind; 15] = [
        OpKind::Put,
        OpKind::Get,
        OpKind::GetPrefix,
        OpKind::GetHistoric,
        OpKind::GetSerializable,
        OpKind::Delete,
        OpKind::TxnCreate,
        OpKind::TxnCas,
        OpKind::TxnMulti,
        OpKind::LeaseGrant,
        OpKind::LeasePut,
        OpKind::LeaseKeepalive,
        OpKind::LeaseRevoke,
        OpKind::LeaseTtl,
        OpKind::Compact,
    ];

    /// The name in scenario files (`[workload.mix]`) and run summaries.
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::GetPrefix => "get_prefix",
            OpKind::GetHistoric => "get_historic",
            OpKind::GetSerializable => "get_serializable",
            OpKind::Delete => "delete",
            OpKind::TxnCreate => "txn_create",
            OpKind::TxnCas => "txn_cas",
            OpKind::TxnMulti => "txn_multi",
            OpKind::LeaseGrant => "lease_grant",
            OpKind::LeasePut => "lease_put",
            OpKind::LeaseKeepalive => "lease_keepalive",
            OpKind::LeaseRevoke => "lease_revoke",
            OpKind::LeaseTtl => "lease_ttl",
            OpKind::Compact => "compact",
        }
    }
}

impl OpKind {
    /// The kind of a recorded operation, in this vocabulary (the scenario mix's): the one name an
    /// operation's kind has in run statistics, live reasons and the report. Read from the
    /// operation itself, so it also names what recipes and the conformance script ask: a txn
    /// comparing one key's create revision is `txn_create`, one comparing its mod revision
    /// `txn_cas`, any other `txn_multi`. `None` for the checker's synthetic lease expiry, which
    /// no client asks ([`kind_name`] names it).
    pub fn of(op: &Op) -> Option<OpKind> {
        Some(match op {
            Op::Put(put) if put.lease != 0 => OpKind::LeasePut,
            Op::Put(_) => OpKind::Put,
            Op::Range(range) if range.serializable => OpKind::GetSerializable,
            Op::Range(range) if range.revision != 0 => OpKind::GetHistoric,
            Op::Range(range) if !range.range_end.is_empty() => OpKind::GetPrefix,
            Op::Range(_) => OpKind::Get,
            Op::DeleteRange(_) => OpKind::Delete,
            Op::Txn(txn) => match txn.compare.as_slice() {
                [only] if matches!(only.target, CompareTarget::CreateRevision(_)) => {
                    OpKind::TxnCreate
                }
                [only] if matches!(only.target, CompareTarget::ModRevision(_)) => OpKind::TxnCas,
                _ => OpKind::TxnMulti,
            },
            Op::LeaseGrant { .. } => OpKind::LeaseGrant,
            Op::LeaseRevoke { .. } => OpKind::LeaseRevoke,
            Op::LeaseKeepAlive { .. } => OpKind::LeaseKeepalive,
            Op::LeaseTimeToLive { .. } => OpKind::LeaseTtl,
            Op::Compact { .. } => OpKind::Compact,
            Op::LeaseExpire { .. } => return None,
        })
    }
}

/// The name of the synthetic lease expiry's kind (see [`OpKind::of`]).
pub const LEASE_EXPIRE: &str = "lease_expire";

/// The name of `op`'s kind: [`OpKind::of`]'s name, or [`LEASE_EXPIRE`].
pub fn kind_name(op: &Op) -> &'static str {
    OpKind::of(op).map_or(LEASE_EXPIRE, OpKind::name)
}

/// Every value [`kind_name`] can return, in [`OpKind::ALL`] order with [`LEASE_EXPIRE`] last.
pub const KIND_NAMES: [&str; OpKind::ALL.len() + 1] = {
    let mut names = [LEASE_EXPIRE; OpKind::ALL.len() + 1];
    let mut index = 0;
    while index < OpKind::ALL.len() {
        names[index] = OpKind::ALL[index].name();
        index += 1;
    }
    names
};

/// Relative weights of the operation kinds; 0 disables a kind. The field names are the
/// [`OpKind`] names, so a scenario's `[workload.mix]` table reads straight into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpMix {
    pub put: u32,
    pub get: u32,
    pub get_prefix: u32,
    pub get_historic: u32,
    pub get_serializable: u32,
    pub delete: u32,
    pub txn_create: u32,
    pub txn_cas: u32,
    pub txn_multi: u32,
    pub lease_grant: u32,
    pub lease_put: u32,
    pub lease_keepalive: u32,
    pub lease_revoke: u32,
    pub lease_ttl: u32,
    pub compact: u32,
}

impl Default for OpMix {
    fn default() -> Self {
        Self {
            put: 20,
            get: 15,
            get_prefix: 6,
            get_historic: 4,
            get_serializable: 4,
            delete: 4,
            txn_create: 4,
            txn_cas: 6,
            txn_multi: 2,
            lease_grant: 2,
            lease_put: 3,
            lease_keepalive: 3,
            lease_revoke: 1,
            lease_ttl: 1,
            compact: 1,
        }
    }
}

impl OpMix {
    /// Only puts, gets and deletes: a plain register-per-key workload.
    pub fn kv_only() -> Self {
        let mut mix = OpMix::none();
        (mix.put, mix.get, mix.delete) = (50, 40, 10);
        mix
    }

    /// Every weight 0.
    pub fn none() -> Self {
        let mut mix = OpMix::default();
        for kind in OpKind::ALL {
            *mix.weight_mut(kind) = 0;
        }
        mix
    }

    /// `(kind, weight)` in [`OpKind::ALL`]'s order; the drawer draws from it.
    pub fn weights(&self) -> [(OpKind, u32); 15] {
        [
            (OpKind::Put, self.put),
            (OpKind::Get, self.get),
            (OpKind::GetPrefix, self.get_prefix),
            (OpKind::GetHistoric, self.get_historic),
            (OpKind::GetSerializable, self.get_serializable),
            (OpKind::Delete, self.delete),
            (OpKind::TxnCreate, self.txn_create),
            (OpKind::TxnCas, self.txn_cas),
            (OpKind::TxnMulti, self.txn_multi),
            (OpKind::LeaseGrant, self.lease_grant),
            (OpKind::LeasePut, self.lease_put),
            (OpKind::LeaseKeepalive, self.lease_keepalive),
            (OpKind::LeaseRevoke, self.lease_revoke),
            (OpKind::LeaseTtl, self.lease_ttl),
            (OpKind::Compact, self.compact),
        ]
    }

    pub fn weight_mut(&mut self, kind: OpKind) -> &mut u32 {
        match kind {
            OpKind::Put => &mut self.put,
            OpKind::Get => &mut self.get,
            OpKind::GetPrefix => &mut self.get_prefix,
            OpKind::GetHistoric => &mut self.get_historic,
            OpKind::GetSerializable => &mut self.get_serializable,
            OpKind::Delete => &mut self.delete,
            OpKind::TxnCreate => &mut self.txn_create,
            OpKind::TxnCas => &mut self.txn_cas,
            OpKind::TxnMulti => &mut self.txn_multi,
            OpKind::LeaseGrant => &mut self.lease_grant,
            OpKind::LeasePut => &mut self.lease_put,
            OpKind::LeaseKeepalive => &mut self.lease_keepalive,
            OpKind::LeaseRevoke => &mut self.lease_revoke,
            OpKind::LeaseTtl => &mut self.lease_ttl,
            OpKind::Compact => &mut self.compact,
        }
    }

    /// A kind drawn by weight, `None` if every weight is 0.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<OpKind> {
        let weights = self.weights();
        let total: u64 = weights.iter().map(|(_, weight)| u64::from(*weight)).sum();
        if total == 0 {
            return None;
        }
        let mut pick = rng.gen_range(0..total);
        for (kind, weight) in weights {
            if pick < u64::from(weight) {
                return Some(kind);
            }
            pick -= u64::from(weight);
        }
        unreachable!("pick < total")
    }
}

/// What a drawer draws over.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawKnobs {
    pub mix: OpMix,
    /// The keys (not empty). Prefixes are a key without its last character, or its first
    /// character alone; an empty prefix is every key.
    pub keys: Vec<String>,
    /// TTL of the leases the drawer grants.
    pub lease_ttl_s: i64,
    /// Historic reads go back uniformly up to this many revisions from the last one seen.
    pub historic_depth_revisions: i64,
    /// Compactions target a revision this many revisions behind the last one seen.
    pub compact_depth_revisions: i64,
}

impl DrawKnobs {
    /// The default mix over `keys`.
    pub fn over(keys: &[&str]) -> DrawKnobs {
        DrawKnobs {
            mix: OpMix::default(),
            keys: keys.iter().map(|key| key.to_string()).collect(),
            lease_ttl_s: 3,
            historic_depth_revisions: 10,
            compact_depth_revisions: 20,
        }
    }

    pub fn with_mix(mut self, mix: OpMix) -> DrawKnobs {
        self.mix = mix;
        self
    }
}

/// A client keeps at most this many of its leases in play; older ones are abandoned and expire.
const LEASES_KEPT_MAX: usize = 4;

/// One client's operation drawer (see the module doc).
#[derive(Clone, Debug)]
pub struct OpDrawer {
    knobs: DrawKnobs,
    index: usize,
    counter: u64,
    /// The highest header revision this drawer's own answers showed.
    revision_seen: Revision,
    /// Last mod_revision this client saw per key: the guess its compare-and-swap txns use.
    mod_revisions: BTreeMap<String, Revision>,
    /// Leases this client granted (or may have: a grant with unknown outcome counts).
    leases: Vec<LeaseId>,
}

impl OpDrawer {
    /// The drawer of client `index` (the index makes values and lease ids unique in a run).
    ///
    /// # Panics
    /// If `knobs.keys` is empty.
    pub fn new(index: usize, knobs: DrawKnobs) -> OpDrawer {
        assert!(!knobs.keys.is_empty(), "an operation drawer needs keys");
        OpDrawer {
            knobs,
            index,
            counter: 0,
            revision_seen: 1,
            mod_revisions: BTreeMap::new(),
            leases: Vec::new(),
        }
    }

    pub fn knobs(&self) -> &DrawKnobs {
        &self.knobs
    }

    /// Draws the next operation: a kind from the mix, then the operation. `revision_seen` is the
    /// highest revision any client has seen (0 when only this drawer's own answers count). A mix
    /// of zeros draws puts.
    pub fn next<R: Rng + ?Sized>(&mut self, rng: &mut R, revision_seen: Revision) -> Op {
        let kind = self.knobs.mix.draw(rng).unwrap_or(OpKind::Put);
        self.draw(kind, rng, revision_seen)
    }

    /// A fresh value, unique across drawers with distinct indices.
    pub fn unique_value(&mut self) -> String {
        self.counter += 1;
        format!("c{}-{}", self.index, self.counter)
    }

    /// A fresh lease id, unique across drawers with distinct indices, never 0.
    pub fn lease_id_new(&mut self) -> LeaseId {
        self.counter += 1;
        (self.index as i64 + 1) * 1_000_000_000 + self.counter as i64
    }

    fn key_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        rng.gen_range(0..self.knobs.keys.len())
    }

    fn random_key<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        self.knobs.keys[self.key_index(rng)].clone()
    }

    /// A prefix range `(key, range_end)`: a key without its last character, or (a fifth of the
    /// time) its first character; every key if that leaves nothing.
    fn random_prefix<R: Rng + ?Sized>(&self, rng: &mut R) -> (String, String) {
        let key = self.random_key(rng);
        let chars = if rng.gen_bool(0.2) {
            1
        } else {
            key.chars().count().saturating_sub(1)
        };
        let prefix: String = key.chars().take(chars).collect();
        if prefix.is_empty() {
            return (FROM_KEY.to_string(), FROM_KEY.to_string());
        }
        let end = prefix_end(&prefix);
        (prefix, end)
    }

    fn put<R: Rng + ?Sized>(&mut self, key: String, lease: LeaseId, rng: &mut R) -> PutRequest {
        let value = self.unique_value();
        PutRequest {
            key,
            value,
            lease,
            prev_kv: rng.gen_bool(0.3),
            ..Default::default()
        }
    }

    fn lease<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<LeaseId> {
        if self.leases.is_empty() {
            None
        } else {
            Some(self.leases[rng.gen_range(0..self.leases.len())])
        }
    }

    /// Draws one operation of `kind`; `revision_seen` as for [`OpDrawer::next`].
    pub fn draw<R: Rng + ?Sized>(
        &mut self,
        kind: OpKind,
        rng: &mut R,
        revision_seen: Revision,
    ) -> Op {
        let revision_seen = revision_seen.max(self.revision_seen);
        match kind {
            OpKind::Put => {
                let key = self.random_key(rng);
                Op::Put(self.put(key, 0, rng))
            }
            OpKind::Get => Op::Range(RangeRequest {
                key: self.random_key(rng),
                ..Default::default()
            }),
            OpKind::GetSerializable => Op::Range(RangeRequest {
                key: self.random_key(rng),
                serializable: true,
                ..Default::default()
            }),
            OpKind::GetPrefix => {
                let (key, range_end) = self.random_prefix(rng);
                Op::Range(RangeRequest {
                    range_end,
                    key,
                    limit: if rng.gen_bool(0.3) {
                        rng.gen_range(1..=3)
                    } else {
                        0
                    },
                    keys_only: rng.gen_bool(0.1),
                    count_only: rng.gen_bool(0.1),
                    ..Default::default()
                })
            }
            OpKind::GetHistoric => {
                let latest = revision_seen.max(1);
                let revision =
                    (latest - rng.gen_range(0..=self.knobs.historic_depth_revisions)).max(1);
                let (key, range_end) = if rng.gen_bool(0.5) {
                    (self.random_key(rng), String::new())
                } else {
                    self.random_prefix(rng)
                };
                Op::Range(RangeRequest {
                    key,
                    range_end,
                    revision,
                    ..Default::default()
                })
            }
            OpKind::Delete => {
                if rng.gen_bool(0.2) {
                    let (key, range_end) = self.random_prefix(rng);
                    Op::DeleteRange(DeleteRangeRequest {
                        range_end,
                        key,
                        prev_kv: rng.gen_bool(0.5),
                    })
                } else {
                    Op::DeleteRange(DeleteRangeRequest {
                        key: self.random_key(rng),
                        prev_kv: rng.gen_bool(0.5),
                        ..Default::default()
                    })
                }
            }
            OpKind::TxnCreate => {
                let key = self.random_key(rng);
                let put = self.put(key.clone(), 0, rng);
                Op::Txn(put_if(&key, CompareTarget::CreateRevision(0), put))
            }
            OpKind::TxnCas => {
                let key = self.random_key(rng);
                let expected = self.mod_revisions.get(&key).copied().unwrap_or(0);
                let put = self.put(key.clone(), 0, rng);
                Op::Txn(put_if(&key, CompareTarget::ModRevision(expected), put))
            }
            OpKind::TxnMulti => self.txn_multi(rng),
            OpKind::LeaseGrant => self.lease_grant(),
            OpKind::LeasePut => match self.lease(rng) {
                Some(lease) => {
                    let key = self.random_key(rng);
                    Op::Put(self.put(key, lease, rng))
                }
                None => self.lease_grant(),
            },
            OpKind::LeaseKeepalive => match self.lease(rng) {
                Some(id) => Op::LeaseKeepAlive { id },
                None => self.lease_grant(),
            },
            OpKind::LeaseRevoke => match self.lease(rng) {
                Some(id) => {
                    self.leases.retain(|lease| *lease != id);
                    Op::LeaseRevoke { id }
                }
                None => self.lease_grant(),
            },
            OpKind::LeaseTtl => match self.lease(rng) {
                Some(id) => Op::LeaseTimeToLive {
                    id,
                    keys: rng.gen_bool(0.5),
                },
                None => self.lease_grant(),
            },
            OpKind::Compact => {
                let revision = revision_seen - self.knobs.compact_depth_revisions;
                if revision > 1 {
                    Op::Compact {
                        revision,
                        physical: rng.gen_bool(0.5),
                    }
                } else {
                    Op::Range(RangeRequest {
                        key: self.random_key(rng),
                        ..Default::default()
                    })
                }
            }
        }
    }

    fn lease_grant(&mut self) -> Op {
        let id = self.lease_id_new();
        self.leases.push(id);
        if self.leases.len() > LEASES_KEPT_MAX {
            // Abandoned, not revoked: it is left to expire on the lessor's clock.
            self.leases.remove(0);
        }
        Op::LeaseGrant {
            id,
            ttl_s: self.knobs.lease_ttl_s,
        }
    }

    /// A multi-key transaction: compare one key's value or version, then write two keys and
    /// delete a third atomically; otherwise read a prefix. Never one key twice (etcd's
    /// duplicate-key rule).
    fn txn_multi<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Op {
        let keys = self.knobs.keys.len();
        let first = rng.gen_range(0..keys);
        let second = (first + 1 + rng.gen_range(0..keys.max(2) - 1)) % keys;
        let compare_key = self.random_key(rng);
        let target = if rng.gen_bool(0.5) {
            CompareTarget::Version(rng.gen_range(0..3))
        } else {
            CompareTarget::Value(format!("c{}-{}", rng.gen_range(0..8), rng.gen_range(1..20)))
        };
        let result = [
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Less,
            CompareResult::Greater,
        ][rng.gen_range(0..4)];
        let key = |index: usize| self.knobs.keys[index].clone();
        let (first_key, second_key) = (key(first), key(second));
        let mut success = vec![RequestOp::Put(self.put(first_key, 0, rng))];
        if second != first {
            success.push(RequestOp::Put(self.put(second_key, 0, rng)));
        }
        let deleted = rng.gen_range(0..keys);
        if deleted != first && deleted != second {
            success.push(RequestOp::DeleteRange(DeleteRangeRequest {
                key: self.knobs.keys[deleted].clone(),
                ..Default::default()
            }));
        }
        let (key, range_end) = self.random_prefix(rng);
        Op::Txn(TxnRequest {
            compare: vec![Compare {
                key: compare_key,
                result,
                target,
            }],
            success,
            failure: vec![RequestOp::Range(RangeRequest {
                range_end,
                key,
                ..Default::default()
            })],
        })
    }

    /// Learns from an answer to one of this drawer's operations: the mod_revisions later
    /// compare-and-swap txns guess, and which leases are gone. Returns the answer's header
    /// revision (for the caller's highest revision seen by any client).
    pub fn observe(&mut self, op: &Op, ret: &Ret) -> Option<Revision> {
        match ret {
            Ret::Ok(response) => {
                let revision = header_revision(response);
                self.revision_seen = self.revision_seen.max(revision);
                match (op, response) {
                    (Op::Put(put), Response::Put(reply)) => {
                        self.mod_revisions
                            .insert(put.key.clone(), reply.header.revision);
                    }
                    (Op::Range(range), Response::Range(reply)) if range.revision == 0 => {
                        for kv in &reply.kvs {
                            self.mod_revisions.insert(kv.key.clone(), kv.mod_revision);
                        }
                    }
                    (Op::Txn(_), Response::Txn(reply)) => {
                        for response in &reply.responses {
                            if let ResponseOp::Range(range) = response {
                                for kv in &range.kvs {
                                    self.mod_revisions.insert(kv.key.clone(), kv.mod_revision);
                                }
                            }
                        }
                    }
                    _ => {}
                }
                Some(revision)
            }
            Ret::Err(EtcdError::LeaseNotFound) => {
                let lease = match op {
                    Op::Put(put) => put.lease,
                    Op::LeaseKeepAlive { id } | Op::LeaseTimeToLive { id, .. } => *id,
                    _ => 0,
                };
                self.leases.retain(|known| *known != lease);
                None
            }
            Ret::Err(_) => None,
        }
    }
}

/// `txn(compare(key) == target ? put : get key)`.
fn put_if(key: &str, target: CompareTarget, put: PutRequest) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            key: key.to_string(),
            result: CompareResult::Equal,
            target,
        }],
        success: vec![RequestOp::Put(put)],
        failure: vec![RequestOp::Range(RangeRequest {
            key: key.to_string(),
            ..Default::default()
        })],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::MvccModel;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn drawn_ops_are_mostly_accepted_and_cover_every_kind() {
        let mut rng = SmallRng::seed_from_u64(7);
        let knobs = DrawKnobs::over(&["a", "b", "c", "d/1", "d/2"]);
        let mut model = MvccModel::new();
        let mut drawers: Vec<OpDrawer> = (0..4).map(|i| OpDrawer::new(i, knobs.clone())).collect();
        let mut errors = 0;
        let mut kinds = std::collections::BTreeSet::new();
        let mut revision_seen = 0;
        for i in 0..4000 {
            let drawer = &mut drawers[i % 4];
            let op = drawer.next(&mut rng, revision_seen);
            let ret = model.apply(&op);
            if let Some(revision) = drawer.observe(&op, &ret) {
                revision_seen = revision_seen.max(revision);
            }
            kinds.insert(kind_name(&op));
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
        // Every kind drawn is named back as itself by OpKind::of (kind_name of what it drew).
        let every: std::collections::BTreeSet<&str> =
            OpKind::ALL.iter().map(|kind| kind.name()).collect();
        assert_eq!(kinds, every, "every OpKind drawn, and only those");
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
    fn every_kind_drawn_alone_is_classified_as_itself() {
        for kind in OpKind::ALL {
            let mut knobs = DrawKnobs::over(&["a", "b", "c", "d/1", "d/2"]);
            knobs.mix = OpMix::none();
            *knobs.mix.weight_mut(kind) = 1;
            let mut rng = SmallRng::seed_from_u64(11);
            let mut model = MvccModel::new();
            let mut drawer = OpDrawer::new(0, knobs);
            let mut revision_seen = 0;
            let mut as_itself = 0;
            for _ in 0..200 {
                let op = drawer.next(&mut rng, revision_seen);
                let ret = model.apply(&op);
                if let Some(revision) = drawer.observe(&op, &ret) {
                    revision_seen = revision_seen.max(revision);
                }
                let classified = OpKind::of(&op).expect("a drawn op is not an expiry");
                // The drawer's fallbacks: a lease kind with no lease held draws its grant, a
                // compaction with nothing to compact a read.
                let fallback = matches!(
                    (kind, classified),
                    (_, OpKind::LeaseGrant) | (OpKind::Compact, OpKind::Get)
                );
                assert!(classified == kind || fallback, "{kind:?} drew {op:?}");
                as_itself += usize::from(classified == kind);
            }
            // Alone, a compaction has no writes to compact (the mixed test above draws it).
            if kind != OpKind::Compact {
                assert!(
                    as_itself >= 20,
                    "{kind:?}: only {as_itself} of 200 drawn as itself"
                );
            }
        }
        assert_eq!(KIND_NAMES.last(), Some(&LEASE_EXPIRE));
        assert_eq!(KIND_NAMES.len(), OpKind::ALL.len() + 1);
    }

    #[test]
    fn values_and_lease_ids_are_unique_across_indices() {
        let knobs = DrawKnobs::over(&["a"]);
        let mut a = OpDrawer::new(1, knobs.clone());
        let mut b = OpDrawer::new(2, knobs);
        let values: std::collections::BTreeSet<String> = (0..100)
            .flat_map(|_| [a.unique_value(), b.unique_value()])
            .collect();
        assert_eq!(values.len(), 200);
        let ids: std::collections::BTreeSet<LeaseId> = (0..100)
            .flat_map(|_| [a.lease_id_new(), b.lease_id_new()])
            .collect();
        assert_eq!(ids.len(), 200);
        assert!(!ids.contains(&0));
    }

    #[test]
    fn a_mix_draws_only_its_kinds_and_names_round_trip() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mix = OpMix::kv_only();
        for _ in 0..200 {
            let kind = mix.draw(&mut rng).expect("positive weights");
            assert!(matches!(kind, OpKind::Put | OpKind::Get | OpKind::Delete));
        }
        assert_eq!(OpMix::none().draw(&mut rng), None);
        for kind in OpKind::ALL {
            let name = serde_json::to_string(&kind).unwrap();
            assert_eq!(name, format!("\"{}\"", kind.name()));
        }
    }
}
