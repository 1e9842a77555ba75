//! What the search reports when a history is not linearizable.

use std::fmt::{self, Debug, Display, Write as _};

use serde::Serialize;

use crate::history::{History, OpId, Outcome};

/// The evidence for "not linearizable": how far the search got and where it stuck.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The partition (key) whose sub-history failed, when the check was split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The longest linearizable prefix the search found, in linearization order. Unknown-outcome
    /// operations appear here when the prefix needed them to take effect.
    pub longest_prefix: Vec<OpId>,
    /// The operations to blame after that prefix, in this order: the definite operations that
    /// could come next in real-time order and that the model refuses there; then the answered
    /// operations that could never be placed once one of the accepted ones took effect (with
    /// etcd's revision: an answer naming a revision the state would already be past, such as a
    /// stale read — the search prunes on these bounds, `Spec::progress_max`), lowest bound
    /// first. Only when there is neither — every candidate is accepted and failed later — are
    /// all the candidates listed.
    pub stuck: Vec<OpId>,
    /// The model state after the prefix (`Debug`).
    pub state_debug: String,
}

impl Violation {
    /// A human-readable report naming each operation with its input and outcome.
    pub fn render<I: Debug, O: Debug>(&self, history: &History<I, O>) -> String {
        let describe = |id: OpId| -> String {
            match history.ops.iter().find(|op| op.id == id) {
                Some(op) => {
                    let outcome = match &op.outcome {
                        Outcome::Ok { output } => format!("{output:?}"),
                        Outcome::Fail { error } => format!("fail: {error}"),
                        Outcome::Unknown { error } => format!("unknown: {error}"),
                    };
                    let end = op
                        .return_ns
                        .map_or_else(|| "?".to_string(), |t| t.to_string());
                    format!(
                        "op {id} client {} [{} .. {end}] ns: {:?} -> {outcome}",
                        op.client, op.call_ns, op.input
                    )
                }
                None => format!("op {id} (not in this history)"),
            }
        };
        let mut text = String::new();
        let _ = writeln!(text, "{self}");
        let shown_max = 20;
        let skipped = self.longest_prefix.len().saturating_sub(shown_max);
        if skipped > 0 {
            let _ = writeln!(text, "  ... {skipped} earlier operations of the prefix");
        }
        for id in &self.longest_prefix[skipped..] {
            let _ = writeln!(text, "  linearized: {}", describe(*id));
        }
        let _ = writeln!(text, "  state: {}", self.state_debug);
        for id in &self.stuck {
            let _ = writeln!(text, "  cannot follow: {}", describe(*id));
        }
        text
    }
}

impl Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not linearizable")?;
        if let Some(partition) = &self.partition {
            write!(f, " (partition {partition:?})")?;
        }
        write!(
            f,
            ": longest linearizable prefix has {} operations; none of the operations {:?} can follow it",
            self.longest_prefix.len(),
            self.stuck
        )
    }
}
