//! The lessor seen in the middle of a write.
//!
//! etcd 3.4 changes a lease's keys one at a time while a write applies: `storeTxnWrite.put` and
//! `delete` call `lessor.Attach` / `Detach` per key, and `lessor.Revoke` deletes a lease's keys one
//! by one before it drops the lease. `LeaseTimeToLive` reads the lessor under the lessor's own
//! lock, not the store's, so it may list the keys of a state no revision has: some of one write's
//! attachment changes made, the others not. [`LeaseTransition`] keeps, for the last write that
//! changed the state, what each lease it changed by more than one key (or removed) held before,
//! so that such an answer can be linearized right after that write
//! ([`LeaseTransition::admits`]).
//!
//! A write changing one key of a lease has no such middle (the lease's keys are either before or
//! after), so it records nothing for that lease; a write recording nothing leaves no transition.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::fingerprint_of;
use crate::mvcc::lease::{Lease, Leases};
use crate::mvcc::types::LeaseId;

const FACT_TRANSITION: u8 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeaseTransition {
    /// The leases the write changed by two keys or more, or removed holding keys, as they were
    /// before it, by id.
    before: Vec<(LeaseId, Lease)>,
    /// Sum of one fact per entry: part of the model's fingerprint (two states that differ only
    /// here judge time-to-live answers differently).
    fingerprint: u128,
}

impl LeaseTransition {
    /// What a write that turned `before` into `after` leaves, or `None` if no lease changed in a
    /// way that has a middle.
    pub(crate) fn between(before: &Leases, after: &Leases) -> Option<Arc<LeaseTransition>> {
        let changed: Vec<(LeaseId, Lease)> = before
            .iter()
            .filter(|(id, lease)| match after.get(**id) {
                None => !lease.keys.is_empty(),
                Some(now) => {
                    now.keys != lease.keys
                        && lease
                            .keys
                            .clone()
                            .symmetric_difference(now.keys.clone())
                            .len()
                            >= 2
                }
            })
            .map(|(id, lease)| (*id, lease.clone()))
            .collect();
        if changed.is_empty() {
            return None;
        }
        let fingerprint = changed.iter().fold(0u128, |sum, (id, lease)| {
            let keys: Vec<&str> = lease.keys.iter().map(|key| &**key).collect();
            sum.wrapping_add(fingerprint_of(&(FACT_TRANSITION, id, lease.ttl_s, keys)))
        });
        Some(Arc::new(LeaseTransition {
            before: changed,
            fingerprint,
        }))
    }

    pub(crate) fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    /// Whether a time-to-live of `id` that found the lease with `granted_ttl_s` and listed
    /// `listed` (empty unless keys were asked for) read the lessor during this write, `after` being
    /// the lease as the write left it (`None`: removed). In the middle, the lease still exists,
    /// lists every key it held both before and after, and only keys it held before or after.
    pub(crate) fn admits(
        &self,
        id: LeaseId,
        after: Option<&Lease>,
        granted_ttl_s: i64,
        keys_asked: bool,
        listed: &[String],
    ) -> bool {
        let Some((_, before)) = self.before.iter().find(|(lease, _)| *lease == id) else {
            return false;
        };
        if granted_ttl_s != before.ttl_s {
            return false;
        }
        if !keys_asked {
            return listed.is_empty();
        }
        let listed_set: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        if listed_set.len() != listed.len() {
            return false;
        }
        let held_after = |key: &str| after.is_some_and(|lease| lease.keys.contains(key));
        let held_before = |key: &str| before.keys.contains(key);
        listed_set
            .iter()
            .all(|key| held_before(key) || held_after(key))
            && before
                .keys
                .iter()
                .filter(|key| held_after(key))
                .all(|key| listed_set.contains(&**key))
    }
}
