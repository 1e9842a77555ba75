//! Watch polls served from the local store on any member (etcd serves watches from every member). A member
//! that knows no leader answers `NotLeader`, as etcd does for watches opened with `WithRequireLeader`.
//!
//! `start_revision <= 0` means "from now": the first revision after the store's current one.

use super::lock;
use super::server::ServerContext;
use crate::proto::Event;
use crate::rpc::{WatchPoll, WatchReply};
use madsim::rand::Rng;
use std::time::Duration;

/// How often a planted watch bug fires on a poll where it can.
const WATCH_BUG_PROBABILITY: f64 = 0.25;

pub(crate) async fn handle_poll(ctx: &ServerContext, poll: WatchPoll) -> WatchReply {
    let deadline = madsim::time::Instant::now() + Duration::from_millis(poll.wait_ms);
    let mut start_revision = poll.start_revision;
    loop {
        // Register for the next apply round before looking, so an apply in between is not missed.
        let mut applied = std::pin::pin!(ctx.apply_notify.notified());
        applied.as_mut().enable();
        let reply = {
            let shared = lock(&ctx.shared);
            if shared.status.leader.is_none() {
                return WatchReply::NotLeader { leader: None };
            }
            if start_revision <= 0 {
                start_revision = shared.store.revision() + 1;
            }
            let header_revision = shared.store.revision();
            match shared.store.events_since(
                start_revision,
                &poll.key,
                &poll.range_end,
                poll.prev_kv,
            ) {
                Err(compact_revision) if ctx.bugs.watch_compacted_skip => {
                    // Planted bug: serve the watch from the oldest revision still kept instead of
                    // refusing it, so the events between its start and the compaction are
                    // silently skipped.
                    start_revision = compact_revision;
                    continue;
                }
                Err(compact_revision) => {
                    return WatchReply::Compacted { compact_revision };
                }
                Ok(events) if !events.is_empty() => {
                    let duplicate = ctx.bugs.watch_duplicate && start_revision > 2 && fire();
                    let events = if duplicate {
                        // Planted bug: deliver the previous revision again.
                        shared
                            .store
                            .events_since(
                                start_revision - 1,
                                &poll.key,
                                &poll.range_end,
                                poll.prev_kv,
                            )
                            .unwrap_or(events)
                    } else if ctx.bugs.watch_gap && start_revision > 1 && fire() {
                        skip_first_revision(events)
                    } else {
                        events
                    };
                    Some(WatchReply::Events {
                        header_revision,
                        events,
                    })
                }
                Ok(events) if madsim::time::Instant::now() >= deadline => {
                    let header_revision = if ctx.bugs.watch_regress && start_revision > 3 && fire()
                    {
                        // Planted bug: a progress notification older than what was already seen.
                        start_revision - 3
                    } else {
                        header_revision
                    };
                    Some(WatchReply::Events {
                        header_revision,
                        events,
                    })
                }
                Ok(_) => None,
            }
        };
        if let Some(reply) = reply {
            return reply;
        }
        let now = madsim::time::Instant::now();
        // Wake on the next apply round or at the deadline, whichever is first; either way look again.
        let _ = madsim::time::timeout(deadline.saturating_duration_since(now), applied).await;
    }
}

fn fire() -> bool {
    madsim::rand::thread_rng().gen_bool(WATCH_BUG_PROBABILITY)
}

/// Planted bug `watch_gap`: drop every event of the first revision.
fn skip_first_revision(events: Vec<Event>) -> Vec<Event> {
    let Some(first) = events.first().map(|e| e.kv.mod_revision) else {
        return events;
    };
    events
        .into_iter()
        .filter(|e| e.kv.mod_revision != first)
        .collect()
}
