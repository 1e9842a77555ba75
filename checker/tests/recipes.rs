//! The recipe checker on hand-written histories: the lock's and the election's violations are
//! reported, clean histories and unprovable overlaps are not.

use kvsim_checker::history::{History, Operation, Outcome};
use kvsim_checker::recipes::{check_recipes, holder_of, holders};
use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, KeyValue, Op,
    PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, Response, ResponseHeader,
    ResponseOp, Ret, TxnRequest, TxnResponse,
};
use serde_json::json;

const LOCK: &str = "lock/0";
const PROTECTED: &str = "locked/0";
const ELECTION: &str = "election/0";

struct Builder {
    history: History<Op, Ret>,
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader { revision }
}

fn create_revision(key: &str, revision: i64) -> Compare {
    Compare {
        key: key.to_string(),
        result: CompareResult::Equal,
        target: CompareTarget::CreateRevision(revision),
    }
}

fn put(key: &str, value: &str, lease: i64) -> PutRequest {
    PutRequest {
        key: key.to_string(),
        value: value.to_string(),
        lease,
        ..Default::default()
    }
}

impl Builder {
    fn new(recipe: &str, key: &str) -> Self {
        let mut history = History::default();
        history.other.push(json!({
            "type": "recipe", "t_ns": 0, "recipe": recipe, "action": "start",
            "key": key, "protected_key": PROTECTED,
        }));
        Self { history }
    }

    fn op(&mut self, input: Op, outcome: Outcome<Ret>) -> &mut Self {
        let id = self.history.ops.len() as u64;
        let return_ns = match outcome {
            Outcome::Unknown { .. } => None,
            _ => Some(id * 10 + 5),
        };
        self.history.ops.push(Operation {
            id,
            client: id,
            call_ns: id * 10,
            return_ns,
            input,
            outcome,
        });
        self
    }

    fn ok(&mut self, input: Op, response: Response) -> &mut Self {
        self.op(
            input,
            Outcome::Ok {
                output: Ret::Ok(response),
            },
        )
    }

    /// `create_revision(key) == 0 → put(key, holder)`, succeeding at `revision`.
    fn acquire(&mut self, key: &str, holder: &str, revision: i64) -> &mut Self {
        self.ok(
            Op::Txn(TxnRequest {
                compare: vec![create_revision(key, 0)],
                success: vec![RequestOp::Put(put(key, holder, 7))],
                failure: vec![RequestOp::Range(RangeRequest {
                    key: key.to_string(),
                    ..Default::default()
                })],
            }),
            Response::Txn(TxnResponse {
                header: header(revision),
                succeeded: true,
                responses: vec![ResponseOp::Put(PutResponse {
                    header: header(revision),
                    prev_kv: None,
                })],
            }),
        )
    }

    /// `create_revision(LOCK) == created → put(PROTECTED, value)` at `revision`.
    fn fenced_write(&mut self, created: i64, value: &str, revision: i64) -> &mut Self {
        self.ok(
            Op::Txn(TxnRequest {
                compare: vec![create_revision(LOCK, created)],
                success: vec![RequestOp::Put(put(PROTECTED, value, 0))],
                failure: vec![],
            }),
            Response::Txn(TxnResponse {
                header: header(revision),
                succeeded: true,
                responses: vec![ResponseOp::Put(PutResponse {
                    header: header(revision),
                    prev_kv: None,
                })],
            }),
        )
    }

    fn unfenced_write(&mut self, value: &str, revision: i64) -> &mut Self {
        self.ok(
            Op::Put(put(PROTECTED, value, 0)),
            Response::Put(PutResponse {
                header: header(revision),
                prev_kv: None,
            }),
        )
    }

    /// `create_revision(key) == created → delete(key)` at `revision`.
    fn release(&mut self, key: &str, created: i64, revision: i64) -> &mut Self {
        self.ok(
            Op::Txn(TxnRequest {
                compare: vec![create_revision(key, created)],
                success: vec![RequestOp::DeleteRange(DeleteRangeRequest {
                    key: key.to_string(),
                    ..Default::default()
                })],
                failure: vec![],
            }),
            Response::Txn(TxnResponse {
                header: header(revision),
                succeeded: true,
                responses: vec![ResponseOp::DeleteRange(DeleteRangeResponse {
                    header: header(revision),
                    deleted: 1,
                    prev_kvs: vec![],
                })],
            }),
        )
    }

    /// A linearizable range of `key` that saw `holder`'s instance created at `created`.
    fn read(&mut self, key: &str, holder: &str, created: i64, revision: i64) -> &mut Self {
        self.ok(
            Op::Range(RangeRequest {
                key: key.to_string(),
                ..Default::default()
            }),
            Response::Range(RangeResponse {
                header: header(revision),
                kvs: vec![KeyValue {
                    key: key.to_string(),
                    value: holder.to_string(),
                    create_revision: created,
                    mod_revision: created,
                    version: 1,
                    lease: 7,
                }],
                more: false,
                count: 1,
            }),
        )
    }

    fn properties(&self) -> Vec<&'static str> {
        check_recipes(&self.history)
            .into_iter()
            .map(|violation| violation.property.as_str())
            .collect()
    }
}

#[test]
fn clean_lock_history_is_not_reported() {
    let mut b = Builder::new("lock", LOCK);
    b.acquire(LOCK, "L0-1", 2)
        .fenced_write(2, "L0-1#1", 3)
        .release(LOCK, 2, 4)
        // An unfenced write between tenures, and one by the holder itself: nobody else held it.
        .unfenced_write("L0-1#2", 5)
        .acquire(LOCK, "L1-1", 6)
        .fenced_write(6, "L1-1#1", 7)
        .unfenced_write("L1-1#2", 8)
        .read(LOCK, "L1-1", 6, 8)
        .release(LOCK, 6, 9);
    assert_eq!(b.properties(), Vec::<&str>::new());
    assert_eq!(holders(&b.history, LOCK).len(), 2);
}

#[test]
fn unfenced_write_during_another_tenure_is_reported() {
    let mut b = Builder::new("lock", LOCK);
    // L0-1's lease expired at 3 (no operation records it); L1-1 acquired at 4 and proved it
    // still held the lock at 6 with a fenced write at 7. L0-1's plain put landed at 6.
    b.acquire(LOCK, "L0-1", 2)
        .acquire(LOCK, "L1-1", 4)
        .unfenced_write("L0-1#1", 6)
        .fenced_write(4, "L1-1#1", 7);
    let violations = check_recipes(&b.history);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].property, "lock.unfenced_write");
    assert_eq!(violations[0].ops, vec![1, 2, 3]);
    assert!(violations[0].message.contains("L0-1"), "{}", violations[0]);
}

#[test]
fn unfenced_write_after_the_other_tenure_provably_ended_is_not_reported() {
    let mut b = Builder::new("lock", LOCK);
    // L1-1 is only known to hold the lock in state 4; the write at 6 may have followed its
    // release or expiry, which nothing recorded: no proof, no report.
    b.acquire(LOCK, "L0-1", 2)
        .acquire(LOCK, "L1-1", 4)
        .unfenced_write("L0-1#1", 6);
    assert_eq!(b.properties(), Vec::<&str>::new());
}

#[test]
fn unknown_acquire_counts_once_a_read_proves_it() {
    let mut b = Builder::new("lock", LOCK);
    b.op(
        Op::Txn(TxnRequest {
            compare: vec![create_revision(LOCK, 0)],
            success: vec![RequestOp::Put(put(LOCK, "L1-1", 7))],
            failure: vec![],
        }),
        Outcome::Unknown {
            error: "timeout".to_string(),
        },
    );
    b.unfenced_write("L0-1#1", 5);
    assert_eq!(b.properties(), Vec::<&str>::new());
    b.read(LOCK, "L1-1", 3, 6);
    assert_eq!(b.properties(), vec!["lock.unfenced_write"]);
}

#[test]
fn overlapping_tenures_break_mutual_exclusion() {
    let mut b = Builder::new("lock", LOCK);
    // L1-1 created the key at 4, yet L0-1's fenced write at 6 shows its instance (created at 2)
    // still existed in state 5.
    b.acquire(LOCK, "L0-1", 2)
        .acquire(LOCK, "L1-1", 4)
        .fenced_write(2, "L0-1#1", 6);
    let violations = check_recipes(&b.history);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].property, "lock.mutual_exclusion");
    assert_eq!(violations[0].ops, vec![0, 1, 2]);
}

#[test]
fn election_with_two_leaders_is_reported_and_a_clean_one_is_not() {
    let mut clean = Builder::new("election", ELECTION);
    clean
        .acquire(ELECTION, "E0-1", 2)
        .read(ELECTION, "E0-1", 2, 3)
        .release(ELECTION, 2, 4)
        .acquire(ELECTION, "E1-1", 5)
        .release(ELECTION, 5, 6);
    assert_eq!(clean.properties(), Vec::<&str>::new());

    let mut broken = Builder::new("election", ELECTION);
    broken
        .acquire(ELECTION, "E0-1", 2)
        .acquire(ELECTION, "E1-1", 3)
        .read(ELECTION, "E0-1", 2, 5);
    assert_eq!(broken.properties(), vec!["election.two_leaders"]);
}

#[test]
fn keys_without_recipe_records_are_not_judged() {
    let mut b = Builder::new("lock", LOCK);
    b.history.other.clear();
    b.acquire(LOCK, "L0-1", 2)
        .acquire(LOCK, "L1-1", 4)
        .fenced_write(2, "L0-1#1", 6);
    assert_eq!(b.properties(), Vec::<&str>::new());
}

#[test]
fn holder_is_the_text_before_the_separator() {
    assert_eq!(holder_of("L3-7#12"), "L3-7");
    assert_eq!(holder_of("plain"), "plain");
}
