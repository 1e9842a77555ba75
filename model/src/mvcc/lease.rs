//! The lessor's table: lease id → granted TTL and attached keys.
//!
//! Attachments are derived state: a key is attached to lease `L` iff its current version has
//! `lease == L` (etcd attaches on put, detaches on re-put with another lease or none, on delete,
//! and deletes the key when `L` is revoked). So the fingerprint covers only (id, granted TTL); the
//! key records already cover attachments. [`super::MvccModel::check_invariants`] verifies the
//! derivation.

use std::fmt;
use std::sync::Arc;

use im::{OrdMap, OrdSet};

use crate::fingerprint_of;
use crate::mvcc::types::LeaseId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    /// What etcd granted: the requested TTL raised to the minimum TTL.
    pub ttl_s: i64,
    pub keys: OrdSet<Arc<str>>,
}

const FACT_LEASE: u8 = 2;

fn lease_fact(id: LeaseId, ttl_s: i64) -> u128 {
    fingerprint_of(&(FACT_LEASE, id, ttl_s))
}

#[derive(Clone, Default)]
pub(crate) struct Leases {
    map: OrdMap<LeaseId, Lease>,
    /// Wrapping sum of `lease_fact` over every lease.
    fingerprint: u128,
}

impl Leases {
    pub(crate) fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    pub(crate) fn get(&self, id: LeaseId) -> Option<&Lease> {
        self.map.get(&id)
    }

    pub(crate) fn contains(&self, id: LeaseId) -> bool {
        self.map.contains_key(&id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&LeaseId, &Lease)> {
        self.map.iter()
    }

    pub(crate) fn grant(&mut self, id: LeaseId, ttl_s: i64) {
        assert!(!self.map.contains_key(&id), "grant of an existing lease");
        self.fingerprint = self.fingerprint.wrapping_add(lease_fact(id, ttl_s));
        self.map.insert(
            id,
            Lease {
                ttl_s,
                keys: OrdSet::new(),
            },
        );
    }

    pub(crate) fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        let lease = self.map.remove(&id)?;
        self.fingerprint = self.fingerprint.wrapping_sub(lease_fact(id, lease.ttl_s));
        Some(lease)
    }

    /// No-op for lease 0 (no lease).
    pub(crate) fn attach(&mut self, id: LeaseId, key: &Arc<str>) {
        if id == 0 {
            return;
        }
        let lease = self.map.get_mut(&id);
        assert!(
            lease.is_some(),
            "attach to missing lease {id}: put must check it"
        );
        if let Some(lease) = lease {
            lease.keys.insert(key.clone());
        }
    }

    /// No-op for lease 0 (no lease).
    pub(crate) fn detach(&mut self, id: LeaseId, key: &str) {
        if id == 0 {
            return;
        }
        if let Some(lease) = self.map.get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    pub(crate) fn fingerprint_recomputed(&self) -> u128 {
        self.map.iter().fold(0u128, |sum, (id, lease)| {
            sum.wrapping_add(lease_fact(*id, lease.ttl_s))
        })
    }
}

impl fmt::Debug for Leases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (id, lease) in self.map.iter() {
            let keys: Vec<&str> = lease.keys.iter().map(|k| &**k).collect();
            map.entry(id, &format_args!("ttl {} s, keys {:?}", lease.ttl_s, keys));
        }
        map.finish()
    }
}
