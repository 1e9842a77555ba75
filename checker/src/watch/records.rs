//! The watch records of a history (`History::other` entries with `"type": "watch"`), parsed into
//! typed form. The simulator writes them in `kvsim_sim::workload::run_watcher`; live mode and
//! hand-written histories use the same shapes.

use std::collections::BTreeMap;

use kvsim_model::mvcc::{Key, LeaseId, Revision, Value};
use serde::Deserialize;

/// A watched key set as etcd encodes it: `range_end` empty = the single key `key`; `"\0"` = every
/// key `>= key`; otherwise `[key, range_end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFilter {
    pub key: Key,
    pub range_end: Key,
}

impl KeyFilter {
    pub fn contains(&self, candidate: &str) -> bool {
        contains(&self.key, &self.range_end, candidate)
    }
}

/// Whether etcd's range `[key, range_end)` (with its empty and `"\0"` conventions) holds `candidate`.
pub fn contains(key: &str, range_end: &str, candidate: &str) -> bool {
    if range_end.is_empty() {
        candidate == key
    } else if range_end == kvsim_model::mvcc::FROM_KEY {
        candidate >= key
    } else {
        // An inverted range is empty, as in etcd.
        candidate >= key && candidate < range_end
    }
}

/// A key-value as a watch event carries it. A delete event carries only `key` and `mod_revision`
/// (etcd's tombstone), so every other field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EventKv {
    pub key: Key,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub create_revision: Option<Revision>,
    pub mod_revision: Revision,
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub lease: Option<LeaseId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: EventKv,
    #[serde(default)]
    pub prev_kv: Option<EventKv>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// What one watch record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `start` (the stream's first record) or `resume` (a reconnect, possibly to another node).
    Open {
        resume: bool,
        node: String,
        filter: KeyFilter,
        start_revision: Revision,
        prev_kv: bool,
    },
    /// A response on the stream (or a poll's answer); `events` empty = a progress notification.
    Response {
        node: String,
        header_revision: Revision,
        events: Vec<Event>,
        /// Pushed on an open stream (`"stream": true`: the simulator and live mode) rather than
        /// answering a poll (histories recorded before watches were streams):
        /// it may have been generated any time after the stream opened, even before the
        /// watcher's previous record.
        streamed: bool,
    },
    /// The node refused the requested revision: it is below `compact_revision`.
    Compacted {
        node: String,
        compact_revision: Revision,
    },
    /// A transport error, a refusal (`not leader`, `unavailable`): the watcher will resume.
    Error,
    /// The watcher stopped.
    Cancel,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRecord {
    /// Position among `History::other` (for messages).
    pub index: usize,
    pub watcher: u64,
    pub t_ns: u64,
    pub action: Action,
}

/// The watch records of `other`, in their order (time order), and a description of each record
/// that had `"type": "watch"` but not the expected shape.
pub fn parse(other: &[serde_json::Value]) -> (Vec<WatchRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut malformed = Vec::new();
    for (index, value) in other.iter().enumerate() {
        if value.get("type").and_then(|t| t.as_str()) != Some("watch") {
            continue;
        }
        match parse_one(index, value) {
            Ok(record) => records.push(record),
            Err(expected) => malformed.push(format!(
                "other record #{index} ({value}): expected {expected}"
            )),
        }
    }
    (records, malformed)
}

#[derive(Deserialize)]
struct Raw {
    watcher: u64,
    t_ns: u64,
    action: String,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    key: Option<Key>,
    #[serde(default)]
    range_end: Option<Key>,
    #[serde(default)]
    start_revision: Option<Revision>,
    #[serde(default)]
    prev_kv: Option<bool>,
    #[serde(default)]
    header_revision: Option<Revision>,
    #[serde(default)]
    events: Option<Vec<Event>>,
    #[serde(default)]
    compact_revision: Option<Revision>,
    #[serde(default)]
    stream: Option<bool>,
}

fn parse_one(index: usize, value: &serde_json::Value) -> Result<WatchRecord, String> {
    let raw: Raw = serde_json::from_value(value.clone()).map_err(|error| {
        format!("a watch record with watcher, t_ns, action and well-formed fields ({error})")
    })?;
    let node = || {
        raw.node
            .clone()
            .ok_or_else(|| format!("a \"node\" in a {:?} record", raw.action))
    };
    let action = match raw.action.as_str() {
        "start" | "resume" => Action::Open {
            resume: raw.action == "resume",
            node: node()?,
            filter: KeyFilter {
                key: raw
                    .key
                    .clone()
                    .ok_or("a \"key\" in a start/resume record")?,
                range_end: raw.range_end.clone().unwrap_or_default(),
            },
            start_revision: raw
                .start_revision
                .ok_or("a \"start_revision\" in a start/resume record")?,
            prev_kv: raw.prev_kv.unwrap_or(false),
        },
        "response" => Action::Response {
            node: node()?,
            header_revision: raw
                .header_revision
                .ok_or("a \"header_revision\" in a response record")?,
            events: raw.events.clone().unwrap_or_default(),
            streamed: raw.stream.unwrap_or(false),
        },
        "compacted" => Action::Compacted {
            node: node()?,
            compact_revision: raw
                .compact_revision
                .ok_or("a \"compact_revision\" in a compacted record")?,
        },
        "error" => Action::Error,
        "cancel" => Action::Cancel,
        other => {
            return Err(format!(
                "an action among start, resume, response, compacted, error, cancel, not {other:?}"
            ))
        }
    };
    Ok(WatchRecord {
        index,
        watcher: raw.watcher,
        t_ns: raw.t_ns,
        action,
    })
}

/// Records grouped by watcher (each watcher's records keep their order).
pub fn by_watcher(records: &[WatchRecord]) -> BTreeMap<u64, Vec<&WatchRecord>> {
    let mut streams: BTreeMap<u64, Vec<&WatchRecord>> = BTreeMap::new();
    for record in records {
        streams.entry(record.watcher).or_default().push(record);
    }
    streams
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ranges_follow_etcd_conventions() {
        assert!(contains("k1", "", "k1"));
        assert!(!contains("k1", "", "k10"));
        assert!(contains("k1", "k2", "k10"));
        assert!(!contains("k1", "k2", "k2"));
        assert!(contains("k1", "\0", "z"));
        assert!(!contains("k1", "\0", "a"));
        assert!(!contains("k2", "k1", "k1"), "an inverted range is empty");
    }

    #[test]
    fn parses_each_action_and_reports_malformed_records() {
        let other = vec![
            json!({"type":"final_state","nodes":[]}),
            json!({"type":"watch","watcher":1,"t_ns":5,"action":"start","node":"n2","key":"k0",
                   "range_end":"k1","start_revision":3,"prev_kv":true}),
            json!({"type":"watch","watcher":1,"t_ns":6,"action":"response","node":"n2","header_revision":4,
                   "events":[{"kind":"delete","kv":{"key":"k00","mod_revision":4}}]}),
            json!({"type":"watch","watcher":1,"t_ns":7,"action":"response","node":"n2"}),
            json!({"type":"watch","watcher":1,"t_ns":8,"action":"wobble"}),
        ];
        let (records, malformed) = parse(&other);
        assert_eq!(records.len(), 2);
        assert_eq!(malformed.len(), 2);
        assert!(
            malformed[0].contains("#3") && malformed[0].contains("header_revision"),
            "{}",
            malformed[0]
        );
        assert!(malformed[1].contains("wobble"));
        let Action::Response { events, .. } = &records[1].action else {
            panic!("a response")
        };
        assert_eq!(events[0].kind, EventKind::Delete);
        assert_eq!(events[0].kv.value, None);
        assert_eq!(events[0].revision(), 4);
    }
}
