//! MVCC histories with many unknown-outcome writes (a client timed out; the write may have
//! taken effect at any point after its call, or never): the two rules that keep the search from
//! trying every subset of them, each shown where it applies, where it must not, and by the work
//! it saves (search steps are deterministic).
//!
//! - A run of revisions that only unknown writes can fill, longer than the capped rounds' chain
//!   (`UNKNOWN_CHAIN_ROUNDS`): the chain runs on while the next answered op's revision is out of
//!   reach (`Search::progress_gap`).
//! - Unknown puts of one key whose values no operation mentions are tried one at a time, first
//!   called first (`Spec::value_twin`, `Spec::mentions`); a put whose value is read, compared
//!   for equality or compared by order is not.
//! - A wrong order of unknown writes is refuted as soon as the revision reaches a key version
//!   some answer still to place shows (`Spec::views`), not when that answer's turn comes; stale
//!   (serializable), historic, keys-only and in-txn views prune nothing they must not.
//! - Likewise a key made present when an answer still to place shows it absent later and
//!   nothing still to place can remove it before then (`Spec::absences`): a mass delete tried
//!   before the puts whose keys every later read shows gone (28,987 steps without, <= 200 with).
//!   An absence is also shown by a txn compare only a missing key satisfies, and an answered
//!   put still to place makes its key present at its revision whatever the node's state
//!   (`Spec::presences`): a delete tried too early dies at once (79,451 steps without, 12 with).

mod support;

use kvsim_checker::CheckResult;
use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, Op, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, Response, ResponseHeader, TxnRequest, TxnResponse,
};
use support::{get, got, kv, put, put_ok, range, shows, Builder, MS};

/// Twelve unknown puts of twelve keys, then a put answered at revision 8: revisions 2..7 (six)
/// were made by six of the unknown puts, more than the capped rounds' chain of three. Before
/// the gap rule, the second round tried every set of at most three of them (hundreds of nodes)
/// before the uncapped round found the run at once.
#[test]
fn a_revision_run_only_unknown_writes_fill_is_found_in_the_first_round() {
    let mut b = Builder::default();
    for i in 0..12 {
        b.unknown(i * MS, put(&format!("k{i:02}"), "v"));
    }
    b.ok(20 * MS, put("z", "answered"), put_ok(8));
    let (result, stats) = b.verdict();
    assert_eq!(result, CheckResult::Linearizable);
    assert!(stats.steps <= 20, "{} search steps", stats.steps);
}

/// The same run of revisions cannot be filled when too few unknown writes exist: the verdict
/// stays a violation (the gap rule only ever lets capped rounds go further, and only the
/// uncapped round's refutation counts).
#[test]
fn a_revision_run_too_long_for_the_unknown_writes_is_a_violation() {
    let mut b = Builder::default();
    for i in 0..4 {
        b.unknown(i * MS, put(&format!("k{i:02}"), "v"));
    }
    b.ok(20 * MS, put("z", "answered"), put_ok(8));
    assert!(matches!(b.verdict().0, CheckResult::NotLinearizable(_)));
}

/// Ten unknown puts of one key, values never read, and a read showing the key at version 11:
/// impossible, and every subset of the puts must be refuted. As twins, each refutation is one
/// chain: a few dozen steps, where every subset and order of ten puts is thousands.
#[test]
fn unread_unknown_puts_of_one_key_are_tried_as_one() {
    let mut b = Builder::default();
    for i in 0..10 {
        b.unknown(i * MS, put("k", &format!("v{i}")));
    }
    b.ok(20 * MS, get("k"), got("k", "x", 11, 12));
    let (result, stats) = b.verdict();
    assert!(
        matches!(result, CheckResult::NotLinearizable(_)),
        "{result:?}"
    );
    assert!(stats.steps <= 100, "{} search steps", stats.steps);

    // Version 10 at revision 11: all ten took effect, the last one read — so it is mentioned,
    // and the others, still twins, fill the nine revisions before it.
    let mut b = Builder::default();
    for i in 0..10 {
        b.unknown(i * MS, put("k", &format!("v{i}")));
    }
    b.ok(20 * MS, get("k"), got("k", "v9", 10, 11));
    assert_eq!(b.verdict().0, CheckResult::Linearizable);
}

/// Two unknown puts of one key; a later answer tells their values apart. Were they twins, only
/// the first called (`a`) would be tried, and the history would be wrongly refuted.
fn first_put_a_then_b(observer: Op, answer: Response) -> CheckResult {
    let mut b = Builder::default();
    b.unknown(0, put("k", "a"))
        .unknown(MS, put("k", "b"))
        .ok(10 * MS, observer, answer);
    b.verdict().0
}

#[test]
fn a_read_value_makes_its_put_no_twin() {
    assert_eq!(
        first_put_a_then_b(get("k"), got("k", "b", 1, 2)),
        CheckResult::Linearizable
    );
}

fn txn_on_k(result: CompareResult, value: &str) -> Op {
    Op::Txn(TxnRequest {
        compare: vec![Compare {
            key: "k".into(),
            result,
            target: CompareTarget::Value(value.into()),
        }],
        success: vec![RequestOp::Put(PutRequest {
            key: "done".into(),
            value: "1".into(),
            ..Default::default()
        })],
        failure: vec![],
    })
}

/// The txn succeeded, its put made revision 3: one of the two puts made revision 2.
fn txn_succeeded() -> Response {
    Response::Txn(TxnResponse {
        header: ResponseHeader { revision: 3 },
        succeeded: true,
        responses: vec![kvsim_model::mvcc::ResponseOp::Put(PutResponse {
            header: ResponseHeader { revision: 3 },
            prev_kv: None,
        })],
    })
}

#[test]
fn a_compare_for_equality_makes_its_put_no_twin() {
    assert_eq!(
        first_put_a_then_b(txn_on_k(CompareResult::Equal, "b"), txn_succeeded()),
        CheckResult::Linearizable
    );
}

/// `k > "a"` tells `b` from `a` without naming it: every put of `k` stops being a twin.
#[test]
fn an_ordered_compare_makes_every_put_of_its_key_no_twin() {
    assert_eq!(
        first_put_a_then_b(txn_on_k(CompareResult::Greater, "a"), txn_succeeded()),
        CheckResult::Linearizable
    );
}

/// Eight unknown puts of eight keys, then a put answered at revision 10 (all eight took
/// effect, at 2..9), then a read showing each key at the revision of its call order: one order
/// of 8! is right. The search tries the newest call first; without views each wrong order
/// is refuted only at the read, after the answered put, so it tries them all (memoized, still
/// thousands); with views the first wrong key at a revision the read shows ends the branch.
#[test]
fn a_wrong_order_of_unknown_writes_dies_when_the_revision_reaches_a_shown_version() {
    let mut b = Builder::default();
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        b.unknown(i as u64 * MS, put(key, "v"));
    }
    b.ok(20 * MS, put("z", "answered"), put_ok(10));
    let kvs = keys
        .iter()
        .enumerate()
        .map(|(i, key)| kv(key, "v", i as i64 + 2, i as i64 + 2, 1))
        .collect();
    let read = Op::Range(RangeRequest {
        key: "k".into(),
        range_end: "l".into(),
        ..Default::default()
    });
    b.ok(30 * MS, read, shows(10, kvs));
    let (result, stats) = b.verdict();
    assert_eq!(result, CheckResult::Linearizable);
    assert!(stats.steps <= 200, "{} search steps", stats.steps);
}

/// `k` is put at 2 and again at 3; a read called after both returned shows `k` as it was at
/// 2. As `view`s of the current revision that would be refuted the moment the second put
/// raised the revision to 3; each of these reads shows another point, and must pass.
fn reads_the_first_version_after_the_second(read: Op, answer: Response) -> CheckResult {
    let mut b = Builder::default();
    b.ok(0, put("k", "a"), put_ok(2))
        .ok(10 * MS, put("k", "b"), put_ok(3))
        .ok(20 * MS, read, answer);
    b.verdict().0
}

#[test]
fn a_stale_serializable_read_is_no_view_of_the_current_revision() {
    assert_eq!(
        reads_the_first_version_after_the_second(
            range("k", 0, true, false),
            shows(2, vec![kv("k", "a", 2, 2, 1)])
        ),
        CheckResult::Linearizable
    );
}

#[test]
fn a_historic_read_is_no_view_of_the_current_revision() {
    assert_eq!(
        reads_the_first_version_after_the_second(
            range("k", 2, false, false),
            shows(3, vec![kv("k", "a", 2, 2, 1)])
        ),
        CheckResult::Linearizable
    );
}

/// A keys-only read shows no value: its view must match the key's version without one.
#[test]
fn a_keys_only_view_is_matched_without_its_value() {
    let mut b = Builder::default();
    b.ok(0, put("k", "a"), put_ok(2))
        .unknown(5 * MS, put("other", "x"))
        .ok(
            20 * MS,
            range("k", 0, false, true),
            shows(3, vec![kv("k", "", 2, 2, 1)]),
        );
    assert_eq!(b.verdict().0, CheckResult::Linearizable);
}

/// A txn's range after its own put shows the key at the txn's revision (and version), later
/// than the point it is linearized at: a view from the future, possible all along.
#[test]
fn a_txn_range_after_its_own_put_is_a_possible_view() {
    let mut b = Builder::default();
    let txn = Op::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(PutRequest {
                key: "k".into(),
                value: "b".into(),
                ..Default::default()
            }),
            RequestOp::Range(RangeRequest {
                key: "k".into(),
                ..Default::default()
            }),
        ],
        failure: vec![],
    });
    let answer = Response::Txn(TxnResponse {
        header: ResponseHeader { revision: 4 },
        succeeded: true,
        responses: vec![
            kvsim_model::mvcc::ResponseOp::Put(PutResponse {
                header: ResponseHeader { revision: 4 },
                prev_kv: None,
            }),
            kvsim_model::mvcc::ResponseOp::Range(RangeResponse {
                header: ResponseHeader { revision: 4 },
                kvs: vec![kv("k", "b", 2, 4, 2)],
                more: false,
                count: 1,
            }),
        ],
    });
    b.ok(0, put("k", "a"), put_ok(2))
        .unknown(5 * MS, put("other", "x"))
        .ok(20 * MS, txn, answer);
    assert_eq!(b.verdict().0, CheckResult::Linearizable);
}

/// Eight unknown puts of eight keys and an unknown delete of all of them (called last, so tried
/// first), a put answered at revision 11 (all nine took effect, at 2..10), then reads showing
/// every key gone: the delete came last. Without absences each order that puts a key after the
/// delete is refuted only at the reads, after every order of the rest; with them, the step
/// that makes a key present when nothing still to place can remove it before the read's
/// revision ends the branch.
fn mass_delete_then_reads(read_of: impl Fn(&str) -> (Op, Response)) -> (CheckResult, u64) {
    let mut b = Builder::default();
    for key in 0..8 {
        b.unknown(MS + key, put(&format!("k{key}"), "x"));
    }
    b.unknown(
        2 * MS,
        Op::DeleteRange(kvsim_model::mvcc::DeleteRangeRequest {
            key: "k".into(),
            range_end: "l".into(),
            prev_kv: false,
        }),
    );
    b.ok(50 * MS, put("z", "v"), put_ok(11));
    for key in 0..8 {
        let (read, answer) = read_of(&format!("k{key}"));
        b.ok(60 * MS + key, read, answer);
    }
    let (verdict, stats) = b.verdict();
    (verdict, stats.steps)
}

#[test]
fn a_mass_delete_before_puts_whose_keys_reads_show_gone_dies_at_once() {
    let (verdict, steps) = mass_delete_then_reads(|key| (get(key), shows(11, vec![])));
    assert_eq!(verdict, CheckResult::Linearizable);
    assert!(steps <= 200, "{steps} steps");
}

/// The other side: a serializable read may be stale, so its "absent" fixes no revision and
/// prunes nothing (still linearizable); and a key one read shows present at revision 11, put at
/// 9, while every other key is gone, is still a violation: the delete must come after the put
/// at 10, so it removed that key too.
#[test]
fn absences_of_stale_reads_prune_nothing_and_a_present_key_is_still_refuted() {
    let (verdict, _) =
        mass_delete_then_reads(|key| (range(key, 0, true, false), shows(11, vec![])));
    assert_eq!(verdict, CheckResult::Linearizable);
    let (verdict, _) = mass_delete_then_reads(|key| {
        if key == "k3" {
            (get(key), shows(11, vec![kv(key, "x", 9, 9, 1)]))
        } else {
            (get(key), shows(11, vec![]))
        }
    });
    assert!(
        matches!(verdict, CheckResult::NotLinearizable(_)),
        "{verdict:?}"
    );
}

/// Key k put at 2; eight unknown puts of other keys; an unknown delete of k, called last (so
/// tried first); a put of k answered at revision 11 and a read showing k gone at 12. So the
/// eight puts made 3..10 and the delete came at 12, after the answered put. Tried first, the
/// delete leaves k absent, so no absence of a present key objects; only at the answered put,
/// after every order of the eight, would the read's absence refute it. With presences
/// (`Spec::presences`) the answered put shows k present at 11, the read absent at 12, and
/// nothing left to remove it in between: the branch ends at the delete (12 steps; 79,451
/// without presences).
#[test]
fn an_early_delete_of_a_key_an_answered_put_makes_present_before_it_is_shown_gone_dies_at_once() {
    let mut b = Builder::default();
    b.ok(0, put("k", "a"), put_ok(2));
    for i in 0..8 {
        b.unknown(2 * MS + i, put(&format!("z{i}"), "x"));
    }
    b.unknown(3 * MS, delete("k"));
    b.ok(50 * MS, put("k", "b"), put_ok(11));
    b.ok(60 * MS, get("k"), shows(12, vec![]));
    let (result, stats) = b.verdict();
    assert_eq!(result, CheckResult::Linearizable);
    assert!(stats.steps <= 200, "{} search steps", stats.steps);
}

/// The same shape for a txn's compare: k put at 2; eight unknown puts of other keys; an
/// unknown put of k and a later unknown delete of k; a txn answered at revision 12 that found k
/// missing (`create_revision = 0` held) and put it. So k was absent at 11, the revision its
/// compare read, and the delete came after the put. Tried newest first, the delete goes
/// first, and the put after it makes k present with nothing left to remove it: without the
/// txn's absence that is refuted only at the txn, after every order of the eight other puts
/// (11 steps; 79,450 without).
#[test]
fn a_txn_that_found_its_key_missing_refutes_a_put_after_the_last_delete_at_once() {
    let mut b = Builder::default();
    b.ok(0, put("k", "a"), put_ok(2));
    for i in 0..8 {
        b.unknown(2 * MS + i, put(&format!("z{i}"), "x"));
    }
    b.unknown(3 * MS, put("k", "u"));
    b.unknown(4 * MS, delete("k"));
    let create_if_missing = Op::Txn(TxnRequest {
        compare: vec![Compare {
            key: "k".into(),
            result: CompareResult::Equal,
            target: CompareTarget::CreateRevision(0),
        }],
        success: vec![RequestOp::Put(PutRequest {
            key: "k".into(),
            value: "t".into(),
            ..Default::default()
        })],
        failure: vec![],
    });
    let created = Response::Txn(TxnResponse {
        header: ResponseHeader { revision: 12 },
        succeeded: true,
        responses: vec![kvsim_model::mvcc::ResponseOp::Put(PutResponse {
            header: ResponseHeader { revision: 12 },
            prev_kv: None,
        })],
    });
    b.ok(50 * MS, create_if_missing.clone(), created.clone());
    let (result, stats) = b.verdict();
    assert_eq!(result, CheckResult::Linearizable);
    assert!(stats.steps <= 200, "{} search steps", stats.steps);

    // Without the delete, k cannot have been missing at 11: a violation.
    let mut b = Builder::default();
    b.ok(0, put("k", "a"), put_ok(2));
    for i in 0..9 {
        b.unknown(2 * MS + i, put(&format!("z{i}"), "x"));
    }
    b.unknown(4 * MS, put("k", "u"));
    b.ok(50 * MS, create_if_missing, created);
    assert!(matches!(b.verdict().0, CheckResult::NotLinearizable(_)));
}

fn delete(key: &str) -> Op {
    Op::DeleteRange(kvsim_model::mvcc::DeleteRangeRequest {
        key: key.into(),
        range_end: String::new(),
        prev_kv: false,
    })
}
