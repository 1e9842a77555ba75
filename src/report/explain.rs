//! The model's side of a linearizability violation: the state after the longest linearizable
//! prefix, and for each operation that cannot follow it, what the model would have answered and
//! how the state would have changed.
//!
//! The search only keeps the final state as a `Debug` string; the report replays the prefix on a
//! fresh model instead, which gives a structured state to print and lets it apply each stuck
//! operation. A replay that disagrees with the search (it should not) is reported, not hidden.

use std::collections::BTreeMap;

use kvsim_checker::history::{History, OpId, Operation, Outcome};
use kvsim_checker::Violation;
use kvsim_model::mvcc::{MvccModel, Op, Ret};
use kvsim_model::Spec;

use super::text::{ret_text, state_change_text, state_text};

/// One operation that cannot follow the prefix, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    pub id: OpId,
    /// What the history recorded.
    pub observed: String,
    /// What the model answers from the state after the prefix.
    pub expected: String,
    /// How the model's state changes with that answer.
    pub change: String,
    /// True if the model accepts the observed answer right after the prefix: the operation is
    /// then stuck only because taking effect would strand some other answered operation.
    pub accepted: bool,
    /// Answered operations outside the prefix that could never be placed once this one took
    /// effect with its observed answer: their answers bound the revision below the state's
    /// (the search prunes on these bounds, see `Spec::progress_max`). The likely culprits.
    pub blockers: Vec<Blocker>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub id: OpId,
    /// The highest revision a state may have for this operation to be placed there.
    pub progress_max: i64,
}

/// Stuck operations explained at most (each replays the model once more).
const STUCK_EXPLAINED_MAX: usize = 20;
/// Blockers listed per stuck operation at most.
const BLOCKERS_MAX: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The state after the prefix (the state before each stuck operation).
    pub before: String,
    pub stuck: Vec<Stuck>,
    /// Set when the replay could not follow the search's prefix; the panel then says so and
    /// shows the search's own state string.
    pub replay_error: Option<String>,
}

/// Replays `violation.longest_prefix` from `init` and explains every stuck operation.
pub fn explain(history: &History<Op, Ret>, violation: &Violation, init: &MvccModel) -> Explanation {
    let by_id: BTreeMap<OpId, &Operation<Op, Ret>> =
        history.ops.iter().map(|op| (op.id, op)).collect();
    let mut state = init.clone();
    let mut replay_error = None;
    for id in &violation.longest_prefix {
        let Some(op) = by_id.get(id) else {
            replay_error = Some(format!("op {id} of the prefix is not in the history"));
            break;
        };
        match &op.outcome {
            Outcome::Ok { output } => match state.step(&op.input, output) {
                Some(next) => state = next,
                None => {
                    replay_error = Some(format!(
                        "op {id} of the prefix does not replay on the model: \
                         the report's initial model differs from the check's"
                    ));
                    break;
                }
            },
            // In the prefix, an unknown operation took effect; `None` means it changes nothing.
            Outcome::Unknown { .. } => {
                if let Some(next) = state.step_unknown(&op.input) {
                    state = next;
                }
            }
            // The search drops failed operations, so the prefix never holds one.
            Outcome::Fail { .. } => {
                replay_error = Some(format!("op {id} of the prefix failed (outcome fail)"));
                break;
            }
        }
    }
    let in_prefix: std::collections::BTreeSet<OpId> =
        violation.longest_prefix.iter().copied().collect();
    let stuck = if replay_error.is_some() {
        Vec::new()
    } else {
        violation
            .stuck
            .iter()
            .take(STUCK_EXPLAINED_MAX)
            .filter_map(|id| by_id.get(id))
            .map(|op| {
                let observed = match &op.outcome {
                    Outcome::Ok { output } => ret_text(output),
                    Outcome::Fail { error } => format!("fail: {error}"),
                    Outcome::Unknown { error } => format!("unknown: {error}"),
                };
                let mut after = state.clone();
                let expected = ret_text(&after.apply(&op.input));
                let accepted_state = match &op.outcome {
                    Outcome::Ok { output } => state.step(&op.input, output),
                    Outcome::Fail { .. } | Outcome::Unknown { .. } => None,
                };
                let blockers = accepted_state
                    .as_ref()
                    .map(|next| blockers(history, &in_prefix, op.id, next))
                    .unwrap_or_default();
                Stuck {
                    id: op.id,
                    observed,
                    expected,
                    change: state_change_text(&state, &after),
                    accepted: accepted_state.is_some(),
                    blockers,
                }
            })
            .collect()
    };
    Explanation {
        before: state_text(&state),
        stuck,
        replay_error,
    }
}

/// Answered operations not in the prefix (and not `stuck_id`) whose revision bound `next`
/// already exceeds, lowest bound first.
fn blockers(
    history: &History<Op, Ret>,
    in_prefix: &std::collections::BTreeSet<OpId>,
    stuck_id: OpId,
    next: &MvccModel,
) -> Vec<Blocker> {
    let Some(progress) = next.progress() else {
        return Vec::new();
    };
    let mut found: Vec<Blocker> = history
        .ops
        .iter()
        .filter(|op| op.id != stuck_id && !in_prefix.contains(&op.id))
        .filter_map(|op| match &op.outcome {
            Outcome::Ok { output } => MvccModel::progress_max(&op.input, output)
                .filter(|bound| progress > *bound)
                .map(|progress_max| Blocker {
                    id: op.id,
                    progress_max,
                }),
            Outcome::Fail { .. } | Outcome::Unknown { .. } => None,
        })
        .collect();
    found.sort_by_key(|blocker| (blocker.progress_max, blocker.id));
    found.truncate(BLOCKERS_MAX);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvsim_model::mvcc::{
        KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse, Response, ResponseHeader,
    };

    fn put(key: &str, value: &str) -> Op {
        Op::Put(PutRequest {
            key: key.into(),
            value: value.into(),
            ..PutRequest::default()
        })
    }

    fn op(id: OpId, input: Op, output: Ret) -> Operation<Op, Ret> {
        Operation {
            id,
            client: id,
            call_ns: id * 10,
            return_ns: Some(id * 10 + 5),
            input,
            outcome: Outcome::Ok { output },
        }
    }

    #[test]
    fn stuck_read_shows_the_model_answer_and_no_change() {
        let written = Ret::Ok(Response::Put(PutResponse {
            header: ResponseHeader { revision: 2 },
            prev_kv: None,
        }));
        let stale = Ret::Ok(Response::Range(RangeResponse {
            header: ResponseHeader { revision: 1 },
            kvs: vec![],
            more: false,
            count: 0,
        }));
        let get = Op::Range(RangeRequest {
            key: "a".into(),
            ..RangeRequest::default()
        });
        let history = History {
            ops: vec![op(0, put("a", "1"), written), op(1, get, stale)],
            ..History::default()
        };
        let violation = Violation {
            partition: None,
            longest_prefix: vec![0],
            stuck: vec![1],
            state_debug: String::new(),
        };
        let explanation = explain(&history, &violation, &MvccModel::default());
        assert_eq!(explanation.replay_error, None);
        assert!(
            explanation.before.contains(r#""a"="1" c2 m2 v1"#),
            "{}",
            explanation.before
        );
        let mut kv_text = String::new();
        super::super::text::write_kv(
            &mut kv_text,
            &KeyValue {
                key: "a".into(),
                value: "1".into(),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                lease: 0,
            },
        );
        assert_eq!(
            explanation.stuck,
            vec![Stuck {
                id: 1,
                observed: "rev 1 count 0".into(),
                expected: format!("rev 2 count 1 [{kv_text}]"),
                change: "revision 2 · compacted -1\n(unchanged)\n".into(),
                accepted: false,
                blockers: vec![],
            }]
        );
    }

    #[test]
    fn an_innocent_stuck_write_names_the_stale_read_that_blocks_it() {
        // The search prunes on revision bounds, so it may report the put (which the model
        // accepts) as stuck; the read that answered revision 1 is what cannot be placed.
        let written = Ret::Ok(Response::Put(PutResponse {
            header: ResponseHeader { revision: 2 },
            prev_kv: None,
        }));
        let stale = Ret::Ok(Response::Range(RangeResponse {
            header: ResponseHeader { revision: 1 },
            kvs: vec![],
            more: false,
            count: 0,
        }));
        let get = Op::Range(RangeRequest {
            key: "a".into(),
            ..RangeRequest::default()
        });
        let history = History {
            ops: vec![op(0, put("a", "1"), written), op(1, get, stale)],
            ..History::default()
        };
        let violation = Violation {
            partition: None,
            longest_prefix: vec![],
            stuck: vec![0],
            state_debug: String::new(),
        };
        let explanation = explain(&history, &violation, &MvccModel::default());
        let stuck = &explanation.stuck[0];
        assert!(stuck.accepted);
        assert_eq!(
            stuck.blockers,
            vec![Blocker {
                id: 1,
                progress_max: 1
            }]
        );
    }

    #[test]
    fn a_prefix_the_model_rejects_is_reported() {
        let wrong = Ret::Ok(Response::Put(PutResponse {
            header: ResponseHeader { revision: 9 },
            prev_kv: None,
        }));
        let history = History {
            ops: vec![op(0, put("a", "1"), wrong)],
            ..History::default()
        };
        let violation = Violation {
            partition: None,
            longest_prefix: vec![0, 7],
            stuck: vec![0],
            state_debug: String::new(),
        };
        let explanation = explain(&history, &violation, &MvccModel::default());
        let error = explanation.replay_error.expect("replay must fail");
        assert!(error.contains("op 0"), "{error}");
        assert!(explanation.stuck.is_empty());
    }
}
