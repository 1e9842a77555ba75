//! The MVCC model's rules through its public API (`SequentialSpec`, `Spec`). "etcd:" comments
//! name the fact each test pins down, verified on etcd 3.4.23 (see `model/src/mvcc/mod.rs`).

use kvsim_model::mvcc::gen::{DrawKnobs, OpDrawer};
use kvsim_model::mvcc::*;
use kvsim_model::Spec;
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn put(key: &str, value: &str) -> Op {
    Op::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
}
fn put_lease(key: &str, value: &str, lease: LeaseId) -> Op {
    Op::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        ..Default::default()
    })
}
fn get(key: &str) -> Op {
    Op::Range(RangeRequest {
        key: key.into(),
        ..Default::default()
    })
}
fn get_at(key: &str, revision: Revision) -> Op {
    Op::Range(RangeRequest {
        key: key.into(),
        revision,
        ..Default::default()
    })
}
fn serializable_get(key: &str) -> Op {
    Op::Range(RangeRequest {
        key: key.into(),
        serializable: true,
        ..Default::default()
    })
}
fn del(key: &str) -> Op {
    Op::DeleteRange(DeleteRangeRequest {
        key: key.into(),
        ..Default::default()
    })
}
fn grant(id: LeaseId, ttl_s: i64) -> Op {
    Op::LeaseGrant { id, ttl_s }
}
fn header(revision: Revision) -> ResponseHeader {
    ResponseHeader { revision }
}
fn ok_put(revision: Revision) -> Ret {
    Ret::Ok(Response::Put(PutResponse {
        header: header(revision),
        prev_kv: None,
    }))
}
fn kv(
    key: &str,
    value: &str,
    create: Revision,
    modr: Revision,
    version: i64,
    lease: LeaseId,
) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        create_revision: create,
        mod_revision: modr,
        version,
        lease,
    }
}
fn ok_range(revision: Revision, kvs: Vec<KeyValue>) -> Ret {
    let count = kvs.len() as i64;
    Ret::Ok(Response::Range(RangeResponse {
        header: header(revision),
        kvs,
        more: false,
        count,
    }))
}
fn run(model: &mut MvccModel, ops: &[Op]) -> Vec<Ret> {
    ops.iter().map(|op| model.apply(op)).collect()
}

#[test]
fn revisions_start_at_one_and_only_changes_bump_them() {
    // etcd: a fresh store is at revision 1, the first put gets 2, deleting nothing keeps it.
    let mut m = MvccModel::new();
    assert_eq!(m.revision(), 1);
    assert_eq!(m.apply(&put("a", "1")), ok_put(2));
    let nothing = m.apply(&del("zz"));
    assert_eq!(
        nothing,
        Ret::Ok(Response::DeleteRange(DeleteRangeResponse {
            header: header(2),
            ..Default::default()
        }))
    );
    assert_eq!(m.revision(), 2);
    assert!(MvccModel::is_read_only(&del("zz"), &nothing));
}

#[test]
fn versions_and_create_revisions_follow_generations() {
    // etcd: version counts puts since creation; a delete ends the generation; a re-put starts at
    // version 1 with a new create_revision; historic reads see older generations.
    let mut m = MvccModel::new();
    run(
        &mut m,
        &[put("a", "1"), put("a", "2"), del("a"), put("a", "3")],
    );
    assert_eq!(m.get("a"), Some(kv("a", "3", 5, 5, 1, 0)));
    assert_eq!(
        m.apply(&get_at("a", 3)),
        ok_range(5, vec![kv("a", "2", 2, 3, 2, 0)])
    );
    assert_eq!(m.apply(&get_at("a", 4)), ok_range(5, vec![]));
}

#[test]
fn step_rejects_wrong_headers_before_anything_else() {
    let m = MvccModel::new();
    // A put that changed something must carry current + 1; a linearizable read the current one.
    assert!(m.step(&put("a", "1"), &ok_put(2)).is_some());
    assert!(m.step(&put("a", "1"), &ok_put(3)).is_none());
    assert!(m.step(&put("a", "1"), &ok_put(1)).is_none());
    assert!(m.step(&get("a"), &ok_range(1, vec![])).is_some());
    assert!(m.step(&get("a"), &ok_range(2, vec![])).is_none());
    // The right header but the wrong content is rejected too.
    let m = m.step(&put("a", "1"), &ok_put(2)).unwrap();
    assert!(m
        .step(&get("a"), &ok_range(2, vec![kv("a", "2", 2, 2, 1, 0)]))
        .is_none());
    assert!(m
        .step(&get("a"), &ok_range(2, vec![kv("a", "1", 2, 2, 1, 0)]))
        .is_some());
}

#[test]
fn read_only_classification() {
    let ok_txn = |succeeded: bool, responses: Vec<ResponseOp>| {
        Ret::Ok(Response::Txn(TxnResponse {
            header: header(1),
            succeeded,
            responses,
        }))
    };
    let range_resp = ResponseOp::Range(RangeResponse::default());
    let txn = Op::Txn(TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Range(RangeRequest {
            key: "a".into(),
            ..Default::default()
        })],
        failure: vec![RequestOp::Put(PutRequest {
            key: "a".into(),
            value: "v".into(),
            ..Default::default()
        })],
    });
    assert!(MvccModel::is_read_only(
        &txn,
        &ok_txn(true, vec![range_resp])
    ));
    assert!(!MvccModel::is_read_only(
        &txn,
        &ok_txn(false, vec![ResponseOp::Put(PutResponse::default())])
    ));
    assert!(MvccModel::is_read_only(
        &put("a", "1"),
        &Ret::Err(EtcdError::LeaseNotFound)
    ));
    assert!(MvccModel::is_read_only(
        &get_at("a", 1),
        &Ret::Err(EtcdError::Compacted)
    ));
    assert!(!MvccModel::is_read_only(&put("a", "1"), &ok_put(2)));
    // A grant changes the lease table without bumping the revision: not read-only.
    let granted = Ret::Ok(Response::LeaseGrant {
        header: header(1),
        id: 1,
        ttl_s: 5,
    });
    assert!(!MvccModel::is_read_only(&grant(1, 5), &granted));
    let kept = Ret::Ok(Response::LeaseKeepAlive {
        header: header(1),
        id: 1,
        ttl_s: 5,
    });
    assert!(MvccModel::is_read_only(
        &Op::LeaseKeepAlive { id: 1 },
        &kept
    ));
    let deleted = Ret::Ok(Response::DeleteRange(DeleteRangeResponse {
        header: header(2),
        deleted: 1,
        prev_kvs: vec![],
    }));
    assert!(!MvccModel::is_read_only(&del("a"), &deleted));
}

#[test]
fn read_only_ops_never_change_the_state_when_valid() {
    // The search's greedy rule depends on this: whenever is_read_only says so, a valid step
    // keeps the fingerprint.
    let mut rng = SmallRng::seed_from_u64(11);
    let keys = ["a", "b", "c", "d/x", "d/y"];
    let mut gen = OpDrawer::new(1, DrawKnobs::over(&keys));
    let mut m = MvccModel::new();
    let mut read_only_seen = 0;
    for _ in 0..3000 {
        let op = gen.next(&mut rng, 0);
        let ret = m.clone().apply(&op);
        let next = m
            .step(&op, &ret)
            .unwrap_or_else(|| panic!("model rejects its own answer: {op:?} -> {ret:?}"));
        if MvccModel::is_read_only(&op, &ret) {
            read_only_seen += 1;
            assert_eq!(next.fingerprint(), m.fingerprint(), "{op:?} -> {ret:?}");
        }
        gen.observe(&op, &ret);
        m = next;
    }
    m.check_invariants().unwrap();
    assert!(read_only_seen > 500);
}

#[test]
fn step_unknown_applies_changes_and_skips_no_ops() {
    let m = MvccModel::new();
    let after = m.step_unknown(&put("a", "1")).expect("a put takes effect");
    assert_eq!(after.revision(), 2);
    assert!(m.step_unknown(&get("a")).is_none(), "reads change nothing");
    assert!(
        m.step_unknown(&del("a")).is_none(),
        "deleting nothing changes nothing"
    );
    assert!(
        m.step_unknown(&Op::LeaseRevoke { id: 9 }).is_none(),
        "a failing op changes nothing"
    );
    assert!(
        m.step_unknown(&grant(9, 5)).is_some(),
        "a grant changes the lease table"
    );
    assert!(
        m.step_unknown(&grant(0, 5)).is_none(),
        "an etcd-chosen id can never be referred to"
    );
}

#[test]
fn lease_expire_deletes_attached_keys_at_one_revision_and_never_returns() {
    let mut m = MvccModel::new();
    run(
        &mut m,
        &[
            grant(7, 5),
            put_lease("a", "1", 7),
            put_lease("b", "2", 7),
            put("c", "3"),
        ],
    );
    assert_eq!(m.revision(), 4);
    let expired = m
        .step_unknown(&Op::LeaseExpire { id: 7 })
        .expect("expiry with keys changes state");
    assert_eq!(expired.revision(), 5);
    assert_eq!(expired.current_kvs(), vec![kv("c", "3", 4, 4, 1, 0)]);
    assert!(expired.leases().is_empty());
    assert!(
        expired.step_unknown(&Op::LeaseExpire { id: 7 }).is_none(),
        "already gone"
    );
    let any = Ret::Ok(Response::LeaseRevoke { header: header(5) });
    assert!(
        m.step(&Op::LeaseExpire { id: 7 }, &any).is_none(),
        "synthetic: never has an answer"
    );
    // A lease without keys expires without a revision.
    let mut m = MvccModel::new();
    m.apply(&grant(8, 5));
    let expired = m.step_unknown(&Op::LeaseExpire { id: 8 }).unwrap();
    assert_eq!(expired.revision(), 1);
    assert!(expired.leases().is_empty());
}

#[test]
fn revoke_deletes_only_keys_still_attached() {
    // etcd: re-putting a key without a lease detaches it; revoke deletes the rest at one revision.
    let mut m = MvccModel::new();
    run(
        &mut m,
        &[
            grant(1, 60),
            put_lease("a", "1", 1),
            put_lease("b", "2", 1),
            put("b", "3"),
        ],
    );
    assert_eq!(m.lease_keys(1), vec!["a".to_string()]);
    assert_eq!(
        m.apply(&Op::LeaseRevoke { id: 1 }),
        Ret::Ok(Response::LeaseRevoke { header: header(5) })
    );
    assert_eq!(m.current_kvs(), vec![kv("b", "3", 3, 4, 2, 0)]);
    assert_eq!(
        m.apply(&Op::LeaseRevoke { id: 1 }),
        Ret::Err(EtcdError::LeaseNotFound)
    );
    m.check_invariants().unwrap();
}

#[test]
fn ignore_lease_keeps_the_attachment() {
    let mut m = MvccModel::new();
    run(&mut m, &[grant(1, 60), put_lease("a", "1", 1)]);
    let keep = Op::Put(PutRequest {
        key: "a".into(),
        value: "2".into(),
        ignore_lease: true,
        ..Default::default()
    });
    m.apply(&keep);
    assert_eq!(m.get("a"), Some(kv("a", "2", 2, 3, 2, 1)));
    assert_eq!(m.lease_keys(1), vec!["a".to_string()]);
}

#[test]
fn lease_grant_ttl_minimum_and_configuration() {
    // etcd: TTL 1 is raised to the minimum TTL, 2 s with default flags.
    let mut m = MvccModel::new();
    assert_eq!(
        m.apply(&grant(1, 1)),
        Ret::Ok(Response::LeaseGrant {
            header: header(1),
            id: 1,
            ttl_s: 2
        })
    );
    assert_eq!(m.apply(&grant(1, 1)), Ret::Err(EtcdError::LeaseExists));
    let mut exact = MvccModel::new().with_min_lease_ttl_s(1);
    assert_eq!(
        exact.apply(&grant(1, 1)),
        Ret::Ok(Response::LeaseGrant {
            header: header(1),
            id: 1,
            ttl_s: 1
        })
    );
}

#[test]
fn grant_with_server_chosen_id_uses_the_answer() {
    let m = MvccModel::new();
    let answer = Ret::Ok(Response::LeaseGrant {
        header: header(1),
        id: 2_324_035_536_531_783_201,
        ttl_s: 60,
    });
    let next = m.step(&grant(0, 60), &answer).expect("etcd picks the id");
    assert_eq!(next.leases(), vec![(2_324_035_536_531_783_201, 60)]);
    let zero = Ret::Ok(Response::LeaseGrant {
        header: header(1),
        id: 0,
        ttl_s: 60,
    });
    assert!(m.step(&grant(0, 60), &zero).is_none());
}

#[test]
fn keep_alive_and_time_to_live() {
    let mut m = MvccModel::new();
    run(
        &mut m,
        &[
            grant(5, 10),
            put_lease("k2", "v", 5),
            put_lease("k1", "v", 5),
        ],
    );
    // etcd: keep-alive answers the granted TTL; a missing lease is LeaseNotFound.
    let kept = |rev, ttl_s| {
        Ret::Ok(Response::LeaseKeepAlive {
            header: header(rev),
            id: 5,
            ttl_s,
        })
    };
    assert!(m
        .step(&Op::LeaseKeepAlive { id: 5 }, &kept(3, 10))
        .is_some());
    assert!(m.step(&Op::LeaseKeepAlive { id: 5 }, &kept(3, 9)).is_none());
    // The header is the serving member's revision: it may lag, never lead.
    assert!(m
        .step(&Op::LeaseKeepAlive { id: 5 }, &kept(1, 10))
        .is_some());
    assert!(m
        .step(&Op::LeaseKeepAlive { id: 5 }, &kept(4, 10))
        .is_none());
    assert_eq!(
        m.clone().apply(&Op::LeaseKeepAlive { id: 6 }),
        Ret::Err(EtcdError::LeaseNotFound)
    );

    let ttl_at = |rev, ttl_s, granted_ttl_s, keys: &[&str]| {
        Ret::Ok(Response::LeaseTimeToLive {
            header: header(rev),
            id: 5,
            ttl_s,
            granted_ttl_s,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        })
    };
    let ttl = |ttl_s, granted_ttl_s, keys: &[&str]| ttl_at(3, ttl_s, granted_ttl_s, keys);
    let with_keys = Op::LeaseTimeToLive { id: 5, keys: true };
    // etcd fills this header after the lookup: later writes may have raised it (a real etcd
    // answered revision 2289's keys under header 2290), so unlike keep-alive's it may lead.
    for rev in [1, 3, 4, 50] {
        assert!(
            m.step(&with_keys, &ttl_at(rev, 5, 10, &["k1", "k2"]))
                .is_some(),
            "header {rev}"
        );
    }
    assert!(m
        .step(&with_keys, &ttl_at(0, 5, 10, &["k1", "k2"]))
        .is_none());
    // Remaining TTL is clock-dependent: any value from -1 up is accepted; granted must match.
    for remaining in [-1, 0, 3, 10, 12] {
        assert!(
            m.step(&with_keys, &ttl(remaining, 10, &["k1", "k2"]))
                .is_some(),
            "remaining {remaining}"
        );
    }
    assert!(m.step(&with_keys, &ttl(-2, 10, &["k1", "k2"])).is_none());
    assert!(m.step(&with_keys, &ttl(5, 9, &["k1", "k2"])).is_none());
    // etcd lists keys from a Go map: any order is fine, but the set must match.
    assert!(m.step(&with_keys, &ttl(5, 10, &["k2", "k1"])).is_some());
    assert!(m.step(&with_keys, &ttl(5, 10, &["k1"])).is_none());
    assert!(m
        .step(
            &Op::LeaseTimeToLive { id: 5, keys: false },
            &ttl(5, 10, &[])
        )
        .is_some());
    // etcd: a missing lease answers TTL -1, granted 0.
    let missing = Op::LeaseTimeToLive { id: 6, keys: true };
    let gone = Ret::Ok(Response::LeaseTimeToLive {
        header: header(3),
        id: 6,
        ttl_s: -1,
        granted_ttl_s: 0,
        keys: vec![],
    });
    assert!(m.step(&missing, &gone).is_some());
    assert!(
        m.step(&with_keys, &ttl(-1, 0, &[])).is_none(),
        "lease 5 exists"
    );
}

#[test]
fn serializable_reads_are_snapshots_at_their_header() {
    let mut m = MvccModel::new();
    run(&mut m, &[put("a", "1"), put("a", "2"), put("a", "3")]);
    // A lagging member at revision 3 answers what the store held at 3.
    assert!(m
        .step(
            &serializable_get("a"),
            &ok_range(3, vec![kv("a", "2", 2, 3, 2, 0)])
        )
        .is_some());
    assert!(m
        .step(
            &serializable_get("a"),
            &ok_range(3, vec![kv("a", "3", 2, 4, 3, 0)])
        )
        .is_none());
    assert!(m
        .step(&serializable_get("a"), &ok_range(1, vec![]))
        .is_some());
    // No member can be ahead of the cluster.
    assert!(m
        .step(
            &serializable_get("a"),
            &ok_range(5, vec![kv("a", "3", 2, 4, 3, 0)])
        )
        .is_none());
    // Below the compacted revision the content is unknown: accepted.
    m.apply(&Op::Compact {
        revision: 4,
        physical: false,
    });
    assert!(m
        .step(
            &serializable_get("a"),
            &ok_range(2, vec![kv("a", "zzz", 2, 2, 1, 0)])
        )
        .is_some());
    let historic = Op::Range(RangeRequest {
        key: "a".into(),
        revision: 2,
        serializable: true,
        ..Default::default()
    });
    assert!(m.step(&historic, &Ret::Err(EtcdError::Compacted)).is_some());
    assert!(
        m.step(&get_at("a", 4), &Ret::Err(EtcdError::Compacted))
            .is_none(),
        "4 is readable"
    );
    assert!(MvccModel::is_read_only(
        &serializable_get("a"),
        &ok_range(2, vec![])
    ));
}

#[test]
fn a_compaction_answers_with_the_revision_at_answer_time() {
    // etcd sets a compaction's header when it answers, after the physical compaction: a later
    // header is legal (two concurrent compactions on a live 3.4.23 cluster: the one applied
    // first answered 5847, the other 5846), an earlier one is not.
    let mut m = MvccModel::new();
    run(&mut m, &[put("a", "1"), put("a", "2")]);
    let compact = Op::Compact {
        revision: 2,
        physical: true,
    };
    let answered = |revision| {
        Ret::Ok(Response::Compact {
            header: header(revision),
        })
    };
    assert!(m.step(&compact, &answered(3)).is_some());
    assert!(m.step(&compact, &answered(9)).is_some());
    assert!(m.step(&compact, &answered(2)).is_none());
}

#[test]
fn compaction_rules() {
    // etcd: compact 0 on a fresh store succeeds; at or below compacted → Compacted; above the
    // current revision → FutureRevision; reads at the compacted revision still work.
    let mut m = MvccModel::new();
    assert_eq!(
        m.apply(&Op::Compact {
            revision: 0,
            physical: false
        }),
        Ret::Ok(Response::Compact { header: header(1) })
    );
    assert_eq!(
        m.apply(&Op::Compact {
            revision: 0,
            physical: false
        }),
        Ret::Err(EtcdError::Compacted)
    );
    run(
        &mut m,
        &[put("a", "1"), put("a", "2"), del("a"), put("a", "3")],
    );
    assert_eq!(
        m.apply(&Op::Compact {
            revision: 6,
            physical: true
        }),
        Ret::Err(EtcdError::FutureRevision)
    );
    assert_eq!(
        m.apply(&Op::Compact {
            revision: 3,
            physical: true
        }),
        Ret::Ok(Response::Compact { header: header(5) })
    );
    assert_eq!(m.compacted_revision(), 3);
    assert_eq!(
        m.apply(&get_at("a", 3)),
        ok_range(5, vec![kv("a", "2", 2, 3, 2, 0)])
    );
    assert_eq!(m.apply(&get_at("a", 2)), Ret::Err(EtcdError::Compacted));
    assert_eq!(m.apply(&get_at("a", 4)), ok_range(5, vec![]));
    assert_eq!(
        m.apply(&get_at("a", 6)),
        Ret::Err(EtcdError::FutureRevision)
    );
    m.check_invariants().unwrap();
}

#[test]
fn txn_writes_share_one_revision_and_reads_see_them() {
    let mut m = MvccModel::new();
    m.apply(&put("a", "1"));
    let t = Op::Txn(TxnRequest {
        compare: vec![Compare {
            key: "a".into(),
            result: CompareResult::Equal,
            target: CompareTarget::Version(1),
        }],
        success: vec![
            RequestOp::Range(RangeRequest {
                key: "b".into(),
                ..Default::default()
            }),
            RequestOp::Put(PutRequest {
                key: "b".into(),
                value: "x".into(),
                ..Default::default()
            }),
            RequestOp::Put(PutRequest {
                key: "c".into(),
                value: "y".into(),
                ..Default::default()
            }),
            RequestOp::Range(RangeRequest {
                key: "b".into(),
                ..Default::default()
            }),
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: "a".into(),
                ..Default::default()
            }),
        ],
        failure: vec![],
    });
    let Ret::Ok(Response::Txn(resp)) = m.apply(&t) else {
        panic!("txn failed")
    };
    assert!(resp.succeeded);
    assert_eq!(resp.header.revision, 3);
    let headers: Vec<Revision> = resp
        .responses
        .iter()
        .map(|r| match r {
            ResponseOp::Range(r) => r.header.revision,
            ResponseOp::Put(r) => r.header.revision,
            ResponseOp::DeleteRange(r) => r.header.revision,
            ResponseOp::Txn(r) => r.header.revision,
        })
        .collect();
    // etcd: a range before any write reports the old revision, everything after the new one.
    assert_eq!(headers, vec![2, 3, 3, 3, 3]);
    let ResponseOp::Range(after) = &resp.responses[3] else {
        panic!()
    };
    assert_eq!(after.kvs, vec![kv("b", "x", 3, 3, 1, 0)]);
    assert_eq!(m.get("c"), Some(kv("c", "y", 3, 3, 1, 0)));
    assert_eq!(m.get("a"), None);
}

#[test]
fn from_key_delete_then_put_in_one_txn() {
    // etcd accepts it (checkIntervals misses from-key intervals): the key is deleted and
    // re-created at the same revision with version 1.
    let mut m = MvccModel::new();
    run(&mut m, &[put("b", "0"), put("b", "1")]);
    let t = Op::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: "a".into(),
                range_end: FROM_KEY.into(),
                prev_kv: false,
            }),
            RequestOp::Put(PutRequest {
                key: "b".into(),
                value: "2".into(),
                ..Default::default()
            }),
        ],
        failure: vec![],
    });
    m.apply(&t);
    assert_eq!(m.get("b"), Some(kv("b", "2", 4, 4, 1, 0)));
    assert_eq!(
        m.apply(&get_at("b", 3)),
        ok_range(4, vec![kv("b", "1", 2, 3, 2, 0)])
    );
    m.check_invariants().unwrap();
}

#[test]
fn fingerprints_identify_states_not_paths() {
    // Grants commute: same state, same fingerprint.
    let mut x = MvccModel::new();
    let mut y = MvccModel::new();
    run(&mut x, &[grant(1, 5), grant(2, 5)]);
    run(&mut y, &[grant(2, 5), grant(1, 5)]);
    assert_eq!(x.fingerprint(), y.fingerprint());
    // Different histories that compaction makes indistinguishable get equal fingerprints.
    let mut x = MvccModel::new();
    let mut y = MvccModel::new();
    run(
        &mut x,
        &[
            put("a", "1"),
            del("a"),
            Op::Compact {
                revision: 3,
                physical: false,
            },
        ],
    );
    run(
        &mut y,
        &[
            put("b", "1"),
            del("b"),
            Op::Compact {
                revision: 3,
                physical: false,
            },
        ],
    );
    assert_eq!(x.fingerprint(), y.fingerprint());
    // ...but not before compaction: a historic read could tell them apart.
    let mut x = MvccModel::new();
    let mut y = MvccModel::new();
    run(&mut x, &[put("a", "1"), del("a")]);
    run(&mut y, &[put("b", "1"), del("b")]);
    assert_ne!(x.fingerprint(), y.fingerprint());
    // Same revision, different value.
    let mut x = MvccModel::new();
    let mut y = MvccModel::new();
    x.apply(&put("a", "1"));
    y.apply(&put("a", "2"));
    assert_ne!(x.fingerprint(), y.fingerprint());
}

#[test]
fn clones_are_independent() {
    let mut m = MvccModel::new();
    run(&mut m, &[grant(1, 5), put_lease("a", "1", 1)]);
    let before = m.fingerprint();
    let snapshot = m.clone();
    run(
        &mut m,
        &[
            put("a", "2"),
            Op::LeaseRevoke { id: 1 },
            Op::Compact {
                revision: 3,
                physical: false,
            },
        ],
    );
    assert_eq!(snapshot.fingerprint(), before);
    assert_eq!(snapshot.get("a"), Some(kv("a", "1", 2, 2, 1, 1)));
    assert_eq!(snapshot.lease_keys(1), vec!["a".to_string()]);
    snapshot.check_invariants().unwrap();
    m.check_invariants().unwrap();
}

#[test]
fn serde_round_trip_of_generated_ops() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut gen = OpDrawer::new(9, DrawKnobs::over(&["a", "b", "c"]));
    let mut m = MvccModel::new();
    for _ in 0..500 {
        let op = gen.next(&mut rng, 0);
        let ret = m.apply(&op);
        let op_back: Op = serde_json::from_str(&serde_json::to_string(&op).unwrap()).unwrap();
        let ret_back: Ret = serde_json::from_str(&serde_json::to_string(&ret).unwrap()).unwrap();
        assert_eq!(op_back, op);
        assert_eq!(ret_back, ret);
    }
}

#[test]
fn revision_before_max_bounds_the_revision_before_every_accepted_answer() {
    let mut rng = SmallRng::seed_from_u64(5);
    let keys = ["a", "b", "c", "p/1", "p/2"];
    let mut gens: Vec<OpDrawer> = (1..=3)
        .map(|i| OpDrawer::new(i, DrawKnobs::over(&keys)))
        .collect();
    let mut m = MvccModel::new();
    let mut bounded = 0;
    for i in 0..3000 {
        let gen = &mut gens[i % 3];
        let op = gen.next(&mut rng, 0);
        let ret = m.clone().apply(&op);
        if let Some(bound) = MvccModel::revision_before_max(&op, &ret) {
            assert!(
                m.revision() <= bound,
                "{op:?} -> {ret:?} at revision {}",
                m.revision()
            );
            // Tight unless a revoke deleted keys (its answer does not say): a txn whose answer
            // shows a write bounds by its header minus one.
            if matches!(op, Op::LeaseRevoke { .. }) {
                assert!(bound - m.revision() <= 1);
            } else {
                assert_eq!(bound, m.revision(), "{op:?} -> {ret:?}");
            }
            bounded += 1;
        }
        gen.observe(&op, &ret);
        m = m.step(&op, &ret).unwrap();
    }
    assert!(bounded > 2000, "most answers bound the revision: {bounded}");
    let stale = ok_range(1, vec![]);
    assert_eq!(
        MvccModel::revision_before_max(&serializable_get("a"), &stale),
        None
    );
    assert_eq!(
        MvccModel::revision_before_max(&get("a"), &Ret::Err(EtcdError::Compacted)),
        None
    );
}

#[test]
fn ops_that_change_state_only_by_revision_never_change_it_at_the_same_revision() {
    let mut rng = SmallRng::seed_from_u64(8);
    let keys = ["a", "b", "c", "p/1", "p/2"];
    let mut gen = OpDrawer::new(4, DrawKnobs::over(&keys));
    let mut m = MvccModel::new();
    for _ in 0..3000 {
        let op = gen.next(&mut rng, 0);
        if let Some(next) = m.step_unknown(&op) {
            if MvccModel::changes_state_only_by_revision(&op) {
                assert!(next.revision() > m.revision(), "{op:?}");
            }
        }
        let ret = m.apply(&op);
        gen.observe(&op, &ret);
    }
}

#[test]
fn progress_is_the_revision_and_never_decreases() {
    let mut rng = SmallRng::seed_from_u64(13);
    let mut gen = OpDrawer::new(2, DrawKnobs::over(&["a", "b", "c"]));
    let mut m = MvccModel::new();
    for _ in 0..2000 {
        let op = gen.next(&mut rng, 0);
        let before = m.progress();
        assert_eq!(before, Some(m.revision()));
        if let Some(next) = m.step_unknown(&op) {
            assert!(next.progress() >= before);
        }
        let ret = m.apply(&op);
        assert_eq!(
            MvccModel::progress_max(&op, &ret),
            MvccModel::revision_before_max(&op, &ret)
        );
        assert!(m.progress() >= before);
        gen.observe(&op, &ret);
    }
}

#[test]
fn a_read_valid_in_a_later_state_is_never_refuted_earlier() {
    // `Spec::read_refuted` must be a sure fact: a read the model accepts in some state reached
    // from s is not refuted in s. Ranges of every shape (prefixes, historic, keys-only, limits)
    // drawn over random histories, checked against every earlier state kept.
    let mut rng = SmallRng::seed_from_u64(21);
    let keys = ["a", "b", "c", "p/1", "p/2"];
    let mut gen = OpDrawer::new(1, DrawKnobs::over(&keys));
    let mut m = MvccModel::new();
    let mut earlier: Vec<MvccModel> = Vec::new();
    let (mut reads, mut refuted) = (0, 0);
    for i in 0..4000 {
        let op = gen.next(&mut rng, m.revision());
        let ret = m.apply(&op);
        gen.observe(&op, &ret);
        if i % 10 == 0 {
            earlier.push(m.clone());
            if earlier.len() > 30 {
                earlier.remove(0);
            }
        }
        let Op::Range(r) = &op else { continue };
        let later = m.clone();
        let valid = later.step(&op, &ret).is_some();
        assert!(valid, "the model accepts its own answer: {op:?}");
        if r.serializable {
            continue;
        }
        reads += 1;
        for state in &earlier {
            assert!(
                !state.read_refuted(&op, &ret),
                "{op:?} -> {ret:?} valid at {} refuted at {}",
                later.revision(),
                state.revision()
            );
        }
        // The same answer under a later header, as if the read ran later: once a key it shows
        // is overwritten, no later state can give it.
        let mut after = later.clone();
        if let (true, Ret::Ok(Response::Range(resp))) = (r.revision <= 0, &ret) {
            if let Some(shown) = resp.kvs.first() {
                after.apply(&put(&shown.key, "overwritten"));
                let mut later_answer = resp.clone();
                later_answer.header.revision = after.revision() + 5;
                let later_ret = Ret::Ok(Response::Range(later_answer));
                assert!(!later.read_refuted(&op, &later_ret), "{op:?}");
                assert!(
                    after.read_refuted(&op, &later_ret),
                    "{op:?} after an overwrite"
                );
                refuted += 1;
            }
        }
    }
    assert!(
        reads > 500 && refuted > 100,
        "{reads} reads, {refuted} refuted"
    );
}

#[test]
fn a_range_showing_a_passed_version_is_refuted() {
    let mut m = MvccModel::new();
    run(&mut m, &[put("a", "1"), put("b", "1")]); // a@2, b@3
    let read = get("a");
    let saw_a1 = ok_range(5, vec![kv("a", "1", 2, 2, 1, 0)]);
    // At revision 3 a is still at 2: a later read at 5 may see it.
    assert!(!m.read_refuted(&read, &saw_a1));
    run(&mut m, &[put("c", "1")]); // 4
    assert!(!m.read_refuted(&read, &saw_a1));
    run(&mut m, &[put("a", "2")]); // a@5: the version shown is gone for good
    assert!(m.read_refuted(&read, &saw_a1));
    // A version above the current revision says nothing yet.
    let mut m = MvccModel::new();
    run(&mut m, &[put("a", "1")]); // 2
    assert!(!m.read_refuted(&read, &ok_range(4, vec![kv("a", "3", 2, 4, 2, 0)])));
    // A header below the current revision is refuted; a historic read is judged at once.
    assert!(m.read_refuted(&read, &ok_range(1, vec![])));
    assert!(!m.read_refuted(
        &get_at("a", 2),
        &ok_range(7, vec![kv("a", "1", 2, 2, 1, 0)])
    ));
    assert!(m.read_refuted(&get_at("a", 2), &ok_range(7, vec![])));
    // Serializable reads are never refuted (stale by design).
    assert!(!m.read_refuted(&serializable_get("a"), &ok_range(1, vec![])));
}
