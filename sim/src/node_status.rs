//! What a member exposes to the harness (status snapshots) and the cluster-wide invariant log that every
//! member writes into as events happen, so a violation is caught at the moment it occurs, not by sampling.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    #[default]
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    /// Killed (crashed) and not restarted yet.
    Down,
    /// Paused (SIGSTOP-like): alive but not running.
    Paused,
}

/// One node's state as last published by its Raft loop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: u64,
    pub role: Role,
    pub term: u64,
    /// The leader this node believes in.
    pub leader: Option<u64>,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The store's revision (etcd's header revision on this node).
    pub revision: i64,
    pub compact_revision: i64,
    /// Index of the latest snapshot on disk.
    pub snapshot_index: u64,
    /// How many times the node booted (1 after start, +1 per restart).
    pub boots: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvariantViolation {
    /// Election Safety (Raft paper, Figure 3): at most one leader per term.
    TwoLeaders { term: u64, first: u64, second: u64 },
    /// State Machine Safety: every node applies the same entry at a given index.
    CommittedEntryMismatch {
        index: u64,
        first: (u64, u64, u64),
        second: (u64, u64, u64),
    },
    /// Two nodes' stores hash differently at the same revision (etcd's HashKV corruption check).
    HashMismatch {
        revision: i64,
        first: (u64, u64),
        second: (u64, u64),
    },
    /// A node applied past its commit index.
    AppliedBeyondCommit {
        node: u64,
        applied: u64,
        commit: u64,
    },
}

impl std::fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvariantViolation::TwoLeaders {
                term,
                first,
                second,
            } => write!(f, "two leaders in term {term}: n{first} and n{second}"),
            InvariantViolation::CommittedEntryMismatch {
                index,
                first,
                second,
            } => write!(
                f,
                "committed entry {index} differs: n{} applied (term {}, hash {:016x}), n{} applied (term {}, hash {:016x})",
                first.0, first.1, first.2, second.0, second.1, second.2
            ),
            InvariantViolation::HashMismatch {
                revision,
                first,
                second,
            } => write!(
                f,
                "store hash at revision {revision} differs: n{} {:016x}, n{} {:016x}",
                first.0, first.1, second.0, second.1
            ),
            InvariantViolation::AppliedBeyondCommit {
                node,
                applied,
                commit,
            } => write!(f, "n{node} applied {applied} beyond its commit {commit}"),
        }
    }
}

impl std::error::Error for InvariantViolation {}

/// Shared by all nodes of a cluster; survives restarts (it lives in the harness).
#[derive(Debug, Default)]
pub struct InvariantLog {
    /// term -> the first leader seen in it.
    leaders: BTreeMap<u64, u64>,
    /// index -> (node that applied it first, term, hash of the entry data).
    committed: BTreeMap<u64, (u64, u64, u64)>,
    violations: Vec<InvariantViolation>,
}

impl InvariantLog {
    pub fn record_leader(&mut self, term: u64, leader: u64) {
        let first = *self.leaders.entry(term).or_insert(leader);
        if first != leader {
            self.violations.push(InvariantViolation::TwoLeaders {
                term,
                first,
                second: leader,
            });
        }
    }

    pub fn record_applied(&mut self, node: u64, index: u64, term: u64, hash: u64) {
        let first = *self.committed.entry(index).or_insert((node, term, hash));
        if (first.1, first.2) != (term, hash) {
            self.violations
                .push(InvariantViolation::CommittedEntryMismatch {
                    index,
                    first,
                    second: (node, term, hash),
                });
        }
    }

    pub fn record(&mut self, violation: InvariantViolation) {
        self.violations.push(violation);
    }

    pub fn violations(&self) -> &[InvariantViolation] {
        &self.violations
    }

    /// The first leader seen in `term`.
    pub fn leader_of(&self, term: u64) -> Option<u64> {
        self.leaders.get(&term).copied()
    }

    /// Every (term, leader) ever seen, in term order.
    pub fn leaders(&self) -> Vec<(u64, u64)> {
        self.leaders.iter().map(|(t, l)| (*t, *l)).collect()
    }

    pub fn committed_entries(&self) -> usize {
        self.committed.len()
    }
}

/// FNV-1a: a fixed hash so entry hashes agree across nodes and runs (no RandomState).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_is_a_violation_but_re_reporting_is_not() {
        let mut log = InvariantLog::default();
        log.record_leader(2, 1);
        log.record_leader(2, 1);
        log.record_leader(3, 2);
        assert!(log.violations().is_empty());
        log.record_leader(3, 1);
        assert_eq!(
            log.violations(),
            &[InvariantViolation::TwoLeaders {
                term: 3,
                first: 2,
                second: 1
            }]
        );
    }

    #[test]
    fn different_entries_at_one_index_is_a_violation() {
        let mut log = InvariantLog::default();
        log.record_applied(1, 5, 2, fnv1a(b"a"));
        log.record_applied(2, 5, 2, fnv1a(b"a"));
        assert!(log.violations().is_empty());
        log.record_applied(3, 5, 2, fnv1a(b"b"));
        assert_eq!(log.violations().len(), 1);
        assert!(log.violations()[0]
            .to_string()
            .contains("committed entry 5"));
    }
}
