//! Fault records → spans on the report's node rows.
//!
//! The nemesis (sim/src/nemesis.rs) records a fault and, later, its heal as separate records:
//! `partition`/`partition_one_way` … `heal`, `crash` … `restart`, `pause` … `resume`,
//! `packet_loss` with a rate (0 ends it), `latency` with a `fault` detail (without one: back to the
//! base latency), `clock_skew` with `skew_ms` (0 ends it), `heal_all` ends everything. Pairing them
//! here gives one span per fault; a fault never healed stays open to the end of the run. Kinds
//! this module does not know become point marks, so a new fault kind is still visible.

use std::collections::BTreeMap;

use kvsim_checker::history::FaultEvent;
use serde_json::Value;

use super::text::capped;

/// The row for faults that hit the whole network rather than named nodes (loss, latency).
pub const NETWORK_ROW: &str = "network";
const LABEL_CHARS_MAX: usize = 300;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub row: String,
    pub start_ns: u64,
    /// `None`: never healed during the run.
    pub end_ns: Option<u64>,
    /// `partition`, `crash`, `pause`, `loss`, `latency` or `skew` (the report's colour classes).
    pub class: &'static str,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub row: String,
    pub t_ns: u64,
    pub label: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lanes {
    /// [`NETWORK_ROW`] first, then the nodes in natural order (`n2` before `n10`).
    pub rows: Vec<String>,
    pub spans: Vec<Span>,
    pub marks: Vec<Mark>,
}

/// `n10` → ("n", 10) so that rows sort n1, n2, …, n10.
fn natural_key(name: &str) -> (String, u64, String) {
    let digits_at = name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let number = name[digits_at..].parse().unwrap_or(0);
    (name[..digits_at].to_string(), number, name.to_string())
}

/// A fault as a reader names it: the fault kind the scenario drew (`isolate_leader`, not the
/// record's `partition`), its nodes, then what else the record says in words (`n1,n2 | n3`,
/// `torn`, `30%`, `+500 ms`), never raw JSON.
fn label(event: &FaultEvent) -> String {
    let detail = &event.detail;
    let mut text = detail
        .get("fault")
        .and_then(Value::as_str)
        .unwrap_or(&event.kind)
        .to_string();
    if !event.nodes.is_empty() {
        text.push(' ');
        text.push_str(&event.nodes.join(","));
    }
    let ids = |value: &Value| -> String {
        value.as_array().map_or_else(String::new, |ids| {
            ids.iter()
                .map(|id| match id.as_u64() {
                    Some(id) => format!("n{id}"),
                    None => id.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let Some(fields) = detail.as_object() else {
        return capped(text, LABEL_CHARS_MAX);
    };
    let mut words: Vec<String> = Vec::new();
    for (name, value) in fields {
        let word = match (name.as_str(), value) {
            ("fault", _) => continue,
            ("groups", Value::Array(groups)) => {
                groups.iter().map(ids).collect::<Vec<_>>().join(" | ")
            }
            ("from", _) => format!("from {}", ids(value)),
            ("to", _) => format!("to {}", ids(value)),
            ("bridge", _) => format!("bridge n{value}"),
            ("torn", Value::Bool(true)) => "torn".to_string(),
            ("torn", Value::Bool(false)) => continue,
            ("rate", _) => value
                .as_f64()
                .map_or_else(|| value.to_string(), |rate| format!("{:.0}%", rate * 100.0)),
            ("skew_ms", _) => value
                .as_i64()
                .map_or_else(|| value.to_string(), |skew| format!("{skew:+} ms")),
            ("min_ms", _) => continue,
            ("max_ms", _) => match fields.get("min_ms") {
                Some(min_ms) => format!("{min_ms}–{value} ms"),
                None => format!("up to {value} ms"),
            },
            (_, Value::String(text)) => format!("{name} {text}"),
            (_, other) => format!("{name} {other}"),
        };
        words.push(word);
    }
    if !words.is_empty() {
        text.push_str(": ");
        text.push_str(&words.join(" "));
    }
    capped(text, LABEL_CHARS_MAX)
}

struct Builder {
    lanes: Lanes,
    /// (class, row) → index of the open span in `lanes.spans`.
    open: BTreeMap<(&'static str, String), usize>,
}

impl Builder {
    fn open(&mut self, class: &'static str, row: &str, t_ns: u64, label: String) {
        self.close(class, row, t_ns);
        self.open
            .insert((class, row.to_string()), self.lanes.spans.len());
        self.lanes.spans.push(Span {
            row: row.to_string(),
            start_ns: t_ns,
            end_ns: None,
            class,
            label,
        });
    }

    /// Closes the open span of `class` on `row`; false if there was none.
    fn close(&mut self, class: &'static str, row: &str, t_ns: u64) -> bool {
        match self.open.remove(&(class, row.to_string())) {
            Some(index) => {
                debug_assert!(self.lanes.spans[index].end_ns.is_none());
                self.lanes.spans[index].end_ns = Some(t_ns);
                true
            }
            None => false,
        }
    }

    fn close_class(&mut self, class: &'static str, t_ns: u64) {
        let rows: Vec<String> = self
            .open
            .keys()
            .filter(|(open_class, _)| *open_class == class)
            .map(|(_, row)| row.clone())
            .collect();
        for row in rows {
            self.close(class, &row, t_ns);
        }
    }

    fn mark(&mut self, row: &str, t_ns: u64, label: String) {
        self.lanes.marks.push(Mark {
            row: row.to_string(),
            t_ns,
            label,
        });
    }
}

fn rows_of(event: &FaultEvent) -> Vec<String> {
    if event.nodes.is_empty() {
        vec![NETWORK_ROW.to_string()]
    } else {
        event.nodes.clone()
    }
}

/// Pairs `faults` into spans and marks; `nodes` adds rows for nodes no fault touched.
pub fn lanes(faults: &[FaultEvent], nodes: &[String]) -> Lanes {
    let mut events: Vec<&FaultEvent> = faults.iter().collect();
    // Stable: records at the same instant keep their recorded order (a heal before a new fault).
    events.sort_by_key(|event| event.t_ns);
    let mut builder = Builder {
        lanes: Lanes::default(),
        open: BTreeMap::new(),
    };
    for event in events {
        let t_ns = event.t_ns;
        let text = label(event);
        match event.kind.as_str() {
            kind if kind.starts_with("partition") => {
                for row in rows_of(event) {
                    builder.open("partition", &row, t_ns, text.clone());
                }
            }
            "heal" => builder.close_class("partition", t_ns),
            "crash" | "pause" | "disk_stall" => {
                let class = match event.kind.as_str() {
                    "crash" => "crash",
                    "pause" => "pause",
                    _ => "disk",
                };
                for row in rows_of(event) {
                    builder.open(class, &row, t_ns, text.clone());
                }
            }
            "restart" | "resume" | "disk_release" => {
                let class = match event.kind.as_str() {
                    "restart" => "crash",
                    "resume" => "pause",
                    _ => "disk",
                };
                for row in rows_of(event) {
                    if !builder.close(class, &row, t_ns) {
                        builder.mark(&row, t_ns, text.clone());
                    }
                }
            }
            "packet_loss" => {
                builder.close("loss", NETWORK_ROW, t_ns);
                let rate = event.detail.get("rate").and_then(Value::as_f64);
                if rate.is_some_and(|rate| rate > 0.0) {
                    builder.open("loss", NETWORK_ROW, t_ns, text);
                }
            }
            "latency" => {
                builder.close("latency", NETWORK_ROW, t_ns);
                // Only the spike carries the nemesis's `fault` name; the heal restores the base.
                if event.detail.get("fault").is_some() {
                    builder.open("latency", NETWORK_ROW, t_ns, text);
                }
            }
            "clock_skew" => {
                let skew_ms = event.detail.get("skew_ms").and_then(Value::as_i64);
                for row in rows_of(event) {
                    builder.close("skew", &row, t_ns);
                    if skew_ms.is_some_and(|skew_ms| skew_ms != 0) {
                        builder.open("skew", &row, t_ns, text.clone());
                    }
                }
            }
            "heal_all" => {
                for class in [
                    "partition",
                    "crash",
                    "pause",
                    "disk",
                    "loss",
                    "latency",
                    "skew",
                ] {
                    builder.close_class(class, t_ns);
                }
                builder.mark(NETWORK_ROW, t_ns, text);
            }
            _ => {
                for row in rows_of(event) {
                    builder.mark(&row, t_ns, text.clone());
                }
            }
        }
    }
    let mut lanes = builder.lanes;
    let mut names: Vec<String> = nodes.to_vec();
    names.extend(lanes.spans.iter().map(|span| span.row.clone()));
    names.extend(lanes.marks.iter().map(|mark| mark.row.clone()));
    names.retain(|name| name != NETWORK_ROW);
    names.sort_by_key(|name| natural_key(name));
    names.dedup();
    lanes.rows = std::iter::once(NETWORK_ROW.to_string())
        .chain(names)
        .collect();
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(t_ns: u64, kind: &str, nodes: &[&str], detail: Value) -> FaultEvent {
        FaultEvent {
            t_ns,
            kind: kind.into(),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            detail,
        }
    }

    fn spans_of(lanes: &Lanes, class: &str) -> Vec<(String, u64, Option<u64>)> {
        lanes
            .spans
            .iter()
            .filter(|span| span.class == class)
            .map(|span| (span.row.clone(), span.start_ns, span.end_ns))
            .collect()
    }

    #[test]
    fn faults_pair_with_their_heals() {
        let faults = vec![
            event(10, "partition", &["n3"], json!({"groups": [[1, 2], [3]]})),
            event(20, "crash", &["n1"], json!({"torn": true})),
            event(30, "heal", &[], Value::Null),
            event(40, "restart", &["n1"], Value::Null),
            event(
                50,
                "packet_loss",
                &[],
                json!({"fault": "packet_loss", "rate": 0.2}),
            ),
            event(60, "packet_loss", &[], json!({"rate": 0.0})),
            event(
                70,
                "latency",
                &[],
                json!({"fault": "latency", "min_ms": 1, "max_ms": 90}),
            ),
            event(80, "latency", &[], json!({"min_ms": 1, "max_ms": 10})),
            event(90, "pause", &["n2"], json!({"fault": "pause"})),
            event(95, "clock_skew", &["n2"], json!({"skew_ms": 300})),
            event(100, "heal_all", &["n1", "n2", "n3"], Value::Null),
        ];
        let lanes = lanes(&faults, &[]);
        assert_eq!(lanes.rows, vec!["network", "n1", "n2", "n3"]);
        assert_eq!(
            spans_of(&lanes, "partition"),
            vec![("n3".into(), 10, Some(30))]
        );
        assert_eq!(spans_of(&lanes, "crash"), vec![("n1".into(), 20, Some(40))]);
        assert_eq!(
            spans_of(&lanes, "loss"),
            vec![("network".into(), 50, Some(60))]
        );
        assert_eq!(
            spans_of(&lanes, "latency"),
            vec![("network".into(), 70, Some(80))]
        );
        assert_eq!(
            spans_of(&lanes, "pause"),
            vec![("n2".into(), 90, Some(100))]
        );
        assert_eq!(spans_of(&lanes, "skew"), vec![("n2".into(), 95, Some(100))]);
        // The test record names no drawn fault kind: the record's own kind stands in.
        assert_eq!(lanes.spans[0].label, "partition n3: n1,n2 | n3");
        let crash = FaultEvent {
            t_ns: 1,
            kind: "crash".into(),
            nodes: vec!["n1".into()],
            detail: json!({"fault": "crash_leader", "torn": true}),
        };
        assert_eq!(label(&crash), "crash_leader n1: torn");
        let loss = FaultEvent {
            t_ns: 1,
            kind: "packet_loss".into(),
            nodes: vec![],
            detail: json!({"fault": "packet_loss", "rate": 0.3}),
        };
        assert_eq!(label(&loss), "packet_loss: 30%");
    }

    #[test]
    fn unhealed_faults_stay_open_and_unknown_kinds_become_marks() {
        let faults = vec![
            event(5, "crash", &["n10"], Value::Null),
            event(7, "disk_full", &["n2"], json!({"bytes": 1})),
            event(9, "resume", &["n2"], Value::Null),
        ];
        let lanes = lanes(&faults, &["n1".to_string()]);
        assert_eq!(lanes.rows, vec!["network", "n1", "n2", "n10"]);
        assert_eq!(spans_of(&lanes, "crash"), vec![("n10".into(), 5, None)]);
        let marks: Vec<(&str, u64)> = lanes
            .marks
            .iter()
            .map(|mark| (mark.row.as_str(), mark.t_ns))
            .collect();
        assert_eq!(marks, vec![("n2", 7), ("n2", 9)]);
    }
}
