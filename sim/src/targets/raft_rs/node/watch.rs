//! Watch streams served from the local store on any member (etcd serves watches from every member),
//! after etcd's `watchableStore` (server/storage/mvcc/watchable_store.go):
//!
//! - A watcher created at a revision the store already has (a watch from the past, a resumption)
//!   is **unsynced**: the sync loop catches it up every [`SYNC_INTERVAL_MS`] (etcd's
//!   `watchResyncInterval`, 100 ms), at most [`SYNC_BATCH_REVISIONS`] revisions at a time (etcd's
//!   `watchBatchMaxRevs`), and moves it to the synced group once it has every event up to the
//!   store's revision. One created at the next revision (or `start_revision <= 0`) is synced at
//!   once.
//! - A **synced** watcher is sent each apply round's events as they are applied.
//! - A progress notification (asked for by `progress_notify_ms`, or requested with
//!   `WatchRequest::Progress`) goes to a synced watcher only: an unsynced one has not been sent
//!   every event up to the store's revision, so a notification at that revision would vouch for
//!   events it has not had. A requested one waits until the watcher is synced (etcd #15220, fixed
//!   in 3.5.8 / 3.4.25; the planted bug `watch_progress_unsynced` is the bug).
//! - An unsynced watcher whose next revision was compacted away is canceled with the compact
//!   revision. So is a synced one whose events were compacted before its task looked (a snapshot
//!   install replaces the store; etcd's `Restore` makes every watcher unsynced), which a watcher
//!   then resumes from.
//! - A member that knows no leader refuses the watch (etcd's `WithRequireLeader`:
//!   `ErrGRPCNoLeader`), and ends a stream after [`NO_LEADER_TIMEOUTS`] election timeouts
//!   without one (etcd's `monitorLeader`, `maxNoLeaderCnt`).
//!
//! `start_revision <= 0` means "from now": the first revision after the store's current one.

use super::lock;
use super::server::ServerContext;
use crate::proto::Event;
use crate::rpc::{ServerWatchStream, WatchCreate, WatchRequest, WatchResponse};
use madsim::net::Endpoint;
use madsim::rand::Rng;
use madsim::time::{sleep_until, Instant};
use std::sync::Arc;
use std::time::Duration;

/// How often the sync loop catches unsynced watchers up (etcd's `watchResyncInterval`).
pub(crate) const SYNC_INTERVAL_MS: u64 = 100;
/// The most revisions one catch-up sends a watcher (etcd's `watchBatchMaxRevs`).
pub(crate) const SYNC_BATCH_REVISIONS: i64 = 1000;
/// Election timeouts without a leader after which a member ends its watch streams (etcd's
/// `maxNoLeaderCnt`).
pub(crate) const NO_LEADER_TIMEOUTS: u64 = 3;
/// How often a planted watch bug fires on a response where it can.
const WATCH_BUG_PROBABILITY: f64 = 0.25;

/// Accepts watch streams on the member's client endpoint, one task each, until the member dies.
pub(crate) async fn serve_streams(endpoint: Arc<Endpoint>, ctx: ServerContext) {
    while let Ok(stream) = ServerWatchStream::accept(&endpoint).await {
        madsim::task::spawn(serve_stream(ctx.clone(), stream));
    }
}

/// One watcher: where its stream stands.
struct Watcher {
    create: WatchCreate,
    /// The next revision to send.
    next: i64,
    synced: bool,
    /// A requested progress notification not sent yet.
    progress_requested: bool,
    /// When the next `progress_notify` notification is due, if the watch asked for them.
    progress_due: Option<Instant>,
    /// When the next catch-up of an unsynced watcher runs.
    sync_due: Instant,
    no_leader_since: Option<Instant>,
}

async fn serve_stream(ctx: ServerContext, mut stream: ServerWatchStream) {
    let Ok(WatchRequest::Create(create)) = stream.recv().await else {
        return;
    };
    let now = Instant::now();
    let created = {
        let shared = lock(&ctx.shared);
        let revision = shared.store.revision();
        if shared.status.leader.is_none() {
            Err(WatchResponse::NoLeader)
        } else if create.start_revision > 0
            && create.start_revision < shared.store.compact_revision()
            && !ctx.bugs.watch_compacted_skip
        {
            Err(WatchResponse::Compacted {
                compact_revision: shared.store.compact_revision(),
            })
        } else {
            let next = if create.start_revision <= 0 {
                revision + 1
            } else {
                // Planted bug `watch_compacted_skip`: serve from the oldest revision kept instead
                // of refusing, so the events between the start and the compaction are skipped.
                create.start_revision.max(shared.store.compact_revision())
            };
            Ok((next, revision))
        }
    };
    let (next, header_revision) = match created {
        Ok(created) => created,
        Err(refusal) => {
            let _ = stream.send(refusal).await;
            return;
        }
    };
    if stream
        .send(WatchResponse::Created { header_revision })
        .await
        .is_err()
    {
        return;
    }
    let first_sync_ms = madsim::rand::thread_rng().gen_range(0..SYNC_INTERVAL_MS);
    let mut watcher = Watcher {
        next,
        synced: next > header_revision,
        progress_requested: false,
        progress_due: (create.progress_notify_ms > 0)
            .then(|| now + Duration::from_millis(create.progress_notify_ms)),
        sync_due: now + Duration::from_millis(first_sync_ms),
        no_leader_since: None,
        create,
    };
    let election_timeout = Duration::from_millis(ctx.election_timeout_ms);
    let no_leader_limit = election_timeout * NO_LEADER_TIMEOUTS as u32;
    loop {
        // Register for the next apply round before looking, so an apply in between is not missed.
        let mut applied = std::pin::pin!(ctx.apply_notify.notified());
        applied.as_mut().enable();
        let (responses, end) = watcher.serve(&ctx, no_leader_limit);
        for response in responses {
            if stream.send(response).await.is_err() {
                return;
            }
        }
        if end {
            return;
        }
        let wake_at = watcher.wake_at(no_leader_limit, election_timeout);
        tokio::select! {
            biased;
            request = stream.recv() => match request {
                Ok(WatchRequest::Progress) => watcher.progress_requested = true,
                // One watch per stream: a second create is ignored.
                Ok(WatchRequest::Create(_)) => {}
                Err(_) => return,
            },
            _ = applied => {}
            _ = sleep_until(wake_at) => {}
        }
    }
}

impl Watcher {
    /// What to send now, and whether the stream ends after it.
    fn serve(
        &mut self,
        ctx: &ServerContext,
        no_leader_limit: Duration,
    ) -> (Vec<WatchResponse>, bool) {
        let now = Instant::now();
        let shared = lock(&ctx.shared);
        let store = &shared.store;
        let revision = store.revision();
        if shared.status.leader.is_some() {
            self.no_leader_since = None;
        } else if now.duration_since(*self.no_leader_since.get_or_insert(now)) >= no_leader_limit {
            return (vec![WatchResponse::NoLeader], true);
        }
        let mut out = Vec::new();
        let mut progress_unsynced = false;
        if self.progress_requested && !self.synced && ctx.bugs.watch_progress_unsynced {
            // Planted bug `watch_progress_unsynced` (etcd #15220): the requested progress
            // notification is answered at the store's revision although this watcher has not
            // been sent every event up to it.
            self.progress_requested = false;
            progress_unsynced = true;
            out.push(WatchResponse::Progress {
                header_revision: revision,
            });
        }
        let upto = if self.synced {
            Some(revision)
        } else if now >= self.sync_due {
            self.sync_due = now + Duration::from_millis(SYNC_INTERVAL_MS);
            Some(revision.min(self.next + SYNC_BATCH_REVISIONS - 1))
        } else {
            None
        };
        if let Some(upto) = upto.filter(|upto| *upto >= self.next) {
            let c = &self.create;
            match store.events_since(self.next, &c.key, &c.range_end, c.prev_kv) {
                Err(compact_revision) if ctx.bugs.watch_compacted_skip => {
                    // Planted bug `watch_compacted_skip`, as at creation.
                    self.next = compact_revision;
                    return (out, false);
                }
                Err(compact_revision) => {
                    out.push(WatchResponse::Compacted { compact_revision });
                    return (out, true);
                }
                Ok(mut events) => {
                    events.retain(|e| e.kv.mod_revision <= upto);
                    let events = self.planted_event_bugs(ctx, store, events);
                    if !events.is_empty() {
                        out.push(WatchResponse::Events {
                            header_revision: revision,
                            events,
                        });
                        self.rearm_progress(now);
                    }
                    self.next = upto + 1;
                }
            }
        }
        if self.next > revision {
            self.synced = true;
        }
        let notify_due = self.progress_due.is_some_and(|due| now >= due);
        if self.synced && (notify_due || self.progress_requested) && !progress_unsynced {
            self.progress_requested = false;
            let header_revision = if ctx.bugs.watch_regress && self.next > 4 && fire() {
                // Planted bug `watch_regress`: a progress notification older than events
                // already sent.
                self.next - 4
            } else {
                revision
            };
            out.push(WatchResponse::Progress { header_revision });
        }
        if notify_due {
            self.rearm_progress(now);
        }
        (out, false)
    }

    /// Restarts the `progress_notify` interval at `now` (it counts from the last message sent), if
    /// the watch asked for notifications.
    fn rearm_progress(&mut self, now: Instant) {
        if let Some(due) = self.progress_due.as_mut() {
            *due = now + Duration::from_millis(self.create.progress_notify_ms);
        }
    }

    /// The planted bugs that change the events of one response.
    fn planted_event_bugs(
        &self,
        ctx: &ServerContext,
        store: &super::super::store::Store,
        events: Vec<Event>,
    ) -> Vec<Event> {
        if events.is_empty() {
            return events;
        }
        let c = &self.create;
        if ctx.bugs.watch_duplicate && self.next > 2 && fire() {
            // Planted bug `watch_duplicate`: the revision before the first one due comes again.
            let upto = events.last().map_or(0, |e| e.kv.mod_revision);
            return store
                .events_since(self.next - 1, &c.key, &c.range_end, c.prev_kv)
                .map(|mut again| {
                    again.retain(|e| e.kv.mod_revision <= upto);
                    again
                })
                .unwrap_or(events);
        }
        if ctx.bugs.watch_gap && self.next > 1 && fire() {
            return skip_first_revision(events);
        }
        events
    }

    /// When to look again if no apply round and no request comes first.
    /// etcd's `monitorLeader` looks once per election timeout.
    fn wake_at(&self, no_leader_limit: Duration, election_timeout: Duration) -> Instant {
        let sync = (!self.synced).then_some(self.sync_due);
        let leader = self.no_leader_since.map(|since| since + no_leader_limit);
        let monitor = Some(Instant::now() + election_timeout);
        [sync, self.progress_due, leader, monitor]
            .into_iter()
            .flatten()
            .min()
            .expect("the leader monitor always wakes")
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
