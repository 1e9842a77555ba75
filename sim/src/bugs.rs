//! Planted bugs: switches that make the simulated server violate one etcd guarantee on purpose, so the
//! checkers can be shown to catch each class of bug (the checker is only as good as the bugs it finds).
//!
//! All switches are off by default. The node wires the ones that belong to it; `compacted_read` is the
//! store's (see [`Bugs::compacted_read`]).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bugs {
    /// A linearizable read is served from the leader's local store without ReadIndex, so a deposed
    /// leader that has not noticed yet answers stale data (etcd #20418 class).
    pub stale_read: bool,
    /// The leader answers a write once it is appended to its own log, before it is committed: a crash or
    /// partition of the leader can then lose an acknowledged write.
    pub ack_before_commit: bool,
    /// `fsync` is a no-op: a crash loses writes that Raft believed durable (etcd #14370 class).
    pub lost_fsync: bool,
    /// A resumed watch poll sometimes skips the first revision it should deliver.
    pub watch_gap: bool,
    /// A resumed watch poll sometimes delivers the last revision it already delivered again.
    pub watch_duplicate: bool,
    /// A watch poll with nothing new sometimes reports a header revision below one it already reported.
    pub watch_regress: bool,
    /// The lessor expires leases at half their TTL.
    pub lease_early_expiry: bool,
    /// The lessor expires leases at three times their TTL: a lessor that falls behind (its
    /// expiry loop stalled, revokes queued behind a rate limit or a slow apply), so clients keep
    /// reading keys whose lease is long dead.
    pub lease_late_expiry: bool,
    /// On restart a node skips replaying the committed entries after its last snapshot: its revision
    /// goes back and its store diverges (etcd #17780 class).
    pub revision_regress_after_restart: bool,
    /// A range at a compacted revision returns the oldest data still kept instead of `Compacted`.
    pub compacted_read: bool,
    /// The leader renews a lease (or answers that it is gone) from its own lessor without first
    /// confirming that it is still the leader: a deposed leader that has not stepped down yet denies
    /// leases granted under its successor and renews ones its successor revoked (etcd #15247; etcd
    /// 3.4.31 / 3.5.13 confirm leadership with a ReadIndex round before `lessor.Renew`).
    pub lease_renew_unconfirmed: bool,
    /// Client side, not the server's: lock recipe holders write the protected key with a plain put
    /// (no `create_revision` fence) and ignore failed keep-alives, so a holder whose lease expired
    /// during a stall keeps writing while another holds the lock (see `crate::recipes`).
    pub lock_unfenced: bool,
}

/// Every bug name as it appears in scenario files, with a one-line description.
pub const BUG_LIST: &[(&str, &str)] = &[
    (
        "stale_read",
        "linearizable reads are served locally by the leader without ReadIndex",
    ),
    (
        "ack_before_commit",
        "the leader acknowledges a write after appending it locally, before commit",
    ),
    (
        "lost_fsync",
        "fsync is a no-op, so a crash loses data Raft believed durable",
    ),
    (
        "watch_gap",
        "a resumed watch poll sometimes skips the first revision it should deliver",
    ),
    (
        "watch_duplicate",
        "a resumed watch poll sometimes repeats the last revision already delivered",
    ),
    (
        "watch_regress",
        "an empty watch poll sometimes reports a header revision that went backwards",
    ),
    (
        "lease_early_expiry",
        "the lessor expires leases at half their TTL",
    ),
    (
        "lease_late_expiry",
        "the lessor expires leases at three times their TTL",
    ),
    (
        "revision_regress_after_restart",
        "a restarted node skips replaying committed entries after its last snapshot",
    ),
    (
        "compacted_read",
        "a range at a compacted revision returns old data instead of the Compacted error",
    ),
    (
        "lease_renew_unconfirmed",
        "a leader answers keep-alives without confirming it is still the leader",
    ),
    (
        "lock_unfenced",
        "lock recipe holders write without a fence and ignore failed keep-alives (client side)",
    ),
];

impl Bugs {
    /// Turns on the bug called `name` (a name from [`BUG_LIST`]).
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        let flag = self.flag_mut(name).ok_or_else(|| {
            let known: Vec<&str> = BUG_LIST.iter().map(|(n, _)| *n).collect();
            format!("unknown bug {name:?}: expected one of {}", known.join(", "))
        })?;
        *flag = true;
        Ok(())
    }

    /// The names of the bugs that are on, in [`BUG_LIST`] order.
    pub fn enabled(&self) -> Vec<&'static str> {
        let mut copy = *self;
        BUG_LIST
            .iter()
            .filter(|(name, _)| copy.flag_mut(name).is_some_and(|flag| *flag))
            .map(|(name, _)| *name)
            .collect()
    }

    pub fn any(&self) -> bool {
        !self.enabled().is_empty()
    }

    fn flag_mut(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "stale_read" => &mut self.stale_read,
            "ack_before_commit" => &mut self.ack_before_commit,
            "lost_fsync" => &mut self.lost_fsync,
            "watch_gap" => &mut self.watch_gap,
            "watch_duplicate" => &mut self.watch_duplicate,
            "watch_regress" => &mut self.watch_regress,
            "lease_early_expiry" => &mut self.lease_early_expiry,
            "lease_late_expiry" => &mut self.lease_late_expiry,
            "revision_regress_after_restart" => &mut self.revision_regress_after_restart,
            "compacted_read" => &mut self.compacted_read,
            "lease_renew_unconfirmed" => &mut self.lease_renew_unconfirmed,
            "lock_unfenced" => &mut self.lock_unfenced,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_bug_can_be_enabled_alone() {
        for (name, description) in BUG_LIST {
            assert!(!description.is_empty());
            let mut bugs = Bugs::default();
            bugs.enable(name).unwrap();
            assert_eq!(bugs.enabled(), vec![*name]);
        }
        assert!(!Bugs::default().any());
    }

    #[test]
    fn unknown_bug_is_an_error_naming_the_known_ones() {
        let err = Bugs::default().enable("lost_write").unwrap_err();
        assert!(
            err.contains("lost_write") && err.contains("stale_read"),
            "{err}"
        );
    }

    #[test]
    fn serde_round_trip_and_unknown_field_rejected() {
        let mut bugs = Bugs::default();
        bugs.enable("watch_gap").unwrap();
        let json = serde_json::to_string(&bugs).unwrap();
        assert_eq!(serde_json::from_str::<Bugs>(&json).unwrap(), bugs);
        assert!(serde_json::from_str::<Bugs>(r#"{"nope":true}"#).is_err());
        assert_eq!(serde_json::from_str::<Bugs>("{}").unwrap(), Bugs::default());
    }
}
