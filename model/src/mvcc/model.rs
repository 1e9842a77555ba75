//! [`MvccModel`]: the state, its constructors and the operation dispatch; lease and compaction
//! operations live here too (the key-value and transaction operations are in `kv.rs` / `txn.rs`).

use std::fmt;
use std::sync::Arc;

use crate::fingerprint_of;
use crate::mvcc::lease::Leases;
use crate::mvcc::store::{Record, Store};
use crate::mvcc::types::{
    EtcdError, KeyValue, LeaseId, Op, Response, ResponseHeader, Ret, Revision,
};

/// etcd 3.4's minimum lease TTL with its default flags: `ceil(1.5 * election timeout)` =
/// `ceil(1.5 * 1000 ms)` = 2 s (verified on 3.4.23: a grant of TTL 1 returns TTL 2).
pub const ETCD_MIN_LEASE_TTL_S: i64 = 2;

/// The sequential etcd v3 store: revisions, every key's versions since the last compaction, and
/// the lessor's table. Cloning is O(1) (persistent maps), [`MvccModel::fingerprint`] is O(1)
/// (maintained incrementally on every mutation).
#[derive(Clone)]
pub struct MvccModel {
    /// etcd's current main revision: 1 on an empty store.
    pub(crate) revision: Revision,
    /// etcd's `compactMainRev`: -1 until the first compaction (verified on 3.4.23: `compact 0`
    /// on a fresh store succeeds, a second `compact 0` returns "required revision has been compacted").
    pub(crate) compacted: Revision,
    pub(crate) store: Store,
    pub(crate) leases: Leases,
    /// Configuration, not state: constant during a check.
    pub(crate) min_lease_ttl_s: i64,
}

impl Default for MvccModel {
    fn default() -> Self {
        Self::new()
    }
}

impl MvccModel {
    /// An empty etcd with default flags.
    pub fn new() -> Self {
        Self {
            revision: 1,
            compacted: -1,
            store: Store::default(),
            leases: Leases::default(),
            min_lease_ttl_s: ETCD_MIN_LEASE_TTL_S,
        }
    }

    /// A store whose lessor raises granted TTLs to `min_lease_ttl_s` (etcd derives it from
    /// `--election-timeout`; use 1 or less for a server that grants exactly what was asked).
    pub fn with_min_lease_ttl_s(mut self, min_lease_ttl_s: i64) -> Self {
        self.min_lease_ttl_s = min_lease_ttl_s;
        self
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// -1 until the first compaction.
    pub fn compacted_revision(&self) -> Revision {
        self.compacted
    }

    pub fn min_lease_ttl_s(&self) -> i64 {
        self.min_lease_ttl_s
    }

    /// The key's current version, as a range on it would return it.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.store
            .live(key)
            .map(|live| live.to_key_value(key, false))
    }

    /// Every existing key's current version, sorted by key.
    pub fn current_kvs(&self) -> Vec<KeyValue> {
        self.store
            .current()
            .map(|(k, live)| live.to_key_value(k, false))
            .collect()
    }

    /// Granted TTL of every lease, sorted by id.
    pub fn leases(&self) -> Vec<(LeaseId, i64)> {
        self.leases
            .iter()
            .map(|(id, lease)| (*id, lease.ttl_s))
            .collect()
    }

    /// Keys attached to `id`, sorted; empty if the lease does not exist.
    /// True if lease `id` exists and has no keys attached.
    pub fn lease_is_keyless(&self, id: LeaseId) -> bool {
        self.leases
            .get(id)
            .is_some_and(|lease| lease.keys.is_empty())
    }

    pub fn lease_keys(&self, id: LeaseId) -> Vec<String> {
        self.leases
            .get(id)
            .map(|l| l.keys.iter().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    /// O(1): the incremental fact sums plus the scalars. Two states with the same facts — the same
    /// (key, record) pairs, (lease, granted TTL) pairs, revision and compacted revision — behave
    /// identically (attachments are derived from the records, see `lease.rs`). A sum of 128-bit
    /// SipHash values of distinct tagged facts collides for two different fact sets with
    /// probability about 2^-128 (AdHash, Bellare & Micciancio 1997, for non-adversarial inputs).
    pub fn fingerprint(&self) -> u128 {
        fingerprint_of(&(0u8, self.revision, self.compacted, self.min_lease_ttl_s))
            .wrapping_add(self.store.fingerprint())
            .wrapping_add(self.leases.fingerprint())
    }

    /// Applies `op` and returns etcd's answer. `LeaseExpire` answers like a revoke.
    pub fn apply(&mut self, op: &Op) -> Ret {
        let result = match op {
            Op::Put(p) => self.put(p).map(Response::Put),
            Op::Range(r) => self.range(r).map(Response::Range),
            Op::DeleteRange(d) => self.delete_range(d).map(Response::DeleteRange),
            Op::Txn(t) => self.txn(t).map(Response::Txn),
            Op::LeaseGrant { id, ttl_s } => self.lease_grant(*id, *ttl_s),
            Op::LeaseRevoke { id } | Op::LeaseExpire { id } => self.lease_revoke(*id),
            Op::LeaseKeepAlive { id } => self.lease_keep_alive(*id),
            Op::LeaseTimeToLive { id, keys } => Ok(self.lease_time_to_live(*id, *keys)),
            Op::Compact { revision, .. } => self.compact(*revision),
        };
        assert!(self.check_invariants_cheap());
        match result {
            Ok(response) => Ret::Ok(response),
            Err(error) => Ret::Err(error),
        }
    }

    pub(crate) fn header(&self) -> ResponseHeader {
        ResponseHeader {
            revision: self.revision,
        }
    }

    /// The revision the writes of a transaction that began at `begin` get: the first write bumps
    /// the store's revision, later ones reuse it (etcd: one main revision per write txn, distinct
    /// sub-revisions inside it).
    pub(crate) fn bump(&mut self, begin: Revision) -> Revision {
        assert!(self.revision == begin || self.revision == begin + 1);
        if self.revision == begin {
            self.revision += 1;
        }
        self.revision
    }

    /// Deletes `key` (which must exist) at the revision of the transaction begun at `begin`.
    pub(crate) fn delete_key(&mut self, key: &Arc<str>, lease: LeaseId, begin: Revision) {
        let revision = self.bump(begin);
        self.leases.detach(lease, key);
        self.store.write(
            key,
            Record::Tombstone {
                mod_revision: revision,
            },
        );
    }

    /// etcd `LeaseGrant`: the client picks the id; TTL raised to the minimum.
    fn lease_grant(&mut self, id: LeaseId, ttl_s: i64) -> Result<Response, EtcdError> {
        let id = if id == 0 { self.unused_lease_id() } else { id };
        if self.leases.contains(id) {
            return Err(EtcdError::LeaseExists);
        }
        let granted_ttl_s = ttl_s.max(self.min_lease_ttl_s);
        self.leases.grant(id, granted_ttl_s);
        Ok(Response::LeaseGrant {
            header: self.header(),
            id,
            ttl_s: granted_ttl_s,
        })
    }

    /// For a grant with id 0 etcd picks a fresh id the client cannot predict; `apply` picks the
    /// smallest unused positive one. Checking such grants uses the returned id instead.
    fn unused_lease_id(&self) -> LeaseId {
        let mut id = 1;
        while self.leases.contains(id) {
            id += 1;
        }
        id
    }

    /// etcd `LeaseRevoke` (and the lessor's expiry, which proposes the same): the attached keys
    /// are deleted in one write transaction, so at one revision, and only if there are any.
    fn lease_revoke(&mut self, id: LeaseId) -> Result<Response, EtcdError> {
        let lease = self.leases.remove(id).ok_or(EtcdError::LeaseNotFound)?;
        let begin = self.revision;
        for key in lease.keys.iter() {
            assert!(self.store.live(key).is_some_and(|l| l.lease == id));
            self.delete_key(key, id, begin);
        }
        Ok(Response::LeaseRevoke {
            header: self.header(),
        })
    }

    /// etcd's keep-alive stream answers TTL 0 for a missing lease; clientv3 turns that into
    /// `ErrLeaseNotFound`, which is what histories record (verified on 3.4.23 via the gateway).
    fn lease_keep_alive(&self, id: LeaseId) -> Result<Response, EtcdError> {
        let lease = self.leases.get(id).ok_or(EtcdError::LeaseNotFound)?;
        Ok(Response::LeaseKeepAlive {
            header: self.header(),
            id,
            ttl_s: lease.ttl_s,
        })
    }

    /// etcd answers a missing lease with TTL -1 and granted TTL 0, not an error (verified on
    /// 3.4.23). `apply` reports the full TTL as remaining; checking accepts other values.
    fn lease_time_to_live(&self, id: LeaseId, keys: bool) -> Response {
        match self.leases.get(id) {
            None => Response::LeaseTimeToLive {
                header: self.header(),
                id,
                ttl_s: -1,
                granted_ttl_s: 0,
                keys: Vec::new(),
            },
            Some(lease) => Response::LeaseTimeToLive {
                header: self.header(),
                id,
                ttl_s: lease.ttl_s,
                granted_ttl_s: lease.ttl_s,
                keys: if keys {
                    lease.keys.iter().map(|k| k.to_string()).collect()
                } else {
                    Vec::new()
                },
            },
        }
    }

    /// etcd `mvcc.store.Compact`: at or below the compacted revision → Compacted; above the
    /// current one → FutureRevision; the header carries the current revision (no bump).
    fn compact(&mut self, revision: Revision) -> Result<Response, EtcdError> {
        if revision <= self.compacted {
            return Err(EtcdError::Compacted);
        }
        if revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        self.compacted = revision;
        self.store.compact(revision);
        Ok(Response::Compact {
            header: self.header(),
        })
    }

    /// O(1) checks for debug builds.
    fn check_invariants_cheap(&self) -> bool {
        self.revision >= 1 && self.compacted <= self.revision
    }

    /// Full O(state) invariant check (tests): fingerprints match a recomputation, every current
    /// key's lease exists and lists it, every lease lists only keys whose current version names it.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.revision < 1 || self.compacted > self.revision {
            return Err(format!(
                "revision {} compacted {}",
                self.revision, self.compacted
            ));
        }
        if self.store.fingerprint() != self.store.fingerprint_recomputed() {
            return Err("store fingerprint drifted".into());
        }
        if self.leases.fingerprint() != self.leases.fingerprint_recomputed() {
            return Err("lease fingerprint drifted".into());
        }
        for (key, live) in self.store.current() {
            if live.mod_revision > self.revision {
                return Err(format!(
                    "{key} modified at {} > revision {}",
                    live.mod_revision, self.revision
                ));
            }
            if live.lease != 0
                && !self
                    .leases
                    .get(live.lease)
                    .is_some_and(|l| l.keys.contains(key))
            {
                return Err(format!(
                    "{key} names lease {} which does not list it",
                    live.lease
                ));
            }
        }
        for (id, lease) in self.leases.iter() {
            for key in lease.keys.iter() {
                if self.store.live(key).map(|l| l.lease) != Some(*id) {
                    return Err(format!(
                        "lease {id} lists {key} whose current version does not name it"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for MvccModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MvccModel")
            .field("revision", &self.revision)
            .field("compacted", &self.compacted)
            .field("kvs", &self.store)
            .field("leases", &self.leases)
            .finish()
    }
}
