//! The properties of one watcher's stream (its `start` and every `resume`), after etcd's
//! robustness tests (tests/robustness/validate/watch.go): filter, ordered, unique, atomic,
//! bookmarkable, resumable, IsCreate, prevKV, reliable, plus the compaction rules of a watch.
//!
//! A stream (the simulator's and live mode's watchers; histories recorded before watches were
//! streams hold long polls, judged alike) is a run of responses from one start revision on: an
//! events response holds every event of each of its revisions, after those already sent, and a
//! progress notification (no events) says nothing more matched up to its `header_revision`. A
//! resume opens the next stream right after the last event delivered. So a response with events
//! at `[s, e]` vouches for `[s, e]`, and a progress notification at `h` for `[s, h]`, where `s` is
//! the stream's next revision when it arrived.

use std::collections::{BTreeMap, BTreeSet};

use kvsim_model::mvcc::{Key, Revision};

use super::changes::{Change, ChangeLog, Source};
use super::records::{Action, Event, EventKind, KeyFilter, WatchRecord};
use crate::property::{Property, PropertyViolation};

/// What the stream checker needs besides the stream itself.
pub struct Context<'a> {
    pub log: &'a ChangeLog,
    /// The revisions of every compaction request that may have taken effect: a node cannot have
    /// compacted beyond the highest.
    pub compactions: BTreeSet<Revision>,
}

impl Context<'_> {
    fn compact_attempted_max(&self) -> Option<Revision> {
        self.compactions.last().copied()
    }
}

struct Stream<'a> {
    watcher: u64,
    filter: Option<KeyFilter>,
    prev_kv: bool,
    /// The start revision of the next poll, as the watcher computes it.
    next: Revision,
    last_event: Option<Revision>,
    /// (revision, key) → index of the response that delivered it.
    delivered: BTreeMap<(Revision, Key), usize>,
    /// revision → index of the response that delivered its events (atomicity).
    revision_response: BTreeMap<Revision, usize>,
    /// The highest header revision of an empty response so far, and when it was recorded.
    progress_max: Option<(Revision, u64)>,
    /// Revision ranges (inclusive) a response vouched for.
    coverage: Vec<(Revision, Revision)>,
    responses: usize,
    out: &'a mut Vec<PropertyViolation>,
}

impl Stream<'_> {
    fn report(&mut self, property: Property, t_ns: u64, message: String) {
        self.out.push(
            PropertyViolation::new(property, message)
                .with_watcher(self.watcher)
                .with_time(t_ns),
        );
    }
}

/// Checks one watcher's records (in order) and appends what it breaks to `out`.
pub fn check(
    watcher: u64,
    records: &[&WatchRecord],
    context: &Context,
    out: &mut Vec<PropertyViolation>,
) {
    let mut stream = Stream {
        watcher,
        filter: None,
        prev_kv: false,
        next: 0,
        last_event: None,
        delivered: BTreeMap::new(),
        revision_response: BTreeMap::new(),
        progress_max: None,
        coverage: Vec::new(),
        responses: 0,
        out,
    };
    for record in records {
        if stream.filter.is_none() && !matches!(record.action, Action::Open { resume: false, .. }) {
            let message = format!(
                "other record #{}: a stream must begin with a \"start\" record",
                record.index
            );
            stream.report(Property::WatchRecord, record.t_ns, message);
            return;
        }
        match &record.action {
            Action::Open {
                resume,
                filter,
                start_revision,
                prev_kv,
                ..
            } => open(
                &mut stream,
                record,
                *resume,
                filter,
                *start_revision,
                *prev_kv,
            ),
            Action::Response {
                header_revision,
                events,
                ..
            } => response(&mut stream, record, *header_revision, events, context),
            Action::Compacted {
                compact_revision, ..
            } => {
                compacted(&mut stream, record, *compact_revision, context);
            }
            Action::Error | Action::Cancel => {}
        }
    }
    reliable(&mut stream, context);
}

fn open(
    stream: &mut Stream,
    record: &WatchRecord,
    resume: bool,
    filter: &KeyFilter,
    start_revision: Revision,
    prev_kv: bool,
) {
    if !resume {
        if stream.filter.is_some() {
            let message = format!(
                "other record #{}: a second \"start\" for the same watcher",
                record.index
            );
            stream.report(Property::WatchRecord, record.t_ns, message);
        }
        stream.filter = Some(filter.clone());
        stream.prev_kv = prev_kv;
        stream.next = start_revision;
        return;
    }
    if stream.filter.as_ref() != Some(filter) || stream.prev_kv != prev_kv {
        let message = format!(
            "other record #{}: the resume watches {:?}..{:?} (prev_kv {prev_kv}), not what the stream started with",
            record.index, filter.key, filter.range_end
        );
        stream.report(Property::WatchRecord, record.t_ns, message);
    }
    if start_revision != stream.next {
        let after = match stream.last_event {
            Some(last) => format!("the last event was at revision {last}"),
            None => "no event was delivered yet".to_string(),
        };
        let message = format!(
            "resumed at revision {start_revision}, expected {} ({after})",
            stream.next
        );
        stream.report(Property::WatchResumable, record.t_ns, message);
    }
    stream.next = start_revision;
}

fn response(
    stream: &mut Stream,
    record: &WatchRecord,
    header: Revision,
    events: &[Event],
    context: &Context,
) {
    let index = stream.responses;
    stream.responses += 1;
    let poll_start = stream.next;
    let t_ns = record.t_ns;
    let Some(filter) = stream.filter.clone() else {
        return;
    };
    if events.is_empty() {
        if header >= poll_start {
            stream.coverage.push((poll_start, header));
        }
        if stream.progress_max.is_none_or(|(max, _)| header > max) {
            stream.progress_max = Some((header, t_ns));
        }
        return;
    }
    let last_before = stream.last_event;
    let mut previous_in_response: Option<Revision> = None;
    for event in events {
        let revision = event.revision();
        let key = &event.kv.key;
        if !filter.contains(key) {
            let message = format!(
                "event on key {key:?} at revision {revision} outside the watched range {:?}..{:?}",
                filter.key, filter.range_end
            );
            stream.report(Property::WatchFilter, t_ns, message);
        }
        if revision > header {
            let message = format!(
                "event at revision {revision} above its response's header revision {header}"
            );
            stream.report(Property::WatchHeader, t_ns, message);
        }
        if previous_in_response.is_some_and(|previous| revision < previous) {
            let message = format!(
                "within one response, revision {revision} follows revision {}",
                previous_in_response.unwrap_or_default()
            );
            stream.report(Property::WatchOrdered, t_ns, message);
        }
        previous_in_response = Some(revision);
        if let Some(first) = stream.delivered.get(&(revision, key.clone())) {
            let message = format!(
                "the event on {key:?} at revision {revision} was delivered again (first in response #{first}, again in #{index})"
            );
            stream.report(Property::WatchUnique, t_ns, message);
            continue;
        }
        stream.delivered.insert((revision, key.clone()), index);
        if revision < poll_start {
            let message = format!(
                "event at revision {revision} below the poll's start revision {poll_start}"
            );
            stream.report(Property::WatchResumable, t_ns, message);
        } else if last_before.is_some_and(|last| revision < last) {
            let message = format!(
                "event at revision {revision} after an event at revision {} was delivered",
                last_before.unwrap_or_default()
            );
            stream.report(Property::WatchOrdered, t_ns, message);
        }
        match stream.revision_response.get(&revision) {
            Some(&other) if other != index => {
                let message = format!(
                    "the events of revision {revision} were split between responses #{other} and #{index} (key {key:?})"
                );
                stream.report(Property::WatchAtomic, t_ns, message);
            }
            _ => {
                stream.revision_response.insert(revision, index);
            }
        }
        if let Some((progress, progress_ns)) = stream.progress_max {
            if revision <= progress {
                let message = format!(
                    "event at revision {revision} arrived after a progress notification at revision {progress} (t_ns {progress_ns}) said nothing matched up to it"
                );
                stream.report(Property::WatchBookmarkable, t_ns, message);
            }
        }
        is_create(stream, t_ns, event);
        prev_kv(stream, t_ns, event, context.log);
        prev_kv_missing(stream, t_ns, event, context.compact_attempted_max());
    }
    let last = events
        .iter()
        .map(Event::revision)
        .max()
        .unwrap_or(poll_start);
    if last >= poll_start {
        stream.coverage.push((poll_start, last));
    }
    stream.last_event = stream.last_event.max(Some(last));
    // The watcher resumes after the last event of the response (run_watcher).
    stream.next = events
        .last()
        .map_or(poll_start, |event| event.revision() + 1);
}

fn compacted(
    stream: &mut Stream,
    record: &WatchRecord,
    compact_revision: Revision,
    context: &Context,
) {
    let start = stream.next;
    // etcd refuses a watch only when its start revision is below the compact revision.
    if compact_revision <= start {
        let message = format!(
            "the node reported start revision {start} compacted at revision {compact_revision}; only revisions below {compact_revision} are compacted"
        );
        stream.report(Property::WatchCompacted, record.t_ns, message);
    }
    if context
        .compact_attempted_max()
        .is_none_or(|max| compact_revision > max)
    {
        let attempted = match context.compact_attempted_max() {
            Some(max) => format!("the highest compaction requested was revision {max}"),
            None => "no compaction was requested".to_string(),
        };
        let message = format!(
            "the node reported a compaction at revision {compact_revision}, but {attempted}"
        );
        stream.report(Property::WatchCompacted, record.t_ns, message);
    }
    // What run_watcher does: restart at the compact revision, or just past it if it was refused.
    stream.next = if start >= compact_revision {
        compact_revision + 1
    } else {
        compact_revision
    };
}

/// IsCreate: a put creates its key (version 1) exactly when its create revision is its own.
fn is_create(stream: &mut Stream, t_ns: u64, event: &Event) {
    if event.kind != EventKind::Put {
        return;
    }
    let (Some(version), Some(create_revision)) = (event.kv.version, event.kv.create_revision)
    else {
        return;
    };
    let revision = event.revision();
    if (version == 1) != (create_revision == revision) || create_revision > revision || version < 1
    {
        let message = format!(
            "put of {:?} at revision {revision} has version {version} and create_revision {create_revision}",
            event.kv.key
        );
        stream.report(Property::WatchIsCreate, t_ns, message);
    }
}

/// prevKV: the previous key-value is the key's state just before the event's revision.
fn prev_kv(stream: &mut Stream, t_ns: u64, event: &Event, log: &ChangeLog) {
    let Some(previous) = &event.prev_kv else {
        return;
    };
    let key = &event.kv.key;
    let revision = event.revision();
    // A prev_kv the watch did not ask for is harmless extra data; only its content is judged.
    let mut problems = Vec::new();
    if &previous.key != key {
        problems.push(format!("it names key {:?}", previous.key));
    }
    if previous.mod_revision >= revision {
        problems.push(format!(
            "its mod_revision {} is not below the event's",
            previous.mod_revision
        ));
    }
    if event.kind == EventKind::Put {
        if event.kv.version == Some(1) {
            problems.push("the put created the key, which had no previous value".to_string());
        } else {
            if let (Some(version), Some(previous_version)) = (event.kv.version, previous.version) {
                if previous_version != version - 1 {
                    problems.push(format!(
                        "its version {previous_version} is not {}",
                        version - 1
                    ));
                }
            }
            if let (Some(create), Some(previous_create)) =
                (event.kv.create_revision, previous.create_revision)
            {
                if previous_create != create {
                    problems.push(format!(
                        "its create_revision {previous_create} differs from the put's {create}"
                    ));
                }
            }
        }
    }
    let claimed = Change::of_event(
        EventKind::Put,
        previous,
        Source::Watch {
            watcher: stream.watcher,
            t_ns,
        },
    );
    if let Some(known) = log.get(key, previous.mod_revision) {
        if let Some(what) = known.disagreement(&claimed) {
            problems.push(format!(
                "{} says revision {} was: {what}",
                known.source.describe(),
                previous.mod_revision
            ));
        }
    }
    if let Some((between, change)) = log.between(key, previous.mod_revision, revision).next() {
        problems.push(format!(
            "{} shows the key changed in between, at revision {between}",
            change.source.describe()
        ));
    }
    if !problems.is_empty() {
        let message = format!(
            "the prev_kv of the {:?} of {key:?} at revision {revision} (prev mod_revision {}) is wrong: {}",
            event.kind,
            previous.mod_revision,
            problems.join("; ")
        );
        stream.report(Property::WatchPrevKv, t_ns, message);
    }
}

/// prevKV asked for must be there when the key existed just before and revision − 1 cannot have
/// been compacted yet (etcd omits it only when it can no longer read that revision).
fn prev_kv_missing(
    stream: &mut Stream,
    t_ns: u64,
    event: &Event,
    compact_attempted_max: Option<Revision>,
) {
    if !stream.prev_kv || event.prev_kv.is_some() {
        return;
    }
    let revision = event.revision();
    let existed = match event.kind {
        EventKind::Delete => true,
        EventKind::Put => event.kv.version.is_some_and(|version| version > 1),
    };
    if existed && compact_attempted_max.is_none_or(|compacted| revision > compacted) {
        let message = format!(
            "the {:?} of {:?} at revision {revision} has no prev_kv although the watch asked for it and the key existed at revision {}",
            event.kind,
            event.kv.key,
            revision - 1
        );
        stream.report(Property::WatchPrevKv, t_ns, message);
    }
}

/// reliable: every change the history proves on a watched key, inside a revision range the stream
/// covered, was delivered.
///
/// Except a delete at a compacted revision: etcd's compaction at revision c drops every tombstone
/// at or below c (mvcc keyIndex.compact), so a watch that starts at c — the oldest revision still
/// served, where run_watcher restarts after `compacted` — cannot see the deletes of c.
fn reliable(stream: &mut Stream, context: &Context) {
    let log = context.log;
    let Some(filter) = stream.filter.clone() else {
        return;
    };
    let mut coverage = std::mem::take(&mut stream.coverage);
    coverage.sort_unstable();
    let mut merged: Vec<(Revision, Revision)> = Vec::new();
    for (low, high) in coverage {
        match merged.last_mut() {
            Some((_, last_high)) if low <= last_high.saturating_add(1) => {
                *last_high = (*last_high).max(high)
            }
            _ => merged.push((low, high)),
        }
    }
    let mut missing = BTreeSet::new();
    for (key, changes) in &log.by_key {
        if !filter.contains(key) {
            continue;
        }
        for &(low, high) in &merged {
            for (revision, change) in changes.range(low..=high) {
                let compacted_tombstone =
                    change.kind == EventKind::Delete && context.compactions.contains(revision);
                if !compacted_tombstone && !stream.delivered.contains_key(&(*revision, key.clone()))
                {
                    missing.insert((
                        *revision,
                        key.clone(),
                        change.kind,
                        change.source,
                        (low, high),
                    ));
                }
            }
        }
    }
    for (revision, key, kind, source, (low, high)) in missing {
        // A revision delivered without all its changes is an atomicity failure; the poll after it
        // starts past that revision, so the rest can never arrive.
        let (property, what) = match stream.revision_response.get(&revision) {
            Some(index) => (
                Property::WatchAtomic,
                format!("response #{index} delivered revision {revision} without"),
            ),
            None => (Property::WatchReliable, "missing event:".to_string()),
        };
        let message = format!(
            "{what} the {kind:?} of {key:?} at revision {revision} ({}), inside revisions {low}..={high} the stream covered",
            source.describe()
        );
        let mut violation = PropertyViolation::new(property, message).with_watcher(stream.watcher);
        if let Some(op) = source.op() {
            violation = violation.with_ops([op]);
        }
        if let Source::Watch { t_ns, .. } = source {
            violation = violation.with_time(t_ns);
        }
        stream.out.push(violation);
    }
}
