//! `lease.expired_late` on hand-written histories: a lease seen alive long after its deadline in
//! a whole cluster is reported; the same observation is excused by anything that could make a
//! real etcd expire it that late (a fault, a renewal nobody knows the time of, a serializable or
//! historic read, a clock error).

use kvsim_checker::durability::DurabilityOptions;
use kvsim_checker::history::{FaultEvent, History, Operation, Outcome};
use kvsim_checker::lease_bound::{check_early_expiries, check_lease_bounds};
use kvsim_model::mvcc::{
    EtcdError, KeyValue, Op, PutRequest, PutResponse, RangeRequest, RangeResponse, Response,
    ResponseHeader, Ret,
};
use serde_json::json;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const LEASE: i64 = 7;

/// The simulator's default: liveness bound 5 s, so slack 2 s, election timeout 1 s, settle 5 s.
const OPTS: DurabilityOptions = DurabilityOptions {
    liveness_bound_ns: 5 * S,
};

fn op(id: u64, call_ns: u64, input: Op, response: Response) -> Operation<Op, Ret> {
    Operation {
        id,
        client: id,
        call_ns,
        return_ns: Some(call_ns + MS),
        input,
        outcome: Outcome::Ok {
            output: Ret::Ok(response),
        },
    }
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader { revision }
}

fn grant(id: u64, call_ns: u64) -> Operation<Op, Ret> {
    op(
        id,
        call_ns,
        Op::LeaseGrant {
            id: LEASE,
            ttl_s: 2,
        },
        Response::LeaseGrant {
            header: header(1),
            id: LEASE,
            ttl_s: 2,
        },
    )
}

fn put_leased(id: u64, call_ns: u64) -> Operation<Op, Ret> {
    op(
        id,
        call_ns,
        Op::Put(PutRequest {
            key: "k".into(),
            value: "v".into(),
            lease: LEASE,
            ..Default::default()
        }),
        Response::Put(PutResponse {
            header: header(2),
            prev_kv: None,
        }),
    )
}

fn read(id: u64, call_ns: u64, serializable: bool, revision: i64) -> Operation<Op, Ret> {
    op(
        id,
        call_ns,
        Op::Range(RangeRequest {
            key: "k".into(),
            serializable,
            revision,
            ..Default::default()
        }),
        Response::Range(RangeResponse {
            header: header(2),
            kvs: vec![KeyValue {
                key: "k".into(),
                value: "v".into(),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                lease: LEASE,
            }],
            more: false,
            count: 1,
        }),
    )
}

fn fault(t_ns: u64, kind: &str) -> FaultEvent {
    FaultEvent {
        t_ns,
        kind: kind.into(),
        nodes: vec!["n1".into()],
        detail: json!({}),
    }
}

/// Granted at 10 s with TTL 2 s in a cluster whole since the start (settled by 5 s + 1 s): the
/// deadline is 10 + 2 + 2 (slack) = 14 s. A linearizable read at `read_s` sees the key.
fn history(read_s: f64) -> History<Op, Ret> {
    History {
        ops: vec![
            grant(0, 10 * S),
            put_leased(1, 10 * S + 10 * MS),
            read(2, (read_s * 1e9) as u64, false, 0),
        ],
        faults: Vec::new(),
        other: Vec::new(),
    }
}

fn properties(history: &History<Op, Ret>) -> Vec<&'static str> {
    check_lease_bounds(history, &OPTS)
        .iter()
        .map(|violation| violation.property.as_str())
        .collect()
}

#[test]
fn a_lease_seen_alive_long_after_its_deadline_is_reported() {
    let late = history(14.5);
    let violations = check_lease_bounds(&late, &OPTS);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].property, "lease.expired_late");
    assert_eq!(
        violations[0].ops,
        vec![0, 2],
        "the grant (a put is no renewal) and the read"
    );
    // Within TTL + slack it is fine.
    assert!(properties(&history(13.9)).is_empty());
}

#[test]
fn a_keep_alive_renews_and_a_late_keep_alive_is_an_observation() {
    let mut renewed = history(15.5);
    renewed.ops.push(op(
        3,
        12 * S,
        Op::LeaseKeepAlive { id: LEASE },
        Response::LeaseKeepAlive {
            header: header(2),
            id: LEASE,
            ttl_s: 2,
        },
    ));
    assert!(
        properties(&renewed).is_empty(),
        "renewed at 12 s: deadline 16 s"
    );
    renewed.ops.push(op(
        4,
        30 * S,
        Op::LeaseKeepAlive { id: LEASE },
        Response::LeaseKeepAlive {
            header: header(2),
            id: LEASE,
            ttl_s: 2,
        },
    ));
    let violations = check_lease_bounds(&renewed, &OPTS);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(
        violations[0].ops,
        vec![3, 4],
        "the last renewal and the late keep-alive"
    );
}

#[test]
fn anything_that_could_make_a_real_expiry_late_excuses_it() {
    // A fault between the renewal and the deadline: leaders may change, leases are extended.
    let mut faulted = history(15.5);
    faulted.faults = vec![fault(12 * S, "pause"), fault(13 * S, "resume")];
    assert!(properties(&faulted).is_empty());
    // A heal shortly before: a promotion may still come (settle 5 s + election timeout 1 s).
    let mut healed = history(15.5);
    healed.faults = vec![fault(8 * S, "crash"), fault(9 * S, "restart")];
    assert!(
        properties(&healed).is_empty(),
        "deadline 9 + 6 + 2 + 2 = 19 s"
    );
    let mut healed_long_ago = history(19.5);
    healed_long_ago.faults = healed.faults.clone();
    assert_eq!(properties(&healed_long_ago), vec!["lease.expired_late"]);
    // A keep-alive whose outcome is unknown: processed whenever.
    let mut unknown = history(15.5);
    unknown.ops.push(Operation {
        id: 3,
        client: 3,
        call_ns: 11 * S,
        return_ns: None,
        input: Op::LeaseKeepAlive { id: LEASE },
        outcome: Outcome::Unknown {
            error: "timeout".into(),
        },
    });
    assert!(properties(&unknown).is_empty());
    // Serializable and historic reads may show the past.
    let mut serializable = history(15.5);
    serializable.ops[2] = read(2, 15 * S + 500 * MS, true, 0);
    assert!(properties(&serializable).is_empty());
    let mut historic = history(15.5);
    historic.ops[2] = read(2, 15 * S + 500 * MS, false, 2);
    assert!(properties(&historic).is_empty());
    // A lessor clock that may run late by the history's own clock-skew records.
    let mut skewed = history(14.5);
    skewed.faults = vec![FaultEvent {
        t_ns: S,
        kind: "clock_skew".into(),
        nodes: vec!["n1".into()],
        detail: json!({"skew_ms": -800}),
    }];
    assert!(properties(&skewed).is_empty(), "deadline 14.8 s");
    let mut skewed_later = history(15.0);
    skewed_later.faults = skewed.faults.clone();
    assert_eq!(properties(&skewed_later), vec!["lease.expired_late"]);
    // An id granted twice: either incarnation may be the one seen.
    let mut regranted = history(15.5);
    regranted.ops.push(grant(3, 11 * S));
    assert!(properties(&regranted).is_empty());
}

// ---- lease.expired_early ---------------------------------------------------------------------

fn keep_alive(id: u64, call_ns: u64) -> Operation<Op, Ret> {
    op(
        id,
        call_ns,
        Op::LeaseKeepAlive { id: LEASE },
        Response::LeaseKeepAlive {
            header: header(2),
            id: LEASE,
            ttl_s: 2,
        },
    )
}

/// A time-to-live answering `ttl_s` left of `granted_ttl_s` (etcd's "not found": -1 of 0).
fn time_to_live(id: u64, call_ns: u64, ttl_s: i64, granted_ttl_s: i64) -> Operation<Op, Ret> {
    op(
        id,
        call_ns,
        Op::LeaseTimeToLive {
            id: LEASE,
            keys: false,
        },
        Response::LeaseTimeToLive {
            header: header(2),
            id: LEASE,
            ttl_s,
            granted_ttl_s,
            keys: Vec::new(),
        },
    )
}

fn time_to_live_gone(id: u64, call_ns: u64) -> Operation<Op, Ret> {
    time_to_live(id, call_ns, -1, 0)
}

fn not_found(mut op: Operation<Op, Ret>) -> Operation<Op, Ret> {
    op.outcome = Outcome::Ok {
        output: Ret::Err(EtcdError::LeaseNotFound),
    };
    op
}

/// Granted at 10 s (TTL 2 s), renewed at 11 s: the lease exists until at least 13 s.
fn early(extra: Vec<Operation<Op, Ret>>) -> History<Op, Ret> {
    let mut ops = vec![grant(0, 10 * S), keep_alive(1, 11 * S)];
    ops.extend(extra);
    History {
        ops,
        faults: Vec::new(),
        other: Vec::new(),
    }
}

fn early_properties(history: &History<Op, Ret>) -> Vec<&'static str> {
    check_early_expiries(history)
        .iter()
        .map(|violation| violation.property.as_str())
        .collect()
}

#[test]
fn a_lease_gone_before_its_ttl_ran_from_a_renewal_is_reported() {
    // etcd#15247's shape: renewed through the new leader, then revoked by a resumed old one.
    let history = early(vec![time_to_live_gone(2, 11 * S + 200 * MS)]);
    let violations = check_early_expiries(&history);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].property, "lease.expired_early");
    assert_eq!(violations[0].ops, vec![1, 2], "the renewal and the answer");
    assert!(
        violations[0].message.contains("until at least 13.000 s"),
        "{}",
        violations[0].message
    );
    // Every way of being told "not found" counts.
    let keep_alive_denied = not_found(keep_alive(2, 12 * S));
    let put_denied = not_found(put_leased(2, 12 * S));
    for denied in [keep_alive_denied, put_denied] {
        assert_eq!(
            early_properties(&early(vec![denied])),
            vec!["lease.expired_early"]
        );
    }
}

#[test]
fn a_revoke_a_late_answer_or_an_overlapping_renewal_excuses_it() {
    // After the deadline: a legal expiry.
    assert!(early_properties(&early(vec![time_to_live_gone(2, 13 * S)])).is_empty());
    // Someone revoked it (whatever the outcome) before the answer returned.
    let mut revoke = op(
        3,
        11 * S + 100 * MS,
        Op::LeaseRevoke { id: LEASE },
        Response::LeaseRevoke { header: header(3) },
    );
    revoke.outcome = Outcome::Unknown {
        error: "timeout".into(),
    };
    assert!(early_properties(&early(vec![
        revoke,
        time_to_live_gone(2, 11 * S + 200 * MS)
    ]))
    .is_empty());
    // The answer overlaps the renewal at 11 s: only the grant at 10 s precedes it (deadline
    // 12 s), and it came after that.
    let overlapping = time_to_live_gone(2, 11 * S - 1);
    assert_eq!(
        early_properties(&early(vec![overlapping.clone()])),
        vec!["lease.expired_early"],
        "the grant's own bound (12 s) still holds at 11 s"
    );
    let mut late_overlap = time_to_live_gone(2, 12 * S + 500 * MS);
    late_overlap.call_ns = 11 * S - 1;
    assert!(early_properties(&early(vec![late_overlap])).is_empty());
    // A clock jump as large as the TTL during the lease's life excuses anything.
    let mut skewed = early(vec![time_to_live_gone(2, 11 * S + 200 * MS)]);
    skewed.faults.push(FaultEvent {
        t_ns: 11 * S + 100 * MS,
        kind: "clock_skew".into(),
        nodes: vec!["n1".into()],
        detail: json!({ "skew_ms": 2_000 }),
    });
    assert!(early_properties(&skewed).is_empty());
    // ... but only a jump during the lease's life: one before the grant leaves the lessor's
    // clock steady from the renewal on, and a steady offset measures the TTL exactly.
    let mut skewed_before = early(vec![time_to_live_gone(2, 11 * S + 200 * MS)]);
    skewed_before.faults.push(FaultEvent {
        t_ns: 5 * S,
        kind: "clock_skew".into(),
        nodes: vec!["n1".into()],
        detail: json!({ "skew_ms": 2_000 }),
    });
    assert_eq!(
        early_properties(&skewed_before),
        vec!["lease.expired_early"]
    );
}

// ---- lease.expired_late: the time left a time-to-live reports ------------------------------------

fn time_to_live_left(id: u64, call_ns: u64, ttl_s: i64) -> Operation<Op, Ret> {
    time_to_live(id, call_ns, ttl_s, 2)
}

/// Granted at 10 s (TTL 2 s); a time-to-live at `at_ns` answers `left_s` seconds left.
fn asked(at_ns: u64, left_s: i64) -> History<Op, Ret> {
    History {
        ops: vec![grant(0, 10 * S), time_to_live_left(1, at_ns, left_s)],
        faults: Vec::new(),
        other: Vec::new(),
    }
}

#[test]
fn a_time_to_live_with_more_left_than_any_deadline_allows_is_reported() {
    // The planted `lease_late_expiry`'s shape: a 2 s lease whose lessor set its deadline 6 s ahead.
    let late = asked(10 * S + 100 * MS, 5);
    let violations = check_lease_bounds(&late, &OPTS);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].property, "lease.expired_late");
    assert_eq!(violations[0].ops, vec![1], "the answer alone");
    assert!(
        violations[0].message.contains("answered 5 s left"),
        "{}",
        violations[0].message
    );
    // Judged whatever the faults: a pause is no excuse for a deadline set too far ahead.
    let mut faulted = asked(10 * S + 100 * MS, 4);
    faulted.faults = vec![fault(9 * S, "pause"), fault(11 * S, "resume")];
    assert_eq!(properties(&faulted), vec!["lease.expired_late"]);
}

#[test]
fn a_promotion_or_a_clock_jump_back_may_leave_more_than_the_ttl() {
    // A new leader's `Promote` sets now + TTL + one election timeout (1 s here): 3 s left is legal.
    assert!(properties(&asked(10 * S + 100 * MS, 3)).is_empty());
    assert!(properties(&asked(10 * S + 100 * MS, 2)).is_empty());
    // A lessor clock that jumps back 1.5 s during the lease's life adds as much.
    let mut skewed = asked(12 * S, 4);
    skewed.faults = vec![FaultEvent {
        t_ns: 11 * S,
        kind: "clock_skew".into(),
        nodes: vec!["n1".into()],
        detail: json!({ "skew_ms": -1_500 }),
    }];
    assert!(properties(&skewed).is_empty(), "bound 2 + 1 + 1.5 s");
    // ... but only a jump after the lease's first grant: one before it leaves the clock steady.
    let mut skewed_before = asked(12 * S, 4);
    skewed_before.faults = vec![FaultEvent {
        t_ns: 5 * S,
        kind: "clock_skew".into(),
        nodes: vec!["n1".into()],
        detail: json!({ "skew_ms": -1_500 }),
    }];
    assert_eq!(properties(&skewed_before), vec!["lease.expired_late"]);
    // A lease gone (TTL -1) reports nothing left.
    assert!(properties(&asked(20 * S, -1)).is_empty());
}
