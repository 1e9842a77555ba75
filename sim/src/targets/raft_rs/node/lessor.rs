//! The leader's lease clock, after etcd's `lease.lessor`: only the primary (the leader) tracks expiry;
//! keepalives refresh a deadline in memory (they do not go through Raft); an expired lease is revoked by
//! proposing `LeaseRevoke` through Raft, so every member deletes the attached keys at the same revision.
//! On promotion every deadline is refreshed to now + TTL + one election timeout (etcd's
//! `lessor.Promote(electionTimeout)`, called by its server on every new leader), so a lease never
//! expires because of time that passed under a previous leader, nor before a keep-alive that the
//! previous leader answered while it did not yet know it was deposed (a leader keeps answering
//! until check-quorum steps it down, up to two election timeouts after it lost its quorum, while
//! the new leader is elected no sooner than one election timeout after: the extension covers the
//! difference).
//!
//! Times are milliseconds on the node's own clock (simulated time + the node's clock skew).

use std::collections::BTreeMap;

/// After proposing a revoke, wait this long before proposing it again (the proposal may have been lost).
const REVOKE_RETRY_MS: i64 = 1_000;

#[derive(Debug, Default)]
pub struct Lessor {
    primary: bool,
    /// lease id -> (deadline_ms, granted ttl_s).
    deadlines: BTreeMap<i64, (i64, i64)>,
    /// lease id -> when its revoke was last proposed.
    revoking: BTreeMap<i64, i64>,
    /// Planted bug `lease_early_expiry`.
    early_expiry: bool,
    /// Planted bug `lease_late_expiry`.
    late_expiry: bool,
}

/// Why a keepalive did not renew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAliveRefused {
    /// No such lease (never granted, or its revoke was applied).
    NotFound,
    /// Past its deadline, revoke proposed but not applied yet.
    Expiring,
}

impl Lessor {
    pub fn new(early_expiry: bool, late_expiry: bool) -> Lessor {
        Lessor {
            early_expiry,
            late_expiry,
            ..Lessor::default()
        }
    }

    fn ttl_ms(&self, ttl_s: i64) -> i64 {
        let ttl_ms = ttl_s.saturating_mul(1_000);
        if self.early_expiry {
            ttl_ms / 2
        } else if self.late_expiry {
            ttl_ms.saturating_mul(3)
        } else {
            ttl_ms
        }
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Becoming leader: track every lease from now, each deadline extended by `extend_ms` (one
    /// election timeout; etcd's `Promote(extend)`). `leases` are (id, granted ttl_s) from the store.
    pub fn promote(&mut self, now_ms: i64, extend_ms: i64, leases: &[(i64, i64)]) {
        assert!(extend_ms >= 0, "a promotion cannot shorten leases");
        self.primary = true;
        self.revoking.clear();
        self.deadlines = leases
            .iter()
            .map(|&(id, ttl_s)| (id, (now_ms + extend_ms + self.ttl_ms(ttl_s), ttl_s)))
            .collect();
    }

    pub fn demote(&mut self) {
        self.primary = false;
        self.deadlines.clear();
        self.revoking.clear();
    }

    /// A `LeaseGrant` was applied.
    pub fn granted(&mut self, now_ms: i64, id: i64, ttl_s: i64) {
        if self.primary {
            self.deadlines
                .insert(id, (now_ms + self.ttl_ms(ttl_s), ttl_s));
        }
    }

    /// A `LeaseRevoke` was applied (by a client or by expiry).
    pub fn revoked(&mut self, id: i64) {
        self.deadlines.remove(&id);
        self.revoking.remove(&id);
    }

    /// A keepalive on the primary: refreshes the deadline and returns the granted TTL.
    /// `Err(KeepAliveRefused::NotFound)` if the lease is unknown; `Err(Expiring)` if its deadline
    /// passed but its revoke has not been applied yet. etcd's `lessor.Renew` waits for the revoke
    /// in that case before answering "not found": answering earlier would tell a client the lease
    /// is gone while its keys are still readable, which is not linearizable.
    pub fn keep_alive(&mut self, now_ms: i64, id: i64) -> Result<i64, KeepAliveRefused> {
        assert!(self.primary, "keepalive on a non-primary lessor");
        let ttl_ms = self
            .deadlines
            .get(&id)
            .map(|&(_, ttl_s)| self.ttl_ms(ttl_s))
            .ok_or(KeepAliveRefused::NotFound)?;
        let (deadline_ms, ttl_s) = self
            .deadlines
            .get_mut(&id)
            .ok_or(KeepAliveRefused::NotFound)?;
        if *deadline_ms <= now_ms {
            return Err(KeepAliveRefused::Expiring);
        }
        *deadline_ms = now_ms + ttl_ms;
        Ok(*ttl_s)
    }

    /// Remaining whole seconds (etcd truncates), if the primary tracks the lease.
    pub fn remaining_s(&self, now_ms: i64, id: i64) -> Option<i64> {
        let &(deadline_ms, _) = self.deadlines.get(&id)?;
        Some(((deadline_ms - now_ms).max(0)) / 1_000)
    }

    /// Leases whose revoke should be proposed now; marks them as being revoked.
    pub fn expired(&mut self, now_ms: i64) -> Vec<i64> {
        if !self.primary {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (&id, &(deadline_ms, _)) in &self.deadlines {
            let retry_due = self
                .revoking
                .get(&id)
                .is_none_or(|&at| now_ms - at >= REVOKE_RETRY_MS);
            if deadline_ms <= now_ms && retry_due {
                due.push(id);
            }
        }
        for id in &due {
            self.revoking.insert(*id, now_ms);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_extends_and_expiry_proposes_revoke_once_per_retry_window() {
        let mut l = Lessor::new(false, false);
        l.promote(0, 0, &[(7, 5)]);
        assert_eq!(l.keep_alive(4_000, 7), Ok(5));
        assert!(l.expired(8_999).is_empty());
        assert_eq!(l.expired(9_000), vec![7]);
        assert!(l.expired(9_500).is_empty());
        assert_eq!(l.expired(10_000), vec![7]);
        assert_eq!(
            l.keep_alive(10_000, 7),
            Err(KeepAliveRefused::Expiring),
            "an expired lease cannot be renewed, and is not reported gone before its revoke applies"
        );
        l.revoked(7);
        assert_eq!(l.keep_alive(10_000, 7), Err(KeepAliveRefused::NotFound));
        assert!(l.expired(20_000).is_empty());
    }

    #[test]
    fn promotion_refreshes_deadlines_and_followers_never_expire() {
        let mut l = Lessor::new(false, false);
        l.granted(0, 1, 2);
        assert!(l.expired(100_000).is_empty());
        l.promote(100_000, 0, &[(1, 2)]);
        assert_eq!(l.remaining_s(100_500, 1), Some(1));
        assert!(l.expired(101_999).is_empty());
        assert_eq!(l.expired(102_000), vec![1]);
        l.demote();
        assert!(l.expired(200_000).is_empty());
    }

    /// etcd's `lessor.Promote(extend)` (`lease/lessor.go`): a new leader's deadlines are now plus
    /// TTL plus one election timeout, so a keep-alive the deposed leader answered just before it
    /// stepped down still holds (recipes seed 1594 expired a lock's lease 0.3 s before such a keep-alive
    /// allowed, and the checker flagged it).
    #[test]
    fn promotion_extends_every_lease_by_one_election_timeout() {
        let mut l = Lessor::new(false, false);
        l.promote(10_000, 1_000, &[(1, 2)]);
        assert_eq!(l.remaining_s(10_000, 1), Some(3));
        assert!(l.expired(12_999).is_empty());
        assert_eq!(l.expired(13_000), vec![1]);
        // A keep-alive after promotion is a plain TTL from then on.
        let mut l = Lessor::new(false, false);
        l.promote(10_000, 1_000, &[(1, 2)]);
        assert_eq!(l.keep_alive(10_500, 1), Ok(2));
        assert_eq!(l.expired(12_500), vec![1]);
    }

    #[test]
    fn late_expiry_bug_triples_the_ttl() {
        let mut l = Lessor::new(false, true);
        l.promote(0, 0, &[(1, 2)]);
        assert!(l.expired(5_999).is_empty());
        assert_eq!(l.expired(6_000), vec![1]);
    }

    #[test]
    fn early_expiry_bug_halves_the_ttl() {
        let mut l = Lessor::new(true, false);
        l.promote(0, 0, &[(1, 10)]);
        assert_eq!(l.expired(5_000), vec![1]);
    }
}
