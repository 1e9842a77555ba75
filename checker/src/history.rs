//! Histories: what clients invoked, what came back, and when — plus the faults the nemesis
//! injected and the watch streams clients saw, so reports can draw them.
//!
//! Conventions (shared by the simulator, live mode, importers and the search):
//! - Times are nanoseconds since the start of the run (`call_ns`, `return_ns`).
//! - One operation in flight per client id. A client whose request ended with an unknown outcome
//!   continues under a fresh id (Jepsen's "process" rule), so an unknown operation never blocks
//!   the real-time order of that client's later operations.
//! - [`Outcome::Fail`] means the operation definitely did not take effect (e.g. connection
//!   refused, Jepsen's `:fail`); the search drops it. [`Outcome::Unknown`] means it may have taken
//!   effect at any time after its call, or never.

use serde::{Deserialize, Serialize};

pub type ClientId = u64;
pub type OpId = u64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome<O> {
    /// A definite response, which the model must be able to produce (etcd errors included).
    Ok { output: O },
    /// Definitely did not take effect.
    Fail { error: String },
    /// May or may not have taken effect.
    Unknown { error: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation<I, O> {
    pub id: OpId,
    pub client: ClientId,
    pub call_ns: u64,
    /// `None` when the outcome is unknown: the operation may take effect arbitrarily late.
    pub return_ns: Option<u64>,
    pub input: I,
    pub outcome: Outcome<O>,
}

/// A fault the nemesis injected (or healed), for reports and for the durability checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub t_ns: u64,
    /// e.g. `partition`, `heal`, `crash`, `restart`, `pause`, `resume`, `packet_loss`, `latency`.
    pub kind: String,
    /// Nodes affected (names as the run uses them: `n1`, `n2`, ...).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Free-form details (partition sides, loss rate, ...), kept verbatim.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// The member that answered an operation, as etcd's response header names it (`member_id`,
/// `raft_term`), with the role it believed it held when it answered: a `served_by` record in
/// the history's other records (the simulator writes one per definite answer; a history from
/// elsewhere may have none). A stale read shows here as a `leader` whose `raft_term` is below
/// the term some other member was elected in before the read was called ([`LeaderElected`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedBy {
    /// The operation answered.
    pub id: OpId,
    /// Simulated (or wall-clock) time the answer was recorded.
    pub t_ns: u64,
    /// The member, named as in fault records (`n1`, `n2`, ...).
    pub node: String,
    pub raft_term: u64,
    /// Absent where the member did not say (live mode: etcd's response header names no role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<MemberRole>,
}

/// The Raft role a member held (Raft paper §5.1; pre-candidate: the Pre-Vote extension, §9.6 of
/// Ongaro's thesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Leader,
    Follower,
    Candidate,
    PreCandidate,
}

impl MemberRole {
    pub fn name(self) -> &'static str {
        match self {
            MemberRole::Leader => "leader",
            MemberRole::Follower => "follower",
            MemberRole::Candidate => "candidate",
            MemberRole::PreCandidate => "pre-candidate",
        }
    }
}

/// A member became leader of a term (a `leader` record): the first time the run saw a leader of
/// that term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElected {
    pub t_ns: u64,
    pub node: String,
    pub term: u64,
}

/// The record types of [`ServedBy`] and [`LeaderElected`] among a history's other records.
pub const SERVED_BY_RECORD: &str = "served_by";
pub const LEADER_RECORD: &str = "leader";

/// A whole history of one run over one model's operation type.
#[derive(Clone, Debug, PartialEq)]
pub struct History<I, O> {
    pub ops: Vec<Operation<I, O>>,
    pub faults: Vec<FaultEvent>,
    /// Records this crate version does not interpret (watch streams, final-state reads, ...),
    /// kept so that `kvsim check` can re-emit or hand them to other checkers.
    pub other: Vec<serde_json::Value>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        Self {
            ops: Vec::new(),
            faults: Vec::new(),
            other: Vec::new(),
        }
    }
}

impl<I, O> History<I, O> {
    /// Who answered each operation, where the history says (the `served_by` records; a
    /// malformed one is refused when the history is read, so none is skipped here unseen).
    pub fn served_by(&self) -> std::collections::BTreeMap<OpId, ServedBy> {
        self.records::<ServedBy>(SERVED_BY_RECORD)
            .map(|served| (served.id, served))
            .collect()
    }

    /// The leaders elected during the run, in time order (the `leader` records).
    pub fn leaders_elected(&self) -> Vec<LeaderElected> {
        let mut leaders: Vec<LeaderElected> = self.records(LEADER_RECORD).collect();
        leaders.sort_by_key(|leader| (leader.t_ns, leader.term));
        leaders
    }

    fn records<'a, T: serde::de::DeserializeOwned + 'a>(
        &'a self,
        record_type: &'a str,
    ) -> impl Iterator<Item = T> + 'a {
        self.other
            .iter()
            .filter(move |record| {
                record.get("type").and_then(serde_json::Value::as_str) == Some(record_type)
            })
            .filter_map(|record| {
                let mut fields = record.as_object()?.clone();
                fields.remove("type");
                serde_json::from_value(serde_json::Value::Object(fields)).ok()
            })
    }
}

impl History<kvsim_model::mvcc::Op, kvsim_model::mvcc::Ret> {
    /// The MVCC operations that returned a response (not an etcd error), with that response: what
    /// the watch, durability and recipe checkers reconstruct the store's changes from.
    pub fn answered(
        &self,
    ) -> impl Iterator<
        Item = (
            &Operation<kvsim_model::mvcc::Op, kvsim_model::mvcc::Ret>,
            &kvsim_model::mvcc::Response,
        ),
    > {
        self.ops.iter().filter_map(|op| match &op.outcome {
            Outcome::Ok {
                output: kvsim_model::mvcc::Ret::Ok(response),
            } => Some((op, response)),
            _ => None,
        })
    }
}
