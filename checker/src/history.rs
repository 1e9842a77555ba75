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
