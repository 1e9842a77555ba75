//! The watch checker on hand-written histories: a clean history reports nothing, and each property
//! has a history that breaks it (and only the properties it should).

mod support;
use support::kv;

use kvsim_checker::history::{FaultEvent, History, Operation, Outcome};
use kvsim_checker::property::PropertyViolation;
use kvsim_checker::watch::check_watches;
use kvsim_model::mvcc::{
    DeleteRangeRequest, DeleteRangeResponse, KeyValue, Op, PutRequest, PutResponse, RequestOp,
    Response, ResponseHeader, ResponseOp, Ret, TxnRequest, TxnResponse,
};
use serde_json::{json, Value};

fn op(id: u64, call_ns: u64, input: Op, response: Response) -> Operation<Op, Ret> {
    Operation {
        id,
        client: id,
        call_ns,
        return_ns: Some(call_ns + 5),
        input,
        outcome: Outcome::Ok {
            output: Ret::Ok(response),
        },
    }
}

fn put(
    id: u64,
    call_ns: u64,
    key: &str,
    value: &str,
    revision: i64,
    prev_kv: Option<KeyValue>,
) -> Operation<Op, Ret> {
    let request = PutRequest {
        key: key.into(),
        value: value.into(),
        prev_kv: prev_kv.is_some(),
        ..Default::default()
    };
    op(
        id,
        call_ns,
        Op::Put(request),
        Response::Put(PutResponse {
            header: ResponseHeader { revision },
            prev_kv,
        }),
    )
}

fn delete(id: u64, call_ns: u64, key: &str, revision: i64) -> Operation<Op, Ret> {
    let request = DeleteRangeRequest {
        key: key.into(),
        ..Default::default()
    };
    let response = DeleteRangeResponse {
        header: ResponseHeader { revision },
        deleted: 1,
        prev_kvs: vec![],
    };
    op(
        id,
        call_ns,
        Op::DeleteRange(request),
        Response::DeleteRange(response),
    )
}

fn put_event(
    key: &str,
    value: &str,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
) -> Value {
    json!({"kind":"put","kv":kv(key, value, create_revision, mod_revision, version)})
}

fn with_prev(mut event: Value, previous: KeyValue) -> Value {
    event["prev_kv"] = json!(previous);
    event
}

fn delete_event(key: &str, mod_revision: i64) -> Value {
    json!({"kind":"delete","kv":{"key":key,"mod_revision":mod_revision}})
}

fn record(watcher: u64, t_ns: u64, action: &str, fields: Value) -> Value {
    let mut object = json!({"type":"watch","watcher":watcher,"t_ns":t_ns,"action":action});
    if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
        object.extend(fields);
    }
    object
}

// Mirrors the record's fields one for one, which reads best at the call sites.
#[allow(clippy::too_many_arguments)]
fn open(
    watcher: u64,
    t_ns: u64,
    resume: bool,
    node: &str,
    key: &str,
    range_end: &str,
    start: i64,
    prev_kv: bool,
) -> Value {
    let action = if resume { "resume" } else { "start" };
    record(
        watcher,
        t_ns,
        action,
        json!({"node":node,"key":key,"range_end":range_end,"start_revision":start,"prev_kv":prev_kv}),
    )
}

fn response(watcher: u64, t_ns: u64, node: &str, header: i64, events: Vec<Value>) -> Value {
    record(
        watcher,
        t_ns,
        "response",
        json!({"node":node,"header_revision":header,"events":events}),
    )
}

/// k1 = a (rev 2), k2 = b (rev 3), k1 = c (rev 4), delete k1 (rev 5). Watcher 0 follows prefix
/// `k` with prev_kv from revision 2, reconnecting once; watcher 1 follows `k2` alone.
fn clean() -> History<Op, Ret> {
    let ops = vec![
        put(0, 1_000, "k1", "a", 2, None),
        put(1, 2_000, "k2", "b", 3, None),
        put(2, 3_000, "k1", "c", 4, Some(kv("k1", "a", 2, 2, 1))),
        delete(3, 4_000, "k1", 5),
    ];
    let other = vec![
        open(0, 500, false, "n1", "k", "l", 2, true),
        open(1, 600, false, "n3", "k2", "", 2, false),
        response(
            0,
            3_500,
            "n1",
            3,
            vec![put_event("k1", "a", 2, 2, 1), put_event("k2", "b", 3, 3, 1)],
        ),
        record(0, 3_600, "error", json!({"node":"n1","error":"timeout"})),
        open(0, 3_700, true, "n2", "k", "l", 4, true),
        response(
            0,
            5_000,
            "n2",
            5,
            vec![
                with_prev(put_event("k1", "c", 2, 4, 2), kv("k1", "a", 2, 2, 1)),
                with_prev(delete_event("k1", 5), kv("k1", "c", 2, 4, 2)),
            ],
        ),
        response(1, 5_100, "n3", 5, vec![put_event("k2", "b", 3, 3, 1)]),
        response(0, 6_000, "n2", 5, vec![]),
        response(1, 6_100, "n3", 5, vec![]),
        record(0, 7_000, "cancel", json!({"node":"n2","next_revision":6})),
        record(1, 7_000, "cancel", json!({"node":"n3","next_revision":4})),
    ];
    History {
        ops,
        faults: vec![],
        other,
    }
}

fn properties(violations: &[PropertyViolation]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = violations.iter().map(|v| v.property.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Asserts the checker reports exactly `expected` (as a set of property names).
fn assert_reports(history: &History<Op, Ret>, expected: &[&str]) -> Vec<PropertyViolation> {
    let violations = check_watches(history);
    let rendered: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    assert_eq!(properties(&violations), expected, "{rendered:#?}");
    violations
}

/// The index in `other` of watcher `watcher`'s `n`-th record with `action`.
fn find(history: &History<Op, Ret>, watcher: u64, action: &str, n: usize) -> usize {
    history
        .other
        .iter()
        .enumerate()
        .filter(|(_, r)| r["watcher"] == watcher && r["action"] == action)
        .nth(n)
        .map(|(index, _)| index)
        .expect("record exists")
}

#[test]
fn clean_history_reports_nothing() {
    assert_reports(&clean(), &[]);
}

#[test]
fn no_watch_records_reports_nothing() {
    let mut history = clean();
    history.other.clear();
    assert_reports(&history, &[]);
}

#[test]
fn malformed_record_is_reported_not_panicked() {
    let mut history = clean();
    history
        .other
        .push(json!({"type":"watch","watcher":"zero","action":"start"}));
    history.other.push(response(7, 1, "n1", 3, vec![]));
    let violations = assert_reports(&history, &["watch.record"]);
    assert_eq!(violations.len(), 2);
}

#[test]
fn filter_event_outside_the_range() {
    let mut history = clean();
    let index = find(&history, 1, "response", 0);
    history.other[index] = response(
        1,
        5_100,
        "n3",
        5,
        vec![put_event("k1", "a", 2, 2, 1), put_event("k2", "b", 3, 3, 1)],
    );
    assert_reports(&history, &["watch.filter"]);
}

#[test]
fn ordered_revisions_going_back_within_a_response() {
    let mut history = clean();
    let index = find(&history, 0, "response", 1);
    history.other[index]["events"] = json!([
        with_prev(delete_event("k1", 5), kv("k1", "c", 2, 4, 2)),
        with_prev(put_event("k1", "c", 2, 4, 2), kv("k1", "a", 2, 2, 1)),
    ]);
    assert_reports(&history, &["watch.ordered"]);
}

#[test]
fn unique_event_delivered_twice() {
    // The resumed poll repeats revision 3 (the planted watch_duplicate bug's shape).
    let mut history = clean();
    let index = find(&history, 0, "response", 1);
    let events = history.other[index]["events"].as_array().unwrap().clone();
    let mut repeated = vec![put_event("k2", "b", 3, 3, 1)];
    repeated.extend(events);
    history.other[index]["events"] = json!(repeated);
    let violations = assert_reports(&history, &["watch.unique"]);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].watcher, Some(0));
}

#[test]
fn atomic_revision_split_between_responses() {
    // A txn writes k1 and k2 at revision 6; watcher 0 gets them in two responses.
    let mut history = clean();
    let txn = TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(PutRequest {
                key: "k1".into(),
                value: "d".into(),
                ..Default::default()
            }),
            RequestOp::Put(PutRequest {
                key: "k2".into(),
                value: "e".into(),
                ..Default::default()
            }),
        ],
        failure: vec![],
    };
    let header = ResponseHeader { revision: 6 };
    let reply = TxnResponse {
        header,
        succeeded: true,
        responses: vec![
            ResponseOp::Put(PutResponse {
                header,
                prev_kv: None,
            }),
            ResponseOp::Put(PutResponse {
                header,
                prev_kv: None,
            }),
        ],
    };
    history
        .ops
        .push(op(4, 8_000, Op::Txn(txn), Response::Txn(reply)));
    let cancel = find(&history, 0, "cancel", 0);
    history.other.remove(cancel);
    let prev_k2 = kv("k2", "b", 3, 3, 1);
    // The poll answers revision 6 with k1 alone; the next poll starts at 7 and k2's change is lost.
    let mut split = history.clone();
    split.other.push(response(
        0,
        9_000,
        "n2",
        6,
        vec![put_event("k1", "d", 6, 6, 1)],
    ));
    split.other.push(response(0, 9_500, "n2", 6, vec![]));
    let violations = assert_reports(&split, &["watch.atomic"]);
    assert!(
        violations[0].message.contains("\"k2\""),
        "{}",
        violations[0]
    );
    // Delivering the rest in a later response is still a split (and below the poll's start).
    let mut late = history.clone();
    late.other.push(response(
        0,
        9_000,
        "n2",
        6,
        vec![put_event("k1", "d", 6, 6, 1)],
    ));
    late.other.push(response(
        0,
        9_500,
        "n2",
        6,
        vec![with_prev(put_event("k2", "e", 3, 6, 2), prev_k2.clone())],
    ));
    assert_reports(&late, &["watch.atomic", "watch.resumable"]);
    // Together in one response, the same events are fine.
    history.other.push(response(
        0,
        9_000,
        "n2",
        6,
        vec![
            put_event("k1", "d", 6, 6, 1),
            with_prev(put_event("k2", "e", 3, 6, 2), prev_k2),
        ],
    ));
    assert_reports(&history, &[]);
}

#[test]
fn bookmarkable_event_below_an_earlier_progress_notification() {
    // Watcher 1 hears "nothing up to 5" and then receives revision 3.
    let mut history = clean();
    let first = find(&history, 1, "response", 0);
    history.other[first] = response(1, 5_100, "n3", 5, vec![]);
    let second = find(&history, 1, "response", 1);
    history.other[second] = response(1, 6_100, "n3", 5, vec![put_event("k2", "b", 3, 3, 1)]);
    assert_reports(&history, &["watch.bookmarkable"]);
}

#[test]
fn resumable_resume_must_continue_after_the_last_event() {
    let mut history = clean();
    let index = find(&history, 0, "resume", 0);
    history.other[index]["start_revision"] = json!(5);
    // Skipping revision 4 on the resume: the stream then never covers it.
    let response_index = find(&history, 0, "response", 1);
    history.other[response_index]["events"] =
        json!([with_prev(delete_event("k1", 5), kv("k1", "c", 2, 4, 2))]);
    let violations = assert_reports(&history, &["watch.resumable"]);
    assert!(
        violations[0].message.contains("expected 4"),
        "{}",
        violations[0]
    );
}

#[test]
fn resumable_event_below_the_start_revision() {
    let mut history = clean();
    let index = find(&history, 1, "response", 0);
    history.other[index] = response(1, 5_100, "n3", 5, vec![put_event("k2", "b", 3, 3, 1)]);
    let start = find(&history, 1, "start", 0);
    history.other[start]["start_revision"] = json!(4);
    assert_reports(&history, &["watch.resumable"]);
}

#[test]
fn is_create_version_one_must_mean_a_new_key() {
    let mut history = clean();
    let index = find(&history, 1, "response", 0);
    history.other[index] = response(1, 5_100, "n3", 5, vec![put_event("k2", "b", 2, 3, 1)]);
    // Watcher 0 reported create_revision 3 for the same put: the watchers disagree too.
    assert_reports(&history, &["watch.agreement", "watch.is_create"]);
}

#[test]
fn prev_kv_must_be_the_state_just_before() {
    let mut history = clean();
    let index = find(&history, 0, "response", 1);
    history.other[index]["events"][0]["prev_kv"]["value"] = json!("zzz");
    let violations = assert_reports(&history, &["watch.prev_kv"]);
    assert!(violations[0].message.contains("value"), "{}", violations[0]);

    // A prev_kv that skips a known change: the delete at 5 claims the key was last written at 2.
    let mut history = clean();
    history.other[index]["events"][1]["prev_kv"] = json!(kv("k1", "a", 2, 2, 1));
    let violations = assert_reports(&history, &["watch.prev_kv"]);
    assert!(
        violations[0].message.contains("in between"),
        "{}",
        violations[0]
    );

    // Asked for but missing on a delete, with no compaction that could excuse it.
    let mut history = clean();
    history.other[index]["events"][1]
        .as_object_mut()
        .unwrap()
        .remove("prev_kv");
    let violations = assert_reports(&history, &["watch.prev_kv"]);
    assert!(
        violations[0].message.contains("no prev_kv"),
        "{}",
        violations[0]
    );
    // A compaction at or above revision 4 may excuse it (etcd cannot read revision 4 any more).
    history.ops.push(op(
        9,
        4_200,
        Op::Compact {
            revision: 5,
            physical: false,
        },
        Response::Compact {
            header: ResponseHeader { revision: 5 },
        },
    ));
    assert_reports(&history, &[]);
}

#[test]
fn reliable_missing_event_in_a_covered_range() {
    // The resumed poll drops the delete at 5 although its header (and the progress after it) cover 5.
    let mut history = clean();
    let index = find(&history, 0, "response", 1);
    history.other[index]["events"] = json!([with_prev(
        put_event("k1", "c", 2, 4, 2),
        kv("k1", "a", 2, 2, 1)
    )]);
    let violations = assert_reports(&history, &["watch.reliable"]);
    assert_eq!(violations.len(), 1);
    assert_eq!(
        violations[0].ops,
        vec![3],
        "the delete op proves the change"
    );
}

#[test]
fn reliable_gap_at_the_start_of_a_poll() {
    // The planted watch_gap bug's shape: the resumed poll skips its first revision (4).
    let mut history = clean();
    let index = find(&history, 0, "response", 1);
    history.other[index]["events"] =
        json!([with_prev(delete_event("k1", 5), kv("k1", "c", 2, 4, 2))]);
    let violations = assert_reports(&history, &["watch.reliable"]);
    assert!(
        violations[0].message.contains("revision 4"),
        "{}",
        violations[0]
    );
}

#[test]
fn agreement_between_watchers_and_operations() {
    let mut history = clean();
    let index = find(&history, 1, "response", 0);
    history.other[index] = response(1, 5_100, "n3", 5, vec![put_event("k2", "other", 3, 3, 1)]);
    let violations = assert_reports(&history, &["watch.agreement"]);
    assert_eq!(violations[0].ops, vec![1]);
}

#[test]
fn compacted_only_below_the_compact_revision_and_only_if_requested() {
    // Watcher 1 starts at 2, the node has compacted at 4 (op 5 asked for it): it restarts at 4,
    // missing nothing it should see (k2 changed at 3 only).
    let mut history = clean();
    history.ops.push(op(
        5,
        4_500,
        Op::Compact {
            revision: 4,
            physical: false,
        },
        Response::Compact {
            header: ResponseHeader { revision: 5 },
        },
    ));
    let index = find(&history, 1, "response", 0);
    history.other[index] = record(
        1,
        5_100,
        "compacted",
        json!({"node":"n3","compact_revision":4}),
    );
    history
        .other
        .insert(index + 1, open(1, 5_100, true, "n1", "k2", "", 4, false));
    assert_reports(&history, &[]);

    // The same without any compaction request: the node invented it.
    let mut invented = history.clone();
    invented.ops.pop();
    assert_reports(&invented, &["watch.compacted"]);

    // Refusing revision 4 as compacted at 4: revision 4 itself is still served.
    let mut history = history.clone();
    let start = find(&history, 1, "start", 0);
    history.other[start]["start_revision"] = json!(4);
    let violations = assert_reports(&history, &["watch.compacted", "watch.resumable"]);
    assert!(violations
        .iter()
        .any(|v| v.property == "watch.compacted" && v.message.contains("below 4")));
}

#[test]
fn header_below_events() {
    let mut history = clean();
    let index = find(&history, 1, "response", 0);
    history.other[index]["header_revision"] = json!(2);
    assert_reports(&history, &["watch.header"]);
}

#[test]
fn header_regress_across_watchers_unless_the_node_restarted() {
    // Watcher 1 moves to n2 after n2 told watcher 0 "revision 5"; n2 then answers "3".
    let mut history = clean();
    let cancel = find(&history, 1, "cancel", 0);
    history.other.remove(cancel);
    history.other.push(record(
        1,
        7_100,
        "error",
        json!({"node":"n3","error":"timeout"}),
    ));
    history
        .other
        .push(open(1, 7_200, true, "n2", "k2", "", 4, false));
    history.other.push(response(1, 8_000, "n2", 3, vec![]));
    let violations = assert_reports(&history, &["watch.header_regress"]);
    assert_eq!(violations[0].watcher, Some(1));

    let mut restarted = history.clone();
    restarted.faults.push(FaultEvent {
        t_ns: 7_500,
        kind: "restart".into(),
        nodes: vec!["n2".into()],
        detail: Value::Null,
    });
    assert_reports(&restarted, &[]);
}

#[test]
fn header_regress_of_a_stream_counts_from_the_stream_open() {
    // Watcher 2 streams k2 from n2 since 4_900, before n2 told watcher 0 "revision 5" (received
    // at 5_000). Real etcd pushes responses on streams (`"stream": true`): the "4" arriving at
    // 8_000 may have been generated before 5_000 and spent the time in transit on another
    // connection, so it is no regress. Had it answered a poll sent after 5_000, it would be.
    let streamed = |t_ns: u64| {
        let mut value = response(2, t_ns, "n2", 4, vec![]);
        value["stream"] = json!(true);
        value
    };
    let mut history = clean();
    history
        .other
        .push(open(2, 4_900, false, "n2", "k2", "", 4, false));
    history.other.push(streamed(5_200));
    history.other.push(streamed(8_000));
    history.other.push(record(
        2,
        8_100,
        "cancel",
        json!({"node":"n2","next_revision":4}),
    ));
    assert_reports(&history, &[]);

    let mut polled = history.clone();
    for value in &mut polled.other {
        if let Some(object) = value.as_object_mut() {
            object.remove("stream");
        }
    }
    let violations = assert_reports(&polled, &["watch.header_regress"]);
    assert_eq!(violations[0].watcher, Some(2));
}

#[test]
fn reliable_excuses_tombstones_at_the_compact_revision() {
    // Compaction at 5 drops the tombstone of k1 at 5 (etcd's keyIndex.compact); the watcher,
    // told its start revision 4 is compacted, restarts at 5 and cannot see that delete.
    let mut history = clean();
    history.ops.push(op(
        5,
        4_500,
        Op::Compact {
            revision: 5,
            physical: true,
        },
        Response::Compact {
            header: ResponseHeader { revision: 5 },
        },
    ));
    let index = find(&history, 0, "response", 1);
    history.other[index] = record(
        0,
        5_000,
        "compacted",
        json!({"node":"n2","compact_revision":5}),
    );
    history
        .other
        .insert(index + 1, open(0, 5_000, true, "n1", "k", "l", 5, true));
    assert_reports(&history, &[]);

    // A put at the compact revision is kept, so missing it is still a gap.
    let mut put_missing = history.clone();
    put_missing.ops[3] = put(3, 4_000, "k1", "e", 5, None);
    assert_reports(&put_missing, &["watch.reliable"]);
}
