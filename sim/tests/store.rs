//! The simulated server's MVCC store against etcd 3.4 behaviour. Every "etcd:" comment states what
//! etcd 3.4.23 (Debian etcd-server, one member, probed with etcdctl and the JSON gateway) answered.

use kvsim_sim::proto::{
    Cmp, CmpResult, CmpTarget, DeleteRangeReq, Event, EventKind, Kv, PutReq, RangeReq, Request,
    Response, StoreError, TxnOp, TxnReq,
};
use kvsim_sim::targets::raft_rs::store::{Store, StoreBugs, LEASE_TTL_MIN_S, TXN_OPS_MAX};

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn put_req(key: &str, value: &str) -> PutReq {
    PutReq {
        key: b(key),
        value: b(value),
        ..PutReq::default()
    }
}

fn put(store: &mut Store, key: &str, value: &str) -> Response {
    store.apply(&Request::Put(put_req(key, value)))
}

fn put_lease(store: &mut Store, key: &str, value: &str, lease: i64) -> Response {
    store.apply(&Request::Put(PutReq {
        lease,
        ..put_req(key, value)
    }))
}

fn range_req(key: &str, range_end: &[u8]) -> RangeReq {
    RangeReq {
        key: b(key),
        range_end: range_end.to_vec(),
        ..RangeReq::default()
    }
}

fn get_at(store: &Store, key: &str, revision: i64) -> Response {
    store.range(&RangeReq {
        revision,
        ..range_req(key, b"")
    })
}

/// The live kv of `key`, or None; panics on anything but a range answer.
fn get(store: &Store, key: &str) -> Option<Kv> {
    match get_at(store, key, 0) {
        Response::Range { kvs, .. } => kvs.into_iter().next(),
        other => panic!("get {key}: {other:?}"),
    }
}

fn keys_of(response: &Response) -> Vec<String> {
    match response {
        Response::Range { kvs, .. } => kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
            .collect(),
        other => panic!("not a range: {other:?}"),
    }
}

fn delete(store: &mut Store, key: &str, range_end: &[u8], prev_kv: bool) -> Response {
    store.apply(&Request::DeleteRange(DeleteRangeReq {
        key: b(key),
        range_end: range_end.to_vec(),
        prev_kv,
    }))
}

fn txn(compare: Vec<Cmp>, success: Vec<TxnOp>, failure: Vec<TxnOp>) -> Request {
    Request::Txn(TxnReq {
        compare,
        success,
        failure,
    })
}

fn cmp(key: &str, result: CmpResult, target: CmpTarget) -> Cmp {
    Cmp {
        key: b(key),
        result,
        target,
    }
}

fn op_put(key: &str, value: &str) -> TxnOp {
    TxnOp::Put(put_req(key, value))
}

fn op_get(key: &str) -> TxnOp {
    TxnOp::Range(range_req(key, b""))
}

fn op_del(key: &str, range_end: &[u8]) -> TxnOp {
    TxnOp::DeleteRange(DeleteRangeReq {
        key: b(key),
        range_end: range_end.to_vec(),
        prev_kv: false,
    })
}

fn compact(store: &mut Store, revision: i64) -> Response {
    store.apply(&Request::Compact {
        revision,
        physical: true,
    })
}

fn checked(store: &Store) {
    store
        .check()
        .unwrap_or_else(|e| panic!("store invariant broken: {e}"));
}

#[test]
fn new_store_is_empty_at_revision_one() {
    // etcd: a fresh member reports revision 1; the first put gets revision 2.
    let mut store = Store::new();
    assert_eq!(store.revision(), 1);
    assert_eq!(store.compact_revision(), 0);
    assert!(store.dump().is_empty());
    assert_eq!(
        put(&mut store, "a", "1"),
        Response::Put {
            revision: 2,
            prev_kv: None
        }
    );
    checked(&store);
}

#[test]
fn put_sets_create_mod_version_and_returns_prev_kv() {
    // etcd: `put a 1; put a 2` -> a has create_revision 2, mod_revision 3, version 2.
    let mut store = Store::new();
    put(&mut store, "a", "1");
    let response = store.apply(&Request::Put(PutReq {
        prev_kv: true,
        ..put_req("a", "2")
    }));
    let prev = Kv {
        key: b("a"),
        value: b("1"),
        create_revision: 2,
        mod_revision: 2,
        version: 1,
        lease: 0,
    };
    assert_eq!(
        response,
        Response::Put {
            revision: 3,
            prev_kv: Some(prev)
        }
    );
    let kv = get(&store, "a").unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision, kv.version),
        (b("2"), 2, 3, 2)
    );
    // etcd: a put of a missing key with prev_kv returns no prev_kv.
    let response = store.apply(&Request::Put(PutReq {
        prev_kv: true,
        ..put_req("b", "1")
    }));
    assert_eq!(
        response,
        Response::Put {
            revision: 4,
            prev_kv: None
        }
    );
}

#[test]
fn put_errors_change_nothing() {
    let mut store = Store::new();
    // etcd: put with an ungranted lease -> "requested lease not found", no revision bump.
    assert_eq!(
        put_lease(&mut store, "a", "1", 5),
        Response::Error(StoreError::LeaseNotFound)
    );
    // etcd: ignore_value / ignore_lease on a missing key -> "key not found".
    let ignore_value = PutReq {
        ignore_value: true,
        ..put_req("a", "")
    };
    assert_eq!(
        store.apply(&Request::Put(ignore_value)),
        Response::Error(StoreError::KeyNotFound)
    );
    let ignore_lease = PutReq {
        ignore_lease: true,
        ..put_req("a", "1")
    };
    assert_eq!(
        store.apply(&Request::Put(ignore_lease)),
        Response::Error(StoreError::KeyNotFound)
    );
    // etcd: ignore_value with a value -> "value is provided" (before key-not-found);
    // ignore_lease with a lease -> "lease is provided".
    let both_value = PutReq {
        ignore_value: true,
        ..put_req("a", "1")
    };
    assert_eq!(
        store.apply(&Request::Put(both_value)),
        Response::Error(StoreError::ValueProvided)
    );
    let both_lease = PutReq {
        ignore_lease: true,
        lease: 7,
        ..put_req("a", "1")
    };
    assert_eq!(
        store.apply(&Request::Put(both_lease)),
        Response::Error(StoreError::LeaseProvided)
    );
    // etcd: an empty key -> "key is not provided" for put, range and delete.
    assert_eq!(
        put(&mut store, "", "1"),
        Response::Error(StoreError::EmptyKey)
    );
    assert_eq!(get_at(&store, "", 0), Response::Error(StoreError::EmptyKey));
    assert_eq!(
        delete(&mut store, "", b"", false),
        Response::Error(StoreError::EmptyKey)
    );
    assert_eq!(store.revision(), 1);
    assert!(store.take_events().is_empty());
}

#[test]
fn ignore_value_and_ignore_lease_keep_the_old_ones() {
    // etcd: `put a --ignore-value` rewrites the old value at a new revision; `--ignore-lease`
    // keeps the key on its lease.
    let mut store = Store::new();
    store.apply(&Request::LeaseGrant { id: 9, ttl_s: 10 });
    put_lease(&mut store, "a", "old", 9);
    store.apply(&Request::Put(PutReq {
        ignore_value: true,
        lease: 9,
        ..put_req("a", "")
    }));
    let kv = get(&store, "a").unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.version, kv.lease, kv.mod_revision),
        (&b"old"[..], 2, 9, 3)
    );
    store.apply(&Request::Put(PutReq {
        ignore_lease: true,
        ..put_req("a", "new")
    }));
    let kv = get(&store, "a").unwrap();
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"new"[..], 9));
    assert_eq!(store.lease_keys(9), vec![b("a")]);
    checked(&store);
}

#[test]
fn range_kinds_and_options() {
    let mut store = Store::new();
    for key in ["a", "b", "b1", "b2", "c", "d"] {
        put(&mut store, key, key);
    }
    // Single key, interval [b, c), prefix b (range_end = "c"), from key (range_end = "\0").
    assert_eq!(keys_of(&get_at(&store, "b", 0)), ["b"]);
    assert_eq!(
        keys_of(&store.range(&range_req("b", b"c"))),
        ["b", "b1", "b2"]
    );
    assert_eq!(keys_of(&store.range(&range_req("c", &[0]))), ["c", "d"]);
    assert_eq!(keys_of(&store.range(&range_req("\u{1}", &[0]))).len(), 6);
    // etcd: an inverted range (end <= key) is empty, not an error.
    assert!(keys_of(&store.range(&range_req("c", b"b"))).is_empty());
    // etcd: `get b --prefix --limit 2` -> 2 kvs, more = true, count = 3 (the whole range).
    let limited = store.range(&RangeReq {
        limit: 2,
        ..range_req("b", b"c")
    });
    match &limited {
        Response::Range {
            revision,
            kvs,
            more,
            count,
        } => {
            assert_eq!((*revision, kvs.len(), *more, *count), (7, 2, true, 3));
        }
        other => panic!("{other:?}"),
    }
    let exact = store.range(&RangeReq {
        limit: 3,
        ..range_req("b", b"c")
    });
    assert!(matches!(
        exact,
        Response::Range {
            more: false,
            count: 3,
            ..
        }
    ));
    // etcd: count_only -> no kvs, count set, more false even with a limit.
    let counted = store.range(&RangeReq {
        count_only: true,
        limit: 1,
        ..range_req("b", b"c")
    });
    assert_eq!(
        counted,
        Response::Range {
            revision: 7,
            kvs: vec![],
            more: false,
            count: 3
        }
    );
    // etcd: keys_only empties values but keeps the revisions.
    match store.range(&RangeReq {
        keys_only: true,
        ..range_req("a", b"")
    }) {
        Response::Range { kvs, .. } => {
            assert_eq!(kvs[0].value, b(""));
            assert_eq!(kvs[0].mod_revision, 2);
        }
        other => panic!("{other:?}"),
    }
    // A missing key: an empty answer, count 0.
    assert_eq!(
        get_at(&store, "zz", 0),
        Response::Range {
            revision: 7,
            kvs: vec![],
            more: false,
            count: 0
        }
    );
}

#[test]
fn historical_ranges_and_revision_errors() {
    let mut store = Store::new();
    put(&mut store, "a", "1"); // 2
    put(&mut store, "a", "2"); // 3
    delete(&mut store, "a", b"", false); // 4
    put(&mut store, "a", "3"); // 5
                               // etcd: the header is the current revision even for a historic read.
    let at2 = get_at(&store, "a", 2);
    assert!(matches!(&at2, Response::Range { revision: 5, kvs, .. } if kvs[0].value == b("1")));
    assert_eq!(get(&store, "a").unwrap().value, b("3"));
    assert!(keys_of(&get_at(&store, "a", 4)).is_empty());
    // etcd: a re-created key starts over: version 1, create_revision = its new revision.
    let kv = get(&store, "a").unwrap();
    assert_eq!((kv.create_revision, kv.version), (5, 1));
    assert!(keys_of(&get_at(&store, "a", 1)).is_empty());
    // etcd: above current -> "required revision is a future revision"; a negative revision reads current.
    assert_eq!(
        get_at(&store, "a", 6),
        Response::Error(StoreError::FutureRevision)
    );
    assert_eq!(keys_of(&get_at(&store, "a", -3)), ["a"]);
}

#[test]
fn delete_range_counts_returns_prev_kvs_and_bumps_only_on_change() {
    let mut store = Store::new();
    for key in ["a", "b", "c"] {
        put(&mut store, key, "v");
    }
    // etcd: deleting a missing key -> deleted 0, header = current revision, no bump.
    assert_eq!(
        delete(&mut store, "zz", b"", false),
        Response::DeleteRange {
            revision: 4,
            deleted: 0,
            prev_kvs: vec![]
        }
    );
    assert_eq!(store.revision(), 4);
    assert!(store.take_events().len() == 3);
    match delete(&mut store, "a", b"c", true) {
        Response::DeleteRange {
            revision,
            deleted,
            prev_kvs,
        } => {
            assert_eq!((revision, deleted), (5, 2));
            assert_eq!(
                prev_kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
                [b("a"), b("b")]
            );
        }
        other => panic!("{other:?}"),
    }
    // etcd: a delete event carries only key and mod_revision; both deletes share revision 5.
    let events = store.take_events();
    assert_eq!(events.len(), 2);
    for (event, key) in events.iter().zip(["a", "b"]) {
        assert_eq!(event.kind, EventKind::Delete);
        assert_eq!(
            event.kv,
            Kv {
                key: b(key),
                mod_revision: 5,
                ..Kv::default()
            }
        );
        assert_eq!(
            event.prev_kv.as_ref().map(|kv| kv.mod_revision),
            Some(if key == "a" { 2 } else { 3 })
        );
    }
    checked(&store);
}

#[test]
fn txn_compares_on_every_target() {
    let mut store = Store::new();
    store.apply(&Request::LeaseGrant { id: 3, ttl_s: 10 });
    put_lease(&mut store, "k", "m", 3); // 2
    put_lease(&mut store, "k", "m", 3); // 3: version 2
    let cases = [
        (CmpTarget::Value(b("m")), CmpResult::Equal, true),
        (CmpTarget::Value(b("a")), CmpResult::Greater, true),
        (CmpTarget::Value(b("z")), CmpResult::Less, true),
        (CmpTarget::Value(b("m")), CmpResult::NotEqual, false),
        (CmpTarget::Version(2), CmpResult::Equal, true),
        (CmpTarget::Version(1), CmpResult::Greater, true),
        (CmpTarget::CreateRevision(2), CmpResult::Equal, true),
        (CmpTarget::CreateRevision(2), CmpResult::Less, false),
        (CmpTarget::ModRevision(3), CmpResult::Equal, true),
        (CmpTarget::ModRevision(4), CmpResult::Less, true),
        (CmpTarget::Lease(3), CmpResult::Equal, true),
        (CmpTarget::Lease(0), CmpResult::NotEqual, true),
    ];
    for (target, result, expected) in cases {
        let response = store.apply(&txn(vec![cmp("k", result, target.clone())], vec![], vec![]));
        assert!(
            matches!(response, Response::Txn { succeeded, .. } if succeeded == expected),
            "{target:?} {result:?}"
        );
    }
    // etcd: on a missing key a value compare is false whatever the operator; other targets
    // compare against zero (version 0, create 0, mod 0, lease 0).
    for result in [
        CmpResult::Equal,
        CmpResult::NotEqual,
        CmpResult::Less,
        CmpResult::Greater,
    ] {
        let response = store.apply(&txn(
            vec![cmp("missing", result, CmpTarget::Value(b("q")))],
            vec![],
            vec![],
        ));
        assert!(
            matches!(
                response,
                Response::Txn {
                    succeeded: false,
                    ..
                }
            ),
            "{result:?}"
        );
    }
    for target in [
        CmpTarget::Version(0),
        CmpTarget::CreateRevision(0),
        CmpTarget::ModRevision(0),
        CmpTarget::Lease(0),
    ] {
        let response = store.apply(&txn(
            vec![cmp("missing", CmpResult::Equal, target)],
            vec![],
            vec![],
        ));
        assert!(matches!(
            response,
            Response::Txn {
                succeeded: true,
                ..
            }
        ));
    }
    // All compares must hold.
    let mixed = vec![
        cmp("k", CmpResult::Equal, CmpTarget::Version(2)),
        cmp("k", CmpResult::Equal, CmpTarget::Version(3)),
    ];
    assert!(matches!(
        store.apply(&txn(mixed, vec![], vec![])),
        Response::Txn {
            succeeded: false,
            ..
        }
    ));
    assert_eq!(store.revision(), 3);
}

#[test]
fn txn_is_one_revision_and_sees_its_own_writes() {
    let mut store = Store::new();
    put(&mut store, "x", "0"); // 2
                               // etcd: txn [get x, del nope, put y, del nope] -> headers 2, 2, 3, 3; txn header 3.
    let request = txn(
        vec![],
        vec![
            op_get("x"),
            op_del("nope", b""),
            op_put("y", "1"),
            op_del("nope", b""),
        ],
        vec![],
    );
    let Response::Txn {
        revision,
        succeeded,
        responses,
    } = store.apply(&request)
    else {
        panic!()
    };
    assert_eq!((revision, succeeded), (3, true));
    let headers: Vec<i64> = responses
        .iter()
        .map(|r| match r {
            Response::Range { revision, .. }
            | Response::DeleteRange { revision, .. }
            | Response::Put { revision, .. } => *revision,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(headers, [2, 2, 3, 3]);
    // Writes of one txn share the main revision; a later read in it sees them.
    let request = txn(
        vec![],
        vec![
            op_put("p", "1"),
            op_put("q", "2"),
            TxnOp::Range(range_req("p", b"r")),
        ],
        vec![],
    );
    let Response::Txn {
        revision,
        responses,
        ..
    } = store.apply(&request)
    else {
        panic!()
    };
    assert_eq!(revision, 4);
    assert_eq!(keys_of(&responses[2]), ["p", "q"]);
    let events = store.take_events();
    assert_eq!(
        events.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(),
        [2, 3, 4, 4]
    );
    // A read-only or failed-compare txn does not bump the revision.
    store.apply(&txn(
        vec![cmp("x", CmpResult::Equal, CmpTarget::Value(b("no")))],
        vec![op_put("x", "9")],
        vec![op_get("x")],
    ));
    assert_eq!(store.revision(), 4);
    assert_eq!(get(&store, "x").unwrap().value, b("0"));
    checked(&store);
}

#[test]
fn nested_txn_compares_read_the_state_before_the_txn() {
    // etcd: txn [put z, txn(if version(z) > 0 then put s else put f)] with z missing runs the
    // nested failure branch (compares are all evaluated first), and the nested header is empty.
    let mut store = Store::new();
    let nested = TxnReq {
        compare: vec![cmp("z", CmpResult::Greater, CmpTarget::Version(0))],
        success: vec![op_put("s", "1")],
        failure: vec![op_put("f", "1")],
    };
    let response = store.apply(&txn(
        vec![],
        vec![op_put("z", "1"), TxnOp::Txn(nested)],
        vec![],
    ));
    let expected_nested = Response::Txn {
        revision: 0,
        succeeded: false,
        responses: vec![Response::Put {
            revision: 2,
            prev_kv: None,
        }],
    };
    assert_eq!(
        response,
        Response::Txn {
            revision: 2,
            succeeded: true,
            responses: vec![
                Response::Put {
                    revision: 2,
                    prev_kv: None
                },
                expected_nested
            ]
        }
    );
    assert!(get(&store, "f").is_some() && get(&store, "s").is_none());
}

#[test]
fn txn_duplicate_key_rules() {
    let mut store = Store::new();
    put(&mut store, "k", "0");
    let duplicate = Response::Error(StoreError::DuplicateKey);
    // Two puts of one key; a put inside a deleted range (etcd: "duplicate key given in txn request").
    assert_eq!(
        store.apply(&txn(
            vec![],
            vec![op_put("k", "1"), op_put("k", "2")],
            vec![]
        )),
        duplicate
    );
    assert_eq!(
        store.apply(&txn(
            vec![],
            vec![op_del("a", b"z"), op_put("k", "1")],
            vec![]
        )),
        duplicate
    );
    assert_eq!(
        store.apply(&txn(
            vec![],
            vec![op_del("k", b""), op_put("k", "1")],
            vec![]
        )),
        duplicate
    );
    // Checked on the branch that does not run too.
    assert_eq!(
        store.apply(&txn(
            vec![],
            vec![],
            vec![op_put("k", "1"), op_put("k", "2")]
        )),
        duplicate
    );
    // Put in a nested txn vs a delete of the parent.
    let nested = TxnReq {
        compare: vec![],
        success: vec![op_put("k", "1")],
        failure: vec![],
    };
    assert_eq!(
        store.apply(&txn(
            vec![],
            vec![op_del("k", b""), TxnOp::Txn(nested)],
            vec![]
        )),
        duplicate
    );
    assert_eq!(store.revision(), 2);
    // Allowed: two deletes of one key (etcd: deleted 1, then 0); one key in both branches of a
    // nested txn; and a from-key delete next to a put (etcd 3.4 compares range_end "\0" literally).
    let ok = store.apply(&txn(
        vec![],
        vec![op_del("k", b""), op_del("k", b"")],
        vec![],
    ));
    assert!(
        matches!(&ok, Response::Txn { revision: 3, responses, .. } if responses[1] == Response::DeleteRange { revision: 3, deleted: 0, prev_kvs: vec![] })
    );
    let both = TxnReq {
        compare: vec![],
        success: vec![op_put("n", "then")],
        failure: vec![op_put("n", "else")],
    };
    assert!(matches!(
        store.apply(&txn(vec![], vec![TxnOp::Txn(both)], vec![])),
        Response::Txn { revision: 4, .. }
    ));
    put(&mut store, "m", "0"); // 5
    let from_key = store.apply(&txn(
        vec![],
        vec![op_del("a", &[0]), op_put("m", "1")],
        vec![],
    ));
    assert!(
        matches!(&from_key, Response::Txn { revision: 6, responses, .. } if matches!(responses[0], Response::DeleteRange { deleted: 2, .. }))
    );
    // etcd: the put after the delete re-creates the key at the same revision.
    let kv = get(&store, "m").unwrap();
    assert_eq!((kv.version, kv.create_revision, kv.mod_revision), (1, 6, 6));
    assert_eq!(store.dump().len(), 1);
    checked(&store);
}

#[test]
fn txn_too_many_ops_with_nested_budget() {
    let mut store = Store::new();
    let gets = |n: usize| (0..n).map(|_| op_get("k")).collect::<Vec<_>>();
    let too_many = Response::Error(StoreError::TooManyOps);
    // etcd --max-txn-ops 128: each list may hold 128; 129 compares fail.
    assert!(matches!(
        store.apply(&txn(vec![], gets(TXN_OPS_MAX), gets(TXN_OPS_MAX))),
        Response::Txn { .. }
    ));
    let compares = (0..=TXN_OPS_MAX)
        .map(|_| cmp("k", CmpResult::Equal, CmpTarget::Version(0)))
        .collect();
    assert_eq!(store.apply(&txn(compares, vec![], vec![])), too_many);
    // etcd: a nested txn gets 128 minus its parent's longest list: next to 9 other ops (10 in the
    // parent) 118 ranges pass and 119 fail.
    let with_nested = |n: usize| {
        let mut ops = gets(9);
        ops.push(TxnOp::Txn(TxnReq {
            compare: vec![],
            success: gets(n),
            failure: vec![],
        }));
        txn(vec![], ops, vec![])
    };
    assert!(matches!(
        store.apply(&with_nested(118)),
        Response::Txn { .. }
    ));
    assert_eq!(store.apply(&with_nested(119)), too_many);
    // Empty keys anywhere in a txn.
    assert_eq!(
        store.apply(&txn(
            vec![cmp("", CmpResult::Equal, CmpTarget::Version(0))],
            vec![],
            vec![]
        )),
        Response::Error(StoreError::EmptyKey)
    );
    assert_eq!(
        store.apply(&txn(vec![], vec![], vec![op_put("", "1")])),
        Response::Error(StoreError::EmptyKey)
    );
}

#[test]
fn txn_checks_on_the_taken_path_before_running() {
    let mut store = Store::new();
    put(&mut store, "a", "1"); // 2
                               // KeyNotFound (ignore_value on a missing key) and LeaseNotFound refuse the whole txn.
    let ignore = TxnOp::Put(PutReq {
        ignore_value: true,
        ..put_req("missing", "")
    });
    assert_eq!(
        store.apply(&txn(vec![], vec![op_put("b", "1"), ignore.clone()], vec![])),
        Response::Error(StoreError::KeyNotFound)
    );
    let leased = TxnOp::Put(PutReq {
        lease: 42,
        ..put_req("b", "1")
    });
    assert_eq!(
        store.apply(&txn(vec![], vec![op_put("c", "1"), leased.clone()], vec![])),
        Response::Error(StoreError::LeaseNotFound)
    );
    // Only the path that runs is checked.
    assert!(matches!(
        store.apply(&txn(vec![], vec![op_get("a")], vec![ignore, leased])),
        Response::Txn { revision: 2, .. }
    ));
    // Range revisions: future, compacted.
    let future = TxnOp::Range(RangeReq {
        revision: 3,
        ..range_req("a", b"")
    });
    assert_eq!(
        store.apply(&txn(vec![], vec![op_put("c", "1"), future], vec![])),
        Response::Error(StoreError::FutureRevision)
    );
    put(&mut store, "a", "2"); // 3
    compact(&mut store, 3);
    let old = TxnOp::Range(RangeReq {
        revision: 2,
        ..range_req("a", b"")
    });
    assert_eq!(
        store.apply(&txn(vec![], vec![old], vec![])),
        Response::Error(StoreError::Compacted)
    );
    // etcd: inside a txn a negative revision is compared with the compact revision (a plain get
    // with --rev=-5 reads the current revision instead).
    let negative = TxnOp::Range(RangeReq {
        revision: -5,
        ..range_req("a", b"")
    });
    assert_eq!(
        store.apply(&txn(vec![], vec![negative], vec![])),
        Response::Error(StoreError::Compacted)
    );
    assert_eq!(store.revision(), 3);
    assert!(get(&store, "b").is_none() && get(&store, "c").is_none());
    checked(&store);
}

#[test]
fn from_key_delete_before_ignore_value_put_refuses_the_txn() {
    // etcd's checkPut sees the key before the txn and lets this through, then panics when the
    // from-key delete has removed it. The simulated server refuses the txn instead, unchanged.
    let mut store = Store::new();
    put(&mut store, "k", "1");
    store.take_events();
    let ignore = TxnOp::Put(PutReq {
        ignore_value: true,
        ..put_req("k", "")
    });
    let response = store.apply(&txn(vec![], vec![op_del("a", &[0]), ignore], vec![]));
    assert_eq!(response, Response::Error(StoreError::KeyNotFound));
    assert_eq!(
        (store.revision(), get(&store, "k").unwrap().value),
        (2, b("1"))
    );
    assert!(store.take_events().is_empty());
    checked(&store);
}

#[test]
fn leases_grant_revoke_attach_detach() {
    let mut store = Store::new();
    // etcd: `grant 1` answers TTL 2 (minimum TTL); a second grant of the id -> "lease already exists".
    assert_eq!(
        store.apply(&Request::LeaseGrant { id: 77, ttl_s: 1 }),
        Response::LeaseGrant {
            revision: 1,
            id: 77,
            ttl_s: LEASE_TTL_MIN_S
        }
    );
    assert_eq!(
        store.apply(&Request::LeaseGrant { id: 77, ttl_s: 5 }),
        Response::Error(StoreError::LeaseExists)
    );
    assert_eq!(
        store.apply(&Request::LeaseGrant { id: 78, ttl_s: 5 }),
        Response::LeaseGrant {
            revision: 1,
            id: 78,
            ttl_s: 5
        }
    );
    assert_eq!(store.leases(), vec![(77, 2), (78, 5)]);
    put_lease(&mut store, "lk2", "1", 78); // 2
    put_lease(&mut store, "lk", "1", 78); // 3
    put_lease(&mut store, "other", "1", 77); // 4
                                             // etcd: time-to-live lists the attached keys (we sort them) and the granted TTL.
    let ttl = store.apply(&Request::LeaseTimeToLive { id: 78, keys: true });
    assert_eq!(
        ttl,
        Response::LeaseTimeToLive {
            revision: 4,
            id: 78,
            ttl_s: 5,
            granted_ttl_s: 5,
            keys: vec![b("lk"), b("lk2")]
        }
    );
    // etcd: a missing lease -> TTL -1, granted 0 (not an error); keep-alive/revoke -> not found.
    assert_eq!(
        store.apply(&Request::LeaseTimeToLive { id: 99, keys: true }),
        Response::LeaseTimeToLive {
            revision: 4,
            id: 99,
            ttl_s: -1,
            granted_ttl_s: 0,
            keys: vec![]
        }
    );
    assert_eq!(
        store.apply(&Request::LeaseKeepAlive { id: 99 }),
        Response::Error(StoreError::LeaseNotFound)
    );
    assert_eq!(
        store.apply(&Request::LeaseKeepAlive { id: 78 }),
        Response::LeaseKeepAlive {
            revision: 4,
            id: 78,
            ttl_s: 5
        }
    );
    // Re-putting a key without a lease detaches it; with another lease moves it.
    put(&mut store, "lk2", "2"); // 5
    put_lease(&mut store, "other", "2", 78); // 6
    assert_eq!(store.lease_keys(78), vec![b("lk"), b("other")]);
    assert!(store.lease_keys(77).is_empty());
    store.take_events();
    // etcd: revoke deletes the attached keys at one revision; the header is the new revision.
    assert_eq!(
        store.apply(&Request::LeaseRevoke { id: 78 }),
        Response::LeaseRevoke { revision: 7 }
    );
    let events = store.take_events();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind, e.kv.key.clone(), e.kv.mod_revision))
            .collect::<Vec<_>>(),
        [
            (EventKind::Delete, b("lk"), 7),
            (EventKind::Delete, b("other"), 7)
        ]
    );
    assert_eq!(
        store
            .dump()
            .iter()
            .map(|kv| kv.key.clone())
            .collect::<Vec<_>>(),
        [b("lk2")]
    );
    assert_eq!(
        store.apply(&Request::LeaseRevoke { id: 78 }),
        Response::Error(StoreError::LeaseNotFound)
    );
    // A lease without keys: revoke bumps nothing.
    assert_eq!(
        store.apply(&Request::LeaseRevoke { id: 77 }),
        Response::LeaseRevoke { revision: 7 }
    );
    assert!(store.leases().is_empty());
    // A deleted key leaves its lease.
    store.apply(&Request::LeaseGrant { id: 5, ttl_s: 10 });
    put_lease(&mut store, "d", "1", 5);
    delete(&mut store, "d", b"", false);
    assert!(store.lease_keys(5).is_empty());
    checked(&store);
}

#[test]
fn compaction_rules() {
    let mut store = Store::new();
    put(&mut store, "w1", "a"); // 2
    put(&mut store, "w2", "b"); // 3
    put(&mut store, "w2", "c"); // 4
    delete(&mut store, "w1", b"", false); // 5
    put(&mut store, "w3", "x"); // 6
                                // etcd: compact above current -> future revision.
    assert_eq!(
        compact(&mut store, 7),
        Response::Error(StoreError::FutureRevision)
    );
    assert_eq!(compact(&mut store, 5), Response::Compact { revision: 6 });
    assert_eq!(store.compact_revision(), 5);
    // etcd: at or below the compact revision -> "required revision has been compacted".
    assert_eq!(
        compact(&mut store, 5),
        Response::Error(StoreError::Compacted)
    );
    assert_eq!(
        compact(&mut store, 3),
        Response::Error(StoreError::Compacted)
    );
    assert_eq!(
        get_at(&store, "w2", 4),
        Response::Error(StoreError::Compacted)
    );
    // etcd: reads at the compact revision work and see the latest version of each live key.
    let at5 = store.range(&RangeReq {
        revision: 5,
        ..range_req("w", b"x")
    });
    assert!(
        matches!(&at5, Response::Range { kvs, .. } if kvs.len() == 1 && kvs[0].value == b("c") && kvs[0].version == 2)
    );
    assert_eq!(keys_of(&store.range(&range_req("w", b"x"))), ["w2", "w3"]);
    // etcd: a watch from the compact revision misses the delete at it (the tombstone is
    // compacted away) and w2's kept version at 4; from below it the watch is compacted.
    let events = store.events_since(5, b"w", b"x", true).unwrap();
    assert_eq!(
        events.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(),
        [6]
    );
    assert_eq!(store.events_since(4, b"w", b"x", false), Err(5));
    // Further writes keep versions right after compaction.
    put(&mut store, "w2", "d"); // 7
    let kv = get(&store, "w2").unwrap();
    assert_eq!((kv.create_revision, kv.version), (3, 3));
    // etcd: `compact 0` on a fresh store succeeds (compacted starts at -1); then 0 is compacted.
    let mut fresh = Store::new();
    assert_eq!(compact(&mut fresh, 0), Response::Compact { revision: 1 });
    assert_eq!(
        compact(&mut fresh, 0),
        Response::Error(StoreError::Compacted)
    );
    checked(&store);
}

#[test]
fn compaction_keeps_history_after_the_compact_revision() {
    let mut store = Store::new();
    put(&mut store, "k", "1"); // 2
    put(&mut store, "k", "2"); // 3
    delete(&mut store, "k", b"", false); // 4
    put(&mut store, "k", "3"); // 5
    compact(&mut store, 3);
    // Reads at 3, 4, 5 are unchanged: the kept version at 3, the deletion at 4, the new life at 5.
    assert_eq!(
        get_at(&store, "k", 3),
        Response::Range {
            revision: 5,
            kvs: vec![Kv {
                key: b("k"),
                value: b("2"),
                create_revision: 2,
                mod_revision: 3,
                version: 2,
                lease: 0
            }],
            more: false,
            count: 1
        }
    );
    assert!(keys_of(&get_at(&store, "k", 4)).is_empty());
    let events = store.events_since(3, b"k", b"", true).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind, e.kv.mod_revision))
            .collect::<Vec<_>>(),
        [
            (EventKind::Put, 3),
            (EventKind::Delete, 4),
            (EventKind::Put, 5)
        ]
    );
    // prev_kv of the put at 3 would be at revision 2, compacted: none. The delete's prev is the put at 3.
    assert_eq!(events[0].prev_kv, None);
    assert_eq!(
        events[1].prev_kv.as_ref().map(|kv| kv.mod_revision),
        Some(3)
    );
    assert_eq!(events[2].prev_kv, None);
    compact(&mut store, 4);
    assert!(store
        .events_since(4, b"k", b"", false)
        .unwrap()
        .iter()
        .all(|e| e.kv.mod_revision == 5));
    checked(&store);
}

#[test]
fn events_and_events_since_agree() {
    let mut store = Store::new();
    let mut taken: Vec<Event> = Vec::new();
    put(&mut store, "a", "1");
    put(&mut store, "b", "1");
    taken.extend(store.take_events());
    store.apply(&txn(
        vec![],
        vec![op_put("a", "2"), op_del("b", b""), op_put("c", "1")],
        vec![],
    ));
    delete(&mut store, "a", b"", false);
    taken.extend(store.take_events());
    assert!(store.take_events().is_empty());
    assert_eq!(store.events_since(0, b"\0", &[0], true).unwrap(), taken);
    assert_eq!(
        taken.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(),
        [2, 3, 4, 4, 4, 5]
    );
    // etcd: no prev_kv on a creation; the txn's put of "a" carries the value from revision 2.
    assert_eq!(taken[0].prev_kv, None);
    assert_eq!(
        taken[2].prev_kv.as_ref().map(|kv| kv.value.clone()),
        Some(b("1"))
    );
    // Filtered by key range and start revision; prev_kv only on request.
    let only_a = store.events_since(3, b"a", b"", false).unwrap();
    assert_eq!(
        only_a
            .iter()
            .map(|e| (e.kind, e.kv.mod_revision))
            .collect::<Vec<_>>(),
        [(EventKind::Put, 4), (EventKind::Delete, 5)]
    );
    assert!(only_a.iter().all(|e| e.prev_kv.is_none()));
    assert!(store.events_since(6, b"a", &[0], true).unwrap().is_empty());
}

#[test]
fn hash_kv_is_deterministic_and_sensitive() {
    let requests = [
        Request::LeaseGrant { id: 1, ttl_s: 10 },
        Request::Put(PutReq {
            lease: 1,
            ..put_req("a", "1")
        }),
        Request::Put(put_req("b", "1")),
        Request::DeleteRange(DeleteRangeReq {
            key: b("b"),
            range_end: vec![],
            prev_kv: false,
        }),
        Request::Put(put_req("a", "2")),
        Request::Compact {
            revision: 3,
            physical: true,
        },
        Request::Put(put_req("c", "1")),
    ];
    let mut one = Store::new();
    let mut two = Store::new();
    for request in &requests {
        one.apply(request);
        two.apply(request);
    }
    assert_eq!(one.hash_kv(0), two.hash_kv(0));
    assert_eq!(one.hash_kv(5), two.hash_kv(5));
    assert_ne!(one.hash_kv(5), one.hash_kv(6));
    // A restored snapshot hashes the same.
    assert_eq!(
        Store::from_bytes(&one.to_bytes()).unwrap().hash_kv(6),
        one.hash_kv(6)
    );
    two.apply(&Request::Put(put_req("c", "2")));
    assert_eq!(one.hash_kv(6), two.hash_kv(6));
    assert_ne!(one.hash_kv(0), two.hash_kv(0));
    assert_eq!(one.hash_kv(2), Err(StoreError::Compacted));
    assert_eq!(one.hash_kv(7), Err(StoreError::FutureRevision));
}

#[test]
fn snapshot_round_trip() {
    let mut store = Store::new();
    store.apply(&Request::LeaseGrant { id: 4, ttl_s: 30 });
    put_lease(&mut store, "a", "1", 4);
    put(&mut store, "b", "1");
    put(&mut store, "b", "2");
    delete(&mut store, "a", b"", false);
    put_lease(&mut store, "c", "1", 4);
    compact(&mut store, 4);
    let restored = Store::from_bytes(&store.to_bytes()).unwrap();
    assert_eq!(restored.to_bytes(), store.to_bytes());
    assert_eq!((restored.revision(), restored.compact_revision()), (6, 4));
    assert_eq!(restored.dump(), store.dump());
    assert_eq!(restored.leases(), store.leases());
    assert_eq!(restored.lease_keys(4), vec![b("c")]);
    assert_eq!(
        restored.events_since(4, b"\0", &[0], true),
        store.events_since(4, b"\0", &[0], true)
    );
    assert_eq!(
        get_at(&restored, "b", 3),
        Response::Error(StoreError::Compacted)
    );
    // The restored lessor still detaches and revokes.
    let mut restored = restored;
    assert_eq!(
        restored.apply(&Request::LeaseRevoke { id: 4 }),
        Response::LeaseRevoke { revision: 7 }
    );
    assert!(get(&restored, "c").is_none());
    checked(&restored);
    // Garbage and inconsistent snapshots are refused with a message, never a panic.
    assert!(Store::from_bytes(b"not a snapshot")
        .unwrap_err()
        .contains("store snapshot"));
    let bytes = store.to_bytes();
    assert!(Store::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    // The image starts with the current revision (bincode, little-endian): lowering it below the
    // backend's records makes an inconsistent store, which `check` refuses.
    assert_eq!(bytes[..8], 6i64.to_le_bytes());
    let mut broken = bytes.clone();
    broken[..8].copy_from_slice(&3i64.to_le_bytes());
    assert!(Store::from_bytes(&broken)
        .unwrap_err()
        .contains("store snapshot"));
}

/// Planted bug `txn_partial`: a branch that writes twice loses its last put but answers for it;
/// a branch that writes once, and a correct store, apply everything.
#[test]
fn planted_txn_partial_bug() {
    let mut buggy = Store::new().with_bugs(StoreBugs {
        txn_partial: true,
        ..StoreBugs::default()
    });
    let answer = buggy.apply(&txn(
        vec![],
        vec![op_put("a", "1"), op_put("b", "2")],
        vec![],
    ));
    assert!(
        matches!(&answer, Response::Txn { succeeded: true, responses, .. } if responses.len() == 2),
        "{answer:?}"
    );
    assert_eq!(get(&buggy, "a").map(|kv| kv.value), Some(b("1")));
    assert_eq!(get(&buggy, "b"), None, "the last put is dropped");
    buggy.apply(&txn(vec![], vec![op_put("c", "3")], vec![]));
    assert_eq!(
        get(&buggy, "c").map(|kv| kv.value),
        Some(b("3")),
        "one write applies"
    );
    let mut correct = Store::new();
    correct.apply(&txn(
        vec![],
        vec![op_put("a", "1"), op_put("b", "2")],
        vec![],
    ));
    assert_eq!(get(&correct, "b").map(|kv| kv.value), Some(b("2")));
}

#[test]
fn planted_compacted_read_bug() {
    let build = |bugs: StoreBugs| {
        let mut store = Store::new().with_bugs(bugs);
        put(&mut store, "k", "1"); // 2
        put(&mut store, "k", "2"); // 3
        put(&mut store, "k", "3"); // 4
        compact(&mut store, 3);
        store
    };
    let correct = build(StoreBugs::default());
    assert_eq!(
        get_at(&correct, "k", 2),
        Response::Error(StoreError::Compacted)
    );
    let buggy = build(StoreBugs {
        compacted_read: true,
        ..StoreBugs::default()
    });
    // The bug serves the oldest data it still has (the state at the compact revision).
    assert!(
        matches!(get_at(&buggy, "k", 2), Response::Range { kvs, .. } if kvs[0].value == b("2"))
    );
    let mut buggy = buggy;
    let old = TxnOp::Range(RangeReq {
        revision: 2,
        ..range_req("k", b"")
    });
    assert!(matches!(
        buggy.apply(&txn(vec![], vec![old], vec![])),
        Response::Txn { .. }
    ));
    // Snapshots do not carry the bug; the node sets it again.
    let restored = Store::from_bytes(&buggy.to_bytes()).unwrap();
    assert_eq!(
        get_at(&restored, "k", 2),
        Response::Error(StoreError::Compacted)
    );
    assert!(matches!(
        get_at(
            &restored.with_bugs(StoreBugs {
                compacted_read: true,
                ..StoreBugs::default()
            }),
            "k",
            2
        ),
        Response::Range { .. }
    ));
}

/// xorshift64: a seeded generator for the randomized invariant test (no dependency needed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn random_requests_keep_invariants_and_replicas_agree() {
    let keys = ["a", "b", "c", "d"];
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut one = Store::new();
        let mut two = Store::new();
        let mut events = Vec::new();
        for step in 0..60 {
            let key = keys[rng.below(4) as usize];
            let request = match rng.below(9) {
                0 | 1 => Request::Put(PutReq {
                    lease: [0, 0, 1, 2][rng.below(4) as usize],
                    ..put_req(key, &step.to_string())
                }),
                2 => Request::DeleteRange(DeleteRangeReq {
                    key: b(key),
                    range_end: if rng.below(2) == 0 { vec![] } else { b("c") },
                    prev_kv: true,
                }),
                3 => Request::Txn(TxnReq {
                    compare: vec![cmp(
                        key,
                        CmpResult::Greater,
                        CmpTarget::Version(rng.below(3) as i64),
                    )],
                    success: vec![op_put(key, "s"), op_get("a")],
                    failure: vec![
                        op_del(key, b""),
                        op_put(keys[(rng.below(3) + 1) as usize % 4].min(key), "f"),
                    ],
                }),
                4 => Request::LeaseGrant {
                    id: 1 + rng.below(2) as i64,
                    ttl_s: 5,
                },
                5 => Request::LeaseRevoke {
                    id: 1 + rng.below(2) as i64,
                },
                6 => Request::Compact {
                    revision: one.revision() - rng.below(3) as i64,
                    physical: false,
                },
                7 => Request::Range(RangeReq {
                    revision: one.revision() - rng.below(6) as i64,
                    ..range_req("a", &[0])
                }),
                _ => Request::Put(PutReq {
                    ignore_value: true,
                    ..put_req(key, "")
                }),
            };
            let response = one.apply(&request);
            assert_eq!(two.apply(&request), response, "seed {seed} step {step}");
            checked(&one);
            events.extend(one.take_events());
            if step % 20 == 19 {
                two = Store::from_bytes(&two.to_bytes()).unwrap();
            }
        }
        assert_eq!(one.hash_kv(0), two.hash_kv(0), "seed {seed}");
        assert!(events
            .windows(2)
            .all(|pair| pair[0].kv.mod_revision <= pair[1].kv.mod_revision));
        let start = one.compact_revision().max(1);
        let replay = one.events_since(start, b"\0", &[0], true).unwrap();
        let kept: Vec<_> = events
            .iter()
            .filter(|e| e.kv.mod_revision > start)
            .cloned()
            .collect();
        assert_eq!(
            replay
                .into_iter()
                .filter(|e| e.kv.mod_revision > start)
                .collect::<Vec<_>>(),
            kept,
            "seed {seed}"
        );
    }
}
