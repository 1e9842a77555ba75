//! Unknown-outcome puts that a later response proves happened, pinned before the search.
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
//!
//! Checked against stateright's `LinearizabilityTester` on the unmodified histories in
//! `tests/oracle.rs` (`mvcc_with_pinned_puts_matches_stateright`).

use std::collections::BTreeMap;

use kvsim_model::mvcc::{
    KeyValue, Op, PutResponse, RequestOp, Response, ResponseHeader, ResponseOp, Ret, TxnRequest,
};

use crate::history::{History, Outcome};

/// What the history shows about one unknown put that may be pinned.
struct Candidate {
    /// Index into `history.ops`.
    index: usize,
    /// Every `mod_revision` an observation showed (a pin needs exactly one).
    revisions: Vec<i64>,
    /// The earliest return time of an observer that has one.
    observed_by_ns: Option<u64>,
    observed: bool,
}

/// Rewrites every unknown-outcome put that an answered response proves happened (see the module
/// documentation for when, and why it keeps the verdict). Returns how many were pinned.
/// Operation ids, clients and call times are kept, so verdicts and reports still name the
/// recorded operations.
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
    // (key, value) of each pinnable put → its candidate slot.
    let mut by_write: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (index, op) in history.ops.iter().enumerate() {
        let (Op::Put(put), Outcome::Unknown { .. }) = (&op.input, &op.outcome) else {
            continue;
        };
        let pinnable = !put.ignore_value
            && !put.value.is_empty()
            && writers.get(put.value.as_str()) == Some(&1)
            && !ignore_value_keys.contains(&put.key.as_str());
        if pinnable {
            by_write.insert((put.key.as_str(), put.value.as_str()), candidates.len());
            candidates.push(Candidate {
                index,
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
        for_each_kv(response, &mut |kv: &KeyValue| {
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
    let mut pinned = 0;
    for candidate in candidates {
        let [revision] = candidate.revisions[..] else {
            continue;
        };
        // The first revision a put can create is 2 (an empty store is at revision 1).
        if !candidate.observed || revision < 2 {
            continue;
        }
        let op = &mut history.ops[candidate.index];
        if candidate
            .observed_by_ns
            .is_some_and(|return_ns| return_ns < op.call_ns)
        {
            continue;
        }
        let Op::Put(put) = &mut op.input else {
            unreachable!("candidates are puts");
        };
        put.prev_kv = false;
        op.outcome = Outcome::Ok {
            output: Ret::Ok(Response::Put(PutResponse {
                header: ResponseHeader { revision },
                prev_kv: None,
            })),
        };
        op.return_ns = candidate.observed_by_ns;
        pinned += 1;
    }
    pinned
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

/// Calls `visit` on every key-value a response shows: range results, previous values of puts
/// and deletes, and everything inside txn responses.
fn for_each_kv(response: &Response, visit: &mut impl FnMut(&KeyValue)) {
    match response {
        Response::Put(put) => put.prev_kv.iter().for_each(visit),
        Response::Range(range) => range.kvs.iter().for_each(visit),
        Response::DeleteRange(delete) => delete.prev_kvs.iter().for_each(visit),
        Response::Txn(txn) => txn
            .responses
            .iter()
            .for_each(|inner| for_each_kv_op(inner, visit)),
        Response::LeaseGrant { .. }
        | Response::LeaseRevoke { .. }
        | Response::LeaseKeepAlive { .. }
        | Response::LeaseTimeToLive { .. }
        | Response::Compact { .. } => {}
    }
}

fn for_each_kv_op(response: &ResponseOp, visit: &mut impl FnMut(&KeyValue)) {
    match response {
        ResponseOp::Put(put) => put.prev_kv.iter().for_each(visit),
        ResponseOp::Range(range) => range.kvs.iter().for_each(visit),
        ResponseOp::DeleteRange(delete) => delete.prev_kvs.iter().for_each(visit),
        ResponseOp::Txn(txn) => txn
            .responses
            .iter()
            .for_each(|inner| for_each_kv_op(inner, visit)),
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
}
