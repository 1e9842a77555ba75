//! When a live run proves too little for its verdict to be a pass.
//!
//! A run against a dead endpoint recorded 2,212 failed operations and "passed" (issue 13): every
//! checker is satisfied by a history in which nothing happened. Like Jepsen's `stats` checker
//! (every operation kind must succeed at least once) and etcd's robustness tests (a minimum
//! request rate, below which the run is rejected, not passed), a live run whose history does not
//! show the cluster working is inconclusive (exit 3) with the reason, never ok:
//! - fewer than [`OK_OPS_MIN`] operations succeeded;
//! - an operation kind the clients asked for never succeeded;
//! - the members never agreed on one revision, so their final states were not comparable;
//! - somebody else wrote to the cluster during the run, which moves etcd's global revision under
//!   the run's feet (`keyspace.rs`).

use std::collections::BTreeMap;

use kvsim_checker::history::{History, Outcome};
use kvsim_model::mvcc::{Op, Ret};

use crate::verdict::InconclusiveReason;

/// The fewest successful operations a live run must record to be judged a pass: a 30 s default
/// run records thousands, a run whose cluster was unreachable most of the time a handful.
pub const OK_OPS_MIN: usize = 100;

/// What the run showed beside the history: did the members agree, did anybody else write.
pub struct RunFacts {
    pub members_agreed: bool,
    /// Keys outside the run's prefix written during the run (by somebody else).
    pub foreign_writes: usize,
}

/// Every reason `history` (with `facts`) is too weak for a pass; empty when it is strong enough.
pub fn reasons_inconclusive(
    history: &History<Op, Ret>,
    facts: &RunFacts,
) -> Vec<InconclusiveReason> {
    let mut reasons = Vec::new();
    // kind → (asked, succeeded)
    let mut kinds: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for op in &history.ops {
        let entry = kinds
            .entry(kvsim_model::mvcc::gen::kind_name(&op.input))
            .or_insert((0, 0));
        entry.0 += 1;
        entry.1 += usize::from(matches!(op.outcome, Outcome::Ok { .. }));
    }
    let ok_ops: usize = kinds.values().map(|(_, ok)| ok).sum();
    if ok_ops < OK_OPS_MIN {
        reasons.push(InconclusiveReason::TooLittleTested {
            message: format!(
                "{ok_ops} of {} operations succeeded; a live pass needs at least {OK_OPS_MIN}",
                history.ops.len()
            ),
        });
    }
    let never: Vec<String> = kinds
        .iter()
        .filter(|(_, (asked, ok))| *asked > 0 && *ok == 0)
        .map(|(kind, (asked, _))| format!("{kind} ({asked} asked)"))
        .collect();
    if !never.is_empty() {
        reasons.push(InconclusiveReason::TooLittleTested {
            message: format!("no operation of a kind succeeded: {}", never.join(", ")),
        });
    }
    if !facts.members_agreed {
        reasons.push(InconclusiveReason::MembersNeverAgreed {
            message: "the members did not report one revision within the wait, so their final \
                      states were not compared"
                .to_string(),
        });
    }
    if facts.foreign_writes > 0 {
        reasons.push(InconclusiveReason::ClusterChangedByOthers {
            message: format!(
                "{} key(s) outside the run's prefix were written during the run; etcd's revisions \
                 are global, so the history's revisions are not the run's alone",
                facts.foreign_writes
            ),
        });
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvsim_checker::history::Operation;
    use kvsim_model::mvcc::{PutRequest, RangeRequest, Response};

    fn op(id: u64, input: Op, ok: bool) -> Operation<Op, Ret> {
        let outcome = if ok {
            Outcome::Ok {
                output: Ret::Ok(Response::Compact {
                    header: Default::default(),
                }),
            }
        } else {
            Outcome::Fail {
                error: "connection refused".into(),
            }
        };
        Operation {
            id,
            client: 0,
            call_ns: id * 10,
            return_ns: Some(id * 10 + 5),
            input,
            outcome,
        }
    }

    fn put() -> Op {
        Op::Put(PutRequest {
            key: "k".into(),
            value: "v".into(),
            ..Default::default()
        })
    }

    fn range() -> Op {
        Op::Range(RangeRequest {
            key: "k".into(),
            ..Default::default()
        })
    }

    const AGREED: RunFacts = RunFacts {
        members_agreed: true,
        foreign_writes: 0,
    };

    #[test]
    fn a_dead_cluster_is_too_little_tested() {
        let history = History {
            ops: (0..2_000).map(|id| op(id, put(), false)).collect(),
            ..Default::default()
        };
        let reasons = reasons_inconclusive(&history, &AGREED);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0]
            .to_string()
            .contains("0 of 2000 operations succeeded"));
        assert!(reasons[1].to_string().contains("put (2000 asked)"));
    }

    #[test]
    fn a_kind_that_never_succeeded_and_members_that_never_agreed_are_named() {
        let mut ops: Vec<_> = (0..200).map(|id| op(id, put(), true)).collect();
        ops.extend((200..210).map(|id| op(id, range(), false)));
        let history = History {
            ops,
            ..Default::default()
        };
        let facts = RunFacts {
            members_agreed: false,
            foreign_writes: 3,
        };
        let reasons: Vec<String> = reasons_inconclusive(&history, &facts)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("get (10 asked)"), "{reasons:?}");
        assert!(reasons[1].starts_with("members never agreed"));
        assert!(reasons[2].contains("3 key(s) outside"));
    }

    #[test]
    fn a_working_run_has_no_reason() {
        let mut ops: Vec<_> = (0..200).map(|id| op(id, put(), true)).collect();
        ops.extend((200..210).map(|id| op(id, range(), id % 2 == 0)));
        let history = History {
            ops,
            ..Default::default()
        };
        assert!(reasons_inconclusive(&history, &AGREED).is_empty());
    }
}
