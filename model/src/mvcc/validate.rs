//! State-independent request checks: what etcd's gRPC layer (`v3rpc/key.go`) rejects before a
//! request reaches Raft. Their errors are valid answers in every state and change nothing.

use std::collections::BTreeSet;

use crate::mvcc::types::{
    DeleteRangeRequest, EtcdError, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

pub(crate) fn check_range(r: &RangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// etcd `checkPutRequest`: empty key, then `ignore_value` with a value, then `ignore_lease`
/// with a lease (verified on 3.4.23: "value is provided" wins over "key not found").
pub(crate) fn check_put(p: &PutRequest) -> Result<(), EtcdError> {
    if p.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if p.ignore_value && !p.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if p.ignore_lease && p.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

pub(crate) fn check_delete(d: &DeleteRangeRequest) -> Result<(), EtcdError> {
    if d.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// etcd `checkTxnRequest` + `checkIntervals` on both branches, in that order.
pub(crate) fn check_txn(t: &TxnRequest) -> Result<(), EtcdError> {
    check_txn_request(t, MAX_TXN_OPS)?;
    check_intervals(&t.success)?;
    check_intervals(&t.failure)?;
    Ok(())
}

/// etcd `checkTxnRequest`: each of compare / success / failure may hold `ops_max` entries, and a
/// nested transaction gets what its parent's largest list left over (`maxTxnOps - opc`).
/// Verified on 3.4.23: 100 success + 100 failure ops pass; 129 compares fail; a nested txn of 119
/// ranges next to 9 other ops fails while 118 pass.
fn check_txn_request(t: &TxnRequest, ops_max: usize) -> Result<(), EtcdError> {
    let opc = t.compare.len().max(t.success.len()).max(t.failure.len());
    if opc > ops_max {
        return Err(EtcdError::TooManyOps);
    }
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in t.success.iter().chain(&t.failure) {
        match op {
            RequestOp::Range(r) => check_range(r)?,
            RequestOp::Put(p) => check_put(p)?,
            RequestOp::DeleteRange(d) => check_delete(d)?,
            RequestOp::Txn(nested) => check_txn_request(nested, ops_max - opc)?,
        }
    }
    Ok(())
}

/// A delete's interval as etcd's `checkIntervals` builds it with `adt.NewStringAffineInterval`.
struct DeleteInterval<'a> {
    key: &'a str,
    range_end: &'a str,
}

impl DeleteInterval<'_> {
    /// Whether a put of `key` overlaps. A point delete is `[key, key+"\0")`; otherwise
    /// `[key, range_end)` compared literally, so a from-key delete (`range_end == "\0"`) is an
    /// inverted interval that overlaps nothing: etcd 3.4.23 accepts
    /// `delete --from-key a; put x` in one transaction (verified) and applies both.
    fn overlaps(&self, key: &str) -> bool {
        if self.range_end.is_empty() {
            self.key == key
        } else {
            self.key <= key && key < self.range_end
        }
    }
}

/// etcd `checkIntervals`: within one branch (nested transactions included) a key may be put at
/// most once and never both put and deleted; a key put in both branches of one nested
/// transaction is fine (they exclude each other). Returns `DuplicateKey` otherwise.
fn check_intervals(ops: &[RequestOp]) -> Result<(), EtcdError> {
    collect_intervals(ops).map(|_| ())
}

type Collected<'a> = (BTreeSet<&'a str>, Vec<DeleteInterval<'a>>);

fn collect_intervals(ops: &[RequestOp]) -> Result<Collected<'_>, EtcdError> {
    let mut dels: Vec<DeleteInterval<'_>> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(DeleteInterval {
                key: &d.key,
                range_end: &d.range_end,
            }),
            _ => None,
        })
        .collect();
    let overlaps = |dels: &[DeleteInterval<'_>], key: &str| dels.iter().any(|d| d.overlaps(key));

    let mut puts: BTreeSet<&str> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(nested) = op else { continue };
        let (puts_then, dels_then) = collect_intervals(&nested.success)?;
        let (puts_else, dels_else) = collect_intervals(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || overlaps(&dels, key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key);
        }
        for key in &puts_else {
            if puts.contains(key) && !puts_then.contains(key) {
                return Err(EtcdError::DuplicateKey);
            }
            if overlaps(&dels, key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }

    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(p.key.as_str()) || overlaps(&dels, &p.key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(&p.key);
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::types::{Compare, CompareResult, CompareTarget};

    fn put(key: &str) -> RequestOp {
        RequestOp::Put(PutRequest {
            key: key.into(),
            value: "v".into(),
            ..Default::default()
        })
    }
    fn del(key: &str, range_end: &str) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            prev_kv: false,
        })
    }
    fn get(key: &str) -> RequestOp {
        RequestOp::Range(RangeRequest {
            key: key.into(),
            ..Default::default()
        })
    }
    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: vec![],
            success,
            failure,
        }
    }
    fn nested(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp::Txn(txn(success, failure))
    }

    // Every case below was run against etcd 3.4.23 (JSON gateway) with the verdict noted.
    #[test]
    fn duplicate_key_rules_match_etcd() {
        let dup = Err(EtcdError::DuplicateKey);
        assert_eq!(check_txn(&txn(vec![put("x"), put("x")], vec![])), dup);
        assert_eq!(check_txn(&txn(vec![put("x"), del("x", "")], vec![])), dup);
        assert_eq!(check_txn(&txn(vec![del("x", ""), put("x")], vec![])), dup);
        assert_eq!(check_txn(&txn(vec![del("w", "y"), put("x")], vec![])), dup);
        assert_eq!(
            check_txn(&txn(vec![del("x", ""), del("x", "")], vec![])),
            Ok(())
        );
        assert_eq!(
            check_txn(&txn(vec![del("a", "\0"), put("x")], vec![])),
            Ok(())
        );
        assert_eq!(
            check_txn(&txn(vec![nested(vec![put("x")], vec![put("x")])], vec![])),
            Ok(())
        );
        assert_eq!(
            check_txn(&txn(vec![nested(vec![put("x")], vec![]), put("x")], vec![])),
            dup
        );
        assert_eq!(
            check_txn(&txn(
                vec![
                    nested(vec![put("x")], vec![]),
                    nested(vec![], vec![put("x")])
                ],
                vec![]
            )),
            dup
        );
        assert_eq!(
            check_txn(&txn(
                vec![nested(vec![del("x", "")], vec![]), put("x")],
                vec![]
            )),
            dup
        );
        assert_eq!(
            check_txn(&txn(
                vec![put("x"), nested(vec![del("x", "")], vec![])],
                vec![]
            )),
            dup
        );
        assert_eq!(check_txn(&txn(vec![put("x")], vec![put("x")])), Ok(()));
        // The failure branch is checked even when the success branch would be taken.
        assert_eq!(
            check_txn(&txn(vec![put("x")], vec![put("x"), put("x")])),
            dup
        );
        // A delete range ending before the key does not cover it.
        assert_eq!(
            check_txn(&txn(vec![del("w", "x"), put("x")], vec![])),
            Ok(())
        );
    }

    #[test]
    fn too_many_ops_is_per_list_and_nested_gets_the_rest() {
        let gets = |n: usize| (0..n).map(|i| get(&format!("k{i}"))).collect::<Vec<_>>();
        assert_eq!(check_txn(&txn(gets(128), vec![])), Ok(()));
        assert_eq!(
            check_txn(&txn(gets(129), vec![])),
            Err(EtcdError::TooManyOps)
        );
        assert_eq!(check_txn(&txn(gets(100), gets(100))), Ok(()));
        let compares = vec![
            Compare {
                key: "k".into(),
                result: CompareResult::Equal,
                target: CompareTarget::Version(0)
            };
            129
        ];
        let t = TxnRequest {
            compare: compares,
            success: vec![],
            failure: vec![],
        };
        assert_eq!(check_txn(&t), Err(EtcdError::TooManyOps));
        let mut ops = gets(9);
        ops.push(nested(gets(119), vec![]));
        assert_eq!(check_txn(&txn(ops, vec![])), Err(EtcdError::TooManyOps));
        let mut ops = gets(9);
        ops.push(nested(gets(118), vec![]));
        assert_eq!(check_txn(&txn(ops, vec![])), Ok(()));
    }

    #[test]
    fn empty_keys_and_ignore_flags() {
        let empty_compare = TxnRequest {
            compare: vec![Compare {
                key: String::new(),
                result: CompareResult::Equal,
                target: CompareTarget::Version(0),
            }],
            success: vec![],
            failure: vec![],
        };
        assert_eq!(check_txn(&empty_compare), Err(EtcdError::EmptyKey));
        assert_eq!(
            check_txn(&txn(vec![get("a"), put("")], vec![])),
            Err(EtcdError::EmptyKey)
        );
        let p = PutRequest {
            key: "k".into(),
            value: "v".into(),
            ignore_value: true,
            ..Default::default()
        };
        assert_eq!(check_put(&p), Err(EtcdError::ValueProvided));
        let p = PutRequest {
            key: "k".into(),
            lease: 5,
            ignore_lease: true,
            ..Default::default()
        };
        assert_eq!(check_put(&p), Err(EtcdError::LeaseProvided));
        // A static error in the failure branch fails the txn whichever branch runs.
        let bad = RequestOp::Put(PutRequest {
            key: "y".into(),
            value: "1".into(),
            ignore_value: true,
            ..Default::default()
        });
        assert_eq!(
            check_txn(&txn(vec![put("y")], vec![bad])),
            Err(EtcdError::ValueProvided)
        );
    }
}
