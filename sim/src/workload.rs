//! The clients' workload: etcd operations drawn from the scenario's mix with madsim's seeded RNG,
//! and watcher tasks that follow a key or prefix through disconnects and compactions.
//!
//! The generator itself ([`OpDrawer`], [`draw_watch_start`]) takes its RNG as a parameter, so
//! live mode (`kvsim live`, a real etcd cluster) draws operations from the same code with a
//! seeded `StdRng`; the simulation passes madsim's `thread_rng()`.
//!
//! Every write is identifiable: put values are `c<client>-<counter>` and lease ids are
//! `(client + 1) * 10^9 + counter`, unique in the run, so a checker can tell which write a read
//! saw even when the write's own outcome is unknown.

use crate::client::{watch_event_of, Client, Recorder, WatchEvent};
use crate::rpc::{WatchPoll, WatchReply};
use crate::scenario::OpMix;
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
    /// Notes a header revision some client or watcher saw.
    pub fn observe_revision(&self, revision: i64) {
        self.revision_seen_max
            .fetch_max(revision, Ordering::Relaxed);
    }

    /// The highest header revision seen so far.
    pub fn revision_seen(&self) -> i64 {
        self.revision_seen_max.load(Ordering::Relaxed)
    }
}

/// What the operation generator reads and updates besides its RNG: the workload knobs and the
/// highest header revision any client or watcher has seen. The simulation's [`Shared`] provides it,
/// and so does live mode (`kvsim live`), which draws from the same generator outside madsim.
pub trait GeneratorContext {
    fn knobs(&self) -> &WorkloadKnobs;
    /// The highest header revision seen so far.
    fn revision_seen(&self) -> i64;
    /// Notes a header revision some client or watcher saw.
    fn observe_revision(&self, revision: i64);
}

impl GeneratorContext for Shared {
    fn knobs(&self) -> &WorkloadKnobs {
        &self.knobs
    }

    fn revision_seen(&self) -> i64 {
        Shared::revision_seen(self)
    }

    fn observe_revision(&self, revision: i64) {
        Shared::observe_revision(self, revision)
    }
}

/// The name of key number `index`: `k000`, `k001`, ... Prefixes are all but the last digit.
pub fn key_name(index: usize) -> String {
    format!("k{index:03}")
}

/// One client task: draws and executes operations until the deadline.
pub async fn run_client(index: usize, mut client: Client, shared: Arc<Shared>) {
    let mut drawer = OpDrawer::new(index);
    while Instant::now() < shared.deadline {
        let op = drawer.next(&*shared, &mut thread_rng());
        let outcome = client.execute(op.clone()).await;
        drawer.observe(&op, &outcome, &*shared);
        let think_ms = draw_think_ms(&*shared, &mut thread_rng());
        sleep(Duration::from_millis(think_ms)).await;
    }
}

/// A client's pause between two operations: uniform `[0, think_ms_max]`.
pub fn draw_think_ms<R: Rng + ?Sized>(shared: &impl GeneratorContext, rng: &mut R) -> u64 {
    rng.gen_range(0..=shared.knobs().think_ms_max)
}

/// An operation kind drawn from `mix`'s weights (one of the names in [`OpMix::weights`]).
pub fn draw_kind<R: Rng + ?Sized>(mix: &OpMix, rng: &mut R) -> &'static str {
    let weights = mix.weights();
    let total: u64 = weights.iter().map(|(_, weight)| u64::from(*weight)).sum();
    assert!(total > 0, "validated: the op mix has a positive weight");
    let mut pick = rng.gen_range(0..total);
    for (name, weight) in weights {
        if pick < u64::from(weight) {
            return name;
        }
        pick -= u64::from(weight);
    }
    unreachable!("pick < total")
}

/// One workload client's operation generator: what it draws depends on the RNG, the knobs, the
/// highest revision seen so far, and what this client learned from its own answers (the
/// mod_revisions its compare-and-swap txns guess, the leases it holds).
pub struct OpDrawer {
    index: usize,
    counter: u64,
    /// Last mod_revision this client saw per key: the guess its compare-and-swap txns use.
    mod_revisions: BTreeMap<String, i64>,
    /// Leases this client granted (or may have: a grant with unknown outcome counts).
    leases: Vec<i64>,
}

impl OpDrawer {
    /// The generator of client `index` (the index makes values and lease ids unique in a run).
    pub fn new(index: usize) -> OpDrawer {
        OpDrawer {
            index,
            counter: 0,
            mod_revisions: BTreeMap::new(),
            leases: Vec::new(),
        }
    }

    /// Draws the next operation: a kind from the scenario's mix, then the operation.
    pub fn next<R: Rng + ?Sized>(&mut self, shared: &impl GeneratorContext, rng: &mut R) -> Op {
        let kind = draw_kind(&shared.knobs().mix, rng);
        self.draw(kind, shared, rng)
    }

    fn unique_value(&mut self) -> String {
        self.counter += 1;
        format!("c{}-{}", self.index, self.counter)
    }

    fn lease_id_new(&mut self) -> i64 {
        self.counter += 1;
        (self.index as i64 + 1) * 1_000_000_000 + self.counter as i64
    }

    fn random_key<R: Rng + ?Sized>(&self, shared: &impl GeneratorContext, rng: &mut R) -> String {
        key_name(rng.gen_range(0..shared.knobs().keys))
    }

    fn random_prefix<R: Rng + ?Sized>(
        &self,
        shared: &impl GeneratorContext,
        rng: &mut R,
    ) -> String {
        let key = self.random_key(shared, rng);
        if rng.gen_bool(0.2) {
            "k".to_string()
        } else {
            key[..key.len() - 1].to_string()
        }
    }

    fn put<R: Rng + ?Sized>(&mut self, key: String, lease: i64, rng: &mut R) -> PutRequest {
        let value = self.unique_value();
        PutRequest {
            key,
            value,
            lease,
            prev_kv: rng.gen_bool(0.3),
            ..Default::default()
        }
    }

    fn lease<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<i64> {
        if self.leases.is_empty() {
            None
        } else {
            Some(self.leases[rng.gen_range(0..self.leases.len())])
        }
    }

    /// Draws one operation of `kind` (a name from [`OpMix::weights`]).
    pub fn draw<R: Rng + ?Sized>(
        &mut self,
        kind: &str,
        shared: &impl GeneratorContext,
        rng: &mut R,
    ) -> Op {
        match kind {
            "put" => {
                let key = self.random_key(shared, rng);
                Op::Put(self.put(key, 0, rng))
            }
            "get" => Op::Range(RangeRequest {
                key: self.random_key(shared, rng),
                ..Default::default()
            }),
            "get_serializable" => Op::Range(RangeRequest {
                key: self.random_key(shared, rng),
                serializable: true,
                ..Default::default()
            }),
            "get_prefix" => {
                let prefix = self.random_prefix(shared, rng);
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
                    (latest - rng.gen_range(0..=shared.knobs().historic_depth_revisions)).max(1);
                let (key, range_end) = if rng.gen_bool(0.5) {
                    (self.random_key(shared, rng), String::new())
                } else {
                    let prefix = self.random_prefix(shared, rng);
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
                    let prefix = self.random_prefix(shared, rng);
                    Op::DeleteRange(DeleteRangeRequest {
                        range_end: prefix_end(&prefix),
                        key: prefix,
                        prev_kv: rng.gen_bool(0.5),
                    })
                } else {
                    Op::DeleteRange(DeleteRangeRequest {
                        key: self.random_key(shared, rng),
                        prev_kv: rng.gen_bool(0.5),
                        ..Default::default()
                    })
                }
            }
            // The lock / election recipe's first step: create the key only if it does not exist.
            "txn_create" => {
                let key = self.random_key(shared, rng);
                let put = self.put(key.clone(), 0, rng);
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
                let key = self.random_key(shared, rng);
                let expected = self.mod_revisions.get(&key).copied().unwrap_or(0);
                let put = self.put(key.clone(), 0, rng);
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
            "txn_multi" => self.txn_multi(shared, rng),
            "lease_grant" => self.lease_grant(shared),
            "lease_put" => match self.lease(rng) {
                Some(lease) => {
                    let key = self.random_key(shared, rng);
                    Op::Put(self.put(key, lease, rng))
                }
                None => self.lease_grant(shared),
            },
            "lease_keepalive" => match self.lease(rng) {
                Some(id) => Op::LeaseKeepAlive { id },
                None => self.lease_grant(shared),
            },
            "lease_revoke" => match self.lease(rng) {
                Some(id) => {
                    self.leases.retain(|lease| *lease != id);
                    Op::LeaseRevoke { id }
                }
                None => self.lease_grant(shared),
            },
            "lease_ttl" => match self.lease(rng) {
                Some(id) => Op::LeaseTimeToLive {
                    id,
                    keys: rng.gen_bool(0.5),
                },
                None => self.lease_grant(shared),
            },
            "compact" => {
                let revision = shared.revision_seen() - shared.knobs().compact_depth_revisions;
                if revision > 1 {
                    Op::Compact {
                        revision,
                        physical: rng.gen_bool(0.5),
                    }
                } else {
                    Op::Range(RangeRequest {
                        key: self.random_key(shared, rng),
                        ..Default::default()
                    })
                }
            }
            other => unreachable!("op kind {other} is not in OpMix::weights"),
        }
    }

    fn lease_grant(&mut self, shared: &impl GeneratorContext) -> Op {
        let id = self.lease_id_new();
        self.leases.push(id);
        if self.leases.len() > LEASES_KEPT_MAX {
            // Abandoned, not revoked: it is left to expire on the lessor's clock.
            self.leases.remove(0);
        }
        Op::LeaseGrant {
            id,
            ttl_s: shared.knobs().lease_ttl_s,
        }
    }

    /// A multi-key transaction: compare one key's value or version, then write two keys and
    /// delete a third atomically; otherwise read a prefix.
    fn txn_multi<R: Rng + ?Sized>(&mut self, shared: &impl GeneratorContext, rng: &mut R) -> Op {
        let first = rng.gen_range(0..shared.knobs().keys);
        let second = (first + 1 + rng.gen_range(0..shared.knobs().keys.max(2) - 1))
            % shared.knobs().keys.max(1);
        let compare_key = self.random_key(shared, rng);
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
        let mut success = vec![RequestOp::Put(self.put(key_name(first), 0, rng))];
        if second != first {
            success.push(RequestOp::Put(self.put(key_name(second), 0, rng)));
        }
        let deleted = rng.gen_range(0..shared.knobs().keys);
        if deleted != first && deleted != second {
            success.push(RequestOp::DeleteRange(DeleteRangeRequest {
                key: key_name(deleted),
                ..Default::default()
            }));
        }
        let prefix = self.random_prefix(shared, rng);
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

    /// Learns from the answer to `op`: the revision seen (into `shared`), the mod_revisions later
    /// compare-and-swap txns guess, and which leases are gone.
    pub fn observe(&mut self, op: &Op, outcome: &Outcome<Ret>, shared: &impl GeneratorContext) {
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

/// What a watcher follows and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchStart {
    /// A single key, or a prefix (then `range_end` is its end).
    pub key: String,
    /// Empty for a single key.
    pub range_end: String,
    pub prev_kv: bool,
    /// The first revision wanted: the next one, or (`watch_from_past_probability`) a past one.
    pub start_revision: i64,
}

/// Draws a watcher's key or prefix, `prev_kv` and start revision.
pub fn draw_watch_start<R: Rng + ?Sized>(
    shared: &impl GeneratorContext,
    rng: &mut R,
) -> WatchStart {
    let (key, range_end) = if rng.gen_bool(0.5) {
        (
            key_name(rng.gen_range(0..shared.knobs().keys)),
            String::new(),
        )
    } else {
        let key = key_name(rng.gen_range(0..shared.knobs().keys));
        let prefix = key[..key.len() - 1].to_string();
        let end = prefix_end(&prefix);
        (prefix, end)
    };
    let prev_kv = rng.gen_bool(0.5);
    let latest = shared.revision_seen();
    let start_revision = if rng.gen_bool(shared.knobs().watch_from_past_probability) {
        (latest - rng.gen_range(0..=shared.knobs().historic_depth_revisions)).max(1)
    } else {
        latest + 1
    };
    WatchStart {
        key,
        range_end,
        prev_kv,
        start_revision,
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
    let WatchStart {
        key,
        range_end,
        prev_kv,
        start_revision,
    } = draw_watch_start(&*shared, rng);
    let mut next_revision = start_revision;
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
