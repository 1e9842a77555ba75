//! Watches against real etcd: how one etcd watch response reads as the simulator's watch records
//! ([`step`]), live mode's watcher task ([`run_watcher`]), and a one-shot watch from a past
//! revision for the conformance test ([`collect`]).

use super::ops;
use super::run::LiveShared;
use etcd_client::{Client, EventType, WatchOptions, WatchResponse, WatchStream};
use kvsim_sim::client::WatchEvent;
use kvsim_sim::workload::{draw_watch_start, GeneratorContext, WatchStart};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What one watch response means for the watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The creation acknowledgement: nothing to record.
    Created,
    /// Events (possibly none: a progress notification) at this header revision.
    Events(i64, Vec<WatchEvent>),
    /// The start revision is compacted; resume at the revision given.
    Compacted(i64),
    /// The server canceled the watch (e.g. `etcdserver: no leader` under require-leader).
    Canceled(String),
}

/// Interprets `response` and moves `next_revision` past the events delivered (or to where a
/// compacted watch must restart: etcd's clientv3 restarts at the compact revision, the oldest one
/// still served — and steps past it if exactly that revision was refused, as the sim does).
pub fn step(response: &WatchResponse, next_revision: &mut i64) -> Step {
    if response.canceled() {
        let compact_revision = response.compact_revision();
        if compact_revision > 0 {
            *next_revision = if *next_revision >= compact_revision {
                compact_revision + 1
            } else {
                compact_revision
            };
            return Step::Compacted(compact_revision);
        }
        return Step::Canceled(format!("watch canceled: {}", response.cancel_reason()));
    }
    if response.created() && response.events().is_empty() {
        return Step::Created;
    }
    let events: Vec<WatchEvent> = response
        .events()
        .iter()
        .filter_map(|event| {
            let kv = event.kv()?;
            Some(WatchEvent {
                kind: match event.event_type() {
                    EventType::Put => "put",
                    EventType::Delete => "delete",
                },
                kv: ops::key_value_of(kv),
                prev_kv: event.prev_kv().map(ops::key_value_of),
            })
        })
        .collect();
    if let Some(last) = events.last() {
        *next_revision = last.kv.mod_revision + 1;
    }
    let header_revision = response.header().map_or(0, |header| header.revision());
    Step::Events(header_revision, events)
}

/// The result of [`collect`]: the events of revisions `[start, until]`, or the compaction that
/// refused `start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collected {
    Events(Vec<WatchEvent>),
    Compacted(i64),
}

/// Watches `key`/`range_end` from `start_revision` on `client` until an event at or past
/// `until_revision` arrives (or `timeout` ends it), returning every event delivered: a watch
/// from a past revision, for the conformance test.
pub async fn collect(
    client: &mut Client,
    key: &str,
    range_end: &str,
    start_revision: i64,
    until_revision: i64,
    prev_kv: bool,
    timeout: Duration,
) -> Result<Collected, String> {
    let gathering = async {
        let mut options = WatchOptions::new().with_start_revision(start_revision);
        if !range_end.is_empty() {
            options = options.with_range(range_end.to_string());
        }
        if prev_kv {
            options = options.with_prev_key();
        }
        let mut stream = client
            .watch(key.to_string(), Some(options))
            .await
            .map_err(|error| error.to_string())?;
        let mut events = Vec::new();
        let mut next_revision = start_revision;
        while next_revision <= until_revision {
            let Some(response) = stream.message().await.map_err(|e| e.to_string())? else {
                return Err("watch stream closed by the server".to_string());
            };
            match step(&response, &mut next_revision) {
                Step::Created => {}
                Step::Events(_, delivered) => events.extend(delivered),
                Step::Compacted(revision) => return Ok(Collected::Compacted(revision)),
                Step::Canceled(reason) => return Err(reason),
            }
        }
        Ok(Collected::Events(events))
    };
    match tokio::time::timeout(timeout, gathering).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no event at revision {until_revision} within {} ms",
            timeout.as_millis()
        )),
    }
}

/// One live watcher: follows a key or prefix drawn like the simulator's watchers, from one member,
/// until the deadline, recording every response in the simulator's `watch` record shapes
/// (sim/src/workload.rs `run_watcher`), so the watch checker judges both alike. On a stream
/// error, a server cancel, a compaction or (at random, `watch_reconnect_probability` per
/// response) a voluntary disconnect, it resumes on the next member from the last delivered
/// revision + 1, as etcd's clientv3 does. After the stream opens and after each response it
/// asks for progress at random (`watch_progress_request_probability`, etcd's `RequestProgress`).
pub async fn run_watcher(index: usize, first: usize, shared: Arc<LiveShared>, mut rng: StdRng) {
    let members = shared.endpoints.len();
    let WatchStart {
        key,
        range_end,
        prev_kv,
        start_revision,
    } = draw_watch_start(&*shared, &mut rng);
    // The watcher works in the cluster's revisions; records carry the history's (keyspace.rs).
    let keyspace = &shared.keyspace;
    let (wire_key, wire_range_end) = keyspace.range_end_in(&key, &range_end);
    let mut next_revision = keyspace.revision_in(start_revision);
    let mut member = first % members;
    let record = |action: &str, fields: serde_json::Value| {
        let mut object = json!({ "watcher": index, "action": action });
        if let (Some(object), serde_json::Value::Object(fields)) = (object.as_object_mut(), fields)
        {
            object.extend(fields);
        }
        shared.recorder.other("watch", object);
    };
    let start_fields = |member: usize, next_revision: i64| {
        json!({ "node": shared.node_name(member), "key": key, "range_end": range_end,
        "start_revision": keyspace.revision_out(next_revision), "prev_kv": prev_kv })
    };
    record("start", start_fields(member, next_revision));
    let timeout = Duration::from_millis(shared.knobs.request_timeout_ms);
    while !shared.past_deadline() {
        let opened = open(
            &shared.endpoints[member],
            &wire_key,
            &wire_range_end,
            next_revision,
            prev_kv,
            timeout,
        )
        .await;
        let error = match opened {
            Err(error) => Some(error),
            Ok((_client, mut stream)) => loop {
                let Some(left) = shared.time_left() else {
                    break None;
                };
                if rng.gen_bool(shared.knobs.watch_progress_request_probability) {
                    if let Err(error) = stream.request_progress().await {
                        break Some(format!("progress request: {error}"));
                    }
                }
                let response = match tokio::time::timeout(left, stream.message()).await {
                    Err(_deadline) => break None,
                    Ok(Err(error)) => break Some(error.to_string()),
                    Ok(Ok(None)) => break Some("watch stream closed by the server".to_string()),
                    Ok(Ok(Some(response))) => response,
                };
                match step(&response, &mut next_revision) {
                    Step::Created => {}
                    Step::Events(header_revision, events) => {
                        let header_revision = keyspace.revision_out(header_revision);
                        let events: Vec<WatchEvent> = events
                            .into_iter()
                            .map(|event| WatchEvent {
                                kv: keyspace.kv_out(&event.kv),
                                prev_kv: event.prev_kv.as_ref().map(|kv| keyspace.kv_out(kv)),
                                ..event
                            })
                            .collect();
                        shared.observe_revision(header_revision);
                        record(
                            "response",
                            json!({ "node": shared.node_name(member),
                            "header_revision": header_revision, "events": events,
                            "stream": true }),
                        );
                        if rng.gen_bool(shared.knobs.watch_reconnect_probability) {
                            break Some(String::new());
                        }
                    }
                    Step::Compacted(compact_revision) => {
                        record(
                            "compacted",
                            json!({ "node": shared.node_name(member),
                            "compact_revision": keyspace.revision_out(compact_revision) }),
                        );
                        break Some(String::new());
                    }
                    Step::Canceled(reason) => break Some(reason),
                }
            },
        };
        let Some(error) = error else {
            break;
        };
        // An empty error is a voluntary reconnect or a compaction, already recorded.
        if !error.is_empty() {
            record(
                "error",
                json!({ "node": shared.node_name(member), "error": error }),
            );
            // Do not spin on a member that refuses at once (down, or without a leader).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if shared.past_deadline() {
            break;
        }
        member = (member + 1) % members;
        record("resume", start_fields(member, next_revision));
    }
    record(
        "cancel",
        json!({ "node": shared.node_name(member),
        "next_revision": keyspace.revision_out(next_revision) }),
    );
}

/// Connects to `endpoint` and opens a watch (the client must live as long as the stream).
async fn open(
    endpoint: &str,
    key: &str,
    range_end: &str,
    start_revision: i64,
    prev_kv: bool,
    timeout: Duration,
) -> Result<(Client, WatchStream), String> {
    let opening = async {
        let mut client = ops::connect(endpoint, timeout)
            .await
            .map_err(|error| format!("connect to {endpoint}: {error}"))?;
        let mut options = WatchOptions::new()
            .with_start_revision(start_revision)
            .with_progress_notify();
        if !range_end.is_empty() {
            options = options.with_range(range_end.to_string());
        }
        if prev_kv {
            options = options.with_prev_key();
        }
        let stream = client
            .watch(key.to_string(), Some(options))
            .await
            .map_err(|error| error.to_string())?;
        Ok((client, stream))
    };
    match tokio::time::timeout(timeout, opening).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "opening the watch took over {} ms",
            timeout.as_millis()
        )),
    }
}
