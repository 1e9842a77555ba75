//! The clients' workload: etcd operations drawn from the scenario's mix with madsim's seeded RNG,
//! and watcher tasks that follow a key or prefix through disconnects and compactions.
//!
//! Operations come from the model's drawer (`kvsim_model::mvcc::gen::OpDrawer`, the one drawer
//! every workload uses), set up from the scenario here ([`draw_knobs`]). It and
//! [`draw_watch_start`] take their RNG as a parameter, so live mode (`kvsim live`, a real etcd
//! cluster) draws operations from the same code with a seeded `StdRng`; the simulation passes
//! madsim's `thread_rng()`.

use crate::client::{watch_event_of, Client, Recorder, WatchEvent};
use crate::rpc::{WatchCreate, WatchRequest, WatchResponse};
use crate::scenario::WorkloadKnobs;
use kvsim_checker::history::Outcome;
use kvsim_model::mvcc::gen::{DrawKnobs, OpDrawer};
use kvsim_model::mvcc::{prefix_end, Op, Ret};
use madsim::rand::{thread_rng, Rng};
use madsim::time::{sleep, timeout, Instant};
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let mut drawer = client_drawer(index, &*shared);
    let mut retry = None;
    while Instant::now() < shared.deadline {
        let op = retry
            .take()
            .unwrap_or_else(|| draw_op(&mut drawer, &*shared, &mut thread_rng()));
        let outcome = client.execute(op.clone()).await;
        observe(&mut drawer, &op, &outcome, &*shared);
        retry = retry_of(&op, &outcome, &*shared, &mut thread_rng());
        let think_ms = draw_think_ms(&*shared, &mut thread_rng());
        sleep(Duration::from_millis(think_ms)).await;
    }
}

/// The operation a client sends again after `op` ended `outcome`, if it does: a write whose
/// outcome is unknown, with `retry_unknown_probability`, as application code retries on
/// "context deadline exceeded" (etcd's clientv3 never retries a mutation whose outcome it cannot
/// know; the code around it does). Only non-idempotent requests (put, delete, txn) are retried:
/// the retry is a second operation in the history with the same request, and if both took
/// effect the store holds two writes of one value, which the checkers must judge without
/// assuming values are unique.
pub fn retry_of<R: Rng + ?Sized>(
    op: &Op,
    outcome: &Outcome<Ret>,
    shared: &impl GeneratorContext,
    rng: &mut R,
) -> Option<Op> {
    let probability = shared.knobs().retry_unknown_probability;
    let retryable = matches!(op, Op::Put(_) | Op::DeleteRange(_) | Op::Txn(_));
    // No draw at probability 0, so scenarios without retries keep their histories.
    (probability > 0.0
        && retryable
        && matches!(outcome, Outcome::Unknown { .. })
        && rng.gen_bool(probability))
    .then(|| op.clone())
}

/// A client's pause between two operations: uniform `[0, think_ms_max]`.
pub fn draw_think_ms<R: Rng + ?Sized>(shared: &impl GeneratorContext, rng: &mut R) -> u64 {
    rng.gen_range(0..=shared.knobs().think_ms_max)
}

/// The drawer's knobs for a scenario's workload: the one place where the scenario's `[workload]`
/// becomes [`DrawKnobs`] (keys `k000`, `k001`, ...).
pub fn draw_knobs(knobs: &WorkloadKnobs) -> DrawKnobs {
    DrawKnobs {
        mix: knobs.mix.clone(),
        keys: (0..knobs.keys).map(key_name).collect(),
        lease_ttl_s: knobs.lease_ttl_s,
        historic_depth_revisions: knobs.historic_depth_revisions,
        compact_depth_revisions: knobs.compact_depth_revisions,
    }
}

/// Workload client `index`'s operation drawer (the model's, [`OpDrawer`]).
pub fn client_drawer(index: usize, shared: &impl GeneratorContext) -> OpDrawer {
    OpDrawer::new(index, draw_knobs(shared.knobs()))
}

/// The client's next operation, aimed below the highest revision any client has seen.
pub fn draw_op<R: Rng + ?Sized>(
    drawer: &mut OpDrawer,
    shared: &impl GeneratorContext,
    rng: &mut R,
) -> Op {
    drawer.next(rng, shared.revision_seen())
}

/// Feeds an answer back: the drawer learns from it, and `shared` notes its revision.
pub fn observe(
    drawer: &mut OpDrawer,
    op: &Op,
    outcome: &Outcome<Ret>,
    shared: &impl GeneratorContext,
) {
    if let Outcome::Ok { output } = outcome {
        if let Some(revision) = drawer.observe(op, output) {
            shared.observe_revision(revision);
        }
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

/// One watcher task: follows a key or prefix on a watch stream from one node until the deadline,
/// recording every response. When the stream breaks (the member crashed, it knows no leader, a
/// compaction canceled the watch), when nothing has arrived for a progress interval plus a
/// request timeout (a stalled member: gRPC keepalive would end that stream), or (at random) as a
/// voluntary disconnect, it resumes on a random node from the last delivered revision + 1, as
/// etcd's clientv3 does; after `Compacted` it restarts from the compact revision. After its
/// stream opens, and after each response, it asks for a progress notification at random
/// (`watch_progress_request_probability`, etcd's `RequestProgress`).
///
/// Records (`type = "watch"`, all with `watcher` and `t_ns`):
/// `action = "start" | "resume"` with `node`, `key`, `range_end`, `start_revision`;
/// `"response"` with `node`, `header_revision`, `events` (empty: a progress notification) and
/// `"stream": true`; `"compacted"` with `node` and `compact_revision`; `"error"` with `node` and
/// `error`; `"cancel"` at the end.
pub async fn run_watcher(index: usize, client: Client, shared: Arc<Shared>) {
    let servers = client.servers();
    let rng = &mut thread_rng();
    let WatchStart {
        key,
        range_end,
        prev_kv,
        start_revision,
    } = draw_watch_start(&*shared, rng);
    let knobs = &shared.knobs;
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
    let stall = Duration::from_millis(knobs.watch_progress_notify_ms + knobs.request_timeout_ms);
    while Instant::now() < shared.deadline {
        let create = WatchCreate {
            key: key.as_bytes().to_vec(),
            range_end: range_end.as_bytes().to_vec(),
            start_revision: next_revision,
            prev_kv,
            progress_notify_ms: knobs.watch_progress_notify_ms,
        };
        let ended = match client.watch_open(node, create).await {
            Err(error) => StreamEnd::Error(error.to_string()),
            Ok(mut stream) => loop {
                if thread_rng().gen_bool(knobs.watch_progress_request_probability)
                    && stream.send(WatchRequest::Progress).await.is_err()
                {
                    break StreamEnd::Error("watch stream broken".to_string());
                }
                let wait_until = shared.deadline.min(Instant::now() + stall);
                let response = match timeout(
                    wait_until.saturating_duration_since(Instant::now()),
                    stream.recv(),
                )
                .await
                {
                    Err(_) if Instant::now() >= shared.deadline => break StreamEnd::Deadline,
                    Err(_) => break StreamEnd::Error("watch stream stalled".to_string()),
                    Ok(Err(error)) => break StreamEnd::Error(error.to_string()),
                    Ok(Ok(response)) => response,
                };
                let (header_revision, events) = match response {
                    WatchResponse::Created { header_revision } => {
                        shared.observe_revision(header_revision);
                        continue;
                    }
                    WatchResponse::Events {
                        header_revision,
                        events,
                    } => (header_revision, events),
                    WatchResponse::Progress { header_revision } => (header_revision, Vec::new()),
                    WatchResponse::Compacted { compact_revision } => {
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
                        break StreamEnd::Compacted;
                    }
                    WatchResponse::NoLeader => {
                        break StreamEnd::Error("no leader".to_string());
                    }
                };
                shared.observe_revision(header_revision);
                if let Some(last) = events.last() {
                    next_revision = last.kv.mod_revision + 1;
                }
                let events: Vec<WatchEvent> = events.iter().map(watch_event_of).collect();
                record(
                    "response",
                    json!({ "node": node_name(node), "header_revision": header_revision,
                    "events": events, "stream": true }),
                );
                if thread_rng().gen_bool(knobs.watch_reconnect_probability) {
                    break StreamEnd::Reconnect;
                }
            },
        };
        match ended {
            StreamEnd::Deadline => break,
            StreamEnd::Error(error) => {
                record("error", json!({ "node": node_name(node), "error": error }));
                // Do not spin on a member that refuses at once (down, or without a leader).
                sleep(Duration::from_millis(WATCH_RETRY_MS)).await;
            }
            StreamEnd::Compacted | StreamEnd::Reconnect => {}
        }
        if Instant::now() < shared.deadline {
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

/// How long a watcher waits before it resumes after an error (etcd's clientv3 backs off too).
const WATCH_RETRY_MS: u64 = 100;

/// Why a watcher's stream ended.
enum StreamEnd {
    /// The run's deadline passed.
    Deadline,
    /// Broken, refused, stalled, or the member knows no leader.
    Error(String),
    /// Canceled by a compaction (recorded as `compacted`).
    Compacted,
    /// A voluntary disconnect.
    Reconnect,
}

fn node_name(id: u64) -> String {
    format!("n{id}")
}
