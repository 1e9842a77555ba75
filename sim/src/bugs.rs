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
    /// A watch stream sometimes drops every event of the first revision of a response.
    pub watch_gap: bool,
    /// A watch stream sometimes sends the revision before a response's first one again.
    pub watch_duplicate: bool,
    /// A progress notification sometimes reports a header revision below events already sent.
    pub watch_regress: bool,
    /// A requested progress notification is answered at the store's revision while the watcher
    /// is still unsynced, vouching for events it has not been sent (etcd #15220).
    pub watch_progress_unsynced: bool,
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
    /// A watch from a compacted revision is served from the oldest revision still kept instead of
    /// being cancelled with `Compacted`: the events in between are skipped without a word (the
    /// watch guarantee etcd's robustness tests check: no event is missed, a watch that cannot
    /// deliver them must fail).
    pub watch_compacted_skip: bool,
    /// A txn whose taken branch writes more than once applies every write but its last put, and
    /// answers as if it had applied it: an atomicity bug every replica shares (deterministic
    /// apply), so replicas agree and only a client's later read shows it.
    pub txn_partial: bool,
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

/// One planted bug, named once: [`Bug::as_str`] is its name in scenario `[bugs]` tables, on the
/// command line (`--bug`), in JSON and in reports (snake_case, like every name kvsim prints; see
/// ARCHITECTURE.md, "Names").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    StaleRead,
    AckBeforeCommit,
    LostFsync,
    WatchGap,
    WatchDuplicate,
    WatchRegress,
    WatchProgressUnsynced,
    LeaseEarlyExpiry,
    LeaseLateExpiry,
    RevisionRegressAfterRestart,
    CompactedRead,
    WatchCompactedSkip,
    TxnPartial,
    LeaseRenewUnconfirmed,
    LockUnfenced,
}

impl Bug {
    /// Every bug, in the order `kvsim bugs` lists them.
    pub const ALL: [Bug; 15] = [
        Bug::StaleRead,
        Bug::AckBeforeCommit,
        Bug::LostFsync,
        Bug::WatchGap,
        Bug::WatchDuplicate,
        Bug::WatchRegress,
        Bug::WatchProgressUnsynced,
        Bug::LeaseEarlyExpiry,
        Bug::LeaseLateExpiry,
        Bug::RevisionRegressAfterRestart,
        Bug::CompactedRead,
        Bug::WatchCompactedSkip,
        Bug::TxnPartial,
        Bug::LeaseRenewUnconfirmed,
        Bug::LockUnfenced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale_read",
            Bug::AckBeforeCommit => "ack_before_commit",
            Bug::LostFsync => "lost_fsync",
            Bug::WatchGap => "watch_gap",
            Bug::WatchDuplicate => "watch_duplicate",
            Bug::WatchRegress => "watch_regress",
            Bug::WatchProgressUnsynced => "watch_progress_unsynced",
            Bug::LeaseEarlyExpiry => "lease_early_expiry",
            Bug::LeaseLateExpiry => "lease_late_expiry",
            Bug::RevisionRegressAfterRestart => "revision_regress_after_restart",
            Bug::CompactedRead => "compacted_read",
            Bug::WatchCompactedSkip => "watch_compacted_skip",
            Bug::TxnPartial => "txn_partial",
            Bug::LeaseRenewUnconfirmed => "lease_renew_unconfirmed",
            Bug::LockUnfenced => "lock_unfenced",
        }
    }

    /// One line: what the bug does.
    pub fn description(self) -> &'static str {
        match self {
            Bug::StaleRead => "linearizable reads are served locally by the leader without ReadIndex",
            Bug::AckBeforeCommit => {
                "the leader acknowledges a write after appending it locally, before commit"
            }
            Bug::LostFsync => "fsync is a no-op, so a crash loses data Raft believed durable",
            Bug::WatchGap => "a watch stream sometimes drops the first revision of a response",
            Bug::WatchDuplicate => {
                "a watch stream sometimes sends the revision before a response's first one again"
            }
            Bug::WatchRegress => {
                "a progress notification sometimes reports a header revision that went backwards"
            }
            Bug::WatchProgressUnsynced => {
                "a requested progress notification is sent before an unsynced watcher caught up (etcd #15220)"
            }
            Bug::LeaseEarlyExpiry => "the lessor expires leases at half their TTL",
            Bug::LeaseLateExpiry => "the lessor expires leases at three times their TTL",
            Bug::RevisionRegressAfterRestart => {
                "a restarted node skips replaying committed entries after its last snapshot"
            }
            Bug::CompactedRead => {
                "a range at a compacted revision returns old data instead of the Compacted error"
            }
            Bug::WatchCompactedSkip => {
                "a watch from a compacted revision skips to the oldest kept revision instead of failing"
            }
            Bug::TxnPartial => {
                "a txn writing more than once applies all but its last put, and says it applied it"
            }
            Bug::LeaseRenewUnconfirmed => {
                "a leader answers keep-alives without confirming it is still the leader"
            }
            Bug::LockUnfenced => {
                "lock recipe holders write without a fence and ignore failed keep-alives (client side)"
            }
        }
    }

    /// The bug called `name`; the error lists every name.
    pub fn parse(name: &str) -> Result<Bug, String> {
        Bug::ALL
            .into_iter()
            .find(|bug| bug.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Bug::ALL.iter().map(|bug| bug.as_str()).collect();
                format!("unknown bug {name:?}: expected one of {}", known.join(", "))
            })
    }
}

impl std::str::FromStr for Bug {
    type Err = String;

    fn from_str(name: &str) -> Result<Bug, String> {
        Bug::parse(name)
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Bug {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Bugs {
    /// Turns on `bug`.
    pub fn enable(&mut self, bug: Bug) {
        *self.flag_mut(bug) = true;
    }

    /// The bugs that are on, in [`Bug::ALL`] order.
    pub fn enabled(&self) -> Vec<Bug> {
        let mut copy = *self;
        Bug::ALL
            .into_iter()
            .filter(|bug| *copy.flag_mut(*bug))
            .collect()
    }

    pub fn any(&self) -> bool {
        !self.enabled().is_empty()
    }

    fn flag_mut(&mut self, bug: Bug) -> &mut bool {
        match bug {
            Bug::StaleRead => &mut self.stale_read,
            Bug::AckBeforeCommit => &mut self.ack_before_commit,
            Bug::LostFsync => &mut self.lost_fsync,
            Bug::WatchGap => &mut self.watch_gap,
            Bug::WatchDuplicate => &mut self.watch_duplicate,
            Bug::WatchRegress => &mut self.watch_regress,
            Bug::WatchProgressUnsynced => &mut self.watch_progress_unsynced,
            Bug::LeaseEarlyExpiry => &mut self.lease_early_expiry,
            Bug::LeaseLateExpiry => &mut self.lease_late_expiry,
            Bug::RevisionRegressAfterRestart => &mut self.revision_regress_after_restart,
            Bug::CompactedRead => &mut self.compacted_read,
            Bug::WatchCompactedSkip => &mut self.watch_compacted_skip,
            Bug::TxnPartial => &mut self.txn_partial,
            Bug::LeaseRenewUnconfirmed => &mut self.lease_renew_unconfirmed,
            Bug::LockUnfenced => &mut self.lock_unfenced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_can_be_enabled_alone_and_its_name_parses_back() {
        for bug in Bug::ALL {
            assert!(!bug.description().is_empty());
            assert_eq!(Bug::parse(bug.as_str()), Ok(bug));
            let mut bugs = Bugs::default();
            bugs.enable(bug);
            assert_eq!(bugs.enabled(), vec![bug]);
            // The name is the serde field name of its switch.
            let json = serde_json::to_value(bugs).unwrap();
            assert_eq!(json[bug.as_str()], true, "{bug}");
        }
        assert!(!Bugs::default().any());
    }

    #[test]
    fn unknown_bug_is_an_error_naming_the_known_ones() {
        let err = Bug::parse("lost_write").unwrap_err();
        assert!(
            err.contains("lost_write") && err.contains("stale_read"),
            "{err}"
        );
    }

    #[test]
    fn serde_round_trip_and_unknown_field_rejected() {
        let mut bugs = Bugs::default();
        bugs.enable(Bug::WatchGap);
        let json = serde_json::to_string(&bugs).unwrap();
        assert_eq!(serde_json::from_str::<Bugs>(&json).unwrap(), bugs);
        assert!(serde_json::from_str::<Bugs>(r#"{"nope":true}"#).is_err());
        assert_eq!(serde_json::from_str::<Bugs>("{}").unwrap(), Bugs::default());
    }
}
