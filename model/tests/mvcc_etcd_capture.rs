//! A sequence run against a real etcd 3.4.23 (single member, JSON gateway, fresh data dir), with
//! the answers it gave converted to kvsim's history vocabulary. The model must give the same
//! answers (the remaining TTL of `lease_time_to_live` is clock-dependent: there the model's
//! checker must accept etcd's answer). Captured on 2026-11-22 with a small script that maps each
//! `Op` to the gateway's `/v3/kv/*` and `/v3/lease/*` endpoints; clientv3's mapping of a keep-alive
//! TTL of 0 to `LeaseNotFound` is applied. etcd is not needed to run this test.

use kvsim_model::mvcc::{MvccModel, Op, Ret};
use kvsim_model::{SequentialSpec, Spec};

const CAPTURED: &str = r####"
{"op": {"op": "range", "key": "a"}, "ret": {"ok": {"op": "range", "header": {"revision": 1}, "kvs": [], "more": false, "count": 0}}}
{"op": {"op": "put", "key": "a", "value": "1"}, "ret": {"ok": {"op": "put", "header": {"revision": 2}}}}
{"op": {"op": "put", "key": "a", "value": "2", "prev_kv": true}, "ret": {"ok": {"op": "put", "header": {"revision": 3}, "prev_kv": {"key": "a", "value": "1", "create_revision": 2, "mod_revision": 2, "version": 1, "lease": 0}}}}
{"op": {"op": "put", "key": "b", "value": "x"}, "ret": {"ok": {"op": "put", "header": {"revision": 4}}}}
{"op": {"op": "put", "key": "b/1", "value": "y"}, "ret": {"ok": {"op": "put", "header": {"revision": 5}}}}
{"op": {"op": "range", "key": "a", "range_end": "\u0000", "limit": 1}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 3, "version": 2, "lease": 0}], "more": true, "count": 3}}}
{"op": {"op": "range", "key": "a", "range_end": "\u0000", "count_only": true, "limit": 1}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [], "more": false, "count": 3}}}
{"op": {"op": "range", "key": "b", "range_end": "c", "keys_only": true}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [{"key": "b", "value": "", "create_revision": 4, "mod_revision": 4, "version": 1, "lease": 0}, {"key": "b/1", "value": "", "create_revision": 5, "mod_revision": 5, "version": 1, "lease": 0}], "more": false, "count": 2}}}
{"op": {"op": "range", "key": "\u0000", "range_end": "\u0000", "limit": 5}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 3, "version": 2, "lease": 0}, {"key": "b", "value": "x", "create_revision": 4, "mod_revision": 4, "version": 1, "lease": 0}, {"key": "b/1", "value": "y", "create_revision": 5, "mod_revision": 5, "version": 1, "lease": 0}], "more": false, "count": 3}}}
{"op": {"op": "range", "key": "c", "range_end": "a"}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [], "more": false, "count": 0}}}
{"op": {"op": "range", "key": "a", "revision": 2}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [{"key": "a", "value": "1", "create_revision": 2, "mod_revision": 2, "version": 1, "lease": 0}], "more": false, "count": 1}}}
{"op": {"op": "range", "key": "a", "revision": 99}, "ret": {"err": "future_revision"}}
{"op": {"op": "range", "key": "a", "revision": -3}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 3, "version": 2, "lease": 0}], "more": false, "count": 1}}}
{"op": {"op": "range", "key": "a", "serializable": true}, "ret": {"ok": {"op": "range", "header": {"revision": 5}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 3, "version": 2, "lease": 0}], "more": false, "count": 1}}}
{"op": {"op": "range", "key": ""}, "ret": {"err": "empty_key"}}
{"op": {"op": "delete_range", "key": "zz"}, "ret": {"ok": {"op": "delete_range", "header": {"revision": 5}, "deleted": 0, "prev_kvs": []}}}
{"op": {"op": "delete_range", "key": "b", "range_end": "c", "prev_kv": true}, "ret": {"ok": {"op": "delete_range", "header": {"revision": 6}, "deleted": 2, "prev_kvs": [{"key": "b", "value": "x", "create_revision": 4, "mod_revision": 4, "version": 1, "lease": 0}, {"key": "b/1", "value": "y", "create_revision": 5, "mod_revision": 5, "version": 1, "lease": 0}]}}}
{"op": {"op": "delete_range", "key": ""}, "ret": {"err": "empty_key"}}
{"op": {"op": "put", "key": "nope", "value": "", "ignore_value": true}, "ret": {"err": "key_not_found"}}
{"op": {"op": "put", "key": "nope", "value": "v", "ignore_value": true}, "ret": {"err": "value_provided"}}
{"op": {"op": "put", "key": "nope", "value": "v", "lease": 5, "ignore_lease": true}, "ret": {"err": "lease_provided"}}
{"op": {"op": "put", "key": "nope", "value": "v", "lease": 999}, "ret": {"err": "lease_not_found"}}
{"op": {"op": "put", "key": "nope", "value": "", "ignore_value": true, "lease": 999}, "ret": {"err": "lease_not_found"}}
{"op": {"op": "put", "key": "a", "value": "", "ignore_value": true, "prev_kv": true}, "ret": {"ok": {"op": "put", "header": {"revision": 7}, "prev_kv": {"key": "a", "value": "2", "create_revision": 2, "mod_revision": 3, "version": 2, "lease": 0}}}}
{"op": {"op": "lease_grant", "id": 100, "ttl_s": 1}, "ret": {"ok": {"op": "lease_grant", "header": {"revision": 7}, "id": 100, "ttl_s": 2}}}
{"op": {"op": "lease_grant", "id": 101, "ttl_s": 600}, "ret": {"ok": {"op": "lease_grant", "header": {"revision": 7}, "id": 101, "ttl_s": 600}}}
{"op": {"op": "lease_grant", "id": 101, "ttl_s": 600}, "ret": {"err": "lease_exists"}}
{"op": {"op": "put", "key": "l1", "value": "p", "lease": 101}, "ret": {"ok": {"op": "put", "header": {"revision": 8}}}}
{"op": {"op": "put", "key": "l2", "value": "q", "lease": 101}, "ret": {"ok": {"op": "put", "header": {"revision": 9}}}}
{"op": {"op": "put", "key": "l2", "value": "q2", "ignore_lease": true}, "ret": {"ok": {"op": "put", "header": {"revision": 10}}}}
{"op": {"op": "put", "key": "l3", "value": "r", "lease": 101}, "ret": {"ok": {"op": "put", "header": {"revision": 11}}}}
{"op": {"op": "put", "key": "l3", "value": "r2"}, "ret": {"ok": {"op": "put", "header": {"revision": 12}}}}
{"op": {"op": "lease_time_to_live", "id": 101, "keys": true}, "ret": {"ok": {"op": "lease_time_to_live", "header": {"revision": 12}, "id": 101, "ttl_s": 599, "granted_ttl_s": 600, "keys": ["l1", "l2"]}}}
{"op": {"op": "lease_time_to_live", "id": 101, "keys": false}, "ret": {"ok": {"op": "lease_time_to_live", "header": {"revision": 12}, "id": 101, "ttl_s": 599, "granted_ttl_s": 600, "keys": []}}}
{"op": {"op": "lease_time_to_live", "id": 999, "keys": true}, "ret": {"ok": {"op": "lease_time_to_live", "header": {"revision": 12}, "id": 999, "ttl_s": -1, "granted_ttl_s": 0, "keys": []}}}
{"op": {"op": "lease_keep_alive", "id": 101}, "ret": {"ok": {"op": "lease_keep_alive", "header": {"revision": 12}, "id": 101, "ttl_s": 600}}}
{"op": {"op": "lease_keep_alive", "id": 999}, "ret": {"err": "lease_not_found"}}
{"op": {"op": "lease_revoke", "id": 999}, "ret": {"err": "lease_not_found"}}
{"op": {"op": "range", "key": "l", "range_end": "m"}, "ret": {"ok": {"op": "range", "header": {"revision": 12}, "kvs": [{"key": "l1", "value": "p", "create_revision": 8, "mod_revision": 8, "version": 1, "lease": 101}, {"key": "l2", "value": "q2", "create_revision": 9, "mod_revision": 10, "version": 2, "lease": 101}, {"key": "l3", "value": "r2", "create_revision": 11, "mod_revision": 12, "version": 2, "lease": 0}], "more": false, "count": 3}}}
{"op": {"op": "txn", "compare": [{"key": "a", "result": "equal", "target": {"version": 3}}], "success": [{"op": "range", "key": "a"}, {"op": "put", "key": "c", "value": "1"}, {"op": "range", "key": "c"}, {"op": "delete_range", "key": "zz"}, {"op": "txn", "success": [{"op": "range", "key": "c"}]}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 13}, "succeeded": true, "responses": [{"op": "range", "header": {"revision": 12}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 7, "version": 3, "lease": 0}], "more": false, "count": 1}, {"op": "put", "header": {"revision": 13}}, {"op": "range", "header": {"revision": 13}, "kvs": [{"key": "c", "value": "1", "create_revision": 13, "mod_revision": 13, "version": 1, "lease": 0}], "more": false, "count": 1}, {"op": "delete_range", "header": {"revision": 13}, "deleted": 0, "prev_kvs": []}, {"op": "txn", "header": {"revision": 0}, "succeeded": true, "responses": [{"op": "range", "header": {"revision": 13}, "kvs": [{"key": "c", "value": "1", "create_revision": 13, "mod_revision": 13, "version": 1, "lease": 0}], "more": false, "count": 1}]}]}}}
{"op": {"op": "txn", "success": [{"op": "delete_range", "key": "zz"}, {"op": "range", "key": "a"}, {"op": "delete_range", "key": "c"}, {"op": "delete_range", "key": "zz"}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 14}, "succeeded": true, "responses": [{"op": "delete_range", "header": {"revision": 13}, "deleted": 0, "prev_kvs": []}, {"op": "range", "header": {"revision": 13}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 7, "version": 3, "lease": 0}], "more": false, "count": 1}, {"op": "delete_range", "header": {"revision": 14}, "deleted": 1, "prev_kvs": []}, {"op": "delete_range", "header": {"revision": 14}, "deleted": 0, "prev_kvs": []}]}}}
{"op": {"op": "txn", "success": [{"op": "delete_range", "key": "zz"}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 14}, "succeeded": true, "responses": [{"op": "delete_range", "header": {"revision": 14}, "deleted": 0, "prev_kvs": []}]}}}
{"op": {"op": "txn", "success": [{"op": "put", "key": "c", "value": "2"}, {"op": "txn", "compare": [{"key": "c", "result": "equal", "target": {"version": 1}}], "success": [{"op": "put", "key": "d", "value": "then"}], "failure": [{"op": "put", "key": "d", "value": "else"}]}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 15}, "succeeded": true, "responses": [{"op": "put", "header": {"revision": 15}}, {"op": "txn", "header": {"revision": 0}, "succeeded": false, "responses": [{"op": "put", "header": {"revision": 15}}]}]}}}
{"op": {"op": "txn", "compare": [{"key": "missing", "result": "not_equal", "target": {"value": "x"}}], "success": [{"op": "put", "key": "e", "value": "s"}], "failure": [{"op": "put", "key": "e", "value": "f"}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 16}, "succeeded": false, "responses": [{"op": "put", "header": {"revision": 16}}]}}}
{"op": {"op": "txn", "compare": [{"key": "missing", "result": "equal", "target": {"create_revision": 0}}, {"key": "a", "result": "greater", "target": {"value": "1"}}, {"key": "a", "result": "less", "target": {"mod_revision": 100}}, {"key": "l1", "result": "equal", "target": {"lease": 101}}], "success": [{"op": "range", "key": "a", "range_end": "b"}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 16}, "succeeded": true, "responses": [{"op": "range", "header": {"revision": 16}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 7, "version": 3, "lease": 0}], "more": false, "count": 1}]}}}
{"op": {"op": "txn", "success": [{"op": "put", "key": "x", "value": "1"}, {"op": "put", "key": "x", "value": "2"}]}, "ret": {"err": "duplicate_key"}}
{"op": {"op": "txn", "success": [{"op": "delete_range", "key": "a", "range_end": "b"}, {"op": "put", "key": "a", "value": "9"}]}, "ret": {"err": "duplicate_key"}}
{"op": {"op": "txn", "success": [{"op": "delete_range", "key": "c", "range_end": "\u0000", "prev_kv": true}, {"op": "put", "key": "d", "value": "reborn"}, {"op": "range", "key": "c", "range_end": "\u0000"}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 17}, "succeeded": true, "responses": [{"op": "delete_range", "header": {"revision": 17}, "deleted": 6, "prev_kvs": [{"key": "c", "value": "2", "create_revision": 15, "mod_revision": 15, "version": 1, "lease": 0}, {"key": "d", "value": "else", "create_revision": 15, "mod_revision": 15, "version": 1, "lease": 0}, {"key": "e", "value": "f", "create_revision": 16, "mod_revision": 16, "version": 1, "lease": 0}, {"key": "l1", "value": "p", "create_revision": 8, "mod_revision": 8, "version": 1, "lease": 101}, {"key": "l2", "value": "q2", "create_revision": 9, "mod_revision": 10, "version": 2, "lease": 101}, {"key": "l3", "value": "r2", "create_revision": 11, "mod_revision": 12, "version": 2, "lease": 0}]}, {"op": "put", "header": {"revision": 17}}, {"op": "range", "header": {"revision": 17}, "kvs": [{"key": "d", "value": "reborn", "create_revision": 17, "mod_revision": 17, "version": 1, "lease": 0}], "more": false, "count": 1}]}}}
{"op": {"op": "txn", "success": [{"op": "put", "key": "y", "value": "1"}, {"op": "txn", "success": [{"op": "put", "key": "z", "value": "", "ignore_value": true}]}]}, "ret": {"err": "key_not_found"}}
{"op": {"op": "txn", "success": [{"op": "put", "key": "y", "value": "1", "lease": 77}]}, "ret": {"err": "lease_not_found"}}
{"op": {"op": "txn", "success": [{"op": "put", "key": "y", "value": "1"}], "failure": [{"op": "put", "key": "y", "value": "2", "lease": 77}]}, "ret": {"ok": {"op": "txn", "header": {"revision": 18}, "succeeded": true, "responses": [{"op": "put", "header": {"revision": 18}}]}}}
{"op": {"op": "txn", "success": [{"op": "put", "key": "nope", "value": "", "ignore_value": true, "lease": 999}]}, "ret": {"err": "key_not_found"}}
{"op": {"op": "put", "key": "l1", "value": "p3", "lease": 101}, "ret": {"ok": {"op": "put", "header": {"revision": 19}}}}
{"op": {"op": "put", "key": "l2", "value": "q3", "lease": 101, "prev_kv": true}, "ret": {"ok": {"op": "put", "header": {"revision": 20}}}}
{"op": {"op": "lease_time_to_live", "id": 101, "keys": true}, "ret": {"ok": {"op": "lease_time_to_live", "header": {"revision": 20}, "id": 101, "ttl_s": 599, "granted_ttl_s": 600, "keys": ["l1", "l2"]}}}
{"op": {"op": "lease_revoke", "id": 101}, "ret": {"ok": {"op": "lease_revoke", "header": {"revision": 21}}}}
{"op": {"op": "range", "key": "l", "range_end": "m"}, "ret": {"ok": {"op": "range", "header": {"revision": 21}, "kvs": [], "more": false, "count": 0}}}
{"op": {"op": "lease_revoke", "id": 101}, "ret": {"err": "lease_not_found"}}
{"op": {"op": "compact", "revision": 10}, "ret": {"ok": {"op": "compact", "header": {"revision": 21}}}}
{"op": {"op": "compact", "revision": 10}, "ret": {"err": "compacted"}}
{"op": {"op": "compact", "revision": 9}, "ret": {"err": "compacted"}}
{"op": {"op": "compact", "revision": 1000}, "ret": {"err": "future_revision"}}
{"op": {"op": "range", "key": "a", "revision": 10}, "ret": {"ok": {"op": "range", "header": {"revision": 21}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 7, "version": 3, "lease": 0}], "more": false, "count": 1}}}
{"op": {"op": "range", "key": "a", "revision": 9}, "ret": {"err": "compacted"}}
{"op": {"op": "range", "key": "a", "range_end": "\u0000", "revision": 10}, "ret": {"ok": {"op": "range", "header": {"revision": 21}, "kvs": [{"key": "a", "value": "2", "create_revision": 2, "mod_revision": 7, "version": 3, "lease": 0}, {"key": "l1", "value": "p", "create_revision": 8, "mod_revision": 8, "version": 1, "lease": 101}, {"key": "l2", "value": "q2", "create_revision": 9, "mod_revision": 10, "version": 2, "lease": 101}], "more": false, "count": 3}}}
{"op": {"op": "txn", "success": [{"op": "range", "key": "a", "revision": 9}]}, "ret": {"err": "compacted"}}
{"op": {"op": "txn", "success": [{"op": "range", "key": "a", "revision": -1}]}, "ret": {"err": "compacted"}}
{"op": {"op": "txn", "success": [{"op": "range", "key": "a", "revision": 1000}]}, "ret": {"err": "future_revision"}}
{"op": {"op": "put", "key": "a", "value": "last"}, "ret": {"ok": {"op": "put", "header": {"revision": 22}}}}
{"op": {"op": "range", "key": "\u0000", "range_end": "\u0000"}, "ret": {"ok": {"op": "range", "header": {"revision": 22}, "kvs": [{"key": "a", "value": "last", "create_revision": 2, "mod_revision": 22, "version": 4, "lease": 0}, {"key": "d", "value": "reborn", "create_revision": 17, "mod_revision": 17, "version": 1, "lease": 0}, {"key": "y", "value": "1", "create_revision": 18, "mod_revision": 18, "version": 1, "lease": 0}], "more": false, "count": 3}}}
"####;

fn captured() -> Vec<(Op, Ret)> {
    CAPTURED
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("captured line {}: {e}", i + 1));
            let op: Op = serde_json::from_value(value["op"].clone())
                .unwrap_or_else(|e| panic!("line {} op: {e}", i + 1));
            let ret: Ret = serde_json::from_value(value["ret"].clone())
                .unwrap_or_else(|e| panic!("line {} ret: {e}", i + 1));
            (op, ret)
        })
        .collect()
}

#[test]
fn model_answers_like_real_etcd() {
    let steps = captured();
    assert_eq!(steps.len(), 70);
    let mut model = MvccModel::new();
    for (i, (op, etcd_ret)) in steps.iter().enumerate() {
        let mut applied = model.clone();
        let model_ret = applied.apply(op);
        if !matches!(op, Op::LeaseTimeToLive { .. }) {
            assert_eq!(&model_ret, etcd_ret, "step {}: {op:?}", i + 1);
        }
        let next = model.step(op, etcd_ret).unwrap_or_else(|| {
            panic!(
                "step {}: etcd's answer rejected: {op:?} -> {etcd_ret:?}",
                i + 1
            )
        });
        assert_eq!(next.fingerprint(), applied.fingerprint(), "step {}", i + 1);
        model = next;
        model
            .check_invariants()
            .unwrap_or_else(|e| panic!("step {}: {e}", i + 1));
    }
    assert_eq!(model.revision(), 22);
}

#[test]
fn sequential_spec_accepts_the_captured_history() {
    let mut model = MvccModel::new();
    assert!(model.is_valid_history(captured()));
}

#[test]
fn any_changed_answer_is_rejected() {
    // Corrupting one answer (a different header revision) must make the step invalid.
    // A compaction is answered with the revision at answer time, which a later
    // write may already have raised, so only a lower header is wrong for it. A time-to-live's
    // header is read after its lookup and bounds nothing: its granted TTL is corrupted instead.
    let steps = captured();
    let mut model = MvccModel::new();
    let mut corrupted_checked = 0;
    for (op, ret) in &steps {
        if let Ret::Ok(response) = ret {
            let mut json = serde_json::to_value(response).unwrap();
            let field = if matches!(op, Op::LeaseTimeToLive { .. }) {
                "/granted_ttl_s"
            } else {
                "/header/revision"
            };
            if let Some(revision) = json.pointer_mut(field) {
                let shift = if matches!(op, Op::Compact { .. }) {
                    -1
                } else {
                    1
                };
                *revision = serde_json::json!(revision.as_i64().unwrap() + shift);
                let bad: Ret = Ret::Ok(serde_json::from_value(json).unwrap());
                assert!(
                    model.step(op, &bad).is_none(),
                    "accepted a wrong answer for {op:?}: {bad:?}"
                );
                corrupted_checked += 1;
            }
        }
        model = model.step(op, ret).unwrap();
    }
    assert!(corrupted_checked > 40);
}
