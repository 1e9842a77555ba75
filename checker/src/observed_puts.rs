//! Unknown-outcome puts (and txns of puts) that a later response proves happened, pinned before
//! the search.
//!
//! A put whose client timed out may have taken effect at any time after its call, or never, and
//! the search has to try both — the main source of branching (and of `unknown` verdicts) in
//! simulated histories with partitions and crashes. But when every written value is unique, as
//! in kvsim's workloads, an answered operation that shows the key holding that value is proof:
//! the put happened, at the revision the response names as the key's `mod_revision`, and before
//! the observer returned. [`pin_observed_puts`] rewrites such a put into an answered one: the
//! outcome becomes the put's only possible response, `{"header": {"revision": m}}`, and its
//! return time the earliest return of an operation that observed it.
//!
//! Soundness (the rewritten history H' is linearizable iff the recorded one H is):
//! - Let put P write value v to key k, outcome unknown, and let v be written by no other
//!   operation of H (plain puts and puts inside either txn branch, any outcome), no operation
//!   write k with `ignore_value` (which keeps the value but changes `mod_revision`), and v be
//!   non-empty (an empty value is also what `keys_only` reads show). Let R be an answered
//!   operation whose response holds a `KeyValue` (k, v, mod_revision m).
//! - H ⇒ H': take a linearization L of H. R's response is computed from the model state where R
//!   sits in L (for a historic read, an older state; for a txn, a state inside it), and that state
//!   holds (k, v) at `mod_revision` m. The store starts empty and only puts store values, so
//!   some put of v to k took effect in L at revision m with no later change of k's value or
//!   mod_revision before that state: it can only be P (v is unique; `ignore_value` excluded).
//!   So in L, P took effect, its response is header revision m (`prev_kv` aside, see below), and
//!   P precedes R, whose linearization point is before R's return. The real-time order of H'
//!   demands one extra thing of P only: that P precede every operation Q called after
//!   `R.return`; L has P before R before Q. So L is a linearization of H'.
//! - H' ⇒ H: H' only narrows what P may do (take effect, at revision m, before R returned); any
//!   linearization of H' is one of H.
//! - `prev_kv`: the flag changes the response, not the store, so P is rewritten without it; the
//!   state every other operation sees is unchanged.
//! - Observations that disagree on m (impossible in a linearizable H) or that returned before P
//!   was called leave P untouched: H keeps its verdict, decided by the unmodified search.
//! - A txn T with an unknown outcome, one of whose branches B holds only puts, each meeting
//!   P's conditions: an observation of one of B's values at m proves, by the same argument,
//!   that T took effect and took branch B (v is written nowhere else, the other branch
//!   included), at revision m (etcd writes every put of a txn at the txn's one revision). Its
//!   response is then fixed too: header m, `succeeded` = (B is the success branch), one put
//!   response of header m per put of B (`prev_kv` dropped, as for P). A txn both of whose
//!   branches an observation names is left untouched.
//!
//! Checked against stateright's `LinearizabilityTester` on the unmodified histories in
//! `tests/oracle.rs` (`mvcc_with_pinned_puts_matches_stateright`).

use std::collections::BTreeMap;

use kvsim_model::mvcc::{
    KeyValue, Op, PutRequest, PutResponse, RequestOp, Response, ResponseHeader, ResponseOp, Ret,
    TxnRequest, TxnResponse,
};

use crate::history::{History, Outcome};

/// What the history shows about one unknown write that may be pinned: a put, or one branch
/// of a txn made only of puts.
struct Candidate {
    /// Index into `history.ops`.
    index: usize,
    /// For a txn: the branch whose puts this is (`true`: success).
    branch: Option<bool>,
    /// Every `mod_revision` an observation showed (a pin needs exactly one).
    revisions: Vec<i64>,
    /// The earliest return time of an observer that has one.
    observed_by_ns: Option<u64>,
    observed: bool,
}

/// Rewrites every unknown-outcome put, and every unknown-outcome txn whose taken branch is
/// only puts, that an answered response proves happened (see the module documentation for
/// when, and why it keeps the verdict). Returns how many were pinned. Operation ids, clients
/// and call times are kept, so verdicts and reports still name the recorded operations.
pub fn pin_observed_puts(history: &mut History<Op, Ret>) -> usize {
    let mut writers: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ignore_value_keys: Vec<&str> = Vec::new();
    for op in &history.ops {
        match &op.input {
            Op::Put(put) => note_put(
                &put.key,
                &put.value,
                put.ignore_value,
                &mut writers,
                &mut ignore_value_keys,
            ),
            Op::Txn(txn) => note_txn(txn, &mut writers, &mut ignore_value_keys),
            _ => {}
        }
    }
    let pinnable = |put: &PutRequest| {
        !put.ignore_value
            && !put.value.is_empty()
            && writers.get(put.value.as_str()) == Some(&1)
            && !ignore_value_keys.contains(&put.key.as_str())
    };
    // (key, value) of each pinnable put → its candidate slot.
    let mut by_write: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (index, op) in history.ops.iter().enumerate() {
        if !matches!(op.outcome, Outcome::Unknown { .. }) {
            continue;
        }
        let writes: Vec<(Option<bool>, Vec<&PutRequest>)> = match &op.input {
            Op::Put(put) if pinnable(put) => vec![(None, vec![put])],
            Op::Txn(txn) => [(true, &txn.success), (false, &txn.failure)]
                .into_iter()
                .filter_map(|(branch, requests)| {
                    let puts = only_puts(requests)?;
                    let all = !puts.is_empty() && puts.iter().all(|put| pinnable(put));
                    all.then_some((Some(branch), puts))
                })
                .collect(),
            _ => Vec::new(),
        };
        for (branch, puts) in writes {
            for put in puts {
                by_write.insert((put.key.as_str(), put.value.as_str()), candidates.len());
            }
            candidates.push(Candidate {
                index,
                branch,
                revisions: Vec::new(),
                observed_by_ns: None,
                observed: false,
            });
        }
    }
    if candidates.is_empty() {
        return 0;
    }
    for op in &history.ops {
        let Outcome::Ok {
            output: Ret::Ok(response),
        } = &op.outcome
        else {
            continue;
        };
        response.for_each_kv(&mut |kv: &KeyValue| {
            if let Some(&slot) = by_write.get(&(kv.key.as_str(), kv.value.as_str())) {
                let candidate = &mut candidates[slot];
                candidate.observed = true;
                if !candidate.revisions.contains(&kv.mod_revision) {
                    candidate.revisions.push(kv.mod_revision);
                }
                if let Some(return_ns) = op.return_ns {
                    let earliest = candidate.observed_by_ns.get_or_insert(return_ns);
                    *earliest = (*earliest).min(return_ns);
                }
            }
        });
    }
    // A txn both of whose branches were observed (impossible in a linearizable history) is left
    // to the search.
    let mut observed_per_op: BTreeMap<usize, usize> = BTreeMap::new();
    for candidate in candidates.iter().filter(|c| c.observed) {
        *observed_per_op.entry(candidate.index).or_default() += 1;
    }
    let mut pinned = 0;
    for candidate in candidates {
        let [revision] = candidate.revisions[..] else {
            continue;
        };
        // The first revision a write can create is 2 (an empty store is at revision 1).
        if !candidate.observed || revision < 2 || observed_per_op[&candidate.index] > 1 {
            continue;
        }
        let op = &mut history.ops[candidate.index];
        if candidate
            .observed_by_ns
            .is_some_and(|return_ns| return_ns < op.call_ns)
        {
            continue;
        }
        let header = ResponseHeader { revision };
        let put_response = PutResponse {
            header,
            prev_kv: None,
        };
        let response = match (&mut op.input, candidate.branch) {
            (Op::Put(put), None) => {
                put.prev_kv = false;
                Response::Put(put_response)
            }
            (Op::Txn(txn), Some(succeeded)) => {
                let requests = if succeeded {
                    &mut txn.success
                } else {
                    &mut txn.failure
                };
                for request in requests.iter_mut() {
                    if let RequestOp::Put(put) = request {
                        put.prev_kv = false;
                    }
                }
                // etcd: every put of a txn writes at the txn's one revision, and the header
                // is the revision after it.
                Response::Txn(TxnResponse {
                    header,
                    succeeded,
                    responses: vec![ResponseOp::Put(put_response); requests.len()],
                })
            }
            _ => unreachable!("candidates are puts and txns"),
        };
        op.outcome = Outcome::Ok {
            output: Ret::Ok(response),
        };
        op.return_ns = candidate.observed_by_ns;
        pinned += 1;
    }
    pinned
}

/// The puts of a txn branch, if that is all it holds.
fn only_puts(requests: &[RequestOp]) -> Option<Vec<&PutRequest>> {
    requests
        .iter()
        .map(|request| match request {
            RequestOp::Put(put) => Some(put),
            RequestOp::Range(_) | RequestOp::DeleteRange(_) | RequestOp::Txn(_) => None,
        })
        .collect()
}

fn note_put<'a>(
    key: &'a str,
    value: &'a str,
    ignore_value: bool,
    writers: &mut BTreeMap<&'a str, usize>,
    ignore_value_keys: &mut Vec<&'a str>,
) {
    if ignore_value {
        ignore_value_keys.push(key);
    } else {
        *writers.entry(value).or_default() += 1;
    }
}

fn note_txn<'a>(
    txn: &'a TxnRequest,
    writers: &mut BTreeMap<&'a str, usize>,
    ignore_value_keys: &mut Vec<&'a str>,
) {
    for request in txn.success.iter().chain(&txn.failure) {
        match request {
            RequestOp::Put(put) => note_put(
                &put.key,
                &put.value,
                put.ignore_value,
                writers,
                ignore_value_keys,
            ),
            RequestOp::Txn(nested) => note_txn(nested, writers, ignore_value_keys),
            RequestOp::Range(_) | RequestOp::DeleteRange(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Operation;
    use kvsim_model::mvcc::{PutRequest, RangeRequest, RangeResponse};

    fn put(id: u64, key: &str, value: &str, outcome: Outcome<Ret>) -> Operation<Op, Ret> {
        Operation {
            id,
            client: id,
            call_ns: id * 10,
            return_ns: match outcome {
                Outcome::Unknown { .. } => None,
                _ => Some(id * 10 + 5),
            },
            input: Op::Put(PutRequest {
                key: key.into(),
                value: value.into(),
                prev_kv: true,
                ..PutRequest::default()
            }),
            outcome,
        }
    }

    fn unknown() -> Outcome<Ret> {
        Outcome::Unknown {
            error: "timeout".into(),
        }
    }

    fn read(id: u64, key: &str, value: &str, mod_revision: i64) -> Operation<Op, Ret> {
        Operation {
            id,
            client: id,
            call_ns: id * 10,
            return_ns: Some(id * 10 + 5),
            input: Op::Range(RangeRequest {
                key: key.into(),
                ..RangeRequest::default()
            }),
            outcome: Outcome::Ok {
                output: Ret::Ok(Response::Range(RangeResponse {
                    header: ResponseHeader {
                        revision: mod_revision,
                    },
                    kvs: vec![KeyValue {
                        key: key.into(),
                        value: value.into(),
                        create_revision: mod_revision,
                        mod_revision,
                        version: 1,
                        lease: 0,
                    }],
                    more: false,
                    count: 1,
                })),
            },
        }
    }

    fn history(ops: Vec<Operation<Op, Ret>>) -> History<Op, Ret> {
        History {
            ops,
            ..History::default()
        }
    }

    #[test]
    fn an_observed_unknown_put_becomes_answered_at_the_observed_revision() {
        let mut h = history(vec![
            put(1, "k", "v1", unknown()),
            read(3, "k", "v1", 2),
            read(5, "k", "v1", 2),
        ]);
        assert_eq!(pin_observed_puts(&mut h), 1);
        let pinned = &h.ops[0];
        assert_eq!(pinned.return_ns, Some(35), "the earliest observer's return");
        assert_eq!(
            pinned.outcome,
            Outcome::Ok {
                output: Ret::Ok(Response::Put(PutResponse {
                    header: ResponseHeader { revision: 2 },
                    prev_kv: None,
                }))
            }
        );
        let Op::Put(request) = &pinned.input else {
            panic!("still a put")
        };
        assert!(!request.prev_kv, "prev_kv dropped: it changes no state");
    }

    #[test]
    fn nothing_is_pinned_without_proof() {
        // Never observed.
        let mut h = history(vec![put(1, "k", "v1", unknown()), read(3, "k", "other", 2)]);
        assert_eq!(pin_observed_puts(&mut h), 0);
        // The value is written twice: the observation may be the other write's.
        let mut h = history(vec![
            put(1, "k", "v1", unknown()),
            put(2, "k", "v1", unknown()),
            read(3, "k", "v1", 2),
        ]);
        assert_eq!(pin_observed_puts(&mut h), 0);
        // Observations disagree on the revision.
        let mut h = history(vec![
            put(1, "k", "v1", unknown()),
            read(3, "k", "v1", 2),
            read(4, "k", "v1", 3),
        ]);
        assert_eq!(pin_observed_puts(&mut h), 0);
        // Observed before it was called.
        let mut h = history(vec![read(1, "k", "v1", 2), put(3, "k", "v1", unknown())]);
        assert_eq!(pin_observed_puts(&mut h), 0);
        // An ignore_value write to the key could have moved mod_revision.
        let mut h = history(vec![put(1, "k", "v1", unknown()), read(3, "k", "v1", 2)]);
        h.ops.push(Operation {
            input: Op::Put(PutRequest {
                key: "k".into(),
                ignore_value: true,
                ..PutRequest::default()
            }),
            ..put(7, "k", "", unknown())
        });
        assert_eq!(pin_observed_puts(&mut h), 0);
        // Answered puts are left alone.
        let answered = Outcome::Ok {
            output: Ret::Ok(Response::Put(PutResponse {
                header: ResponseHeader { revision: 2 },
                prev_kv: None,
            })),
        };
        let mut h = history(vec![put(1, "k", "v1", answered), read(3, "k", "v1", 2)]);
        let before = h.clone();
        assert_eq!(pin_observed_puts(&mut h), 0);
        assert_eq!(h, before);
    }

    /// An unknown txn: compare `k0` absent, success puts `k1=v1` and `k2=v2` (prev_kv set),
    /// failure `failure`.
    fn txn(id: u64, failure: Vec<RequestOp>) -> Operation<Op, Ret> {
        let branch_put = |key: &str, value: &str| {
            RequestOp::Put(PutRequest {
                key: key.into(),
                value: value.into(),
                prev_kv: true,
                ..PutRequest::default()
            })
        };
        Operation {
            input: Op::Txn(TxnRequest {
                compare: vec![kvsim_model::mvcc::Compare {
                    key: "k0".into(),
                    result: kvsim_model::mvcc::CompareResult::Equal,
                    target: kvsim_model::mvcc::CompareTarget::CreateRevision(0),
                }],
                success: vec![branch_put("k1", "v1"), branch_put("k2", "v2")],
                failure,
            }),
            ..put(id, "unused", "", unknown())
        }
    }

    #[test]
    fn an_observed_unknown_txn_of_puts_becomes_answered_with_its_branch() {
        let range = RequestOp::Range(RangeRequest {
            key: "k0".into(),
            ..RangeRequest::default()
        });
        let mut h = history(vec![txn(1, vec![range]), read(3, "k2", "v2", 4)]);
        assert_eq!(pin_observed_puts(&mut h), 1);
        let pinned = &h.ops[0];
        assert_eq!(pinned.return_ns, Some(35));
        let put = ResponseOp::Put(PutResponse {
            header: ResponseHeader { revision: 4 },
            prev_kv: None,
        });
        assert_eq!(
            pinned.outcome,
            Outcome::Ok {
                output: Ret::Ok(Response::Txn(TxnResponse {
                    header: ResponseHeader { revision: 4 },
                    succeeded: true,
                    responses: vec![put.clone(), put],
                }))
            }
        );
        let Op::Txn(request) = &pinned.input else {
            panic!("still a txn")
        };
        assert!(request
            .success
            .iter()
            .all(|op| matches!(op, RequestOp::Put(put) if !put.prev_kv)));
    }

    #[test]
    fn a_txn_is_pinned_only_on_proof_of_its_branch() {
        // Both branches observed: no linearizable history does that; the search decides.
        let failure_put = RequestOp::Put(PutRequest {
            key: "k3".into(),
            value: "v3".into(),
            ..PutRequest::default()
        });
        let mut h = history(vec![
            txn(1, vec![failure_put]),
            read(3, "k1", "v1", 4),
            read(4, "k3", "v3", 4),
        ]);
        assert_eq!(pin_observed_puts(&mut h), 0);
        // A branch with a delete: its answer (how many it deleted) is not known.
        let delete = RequestOp::DeleteRange(kvsim_model::mvcc::DeleteRangeRequest {
            key: "k9".into(),
            ..Default::default()
        });
        let mut h = history(vec![txn(1, vec![]), read(3, "k1", "v1", 4)]);
        if let Op::Txn(request) = &mut h.ops[0].input {
            request.success.push(delete);
        }
        assert_eq!(pin_observed_puts(&mut h), 0);
        // The txn's values written elsewhere too.
        let mut h = history(vec![
            txn(1, vec![]),
            put(2, "k1", "v1", unknown()),
            read(3, "k1", "v1", 4),
        ]);
        assert_eq!(pin_observed_puts(&mut h), 0);
    }
}
