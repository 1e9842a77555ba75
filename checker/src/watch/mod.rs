//! The watch checker: judges every watcher's stream against the changes the whole history proves.
//!
//! Properties (the `property` of each [`PropertyViolation`]):
//! - `watch.record`: a watch record without the expected shape, or a stream out of order;
//! - `watch.filter`: an event on a key outside the watched range;
//! - `watch.ordered`: revisions went backwards within a stream;
//! - `watch.unique`: the same (revision, key) event delivered twice;
//! - `watch.atomic`: the events of one revision split between responses;
//! - `watch.bookmarkable`: an event at or below a revision a progress notification already vouched for;
//! - `watch.resumable`: a resume that does not continue right after the last event, or an event
//!   below the requested start revision;
//! - `watch.is_create`: a put's version 1 and create_revision == mod_revision disagree;
//! - `watch.prev_kv`: a prev_kv that is not the key's state just before the event;
//! - `watch.reliable`: an event missing from a revision range the stream covered;
//! - `watch.agreement`: a watch event contradicts another watcher or an operation's response;
//! - `watch.compacted`: a compaction reported for a revision that was not compacted;
//! - `watch.header`: an event above its response's header revision;
//! - `watch.header_regress`: a node's header revision went back in real time without a restart.
//!
//! See [`stream`] for the per-stream rules and [`changes`] for how the history's changes are
//! reconstructed.

pub mod changes;
mod nodes;
pub mod records;
mod stream;

use std::collections::BTreeSet;

use kvsim_model::mvcc::{Op, Ret, Revision};

use crate::history::{History, Outcome};
use crate::property::{Property, PropertyViolation};
use changes::ChangeLog;

/// Every watch property the history breaks (empty when the watch streams are sound).
pub fn check_watches(history: &History<Op, Ret>) -> Vec<PropertyViolation> {
    let (records, malformed) = records::parse(&history.other);
    let mut out: Vec<PropertyViolation> = malformed
        .into_iter()
        .map(|message| PropertyViolation::new(Property::WatchRecord, message))
        .collect();
    let log = ChangeLog::from_history(history, &records);
    for conflict in log
        .conflicts
        .iter()
        .filter(|c| c.first.is_watch() || c.second.is_watch())
    {
        let message = format!(
            "{} and {} disagree on {:?} at revision {}: {}",
            conflict.first.describe(),
            conflict.second.describe(),
            conflict.key,
            conflict.revision,
            conflict.what
        );
        let mut violation = PropertyViolation::new(Property::WatchAgreement, message)
            .with_ops(conflict.first.op().into_iter().chain(conflict.second.op()));
        if let changes::Source::Watch { watcher, t_ns } = conflict.second {
            violation = violation.with_watcher(watcher).with_time(t_ns);
        }
        out.push(violation);
    }
    let context = stream::Context {
        log: &log,
        compactions: compactions(history),
    };
    for (watcher, stream_records) in records::by_watcher(&records) {
        stream::check(watcher, &stream_records, &context, &mut out);
    }
    nodes::check_header_regress(&records, &history.faults, &mut out);
    out
}

/// The revisions of every compaction that may have taken effect.
fn compactions(history: &History<Op, Ret>) -> BTreeSet<Revision> {
    history
        .ops
        .iter()
        .filter(|op| !matches!(op.outcome, Outcome::Fail { .. }))
        .filter_map(|op| match op.input {
            Op::Compact { revision, .. } => Some(revision),
            _ => None,
        })
        .collect()
}
