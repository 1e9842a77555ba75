//! Each planted bug, on and off: the same scenario shows the guarantee holding with the bug off and
//! broken with it on, so a checker that misses the bug cannot blame the simulation.

mod cluster_support;

use cluster_support::*;
use kvsim_sim::bugs::Bugs;
use kvsim_sim::cluster::{Cluster, ClusterConfig};
use kvsim_sim::proto::{PutReq, RangeReq, Request, Response, StoreError};
use kvsim_sim::rpc::{KvReply, WatchCreate, WatchRequest, WatchResponse};
use kvsim_sim::targets::raft_rs::RaftRs;
use std::time::Duration;

fn with_bug(name: &str) -> ClusterConfig {
    let mut bugs = Bugs::default();
    if !name.is_empty() {
        bugs.enable(kvsim_sim::bugs::Bug::parse(name).unwrap());
    }
    ClusterConfig {
        bugs,
        ..ClusterConfig::default()
    }
}

/// The isolated leader appends the write but can never commit it.
fn isolated_leader_acknowledges(bug: &'static str) -> bool {
    simulate(21, move || async move {
        let cluster = Cluster::start(with_bug(bug), &RaftRs).await;
        let client = Client::new(1);
        client.put(&cluster, "k", "1").await;
        let leader = cluster.leader().unwrap();
        let others: Vec<u64> = cluster
            .node_ids()
            .into_iter()
            .filter(|&id| id != leader)
            .collect();
        cluster.partition(&[vec![leader], others]);
        let reply = client
            .call(cluster.client_addr(leader), put("k", "2"))
            .await;
        matches!(reply, Some(KvReply::Ok(Response::Put { .. })))
    })
}

#[test]
fn ack_before_commit_acknowledges_an_uncommitted_write() {
    assert!(!isolated_leader_acknowledges(""));
    assert!(isolated_leader_acknowledges("ack_before_commit"));
}

/// A leader paused while the others elect a new one and overwrite the key answers a linearizable read
/// right after resuming, before it notices it was deposed.
fn deposed_leader_read(bug: &'static str) -> Option<KvReply> {
    simulate(22, move || async move {
        let cluster = Cluster::start(with_bug(bug), &RaftRs).await;
        let client = Client::new(1);
        client.put(&cluster, "k", "old").await;
        let old = cluster.leader().unwrap();
        let others: Vec<u64> = cluster
            .node_ids()
            .into_iter()
            .filter(|&id| id != old)
            .collect();
        cluster.pause(old);
        cluster.partition(&[vec![old], others.clone()]);
        madsim::time::sleep(Duration::from_secs(5)).await;
        client.put(&cluster, "k", "new").await;
        cluster.resume(old);
        client.call(cluster.client_addr(old), get("k", false)).await
    })
}

#[test]
fn stale_read_serves_a_deposed_leaders_value() {
    let reply = deposed_leader_read("");
    assert!(
        !matches!(reply, Some(KvReply::Ok(_))),
        "ReadIndex needs a quorum: {reply:?}"
    );
    let reply = deposed_leader_read("stale_read");
    assert_eq!(value_of(reply), Some(b"old".to_vec()));
}

fn value_after_single_node_crash(bug: &'static str) -> (Option<Vec<u8>>, usize) {
    simulate(23, move || async move {
        let config = ClusterConfig {
            nodes: 1,
            ..with_bug(bug)
        };
        let cluster = Cluster::start(config, &RaftRs).await;
        let client = Client::new(1);
        client.put(&cluster, "k", "durable").await;
        cluster.crash(1, false);
        cluster.restart(1);
        client.put(&cluster, "other", "x").await;
        let value = value_of(client.call(cluster.client_addr(1), get("k", false)).await);
        (value, cluster.violations().len())
    })
}

#[test]
fn lost_fsync_loses_acknowledged_writes_on_crash() {
    assert_eq!(
        value_after_single_node_crash(""),
        (Some(b"durable".to_vec()), 0)
    );
    let (value, violations) = value_after_single_node_crash("lost_fsync");
    assert_eq!(value, None);
    // The restarted node commits a different entry at an index it had already applied.
    assert!(violations > 0);
}

fn leased_key_alive_after(bug: &'static str, wait_ms: u64) -> bool {
    simulate(24, move || async move {
        let cluster = Cluster::start(with_bug(bug), &RaftRs).await;
        let client = Client::new(1);
        let leader = cluster.wait_for_leader(10_000).await.unwrap();
        let at = cluster.client_addr(leader);
        let reply = client
            .call(at, Request::LeaseGrant { id: 5, ttl_s: 4 })
            .await;
        assert!(matches!(reply, Some(KvReply::Ok(_))), "{reply:?}");
        let put = Request::Put(PutReq {
            key: b"lk".to_vec(),
            value: b"v".to_vec(),
            lease: 5,
            ..PutReq::default()
        });
        assert!(matches!(client.call(at, put).await, Some(KvReply::Ok(_))));
        madsim::time::sleep(Duration::from_millis(wait_ms)).await;
        value_of(client.call(at, get("lk", false)).await).is_some()
    })
}

#[test]
fn lease_early_expiry_revokes_at_half_ttl() {
    assert!(leased_key_alive_after("", 3_000));
    assert!(!leased_key_alive_after("lease_early_expiry", 3_000));
    assert!(!leased_key_alive_after("", 6_000));
}

fn restarted_follower(bug: &'static str) -> (i64, i64, bool) {
    simulate(25, move || async move {
        let config = ClusterConfig {
            snapshot_entries: 0,
            ..with_bug(bug)
        };
        let cluster = Cluster::start(config, &RaftRs).await;
        let client = Client::new(1);
        for i in 0..5 {
            client.put(&cluster, &key(i), "v").await;
        }
        wait_all_applied(&cluster, 5_000).await;
        let leader = cluster.leader().unwrap();
        let follower = other_than(&cluster, leader);
        cluster.crash(follower, false);
        cluster.restart(follower);
        client.put(&cluster, "after", "v").await;
        wait_all_applied(&cluster, 10_000).await;
        let status = cluster.status();
        (
            status[leader as usize - 1].revision,
            status[follower as usize - 1].revision,
            cluster.check_invariants().is_ok(),
        )
    })
}

#[test]
fn revision_regress_after_restart_diverges_the_store() {
    assert_eq!(restarted_follower(""), (7, 7, true));
    let (leader_revision, follower_revision, invariants_ok) =
        restarted_follower("revision_regress_after_restart");
    assert_eq!(leader_revision, 7);
    assert!(follower_revision < 7, "{follower_revision}");
    assert!(
        !invariants_ok,
        "the hash comparison must catch the divergence"
    );
}

fn create(key: &str, start_revision: i64, progress_notify_ms: u64) -> WatchCreate {
    WatchCreate {
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        start_revision,
        prev_kv: false,
        progress_notify_ms,
    }
}

/// (header revision, event revisions) of an events response, or (header, []) of a progress one.
fn revisions(reply: WatchResponse) -> (i64, Vec<i64>) {
    match reply {
        WatchResponse::Events {
            header_revision,
            events,
        } => (
            header_revision,
            events.iter().map(|e| e.kv.mod_revision).collect(),
        ),
        WatchResponse::Progress { header_revision } => (header_revision, vec![]),
        other => panic!("expected events or progress, got {other:?}"),
    }
}

const WAIT: Duration = Duration::from_secs(3);

/// Writes w 20 times (revisions 2..=21), then opens a watch at every revision and at the head.
/// Returns (streams whose first event is not at the start revision, progress notifications whose
/// header went back).
fn watch_anomalies(bug: &'static str) -> (usize, usize) {
    simulate(26, move || async move {
        let cluster = Cluster::start(with_bug(bug), &RaftRs).await;
        let client = Client::new(1);
        for i in 0..20 {
            client.put(&cluster, "w", &i.to_string()).await;
        }
        let at = cluster.client_addr(cluster.leader().unwrap());
        let mut misplaced = 0;
        for start in 2..=21 {
            let reply = client.watch(at, create("w", start, 0), WAIT).await;
            let (_, events) = revisions(reply.expect("a response"));
            if events.first() != Some(&start) {
                misplaced += 1;
            }
        }
        let mut regressed = 0;
        for _ in 0..20 {
            let reply = client.watch(at, create("w", 22, 100), WAIT).await;
            let (header_revision, events) = revisions(reply.expect("a response"));
            assert!(events.is_empty());
            if header_revision < 21 {
                regressed += 1;
            }
        }
        (misplaced, regressed)
    })
}

#[test]
fn watch_bugs_skip_repeat_and_regress() {
    assert_eq!(watch_anomalies(""), (0, 0));
    assert!(watch_anomalies("watch_gap").0 > 0);
    assert!(watch_anomalies("watch_duplicate").0 > 0);
    assert!(watch_anomalies("watch_regress").1 > 0);
}

/// A watch from below the compaction is refused with the compact revision; with
/// `watch_compacted_skip` it is served from the compact revision on, the events between skipped.
#[test]
fn a_watch_from_a_compacted_revision_is_refused_unless_the_bug_skips_ahead() {
    for bug in ["", "watch_compacted_skip"] {
        let reply = simulate(28, move || async move {
            let cluster = Cluster::start(with_bug(bug), &RaftRs).await;
            let client = Client::new(1);
            for i in 0..5 {
                client.put(&cluster, "w", &i.to_string()).await;
            }
            let at = cluster.client_addr(cluster.leader().unwrap());
            let compact = Request::Compact {
                revision: 4,
                physical: true,
            };
            assert!(matches!(
                client.call(at, compact).await,
                Some(KvReply::Ok(_))
            ));
            client.watch(at, create("w", 2, 0), WAIT).await
        });
        match (bug, reply) {
            ("", Some(WatchResponse::Compacted { compact_revision })) => {
                assert_eq!(compact_revision, 4)
            }
            ("watch_compacted_skip", Some(reply @ WatchResponse::Events { .. })) => {
                assert_eq!(revisions(reply), (6, vec![4, 5, 6]))
            }
            (bug, other) => panic!("bug {bug:?}: {other:?}"),
        }
    }
}

/// etcd #15220: a progress notification requested while the watcher is still unsynced (a watch
/// from the past, not yet caught up) must wait until every event up to its revision was sent.
#[test]
fn a_requested_progress_notification_waits_until_the_watcher_is_synced() {
    for (bug, progress_first) in [("", false), ("watch_progress_unsynced", true)] {
        let seen = simulate(11, move || async move {
            let cluster = Cluster::start(with_bug(bug), &RaftRs).await;
            let client = Client::new(1);
            for i in 0..5 {
                client.put(&cluster, "a", &i.to_string()).await;
            }
            wait_all_applied(&cluster, 5_000).await;
            let at = cluster.client_addr(cluster.leader().unwrap());
            client
                .watch_stream(at, create("a", 2, 0), vec![WatchRequest::Progress], WAIT, 2)
                .await
                .into_iter()
                .map(revisions)
                .collect::<Vec<_>>()
        });
        let caught_up = (6, vec![2, 3, 4, 5, 6]);
        let progress = (6, vec![]);
        let expected = if progress_first {
            [progress, caught_up]
        } else {
            [caught_up, progress]
        };
        assert_eq!(seen, expected, "bug {bug:?}");
    }
}

fn read_below_compaction(bug: &'static str) -> Option<KvReply> {
    simulate(27, move || async move {
        let cluster = Cluster::start(with_bug(bug), &RaftRs).await;
        let client = Client::new(1);
        for i in 0..5 {
            client.put(&cluster, "c", &i.to_string()).await;
        }
        let at = cluster.client_addr(cluster.leader().unwrap());
        let reply = client
            .call(
                at,
                Request::Compact {
                    revision: 5,
                    physical: true,
                },
            )
            .await;
        assert!(
            matches!(reply, Some(KvReply::Ok(Response::Compact { .. }))),
            "{reply:?}"
        );
        let read = Request::Range(RangeReq {
            key: b"c".to_vec(),
            revision: 3,
            ..RangeReq::default()
        });
        client.call(at, read).await
    })
}

#[test]
fn compacted_read_returns_data_below_the_compaction_point() {
    let reply = read_below_compaction("");
    assert!(
        matches!(
            reply,
            Some(KvReply::Ok(Response::Error(StoreError::Compacted)))
        ),
        "{reply:?}"
    );
    let reply = read_below_compaction("compacted_read");
    assert!(
        matches!(reply, Some(KvReply::Ok(Response::Range { .. }))),
        "{reply:?}"
    );
}
