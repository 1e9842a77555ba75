//! `watch` records (see `run_watcher` in sim/src/workload.rs) → one row per watcher.
//!
//! Records are kept as JSON in `History::other`, so every field is read defensively: a record
//! without a watcher or a time is counted and skipped, a missing field prints as `?`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::text::capped;

const TEXT_CHARS_MAX: usize = 1_000;

/// One drawn watch record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Index into [`WatchRows::watchers`].
    pub row: usize,
    pub t_ns: u64,
    /// `s` start, `r` resume, `e` response with events, `p` empty (progress) response,
    /// `c` compacted, `x` error, `k` cancel, `?` any other action.
    pub code: char,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchRows {
    pub watchers: Vec<u64>,
    pub ticks: Vec<Tick>,
    /// Watch records without a numeric `watcher` or `t_ns`.
    pub skipped: usize,
}

fn field(record: &Value, name: &str) -> String {
    match record.get(name) {
        Some(Value::String(text)) => format!("{text:?}"),
        Some(Value::Null) | None => "?".to_string(),
        Some(other) => other.to_string(),
    }
}

fn plain(record: &Value, name: &str) -> String {
    match record.get(name) {
        Some(Value::String(text)) => text.clone(),
        _ => field(record, name),
    }
}

fn write_event(out: &mut String, event: &Value) {
    let kind = plain(event, "kind");
    let kv = event.get("kv").unwrap_or(&Value::Null);
    let _ = write!(out, "{kind} {}", field(kv, "key"));
    if kind != "delete" {
        let _ = write!(out, "={} v{}", field(kv, "value"), plain(kv, "version"));
    }
    let _ = write!(out, " m{}", plain(kv, "mod_revision"));
    if let Some(prev) = event.get("prev_kv").filter(|prev| !prev.is_null()) {
        let _ = write!(
            out,
            " (prev {} m{})",
            field(prev, "value"),
            plain(prev, "mod_revision")
        );
    }
}

fn tick_text(record: &Value, action: &str) -> (char, String) {
    let node = plain(record, "node");
    let mut out = String::new();
    let code = match action {
        "start" | "resume" => {
            let _ = write!(
                out,
                "{action} on {node}: key {} range_end {} from rev {}",
                field(record, "key"),
                field(record, "range_end"),
                plain(record, "start_revision")
            );
            if record.get("prev_kv") == Some(&Value::Bool(true)) {
                out.push_str(" prev_kv");
            }
            if action == "start" {
                's'
            } else {
                'r'
            }
        }
        "response" => {
            let events = record
                .get("events")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let _ = write!(
                out,
                "response from {node}: header rev {}, {} events",
                plain(record, "header_revision"),
                events.len()
            );
            for event in events {
                out.push_str("\n  ");
                write_event(&mut out, event);
            }
            if events.is_empty() {
                'p'
            } else {
                'e'
            }
        }
        "compacted" => {
            let _ = write!(
                out,
                "compacted on {node} at rev {}",
                plain(record, "compact_revision")
            );
            'c'
        }
        "error" => {
            let _ = write!(out, "error from {node}: {}", plain(record, "error"));
            'x'
        }
        "cancel" => {
            let _ = write!(
                out,
                "cancel on {node}, next rev {}",
                plain(record, "next_revision")
            );
            'k'
        }
        other => {
            let _ = write!(out, "{other}: {record}");
            '?'
        }
    };
    (code, capped(out, TEXT_CHARS_MAX))
}

/// The watch records among `other`, by watcher, in time order within each row.
pub fn watch_rows(other: &[Value]) -> WatchRows {
    let mut rows = WatchRows::default();
    let mut by_watcher: BTreeMap<u64, Vec<(u64, char, String)>> = BTreeMap::new();
    for record in other
        .iter()
        .filter(|r| r.get("type") == Some(&Value::from("watch")))
    {
        let watcher = record.get("watcher").and_then(Value::as_u64);
        let t_ns = record.get("t_ns").and_then(Value::as_u64);
        let (Some(watcher), Some(t_ns)) = (watcher, t_ns) else {
            rows.skipped += 1;
            continue;
        };
        let action = plain(record, "action");
        let (code, text) = tick_text(record, &action);
        by_watcher
            .entry(watcher)
            .or_default()
            .push((t_ns, code, text));
    }
    for (row, (watcher, mut ticks)) in by_watcher.into_iter().enumerate() {
        ticks.sort_by_key(|(t_ns, _, _)| *t_ns);
        rows.watchers.push(watcher);
        rows.ticks
            .extend(ticks.into_iter().map(|(t_ns, code, text)| Tick {
                row,
                t_ns,
                code,
                text,
            }));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_become_ticks_per_watcher() {
        let other = vec![
            json!({"type": "watch", "watcher": 3, "t_ns": 50, "action": "response", "node": "n1",
                   "header_revision": 9, "events": [
                       {"kind": "put", "kv": {"key": "k1", "value": "v", "create_revision": 2,
                        "mod_revision": 8, "version": 2, "lease": 0},
                        "prev_kv": {"key": "k1", "value": "u", "mod_revision": 2}},
                       {"kind": "delete", "kv": {"key": "k2", "mod_revision": 9}}]}),
            json!({"type": "watch", "watcher": 3, "t_ns": 10, "action": "start", "node": "n2",
                   "key": "k", "range_end": "l", "start_revision": 5, "prev_kv": true}),
            json!({"type": "watch", "watcher": 1, "t_ns": 20, "action": "error", "node": "n3",
                   "error": "timeout"}),
            json!({"type": "watch", "t_ns": 20, "action": "error"}),
            json!({"type": "final_state", "nodes": []}),
        ];
        let rows = watch_rows(&other);
        assert_eq!(rows.watchers, vec![1, 3]);
        assert_eq!(rows.skipped, 1);
        let codes: Vec<(usize, u64, char)> =
            rows.ticks.iter().map(|t| (t.row, t.t_ns, t.code)).collect();
        assert_eq!(codes, vec![(0, 20, 'x'), (1, 10, 's'), (1, 50, 'e')]);
        assert_eq!(
            rows.ticks[1].text,
            r#"start on n2: key "k" range_end "l" from rev 5 prev_kv"#
        );
        assert_eq!(
            rows.ticks[2].text,
            "response from n1: header rev 9, 2 events\n  put \"k1\"=\"v\" v2 m8 (prev \"u\" m2)\n  delete \"k2\" m9"
        );
    }
}
