//! The committed changes a history proves, per key and revision.
//!
//! No single source sees every change, so the log is the union of:
//! - acknowledged writes: a put, a delete that deleted something, or a transaction branch that
//!   wrote — their response header names the revision they created (etcd bumps the main revision
//!   once per write transaction, so every key such a request changed carries that revision);
//! - key-values read back (ranges, `prev_kv` of puts and deletes): a kv with `mod_revision` m
//!   proves a put of that key at m with those fields;
//! - every watcher's events.
//!
//! Two sources that disagree on the same (revision, key) are a [`Conflict`]: at most one of them
//! tells the truth.

use std::collections::BTreeMap;

use kvsim_model::mvcc::{
    for_each_shown_kv, DeleteRangeRequest, DeleteRangeResponse, Key, KeyValue, LeaseId, Op,
    PutRequest, PutResponse, RequestOp, Response, ResponseOp, Ret, Revision, Shown, TxnRequest,
    TxnResponse, Value,
};

use super::records::{Action, EventKind, EventKv, WatchRecord};
use crate::history::{History, OpId};

/// Who told us about a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The response to write operation `OpId`.
    Write(OpId),
    /// A key-value that operation `OpId` read back.
    Read(OpId),
    /// An event in watcher `watcher`'s response recorded at `t_ns`.
    Watch { watcher: u64, t_ns: u64 },
}

impl Source {
    pub fn op(&self) -> Option<OpId> {
        match self {
            Source::Write(id) | Source::Read(id) => Some(*id),
            Source::Watch { .. } => None,
        }
    }

    pub fn is_watch(&self) -> bool {
        matches!(self, Source::Watch { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Write(id) => format!("write op {id}"),
            Source::Read(id) => format!("a read by op {id}"),
            Source::Watch { watcher, t_ns } => format!("watcher {watcher} at t_ns {t_ns}"),
        }
    }
}

/// One key's change at one revision. Fields a source did not know are `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: EventKind,
    pub value: Option<Value>,
    pub create_revision: Option<Revision>,
    pub version: Option<i64>,
    pub lease: Option<LeaseId>,
    /// The first source that proved it.
    pub source: Source,
}

impl Change {
    pub fn delete(source: Source) -> Self {
        Change {
            kind: EventKind::Delete,
            value: None,
            create_revision: None,
            version: None,
            lease: None,
            source,
        }
    }

    /// The put a key-value read back (or carried by an event) proves; `value_known` is false for
    /// `keys_only` reads, whose values are empty.
    pub fn put_of(kv: &KeyValue, value_known: bool, source: Source) -> Self {
        Change {
            kind: EventKind::Put,
            value: value_known.then(|| kv.value.clone()),
            create_revision: Some(kv.create_revision),
            version: Some(kv.version),
            lease: Some(kv.lease),
            source,
        }
    }

    /// The change a watch event describes (a delete's kv carries only key and revision).
    pub fn of_event(kind: EventKind, kv: &EventKv, source: Source) -> Self {
        match kind {
            EventKind::Delete => Change::delete(source),
            EventKind::Put => Change {
                kind,
                value: kv.value.clone(),
                create_revision: kv.create_revision,
                version: kv.version,
                lease: kv.lease,
                source,
            },
        }
    }

    /// Where `self` and `other` contradict each other (fields both know and that differ).
    pub fn disagreement(&self, other: &Change) -> Option<String> {
        if self.kind != other.kind {
            return Some(format!("{:?} vs {:?}", self.kind, other.kind));
        }
        fn differ<T: PartialEq + std::fmt::Debug>(
            name: &str,
            a: &Option<T>,
            b: &Option<T>,
        ) -> Option<String> {
            match (a, b) {
                (Some(a), Some(b)) if a != b => Some(format!("{name} {a:?} vs {b:?}")),
                _ => None,
            }
        }
        differ("value", &self.value, &other.value)
            .or_else(|| {
                differ(
                    "create_revision",
                    &self.create_revision,
                    &other.create_revision,
                )
            })
            .or_else(|| differ("version", &self.version, &other.version))
            .or_else(|| differ("lease", &self.lease, &other.lease))
    }

    fn fill_from(&mut self, other: &Change) {
        fn fill<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        fill(&mut self.value, &other.value);
        fill(&mut self.create_revision, &other.create_revision);
        fill(&mut self.version, &other.version);
        fill(&mut self.lease, &other.lease);
    }
}

/// Two sources that describe the same (revision, key) differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub revision: Revision,
    pub key: Key,
    pub first: Source,
    pub second: Source,
    pub what: String,
}

/// What an acknowledged write did: the revision it created and the keys it changed, as far as its
/// request and response tell (`keys_complete` is false for a range delete without `prev_kv`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteEffect {
    pub revision: Revision,
    pub changes: Vec<(Key, Change)>,
    pub keys_complete: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ChangeLog {
    /// key → revision → change.
    pub by_key: BTreeMap<Key, BTreeMap<Revision, Change>>,
    pub conflicts: Vec<Conflict>,
}

impl ChangeLog {
    /// Everything the history proves: writes, reads, then watch events.
    pub fn from_history(history: &History<Op, Ret>, watch_records: &[WatchRecord]) -> Self {
        let mut log = ChangeLog::default();
        for (op, response) in history.answered() {
            if let Some(effect) = write_effect(&op.input, response, op.id) {
                for (key, change) in effect.changes {
                    log.insert(effect.revision, key, change);
                }
            }
            for_each_shown_kv(
                &op.input,
                response,
                Shown::Anywhere,
                &mut |kv, keys_only| {
                    log.insert(
                        kv.mod_revision,
                        kv.key.clone(),
                        Change::put_of(kv, !keys_only, Source::Read(op.id)),
                    );
                },
            );
        }
        for record in watch_records {
            if let Action::Response { events, .. } = &record.action {
                let source = Source::Watch {
                    watcher: record.watcher,
                    t_ns: record.t_ns,
                };
                for event in events {
                    log.insert(
                        event.revision(),
                        event.kv.key.clone(),
                        Change::of_event(event.kind, &event.kv, source),
                    );
                }
            }
        }
        log
    }

    /// Adds what `change.source` proves; a contradiction with an earlier source becomes a conflict.
    pub fn insert(&mut self, revision: Revision, key: Key, change: Change) {
        let changes = self.by_key.entry(key.clone()).or_default();
        match changes.get_mut(&revision) {
            None => {
                changes.insert(revision, change);
            }
            Some(known) => match known.disagreement(&change) {
                Some(what) => self.conflicts.push(Conflict {
                    revision,
                    key,
                    first: known.source,
                    second: change.source,
                    what,
                }),
                None => known.fill_from(&change),
            },
        }
    }

    pub fn get(&self, key: &str, revision: Revision) -> Option<&Change> {
        self.by_key.get(key)?.get(&revision)
    }

    /// The known changes of `key` strictly between `after` and `before`.
    pub fn between(
        &self,
        key: &str,
        after: Revision,
        before: Revision,
    ) -> impl Iterator<Item = (&Revision, &Change)> {
        let range = if after.saturating_add(1) < before {
            Some((after + 1)..before)
        } else {
            None
        };
        self.by_key
            .get(key)
            .into_iter()
            .flat_map(move |changes| range.clone().into_iter().flat_map(|r| changes.range(r)))
    }
}

/// The changes a successful write made, or `None` if it changed nothing (a delete of nothing, a
/// transaction branch without writes) or is not a write.
pub fn write_effect(op: &Op, response: &Response, id: OpId) -> Option<WriteEffect> {
    let source = Source::Write(id);
    let mut changes = Vec::new();
    let mut keys_complete = true;
    let revision = match (op, response) {
        (Op::Put(put), Response::Put(reply)) => {
            changes.push(put_change(put, reply, source));
            reply.header.revision
        }
        (Op::DeleteRange(delete), Response::DeleteRange(reply)) => {
            keys_complete &= delete_changes(delete, reply, source, &mut changes);
            reply.header.revision
        }
        (Op::Txn(txn), Response::Txn(reply)) => {
            keys_complete &= txn_changes(txn, reply, source, &mut changes);
            reply.header.revision
        }
        _ => return None,
    };
    if changes.is_empty() && keys_complete {
        return None;
    }
    Some(WriteEffect {
        revision,
        changes,
        keys_complete,
    })
}

fn put_change(put: &PutRequest, reply: &PutResponse, source: Source) -> (Key, Change) {
    let previous = reply.prev_kv.as_ref();
    let value = if put.ignore_value {
        previous.map(|kv| kv.value.clone())
    } else {
        Some(put.value.clone())
    };
    let lease = if put.ignore_lease {
        previous.map(|kv| kv.lease)
    } else {
        Some(put.lease)
    };
    // A put keeps the create revision of a live key; prev_kv (when asked for) tells which.
    let (create_revision, version) = match (put.prev_kv, previous) {
        (true, Some(kv)) => (Some(kv.create_revision), Some(kv.version + 1)),
        (true, None) => (Some(reply.header.revision), Some(1)),
        (false, _) => (None, None),
    };
    (
        put.key.clone(),
        Change {
            kind: EventKind::Put,
            value,
            create_revision,
            version,
            lease,
            source,
        },
    )
}

/// Returns whether the deleted keys are all known.
fn delete_changes(
    delete: &DeleteRangeRequest,
    reply: &DeleteRangeResponse,
    source: Source,
    changes: &mut Vec<(Key, Change)>,
) -> bool {
    if reply.deleted <= 0 {
        return true;
    }
    if !reply.prev_kvs.is_empty() {
        changes.extend(
            reply
                .prev_kvs
                .iter()
                .map(|kv| (kv.key.clone(), Change::delete(source))),
        );
        return reply.prev_kvs.len() as i64 == reply.deleted;
    }
    if delete.range_end.is_empty() {
        changes.push((delete.key.clone(), Change::delete(source)));
        return true;
    }
    false
}

fn txn_changes(
    txn: &TxnRequest,
    reply: &TxnResponse,
    source: Source,
    changes: &mut Vec<(Key, Change)>,
) -> bool {
    let branch = if reply.succeeded {
        &txn.success
    } else {
        &txn.failure
    };
    let mut complete = true;
    for (request, response) in branch.iter().zip(&reply.responses) {
        match (request, response) {
            (RequestOp::Put(put), ResponseOp::Put(reply)) => {
                changes.push(put_change(put, reply, source))
            }
            (RequestOp::DeleteRange(delete), ResponseOp::DeleteRange(reply)) => {
                complete &= delete_changes(delete, reply, source, changes)
            }
            (RequestOp::Txn(inner), ResponseOp::Txn(reply)) => {
                complete &= txn_changes(inner, reply, source, changes)
            }
            _ => {}
        }
    }
    complete
}

/// Every key-value `op` read back, with whether its value is real (not emptied by `keys_only`).
#[cfg(test)]
mod tests {
    use super::*;
    use kvsim_model::mvcc::ResponseHeader;

    fn header(revision: Revision) -> ResponseHeader {
        ResponseHeader { revision }
    }

    #[test]
    fn put_with_prev_kv_knows_create_revision_and_version() {
        let put = PutRequest {
            key: "a".into(),
            value: "v2".into(),
            prev_kv: true,
            ..Default::default()
        };
        let previous = KeyValue {
            key: "a".into(),
            value: "v1".into(),
            create_revision: 3,
            mod_revision: 4,
            version: 2,
            lease: 0,
        };
        let reply = PutResponse {
            header: header(9),
            prev_kv: Some(previous),
        };
        let effect = write_effect(&Op::Put(put), &Response::Put(reply), 5).unwrap();
        assert_eq!(effect.revision, 9);
        let (key, change) = &effect.changes[0];
        assert_eq!(key, "a");
        assert_eq!((change.create_revision, change.version), (Some(3), Some(3)));
        assert_eq!(change.value.as_deref(), Some("v2"));
    }

    #[test]
    fn deletes_of_nothing_and_unknown_range_deletes() {
        let single = DeleteRangeRequest {
            key: "a".into(),
            ..Default::default()
        };
        let nothing = DeleteRangeResponse {
            header: header(4),
            deleted: 0,
            prev_kvs: vec![],
        };
        assert_eq!(
            write_effect(
                &Op::DeleteRange(single.clone()),
                &Response::DeleteRange(nothing),
                1
            ),
            None
        );
        let one = DeleteRangeResponse {
            header: header(5),
            deleted: 1,
            prev_kvs: vec![],
        };
        let effect = write_effect(
            &Op::DeleteRange(single),
            &Response::DeleteRange(one.clone()),
            1,
        )
        .unwrap();
        assert!(effect.keys_complete && effect.changes.len() == 1);
        let range = DeleteRangeRequest {
            key: "a".into(),
            range_end: "b".into(),
            prev_kv: false,
        };
        let effect = write_effect(&Op::DeleteRange(range), &Response::DeleteRange(one), 1).unwrap();
        assert!(!effect.keys_complete && effect.changes.is_empty());
    }

    #[test]
    fn conflicting_sources_are_recorded_and_agreeing_ones_merge() {
        let mut log = ChangeLog::default();
        let mut first = Change::delete(Source::Write(1));
        first.kind = EventKind::Put;
        first.value = Some("x".into());
        log.insert(4, "a".into(), first.clone());
        let mut second = first.clone();
        second.source = Source::Read(2);
        second.value = None;
        second.version = Some(1);
        log.insert(4, "a".into(), second);
        assert!(log.conflicts.is_empty());
        assert_eq!(log.get("a", 4).unwrap().version, Some(1));
        log.insert(
            4,
            "a".into(),
            Change::delete(Source::Watch {
                watcher: 0,
                t_ns: 9,
            }),
        );
        assert_eq!(log.conflicts.len(), 1);
        assert_eq!(log.conflicts[0].first, Source::Write(1));
        assert_eq!(log.between("a", 3, 5).count(), 1);
        assert_eq!(log.between("a", 4, 5).count(), 0);
        assert_eq!(log.between("a", 4, 4).count(), 0);
    }
}
