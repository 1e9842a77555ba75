//! The store's lease table (the state half of etcd's lease/lessor.go): which leases exist, their
//! granted TTL, and which keys are attached. Expiry timing belongs to the node, which turns an expiry
//! into a LeaseRevoke through the log, as etcd's leader does.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ttl_s: i64,
    pub keys: BTreeSet<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(i64, Lease)>", into = "Vec<(i64, Lease)>")]
pub struct Lessor {
    leases: BTreeMap<i64, Lease>,
    /// key -> lease, etcd's itemMap.
    items: BTreeMap<Vec<u8>, i64>,
}

impl From<Vec<(i64, Lease)>> for Lessor {
    fn from(list: Vec<(i64, Lease)>) -> Self {
        let mut lessor = Lessor::default();
        for (id, lease) in list {
            for key in &lease.keys {
                lessor.items.insert(key.clone(), id);
            }
            lessor.leases.insert(id, lease);
        }
        lessor
    }
}

impl From<Lessor> for Vec<(i64, Lease)> {
    fn from(lessor: Lessor) -> Self {
        lessor.leases.into_iter().collect()
    }
}

impl Lessor {
    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Returns false if the id is taken.
    pub fn grant(&mut self, id: i64, ttl_s: i64) -> bool {
        if self.leases.contains_key(&id) {
            return false;
        }
        self.leases.insert(
            id,
            Lease {
                ttl_s,
                keys: BTreeSet::new(),
            },
        );
        true
    }

    /// Removes the lease; its keys must have been deleted (detached) already.
    pub fn remove(&mut self, id: i64) {
        let lease = self.leases.remove(&id).expect("revoking a missing lease");
        assert!(
            lease.keys.is_empty(),
            "lease {id} removed with attached keys"
        );
    }

    pub fn lease_of(&self, key: &[u8]) -> Option<i64> {
        self.items.get(key).copied()
    }

    pub fn attach(&mut self, id: i64, key: &[u8]) {
        let lease = self.leases.get_mut(&id).expect("attach to a missing lease");
        lease.keys.insert(key.to_vec());
        let previous = self.items.insert(key.to_vec(), id);
        assert!(previous.is_none(), "key attached twice");
    }

    pub fn detach(&mut self, key: &[u8]) {
        if let Some(id) = self.items.remove(key) {
            if let Some(lease) = self.leases.get_mut(&id) {
                lease.keys.remove(key);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&i64, &Lease)> {
        self.leases.iter()
    }
}
