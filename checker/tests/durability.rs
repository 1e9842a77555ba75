//! The durability / quorum / convergence / liveness checker on hand-written histories: a clean
//! history reports nothing, and each property has a history that breaks it.

mod support;
use support::kv;

use kvsim_checker::durability::{
    check_durability, healed_at_ns, healed_windows, DurabilityOptions, HealedWindow,
};
use kvsim_checker::history::{FaultEvent, History, Operation, Outcome};
use kvsim_checker::property::PropertyViolation;
use kvsim_model::mvcc::{
    DeleteRangeRequest, DeleteRangeResponse, KeyValue, Op, PutRequest, PutResponse, RangeRequest,
    RangeResponse, Response, ResponseHeader, Ret,
};
use serde_json::{json, Value};

const OPTS: DurabilityOptions = DurabilityOptions {
    liveness_bound_ns: 1_000,
};

fn ok(id: u64, client: u64, call_ns: u64, input: Op, response: Response) -> Operation<Op, Ret> {
    Operation {
        id,
        client,
        call_ns,
        return_ns: Some(call_ns + 5),
        input,
        outcome: Outcome::Ok {
            output: Ret::Ok(response),
        },
    }
}

fn unknown(id: u64, client: u64, call_ns: u64, input: Op) -> Operation<Op, Ret> {
    Operation {
        id,
        client,
        call_ns,
        return_ns: None,
        input,
        outcome: Outcome::Unknown {
            error: "timeout".into(),
        },
    }
}

fn put_op(key: &str, value: &str, lease: i64) -> Op {
    Op::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        ..Default::default()
    })
}

fn put(id: u64, call_ns: u64, key: &str, value: &str, revision: i64) -> Operation<Op, Ret> {
    ok(
        id,
        id,
        call_ns,
        put_op(key, value, 0),
        Response::Put(PutResponse {
            header: ResponseHeader { revision },
            prev_kv: None,
        }),
    )
}

fn range_op(key: &str) -> Op {
    Op::Range(RangeRequest {
        key: key.into(),
        ..Default::default()
    })
}

fn delete_op(key: &str) -> Op {
    Op::DeleteRange(DeleteRangeRequest {
        key: key.into(),
        ..Default::default()
    })
}

fn delete(id: u64, call_ns: u64, key: &str, revision: i64) -> Operation<Op, Ret> {
    let response = DeleteRangeResponse {
        header: ResponseHeader { revision },
        deleted: 1,
        prev_kvs: vec![],
    };
    ok(
        id,
        id,
        call_ns,
        delete_op(key),
        Response::DeleteRange(response),
    )
}

fn range(
    id: u64,
    client: u64,
    call_ns: u64,
    key: &str,
    serializable: bool,
    revision: i64,
    kvs: Vec<KeyValue>,
) -> Operation<Op, Ret> {
    let count = kvs.len() as i64;
    let request = RangeRequest {
        key: key.into(),
        serializable,
        ..Default::default()
    };
    ok(
        id,
        client,
        call_ns,
        Op::Range(request),
        Response::Range(RangeResponse {
            header: ResponseHeader { revision },
            kvs,
            more: false,
            count,
        }),
    )
}

fn fault(t_ns: u64, kind: &str, nodes: &[&str]) -> FaultEvent {
    FaultEvent {
        t_ns,
        kind: kind.into(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        detail: Value::Null,
    }
}

fn node(name: &str, up: bool, revision: i64, hash_kv: u64, kvs: &[KeyValue]) -> Value {
    json!({"node":name,"up":up,"role":"follower","term":2,"applied_index":9,"revision":revision,
           "compact_revision":0,"hash_kv":hash_kv,"kvs":kvs})
}

fn final_state(nodes: Vec<Value>) -> Value {
    json!({"type":"final_state","t_ns":5_000,"nodes":nodes})
}

/// k1 = a (rev 2); n1 partitioned 100..200; k2 = b (rev 3); delete k1 (rev 4); reads; all three
/// members end at revision 4 with k2 = b.
fn clean() -> History<Op, Ret> {
    let ops = vec![
        put(0, 0, "k1", "a", 2),
        put(1, 300, "k2", "b", 3),
        delete(2, 400, "k1", 4),
        range(3, 3, 500, "k2", false, 4, vec![kv("k2", "b", 3, 3, 1)]),
        range(4, 4, 1_500, "k2", true, 4, vec![kv("k2", "b", 3, 3, 1)]),
    ];
    let end = [kv("k2", "b", 3, 3, 1)];
    let other = vec![final_state(vec![
        node("n1", true, 4, 77, &end),
        node("n2", true, 4, 77, &end),
        node("n3", true, 4, 77, &end),
    ])];
    History {
        ops,
        faults: vec![fault(100, "partition", &["n1"]), fault(200, "heal", &[])],
        other,
    }
}

fn assert_reports(history: &History<Op, Ret>, expected: &[&str]) -> Vec<PropertyViolation> {
    let violations = check_durability(history, &OPTS);
    let rendered: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    let mut names: Vec<&str> = violations.iter().map(|v| v.property.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, expected, "{rendered:#?}");
    violations
}

fn set_final(history: &mut History<Op, Ret>, nodes: Vec<Value>) {
    history.other = vec![final_state(nodes)];
}

#[test]
fn clean_history_reports_nothing() {
    assert_reports(&clean(), &[]);
    let mut empty = History::default();
    assert_reports(&empty, &[]);
    empty.faults.push(fault(1, "crash", &["n1"]));
    assert_reports(&empty, &[]);
}

#[test]
fn malformed_final_state_is_reported() {
    let mut history = clean();
    history.other = vec![json!({"type":"final_state","nodes":[{"node":"n1"}]})];
    let violations = assert_reports(&history, &["durability.record"]);
    assert!(violations[0].message.contains("#0"), "{}", violations[0]);
}

#[test]
fn lost_write_when_the_cluster_ends_below_an_acknowledged_revision() {
    let mut history = clean();
    let end = [kv("k1", "a", 2, 2, 1), kv("k2", "b", 3, 3, 1)];
    set_final(
        &mut history,
        vec![node("n1", true, 3, 5, &end), node("n2", true, 3, 5, &end)],
    );
    let violations = assert_reports(&history, &["durability.lost_write"]);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].ops, vec![2]);
}

#[test]
fn lost_write_when_a_key_ends_older_than_the_write() {
    let mut history = clean();
    history.ops.push(put(5, 600, "k2", "c", 5));
    let end = [kv("k2", "b", 3, 3, 1)];
    set_final(
        &mut history,
        vec![node("n1", true, 5, 5, &end), node("n2", true, 5, 5, &end)],
    );
    let violations = assert_reports(&history, &["durability.lost_write"]);
    assert_eq!(violations[0].ops, vec![5]);

    // Superseded by a later put of the same key: fine.
    let mut history = clean();
    history.ops.push(put(5, 600, "k2", "c", 5));
    history.ops.push(put(6, 700, "k2", "d", 6));
    let end = [kv("k2", "d", 3, 6, 3)];
    set_final(&mut history, vec![node("n1", true, 6, 5, &end)]);
    assert_reports(&history, &[]);
}

#[test]
fn lost_write_when_a_key_vanishes_and_nothing_could_have_deleted_it() {
    let mut gone = clean();
    gone.ops.push(put(5, 600, "k3", "x", 5));
    set_final(
        &mut gone,
        vec![node("n1", true, 5, 5, &[kv("k2", "b", 3, 3, 1)])],
    );
    let violations = assert_reports(&gone, &["durability.lost_write"]);
    assert_eq!(violations[0].ops, vec![5]);
    assert!(
        violations[0].message.contains("nothing after"),
        "{}",
        violations[0]
    );

    // A delete of k3 with an unknown outcome may explain it.
    let mut maybe = gone.clone();
    maybe.ops.push(unknown(6, 6, 700, delete_op("k3")));
    assert_reports(&maybe, &[]);
    // So may a lease attached to k3 by a put that may have happened.
    let mut leased = gone.clone();
    leased
        .ops
        .push(unknown(6, 6, 650, put_op("k3", "y", 1_000_000_001)));
    assert_reports(&leased, &[]);
    // A delete that definitely failed explains nothing.
    let mut failed = gone.clone();
    failed.ops.push(Operation {
        id: 6,
        client: 6,
        call_ns: 700,
        return_ns: Some(705),
        input: delete_op("k3"),
        outcome: Outcome::Fail {
            error: "connection refused".into(),
        },
    });
    assert_reports(&failed, &["durability.lost_write"]);
    // A watcher saw k3 deleted at revision 6.
    let mut watched = gone.clone();
    set_final(
        &mut watched,
        vec![node("n1", true, 6, 5, &[kv("k2", "b", 3, 3, 1)])],
    );
    watched.other.push(
        json!({"type":"watch","watcher":0,"t_ns":1,"action":"start","node":"n1","key":"k3",
        "range_end":"","start_revision":5,"prev_kv":false}),
    );
    watched.other.push(
        json!({"type":"watch","watcher":0,"t_ns":900,"action":"response","node":"n1",
        "header_revision":6,"events":[{"kind":"put","kv":kv("k3","x",5,5,1)},
                                      {"kind":"delete","kv":{"key":"k3","mod_revision":6}}]}),
    );
    assert_reports(&watched, &[]);
}

#[test]
fn lost_delete_when_the_key_comes_back() {
    let mut history = clean();
    let end = [kv("k1", "a", 2, 2, 1), kv("k2", "b", 3, 3, 1)];
    set_final(&mut history, vec![node("n1", true, 4, 5, &end)]);
    let violations = assert_reports(&history, &["durability.lost_write"]);
    assert_eq!(violations[0].ops, vec![2]);
}

#[test]
fn revision_regress_across_clients_in_real_time() {
    let mut history = clean();
    // Client 7 starts after op 3 (revision 4) returned and reads revision 3.
    history.ops.push(range(
        5,
        7,
        600,
        "k2",
        false,
        3,
        vec![kv("k2", "b", 3, 3, 1)],
    ));
    let violations = assert_reports(&history, &["quorum.revision_regress"]);
    assert_eq!(
        violations[0].ops,
        vec![2, 5],
        "op 2 was the first to return revision 4"
    );

    // The same read serializable is allowed to lag; overlapping in time it is concurrent.
    let mut serializable = clean();
    serializable.ops.push(range(
        5,
        7,
        600,
        "k2",
        true,
        3,
        vec![kv("k2", "b", 3, 3, 1)],
    ));
    assert_reports(&serializable, &[]);
    let mut concurrent = clean();
    concurrent.ops.push(range(
        5,
        7,
        350,
        "k2",
        false,
        3,
        vec![kv("k2", "b", 3, 3, 1)],
    ));
    assert_reports(&concurrent, &[]);
}

#[test]
fn replicas_must_converge_but_down_members_are_excused() {
    let mut history = clean();
    let end = [kv("k2", "b", 3, 3, 1)];
    let other = [kv("k2", "b", 3, 3, 1), kv("k9", "z", 3, 3, 1)];
    set_final(
        &mut history,
        vec![
            node("n1", true, 4, 77, &end),
            node("n2", true, 4, 78, &other),
        ],
    );
    let violations = assert_reports(&history, &["replicas.converge"]);
    assert!(
        violations[0].message.contains("hash_kv") && violations[0].message.contains("\"k9\""),
        "{}",
        violations[0]
    );

    set_final(
        &mut history,
        vec![
            node("n1", true, 4, 77, &end),
            node("n2", false, 2, 78, &other),
        ],
    );
    assert_reports(&history, &[]);
}

#[test]
fn liveness_after_the_last_heal() {
    // Nothing succeeds after the heal at 200, though clients ask for a write and a read in the
    // window and keep calling past 1 200.
    let mut stuck = clean();
    stuck.ops.retain(|op| op.call_ns < 200);
    stuck.ops.push(unknown(7, 7, 300, put_op("k4", "q", 0)));
    stuck.ops.push(unknown(10, 10, 400, range_op("k4")));
    stuck.ops.push(unknown(8, 8, 2_000, put_op("k4", "r", 0)));
    set_final(
        &mut stuck,
        vec![node("n1", true, 2, 1, &[kv("k1", "a", 2, 2, 1)])],
    );
    let violations = assert_reports(&stuck, &["liveness"]);
    assert_eq!(
        violations.len(),
        2,
        "both the write and the read are missing"
    );

    // The run ended inside the window: no judgement.
    let mut short = stuck.clone();
    short.ops.pop();
    assert_reports(&short, &[]);

    // Only writes succeed: the read is missing.
    let mut writes_only = stuck.clone();
    writes_only.ops.push(put(9, 300, "k5", "w", 3));
    let end = [kv("k1", "a", 2, 2, 1), kv("k5", "w", 3, 3, 1)];
    set_final(&mut writes_only, vec![node("n1", true, 3, 1, &end)]);
    let violations = assert_reports(&writes_only, &["liveness"]);
    assert!(
        violations[0].message.contains("linearizable read"),
        "{}",
        violations[0]
    );
}

/// Recipes seed 518 (clean, no planted bug) was reported as a liveness violation: after the last
/// heal only lock and election tasks ran, which write and keep leases alive but never read
/// linearizably. A window where nobody asked for a read says nothing about reads; one where a
/// read was asked too late to be answered within the bound says nothing either, nor one where
/// reads were asked only before the cluster had half the bound to recover.
#[test]
fn liveness_judges_only_what_clients_asked_for_in_time() {
    let mut writes_served = clean();
    writes_served.ops.retain(|op| op.call_ns < 200);
    writes_served.ops.push(put(9, 300, "k5", "w", 3));
    writes_served
        .ops
        .push(unknown(8, 8, 2_000, put_op("k4", "r", 0)));
    let end = [kv("k1", "a", 2, 2, 1), kv("k5", "w", 3, 3, 1)];
    set_final(&mut writes_served, vec![node("n1", true, 3, 1, &end)]);
    assert_reports(&writes_served, &[]);

    // A read asked after three quarters of the bound (950 of 1 000 after the heal at 200) is
    // not a fair test either.
    let mut late_read = writes_served.clone();
    late_read.ops.push(unknown(10, 10, 1_150, range_op("k4")));
    assert_reports(&late_read, &[]);

    // Asked only right after the heal and refused at once (openraft txn.toml seed 91: the
    // clients gave up during the new election and asked for no read after): not judged. Still
    // pending at the midpoint (700), the same read is.
    let mut refused_early = writes_served.clone();
    let mut early_read = unknown(10, 10, 300, range_op("k4"));
    early_read.return_ns = Some(400);
    early_read.outcome = Outcome::Fail {
        error: "gave up after 6 attempts; last: n2: not leader".into(),
    };
    refused_early.ops.push(early_read.clone());
    assert_reports(&refused_early, &[]);
    let mut pending_at_midpoint = writes_served.clone();
    early_read.return_ns = Some(800);
    pending_at_midpoint.ops.push(early_read);
    assert_reports(&pending_at_midpoint, &["liveness"]);

    // Asked in time and never served: reported.
    let mut asked = writes_served.clone();
    asked.ops.push(unknown(10, 10, 900, range_op("k4")));
    let violations = assert_reports(&asked, &["liveness"]);
    assert!(
        violations[0].message.contains("linearizable read"),
        "{}",
        violations[0]
    );
}

#[test]
fn healed_at_tracks_every_fault_kind() {
    let faults = vec![
        fault(10, "crash", &["n1"]),
        fault(20, "partition", &["n2"]),
        fault(30, "heal", &[]),
        fault(40, "restart", &["n1"]),
        fault(50, "pause", &["n3"]),
        fault(55, "latency", &[]),
        fault(60, "resume", &["n3"]),
    ];
    assert_eq!(healed_at_ns(&faults), Some(60));
    let mut unhealed = faults.clone();
    unhealed.push(fault(70, "crash", &["n2"]));
    assert_eq!(healed_at_ns(&unhealed), None);
    unhealed.push(fault(80, "heal_all", &["n1", "n2", "n3"]));
    assert_eq!(healed_at_ns(&unhealed), Some(80));
    let mut loss = vec![FaultEvent {
        t_ns: 5,
        kind: "packet_loss".into(),
        nodes: vec![],
        detail: json!({"rate": 0.2}),
    }];
    assert_eq!(healed_at_ns(&loss), None);
    loss.push(FaultEvent {
        t_ns: 9,
        kind: "packet_loss".into(),
        nodes: vec![],
        detail: json!({"rate": 0.0}),
    });
    assert_eq!(healed_at_ns(&loss), Some(9));
    assert_eq!(healed_at_ns(&[fault(3, "clock_skew", &["n1"])]), None);
}

#[test]
fn liveness_judges_every_window_long_enough_and_only_those() {
    let mut stuck = clean();
    stuck.ops.retain(|op| op.call_ns < 200);
    stuck.ops.push(unknown(7, 7, 300, put_op("k4", "q", 0)));
    stuck.ops.push(unknown(10, 10, 400, range_op("k4")));
    stuck.ops.push(unknown(8, 8, 2_000, put_op("k4", "r", 0)));
    set_final(
        &mut stuck,
        vec![node("n1", true, 2, 1, &[kv("k1", "a", 2, 2, 1)])],
    );

    // Healed at 200, whole until a partition at 5 000: that window is judged (not the last one,
    // which the run ends inside).
    let mut earlier = stuck.clone();
    earlier.faults.push(fault(5_000, "partition", &["n2"]));
    earlier.faults.push(fault(6_000, "heal", &[]));
    assert_eq!(
        healed_windows(&earlier.faults),
        vec![
            HealedWindow {
                from_ns: 200,
                until_ns: Some(5_000)
            },
            HealedWindow {
                from_ns: 6_000,
                until_ns: None
            }
        ]
    );
    assert_eq!(check_durability(&earlier, &OPTS).len(), 2);

    // A window shorter than the bound proves nothing.
    let mut short_window = stuck.clone();
    short_window.faults.push(fault(900, "partition", &["n2"]));
    short_window.faults.push(fault(1_500, "heal", &[]));
    assert_reports(&short_window, &[]);
}
