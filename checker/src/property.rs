//! A violated property found by the watch, durability, quorum, convergence and liveness checkers:
//! the common report type those checkers share (the linearizability search has its own,
//! [`crate::Violation`], because it explains a failed search rather than one broken rule).

use std::fmt;

use serde::Serialize;

use crate::history::OpId;

/// One broken rule, with enough context to find it in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyViolation {
    /// Which rule: `watch.reliable`, `durability.lost-write`, `quorum.revision-regress`,
    /// `replicas.converge`, `liveness`, ... (see each checker's module documentation).
    pub property: &'static str,
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
    pub fn new(property: &'static str, message: impl Into<String>) -> Self {
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
    fn display_names_property_watcher_time_and_ops() {
        let violation =
            PropertyViolation::new("watch.unique", "revision 7 on k001 delivered twice")
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
