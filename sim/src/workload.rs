//! The clients' workload: etcd operations drawn from the scenario's mix with madsim's seeded RNG,
//! and watcher tasks that follow a key or prefix through disconnects and compactions.
//!
//! Every write is identifiable: put values are `c<client>-<counter>` and lease ids are
//! `(client + 1) * 10^9 + counter`, unique in the run, so a checker can tell which write a read
//! saw even when the write's own outcome is unknown.

use crate::client::{watch_event_of, Client, Recorder, WatchEvent};
use crate::rpc::{WatchPoll, WatchReply};
use crate::scenario::WorkloadKnobs;
use kvsim_checker::history::Outcome;
use kvsim_model::mvcc::{
    prefix_end, Compare, CompareResult, CompareTarget, DeleteRangeRequest, EtcdError, Op,
    PutRequest, RangeRequest, RequestOp, Response, ResponseOp, Ret, TxnRequest,
};
use madsim::rand::{thread_rng, Rng};
use madsim::time::{sleep, Instant};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A client keeps at most this many of its leases in play; older ones are abandoned and expire.
const LEASES_KEPT_MAX: usize = 4;

/// What every client and watcher task shares.
pub struct Shared {
    pub knobs: WorkloadKnobs,
    pub recorder: Recorder,
    /// Clients stop issuing operations at this (simulated) instant.
    pub deadline: Instant,
    /// The highest header revision any client has seen, for historic reads, compactions and
    /// watches from the past.
    pub revision_seen_max: AtomicI64,
}

impl Shared {
    fn observe_revision(&self, revision: i64) {
        self.revision_seen_max
            .fetch_max(revision, Ordering::Relaxed);
    }

    fn revision_seen(&self) -> i64 {
        self.revision_seen_max.load(Ordering::Relaxed)
    }
}

/// The name of key number `index`: `k000`, `k001`, ... Prefixes are all but the last digit.
pub fn key_name(index: usize) -> String {
    format!("k{index:03}")
}

/// One client task: draws and executes operations until the deadline.
pub async fn run_client(index: usize, mut client: Client, shared: Arc<Shared>) {
    let mut state = ClientState {
        index,
        counter: 0,
        mod_revisions: BTreeMap::new(),
        leases: Vec::new(),
    };
    let weights = shared.knobs.mix.weights();
    let total: u64 = weights.iter().map(|(_, weight)| u64::from(*weight)).sum();
    assert!(total > 0, "validated: the op mix has a positive weight");
    while Instant::now() < shared.deadline {
        let mut pick = thread_rng().gen_range(0..total);
        let mut kind = weights[0].0;
        for (name, weight) in weights {
            if pick < u64::from(weight) {
                kind = name;
                break;
            }
            pick -= u64::from(weight);
        }
        let op = state.draw(kind, &shared);
        let outcome = client.execute(op.clone()).await;
        state.observe(&op, &outcome, &shared);
        let think_ms = thread_rng().gen_range(0..=shared.knobs.think_ms_max);
        sleep(Duration::from_millis(think_ms)).await;
    }
}

struct ClientState {
    index: usize,
    counter: u64,
    /// Last mod_revision this client saw per key: the guess its compare-and-swap txns use.
    mod_revisions: BTreeMap<String, i64>,
    /// Leases this client granted (or may have: a grant with unknown outcome counts).
    leases: Vec<i64>,
}

impl ClientState {
    fn unique_value(&mut self) -> String {
        self.counter += 1;
        format!("c{}-{}", self.index, self.counter)
    }

    fn lease_id_new(&mut self) -> i64 {
        self.counter += 1;
        (self.index as i64 + 1) * 1_000_000_000 + self.counter as i64
    }

    fn random_key(&self, shared: &Shared) -> String {
        key_name(thread_rng().gen_range(0..shared.knobs.keys))
    }

    fn random_prefix(&self, shared: &Shared) -> String {
        let key = self.random_key(shared);
        if thread_rng().gen_bool(0.2) {
            "k".to_string()
        } else {
            key[..key.len() - 1].to_string()
        }
    }

    fn put(&mut self, key: String, lease: i64) -> PutRequest {
        let value = self.unique_value();
        PutRequest {
            key,
            value,
            lease,
            prev_kv: thread_rng().gen_bool(0.3),
            ..Default::default()
        }
    }

    fn lease(&self) -> Option<i64> {
        if self.leases.is_empty() {
            None
        } else {
            Some(self.leases[thread_rng().gen_range(0..self.leases.len())])
        }
    }

    fn draw(&mut self, kind: &str, shared: &Shared) -> Op {
        let rng = &mut thread_rng();
        match kind {
            "put" => {
                let key = self.random_key(shared);
                Op::Put(self.put(key, 0))
            }
            "get" => Op::Range(RangeRequest {
                key: self.random_key(shared),
                ..Default::default()
            }),
            "get_serializable" => Op::Range(RangeRequest {
                key: self.random_key(shared),
                serializable: true,
                ..Default::default()
            }),
            "get_prefix" => {
                let prefix = self.random_prefix(shared);
                Op::Range(RangeRequest {
                    range_end: prefix_end(&prefix),
                    key: prefix,
                    limit: if rng.gen_bool(0.3) {
                        rng.gen_range(1..=3)
                    } else {
                        0
                    },
                    keys_only: rng.gen_bool(0.1),
                    count_only: rng.gen_bool(0.1),
                    ..Default::default()
                })
            }
            "get_historic" => {
                let latest = shared.revision_seen().max(1);
                let revision =
                    (latest - rng.gen_range(0..=shared.knobs.historic_depth_revisions)).max(1);
                let (key, range_end) = if rng.gen_bool(0.5) {
                    (self.random_key(shared), String::new())
                } else {
                    let prefix = self.random_prefix(shared);
                    let end = prefix_end(&prefix);
                    (prefix, end)
                };
                Op::Range(RangeRequest {
                    key,
                    range_end,
                    revision,
                    ..Default::default()
                })
            }
            "delete" => {
                if rng.gen_bool(0.2) {
                    let prefix = self.random_prefix(shared);
                    Op::DeleteRange(DeleteRangeRequest {
                        range_end: prefix_end(&prefix),
                        key: prefix,
                        prev_kv: rng.gen_bool(0.5),
                    })
                } else {
                    Op::DeleteRange(DeleteRangeRequest {
                        key: self.random_key(shared),
                        prev_kv: rng.gen_bool(0.5),
                        ..Default::default()
                    })
                }
            }
            // The lock / election recipe's first step: create the key only if it does not exist.
            "txn_create" => {
                let key = self.random_key(shared);
                let put = self.put(key.clone(), 0);
                Op::Txn(TxnRequest {
                    compare: vec![Compare {
                        key: key.clone(),
                        result: CompareResult::Equal,
                        target: CompareTarget::CreateRevision(0),
                    }],
                    success: vec![RequestOp::Put(put)],
                    failure: vec![RequestOp::Range(RangeRequest {
                        key,
                        ..Default::default()
                    })],
                })
            }
            // Optimistic concurrency (etcd's STM): put only if nobody wrote since our last read.
            "txn_cas" => {
                let key = self.random_key(shared);
                let expected = self.mod_revisions.get(&key).copied().unwrap_or(0);
                let put = self.put(key.clone(), 0);
                Op::Txn(TxnRequest {
                    compare: vec![Compare {
                        key: key.clone(),
                        result: CompareResult::Equal,
                        target: CompareTarget::ModRevision(expected),
                    }],
                    success: vec![RequestOp::Put(put)],
                    failure: vec![RequestOp::Range(RangeRequest {
                        key,
                        ..Default::default()
                    })],
                })
            }
            "txn_multi" => self.txn_multi(shared),
            "lease_grant" => self.lease_grant(shared),
            "lease_put" => match self.lease() {
                Some(lease) => {
                    let key = self.random_key(shared);
                    Op::Put(self.put(key, lease))
                }
                None => self.lease_grant(shared),
            },
            "lease_keepalive" => match self.lease() {
                Some(id) => Op::LeaseKeepAlive { id },
                None => self.lease_grant(shared),
            },
            "lease_revoke" => match self.lease() {
                Some(id) => {
                    self.leases.retain(|lease| *lease != id);
                    Op::LeaseRevoke { id }
                }
                None => self.lease_grant(shared),
            },
            "lease_ttl" => match self.lease() {
                Some(id) => Op::LeaseTimeToLive {
                    id,
                    keys: rng.gen_bool(0.5),
                },
                None => self.lease_grant(shared),
            },
            "compact" => {
                let revision = shared.revision_seen() - shared.knobs.compact_depth_revisions;
                if revision > 1 {
                    Op::Compact {
                        revision,
                        physical: rng.gen_bool(0.5),
                    }
                } else {
                    Op::Range(RangeRequest {
                        key: self.random_key(shared),
                        ..Default::default()
                    })
                }
            }
            other => unreachable!("op kind {other} is not in OpMix::weights"),
        }
    }

    fn lease_grant(&mut self, shared: &Shared) -> Op {
        let id = self.lease_id_new();
        self.leases.push(id);
        if self.leases.len() > LEASES_KEPT_MAX {
            // Abandoned, not revoked: it is left to expire on the lessor's clock.
            self.leases.remove(0);
        }
        Op::LeaseGrant {
            id,
            ttl_s: shared.knobs.lease_ttl_s,
        }
    }

    /// A multi-key transaction: compare one key's value or version, then write two keys and
    /// delete a third atomically; otherwise read a prefix.
    fn txn_multi(&mut self, shared: &Shared) -> Op {
        let rng = &mut thread_rng();
        let first = rng.gen_range(0..shared.knobs.keys);
        let second =
            (first + 1 + rng.gen_range(0..shared.knobs.keys.max(2) - 1)) % shared.knobs.keys.max(1);
        let compare_key = self.random_key(shared);
        let target = if rng.gen_bool(0.5) {
            CompareTarget::Version(rng.gen_range(0..3))
        } else {
            CompareTarget::Value(format!("c{}-{}", rng.gen_range(0..8), rng.gen_range(1..20)))
        };
        let result = [
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Less,
            CompareResult::Greater,
        ][rng.gen_range(0..4)];
        let mut success = vec![RequestOp::Put(self.put(key_name(first), 0))];
        if second != first {
            success.push(RequestOp::Put(self.put(key_name(second), 0)));
        }
        let deleted = rng.gen_range(0..shared.knobs.keys);
        if deleted != first && deleted != second {
            success.push(RequestOp::DeleteRange(DeleteRangeRequest {
                key: key_name(deleted),
                ..Default::default()
            }));
        }
        let prefix = self.random_prefix(shared);
        Op::Txn(TxnRequest {
            compare: vec![Compare {
                key: compare_key,
                result,
                target,
            }],
            success,
            failure: vec![RequestOp::Range(RangeRequest {
                range_end: prefix_end(&prefix),
                key: prefix,
                ..Default::default()
            })],
        })
    }

    fn observe(&mut self, op: &Op, outcome: &Outcome<Ret>, shared: &Shared) {
        let Outcome::Ok { output } = outcome else {
            return;
        };
        match output {
            Ret::Ok(response) => {
                shared.observe_revision(response_revision(response));
                match (op, response) {
                    (Op::Put(put), Response::Put(reply)) => {
                        self.mod_revisions
                            .insert(put.key.clone(), reply.header.revision);
                    }
                    (Op::Range(range), Response::Range(reply)) if range.revision == 0 => {
                        for kv in &reply.kvs {
                            self.mod_revisions.insert(kv.key.clone(), kv.mod_revision);
                        }
                    }
                    (Op::Txn(_), Response::Txn(reply)) => {
                        for response in &reply.responses {
                            if let ResponseOp::Range(range) = response {
                                for kv in &range.kvs {
                                    self.mod_revisions.insert(kv.key.clone(), kv.mod_revision);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ret::Err(EtcdError::LeaseNotFound) => {
                let lease = match op {
                    Op::Put(put) => put.lease,
                    Op::LeaseKeepAlive { id } | Op::LeaseTimeToLive { id, .. } => *id,
                    _ => 0,
                };
                self.leases.retain(|known| *known != lease);
            }
            Ret::Err(_) => {}
        }
    }
}

fn response_revision(response: &Response) -> i64 {
    match response {
        Response::Put(put) => put.header.revision,
        Response::Range(range) => range.header.revision,
        Response::DeleteRange(delete) => delete.header.revision,
        Response::Txn(txn) => txn.header.revision,
        Response::LeaseGrant { header, .. }
        | Response::LeaseRevoke { header }
        | Response::LeaseKeepAlive { header, .. }
        | Response::LeaseTimeToLive { header, .. }
        | Response::Compact { header } => header.revision,
    }
}

/// One watcher task: follows a key or prefix with long polls from one node until the deadline,
/// recording every response. On a transport error, a refusal or (at random) a voluntary
/// disconnect it resumes on a random node from the last delivered revision + 1, as etcd's
/// clientv3 does; on `Compacted` it restarts from the compact revision.
///
/// Records (`type = "watch"`, all with `watcher` and `t_ns`):
/// `action = "start" | "resume"` with `node`, `key`, `range_end`, `start_revision`;
/// `"response"` with `node`, `header_revision`, `events`; `"compacted"` with `node` and
/// `compact_revision`; `"error"` with `node` and `error`; `"cancel"` at the end.
pub async fn run_watcher(index: usize, client: Client, shared: Arc<Shared>) {
    let servers = client.servers();
    let rng = &mut thread_rng();
    let (key, range_end) = if rng.gen_bool(0.5) {
        (key_name(rng.gen_range(0..shared.knobs.keys)), String::new())
    } else {
        let key = key_name(rng.gen_range(0..shared.knobs.keys));
        let prefix = key[..key.len() - 1].to_string();
        let end = prefix_end(&prefix);
        (prefix, end)
    };
    let prev_kv = rng.gen_bool(0.5);
    let latest = shared.revision_seen();
    let mut next_revision = if rng.gen_bool(shared.knobs.watch_from_past_probability) {
        (latest - rng.gen_range(0..=shared.knobs.historic_depth_revisions)).max(1)
    } else {
        latest + 1
    };
    let mut node = servers[rng.gen_range(0..servers.len())];
    let record = |action: &str, fields: serde_json::Value| {
        let mut object = json!({ "watcher": index, "action": action });
        if let (Some(object), serde_json::Value::Object(fields)) = (object.as_object_mut(), fields)
        {
            object.extend(fields);
        }
        shared.recorder.other("watch", object);
    };
    record(
        "start",
        json!({ "node": node_name(node), "key": key, "range_end": range_end,
        "start_revision": next_revision, "prev_kv": prev_kv }),
    );
    while Instant::now() < shared.deadline {
        let poll = WatchPoll {
            key: key.as_bytes().to_vec(),
            range_end: range_end.as_bytes().to_vec(),
            start_revision: next_revision,
            prev_kv,
            wait_ms: shared.knobs.watch_wait_ms,
        };
        let reconnect = match client.watch_poll(node, poll).await {
            Ok(WatchReply::Events {
                header_revision,
                events,
            }) => {
                shared.observe_revision(header_revision);
                if let Some(last) = events.last() {
                    next_revision = last.kv.mod_revision + 1;
                }
                let events: Vec<WatchEvent> = events.iter().map(watch_event_of).collect();
                record(
                    "response",
                    json!({ "node": node_name(node), "header_revision": header_revision,
                    "events": events }),
                );
                thread_rng().gen_bool(shared.knobs.watch_reconnect_probability)
            }
            Ok(WatchReply::Compacted { compact_revision }) => {
                record(
                    "compacted",
                    json!({ "node": node_name(node), "compact_revision": compact_revision }),
                );
                // etcd's clientv3 restarts at the compact revision, the oldest one still
                // served; step past it if this node already refused exactly that revision.
                next_revision = if next_revision >= compact_revision {
                    compact_revision + 1
                } else {
                    compact_revision
                };
                true
            }
            Ok(WatchReply::NotLeader { .. }) => {
                record(
                    "error",
                    json!({ "node": node_name(node), "error": "not leader" }),
                );
                true
            }
            Ok(WatchReply::Unavailable { reason }) => {
                record(
                    "error",
                    json!({ "node": node_name(node), "error": format!("unavailable: {reason}") }),
                );
                true
            }
            Err(error) => {
                record(
                    "error",
                    json!({ "node": node_name(node), "error": error.to_string() }),
                );
                true
            }
        };
        if reconnect && Instant::now() < shared.deadline {
            node = servers[thread_rng().gen_range(0..servers.len())];
            record(
                "resume",
                json!({ "node": node_name(node), "key": key, "range_end": range_end,
                "start_revision": next_revision, "prev_kv": prev_kv }),
            );
        }
    }
    record(
        "cancel",
        json!({ "node": node_name(node), "next_revision": next_revision }),
    );
}

fn node_name(id: u64) -> String {
    format!("n{id}")
}
