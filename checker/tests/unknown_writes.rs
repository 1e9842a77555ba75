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

use kvsim_checker::history::{History, Operation, Outcome};
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult, Stats};
use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, KeyValue, MvccModel, Op, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, Response, ResponseHeader, Ret, TxnRequest, TxnResponse,
};

const MS: u64 = 1_000_000;

#[derive(Default)]
struct Builder {
    history: History<Op, Ret>,
}

impl Builder {
    fn push(&mut self, call_ns: u64, input: Op, outcome: Option<Response>) -> &mut Self {
        let id = self.history.ops.len() as u64;
        let (return_ns, outcome) = match outcome {
            Some(response) => (
                Some(call_ns + MS),
                Outcome::Ok {
                    output: Ret::Ok(response),
                },
            ),
            None => (
                None,
                Outcome::Unknown {
                    error: "timeout".into(),
                },
            ),
        };
        // One client per op: only real time orders them.
        self.history.ops.push(Operation {
            id,
            client: id,
            call_ns,
            return_ns,
            input,
            outcome,
        });
        self
    }

    fn unknown(&mut self, call_ns: u64, input: Op) -> &mut Self {
        self.push(call_ns, input, None)
    }

    fn ok(&mut self, call_ns: u64, input: Op, response: Response) -> &mut Self {
        self.push(call_ns, input, Some(response))
    }

    fn verdict(&self) -> (CheckResult, Stats) {
        check_with_stats(
            &self.history,
            MvccModel::new(),
            &Budget::default(),
            &CheckOptions::default(),
        )
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
}

fn put_ok(revision: i64) -> Response {
    Response::Put(PutResponse {
        header: ResponseHeader { revision },
        prev_kv: None,
    })
}

fn get(key: &str) -> Op {
    Op::Range(RangeRequest {
        key: key.into(),
        ..Default::default()
    })
}

/// `key` holding `value`, created at revision 2, at `version` with `mod_revision` = the
/// header's revision.
fn got(key: &str, value: &str, version: i64, revision: i64) -> Response {
    Response::Range(RangeResponse {
        header: ResponseHeader { revision },
        kvs: vec![KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: 2,
            mod_revision: revision,
            version,
            lease: 0,
        }],
        more: false,
        count: 1,
    })
}

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
