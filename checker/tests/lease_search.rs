//! Leases in the linearizability search (`Spec::resources`): a lease's expiry or revoke waits
//! until no answered op still to place needs the lease (a put under it, alone or in a txn's
//! taken branch, a keep-alive, a time-to-live that found it), unless a grant still to place
//! can bring it back. Shown by the work it saves (search steps are deterministic) and on both
//! sides of the rule.

mod support;

use kvsim_checker::CheckResult;
use kvsim_model::mvcc::{
    KeyValue, Op, PutRequest, PutResponse, RequestOp, Response, ResponseHeader, ResponseOp,
    TxnRequest, TxnResponse,
};
use support::{get, kv, put, put_ok, put_under, shows, Builder, MS};

const LEASE: i64 = 7;

fn grant() -> Op {
    Op::LeaseGrant {
        id: LEASE,
        ttl_s: 5,
    }
}

fn granted(revision: i64) -> Response {
    Response::LeaseGrant {
        header: ResponseHeader { revision },
        id: LEASE,
        ttl_s: 5,
    }
}

fn time_to_live() -> Op {
    Op::LeaseTimeToLive {
        id: LEASE,
        keys: false,
    }
}

/// A time-to-live's answer for a lease it did not find (`-1`, granted TTL 0).
fn not_found() -> Response {
    Response::LeaseTimeToLive {
        header: ResponseHeader { revision: 1 },
        id: LEASE,
        ttl_s: -1,
        granted_ttl_s: 0,
        keys: Vec::new(),
    }
}

fn under_lease(mut kv: KeyValue) -> KeyValue {
    kv.lease = LEASE;
    kv
}

/// A txn with no compare whose success branch puts `y` under the lease, answered at `revision`.
fn txn_put_under_lease(revision: i64) -> (Op, Response) {
    let op = Op::Txn(TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Put(PutRequest {
            key: "y".into(),
            value: "1".into(),
            lease: LEASE,
            ..Default::default()
        })],
        failure: vec![],
    });
    let answer = Response::Txn(TxnResponse {
        header: ResponseHeader { revision },
        succeeded: true,
        responses: vec![ResponseOp::Put(PutResponse {
            header: ResponseHeader { revision },
            prev_kv: None,
        })],
    });
    (op, answer)
}

/// A lease granted first, its expiry free from 2 ms on, twelve unknown puts of twelve keys, a
/// put answered at revision 8 (six of the unknown puts came first) and, concurrent with it,
/// `needer`, an answer that needs the lease. The expiry changes the state wherever it goes, so
/// the unknown chains that fill revisions 2..7 try it early; without the rule every node below
/// it fails only at `needer`, after every choice of which unknown puts filled the run
/// (1,438,954 steps for the put and the keep-alive, 5,430,634 for the txn; 9 with it).
fn steps_with_the_lease_needed_by(needer: Op, answer: Response) -> u64 {
    let mut history = Builder::default();
    history.ok(0, grant(), granted(1));
    for key in 0..12 {
        history.unknown(MS + key, put(&format!("u{key:02}"), "x"));
    }
    history.unknown(2 * MS, Op::LeaseExpire { id: LEASE });
    history.ok(50 * MS, put("z", "v"), put_ok(8));
    history.ok(50 * MS, needer, answer);
    let (verdict, stats) = history.verdict();
    assert!(matches!(verdict, CheckResult::Linearizable), "{verdict:?}");
    stats.steps
}

#[test]
fn an_expiry_waits_for_a_put_under_its_lease() {
    let steps = steps_with_the_lease_needed_by(put_under("y", "1", LEASE), put_ok(9));
    assert!(steps <= 100, "{steps} steps");
}

#[test]
fn an_expiry_waits_for_a_txn_putting_under_its_lease() {
    let (txn, answer) = txn_put_under_lease(9);
    let steps = steps_with_the_lease_needed_by(txn, answer);
    assert!(steps <= 100, "{steps} steps");
}

#[test]
fn an_expiry_waits_for_a_keep_alive_of_its_lease() {
    let answer = Response::LeaseKeepAlive {
        header: ResponseHeader { revision: 8 },
        id: LEASE,
        ttl_s: 5,
    };
    let steps = steps_with_the_lease_needed_by(Op::LeaseKeepAlive { id: LEASE }, answer);
    assert!(steps <= 100, "{steps} steps");
}

/// The other side: a time-to-live that did not find the lease needs no lease. Counted as
/// needing it, the expiry could never come before it, and this linearizable history (the
/// expiry, then the answer "not found") would be a false violation.
#[test]
fn a_time_to_live_that_found_no_lease_lets_the_expiry_come_first() {
    let mut history = Builder::default();
    history
        .ok(0, grant(), granted(1))
        .unknown(2 * MS, Op::LeaseExpire { id: LEASE })
        .ok(10 * MS, time_to_live(), not_found());
    let (verdict, _) = history.verdict();
    assert!(matches!(verdict, CheckResult::Linearizable), "{verdict:?}");
}

/// The lease expires (the read shows its key gone at revision 3) and is granted again before a
/// second put under it: the grant still to place may bring it back, so the expiry may come
/// while the second put is pending. Without that exception this is a false violation.
#[test]
fn a_grant_still_to_place_lets_the_expiry_come_first() {
    let mut history = Builder::default();
    history
        .ok(0, grant(), granted(1))
        .ok(10 * MS, put_under("a", "1", LEASE), put_ok(2))
        .unknown(20 * MS, Op::LeaseExpire { id: LEASE })
        .ok(30 * MS, get("a"), shows(3, vec![]))
        .ok(40 * MS, grant(), granted(3))
        .ok(50 * MS, put_under("b", "1", LEASE), put_ok(4))
        .ok(
            60 * MS,
            get("b"),
            shows(4, vec![under_lease(kv("b", "1", 4, 4, 1))]),
        );
    let (verdict, _) = history.verdict();
    assert!(matches!(verdict, CheckResult::Linearizable), "{verdict:?}");
}

/// Without the second grant the put under the expired lease has nowhere to go: a violation.
#[test]
fn a_put_under_a_lease_its_expiry_ended_is_a_violation() {
    let mut history = Builder::default();
    history
        .ok(0, grant(), granted(1))
        .ok(10 * MS, put_under("a", "1", LEASE), put_ok(2))
        .unknown(20 * MS, Op::LeaseExpire { id: LEASE })
        .ok(30 * MS, get("a"), shows(3, vec![]))
        .ok(50 * MS, put_under("b", "1", LEASE), put_ok(4));
    let (verdict, _) = history.verdict();
    assert!(
        matches!(verdict, CheckResult::NotLinearizable(_)),
        "{verdict:?}"
    );
}
