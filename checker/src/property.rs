//! A violated property found by the watch, durability, quorum, convergence and liveness checkers:
//! the common report type those checkers share (the linearizability search has its own,
//! [`crate::Violation`], because it explains a failed search rather than one broken rule).

use std::fmt;

use serde::Serialize;

use crate::history::OpId;

/// A property a checker judges, named once. [`Property::as_str`] is its name in verdicts, JSON,
/// reports and `kvsim shrink --property`: `<checker>.<rule>` in snake_case, like every name kvsim
/// prints (ARCHITECTURE.md, "Names").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// Every operation takes effect at one instant between its call and its return (the search).
    Linearizability,
    /// The simulated cluster panicked (a store or harness assertion).
    SimulationPanic,
    /// Raft's own invariants: one leader per term, identical committed entries, identical state hashes.
    RaftInvariant,
    /// A durability record (final state) is malformed.
    DurabilityRecord,
    /// An acknowledged write is missing from the final state.
    DurabilityLostWrite,
    /// Healed members agree on one revision and state.
    ReplicasConverge,
    /// A client saw the revision go backwards.
    QuorumRevisionRegress,
    /// After a heal the cluster answers again within the liveness bound.
    Liveness,
    /// A lease was reported gone before its TTL could have run out.
    LeaseExpiredEarly,
    /// A lease was still alive long after its TTL ran out, or reported more time left than any
    /// deadline allows.
    LeaseExpiredLate,
    /// Two clients held one lock at once.
    LockMutualExclusion,
    /// A lock holder wrote the protected key without its fence.
    LockUnfencedWrite,
    /// Two campaigners were leader of one election at once.
    ElectionTwoLeaders,
    /// A watch record is malformed.
    WatchRecord,
    /// Watchers agree on the event of each revision.
    WatchAgreement,
    /// A member's watch header revision went backwards.
    WatchHeaderRegress,
    /// A watch resumed from a revision delivers from there on.
    WatchResumable,
    /// A watch delivers only events of its key range.
    WatchFilter,
    /// A watch response's header is at least its events' revisions.
    WatchHeader,
    /// Watch events arrive in revision order.
    WatchOrdered,
    /// No event is delivered twice.
    WatchUnique,
    /// A revision's events arrive together.
    WatchAtomic,
    /// Progress notifications never run ahead of events still to come.
    WatchBookmarkable,
    /// A watch from a compacted revision is cancelled with the compact revision.
    WatchCompacted,
    /// An event's create flag matches the key's history.
    WatchIsCreate,
    /// An event's previous key-value is the key's value before it.
    WatchPrevKv,
    /// A watch delivers every event of its range, none missing.
    WatchReliable,
}

impl Property {
    pub const ALL: [Property; 27] = [
        Property::Linearizability,
        Property::SimulationPanic,
        Property::RaftInvariant,
        Property::DurabilityRecord,
        Property::DurabilityLostWrite,
        Property::ReplicasConverge,
        Property::QuorumRevisionRegress,
        Property::Liveness,
        Property::LeaseExpiredEarly,
        Property::LeaseExpiredLate,
        Property::LockMutualExclusion,
        Property::LockUnfencedWrite,
        Property::ElectionTwoLeaders,
        Property::WatchRecord,
        Property::WatchAgreement,
        Property::WatchHeaderRegress,
        Property::WatchResumable,
        Property::WatchFilter,
        Property::WatchHeader,
        Property::WatchOrdered,
        Property::WatchUnique,
        Property::WatchAtomic,
        Property::WatchBookmarkable,
        Property::WatchCompacted,
        Property::WatchIsCreate,
        Property::WatchPrevKv,
        Property::WatchReliable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Property::Linearizability => "linearizability",
            Property::SimulationPanic => "simulation.panic",
            Property::RaftInvariant => "raft.invariant",
            Property::DurabilityRecord => "durability.record",
            Property::DurabilityLostWrite => "durability.lost_write",
            Property::ReplicasConverge => "replicas.converge",
            Property::QuorumRevisionRegress => "quorum.revision_regress",
            Property::Liveness => "liveness",
            Property::LeaseExpiredEarly => "lease.expired_early",
            Property::LeaseExpiredLate => "lease.expired_late",
            Property::LockMutualExclusion => "lock.mutual_exclusion",
            Property::LockUnfencedWrite => "lock.unfenced_write",
            Property::ElectionTwoLeaders => "election.two_leaders",
            Property::WatchRecord => "watch.record",
            Property::WatchAgreement => "watch.agreement",
            Property::WatchHeaderRegress => "watch.header_regress",
            Property::WatchResumable => "watch.resumable",
            Property::WatchFilter => "watch.filter",
            Property::WatchHeader => "watch.header",
            Property::WatchOrdered => "watch.ordered",
            Property::WatchUnique => "watch.unique",
            Property::WatchAtomic => "watch.atomic",
            Property::WatchBookmarkable => "watch.bookmarkable",
            Property::WatchCompacted => "watch.compacted",
            Property::WatchIsCreate => "watch.is_create",
            Property::WatchPrevKv => "watch.prev_kv",
            Property::WatchReliable => "watch.reliable",
        }
    }

    /// The property called `name`. The kebab-case rule names of before (`durability.lost-write`)
    /// are accepted too; [`Property::is_old_spelling`] says when a caller should note it.
    pub fn parse(name: &str) -> Result<Property, String> {
        Property::ALL
            .into_iter()
            .find(|property| property.as_str() == name)
            .or_else(|| Property::of_old_spelling(name))
            .ok_or_else(|| {
                let known: Vec<&str> = Property::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown property {name:?}: expected one of {}",
                    known.join(", ")
                )
            })
    }

    /// `name` is a pre-snake_case spelling (still accepted by [`Property::parse`]).
    pub fn is_old_spelling(name: &str) -> bool {
        Property::of_old_spelling(name).is_some()
    }

    fn of_old_spelling(name: &str) -> Option<Property> {
        match name {
            "durability.lost-write" => Some(Property::DurabilityLostWrite),
            "quorum.revision-regress" => Some(Property::QuorumRevisionRegress),
            "lease.expired-early" => Some(Property::LeaseExpiredEarly),
            "lease.expired-late" => Some(Property::LeaseExpiredLate),
            "lock.mutual-exclusion" => Some(Property::LockMutualExclusion),
            "lock.unfenced-write" => Some(Property::LockUnfencedWrite),
            "election.two-leaders" => Some(Property::ElectionTwoLeaders),
            "watch.header-regress" => Some(Property::WatchHeaderRegress),
            "watch.is-create" => Some(Property::WatchIsCreate),
            "watch.prev-kv" => Some(Property::WatchPrevKv),
            _ => None,
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Property {
    type Err = String;

    fn from_str(name: &str) -> Result<Property, String> {
        Property::parse(name)
    }
}

impl Serialize for Property {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Property {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One broken rule, with enough context to find it in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyViolation {
    /// Which rule (see each checker's module documentation).
    pub property: Property,
    /// What was expected and what the history shows instead.
    pub message: String,
    /// Operations involved (ids as the history names them), in ascending order.
    pub ops: Vec<OpId>,
    /// The watcher whose stream broke the rule, for watch properties.
    pub watcher: Option<u64>,
    /// When it happened (nanoseconds since the start of the run), when one instant stands out.
    pub t_ns: Option<u64>,
}

impl PropertyViolation {
    /// A violation with no operation, watcher or time attached yet.
    pub fn new(property: Property, message: impl Into<String>) -> Self {
        Self {
            property,
            message: message.into(),
            ops: Vec::new(),
            watcher: None,
            t_ns: None,
        }
    }

    pub fn with_ops(mut self, ops: impl IntoIterator<Item = OpId>) -> Self {
        self.ops.extend(ops);
        self.ops.sort_unstable();
        self.ops.dedup();
        self
    }

    pub fn with_watcher(mut self, watcher: u64) -> Self {
        self.watcher = Some(watcher);
        self
    }

    pub fn with_time(mut self, t_ns: u64) -> Self {
        self.t_ns = Some(t_ns);
        self
    }
}

impl fmt::Display for PropertyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.message)?;
        if let Some(watcher) = self.watcher {
            write!(f, " [watcher {watcher}]")?;
        }
        if let Some(t_ns) = self.t_ns {
            write!(f, " [at {:.3} s]", t_ns as f64 / 1e9)?;
        }
        if !self.ops.is_empty() {
            let ids: Vec<String> = self.ops.iter().map(|id| id.to_string()).collect();
            write!(f, " [ops {}]", ids.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_old_spellings_are_accepted() {
        for property in Property::ALL {
            assert_eq!(Property::parse(property.as_str()), Ok(property));
            assert!(!property.as_str().contains('-'), "{property}: snake_case");
        }
        assert_eq!(
            Property::parse("durability.lost-write"),
            Ok(Property::DurabilityLostWrite)
        );
        assert!(Property::is_old_spelling("durability.lost-write"));
        assert!(!Property::is_old_spelling("durability.lost_write"));
        assert!(Property::parse("durability.lost").is_err());
    }

    #[test]
    fn display_names_property_watcher_time_and_ops() {
        let violation =
            PropertyViolation::new(Property::WatchUnique, "revision 7 on k001 delivered twice")
                .with_watcher(2)
                .with_time(1_500_000_000)
                .with_ops([9, 3, 9]);
        assert_eq!(violation.ops, vec![3, 9]);
        assert_eq!(
            violation.to_string(),
            "watch.unique: revision 7 on k001 delivered twice [watcher 2] [at 1.500 s] [ops 3, 9]"
        );
        let json = serde_json::to_value(&violation).unwrap();
        assert_eq!(json["property"], "watch.unique");
        assert_eq!(json["watcher"], 2);
    }
}
