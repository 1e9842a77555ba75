//! Watches against real etcd: how one etcd watch response reads as the simulator's watch records
//! ([`step`]), and a one-shot watch from a past revision for the conformance test ([`collect`]).

use super::ops;
use etcd_client::{Client, EventType, WatchOptions, WatchResponse};
use kvsim_sim::client::WatchEvent;
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
