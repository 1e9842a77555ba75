//! The HTML report of one run: a single self-contained file (inline CSS and JS, no network) that
//! draws the history on a zoomable canvas timeline — client lanes (client ids whose lifetimes do not
//! overlap share a lane, so retired ids do not add rows) with operations as bars,
//! node rows with the faults as spans, a row per watcher — and explains the verdicts: the longest
//! linearizable prefix (underlined), the operations that cannot follow it (outlined, with the
//! model's state and answer), and every property violation linked to its operations.
//!
//! Scale: the data is one compact JSON blob (operations as arrays, inputs and outputs as one-line
//! texts, see `text.rs`), so the file grows linearly with the history; the canvas draws only the
//! rows and the time window in view and merges sub-pixel bars. Measured in Debian's headless
//! chromium 156 on 2 shared cores (`KVSIM_REPORT_OPS=100000 cargo test --test report_browser --
//! --ignored --nocapture`; `generate_mvcc_history`, 8 clients, 5% unknown outcomes):
//! - 10k operations: 1.3 MB (132 bytes/op); page ready 0.2 s after navigation (script 0.1 s,
//!   one full redraw 8–20 ms); chromium process wall time 1.5 s including its start-up.
//! - 100k operations: 13.8 MB (138 bytes/op); page ready 0.6 s (script 0.2 s, redraw ~15 ms);
//!   chromium wall time 4.2 s, most of it serializing the 14 MB DOM for `--dump-dom`.
//!
//! Safety: every history string is user data. The blob is JSON with `<`, `>`, `&`, U+2028 and
//! U+2029 escaped as `\uXXXX`, so no `</script>` can end its element; the page's script puts
//! strings on the page only through `textContent` and canvas text; the few strings in the static
//! HTML go through [`escape_html`].

mod explain;
mod faults;
mod served;
mod text;
mod watch;

use std::collections::BTreeSet;

use kvsim_checker::history::{History, Outcome};
use kvsim_checker::CheckResult;
use kvsim_model::mvcc::gen::{kind_name, KIND_NAMES};
use kvsim_model::mvcc::{MvccModel, Op, Ret};
use serde_json::{json, Value};

/// Longest `state_debug` string embedded (the search's `Debug` of the final state).
const STATE_DEBUG_CHARS_MAX: usize = 20_000;
/// Property violations embedded in full; the rest are only counted.
const PROPERTIES_EMBEDDED_MAX: usize = 2_000;

/// Everything one report shows.
pub struct ReportInput<'a> {
    pub title: String,
    /// Shown verbatim; empty strings are left out.
    pub seed: String,
    pub scenario: String,
    /// The command line that replays the run.
    pub reproduce: String,
    pub history: &'a History<Op, Ret>,
    pub linearizability: &'a CheckResult,
    /// Property violations (watch, durability, …): JSON objects with at least `property` and
    /// `message`, optionally `ops` (op ids), `watcher` and `t_ns`.
    pub properties: &'a [Value],
    /// The state the linearizability check started from; the report replays the longest prefix
    /// on it to show the model's state and answers.
    pub model_init: MvccModel,
    /// Node names to draw even when no fault touched them (`n1`, …); names from faults, watch
    /// records and `final_state` records are added automatically.
    pub nodes: Vec<String>,
}

impl<'a> ReportInput<'a> {
    pub fn new(
        title: &str,
        history: &'a History<Op, Ret>,
        linearizability: &'a CheckResult,
    ) -> Self {
        Self {
            title: title.to_string(),
            seed: String::new(),
            scenario: String::new(),
            reproduce: String::new(),
            history,
            linearizability,
            properties: &[],
            model_init: MvccModel::default(),
            nodes: Vec::new(),
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside `<script type="application/json">`: these characters only occur
/// inside JSON strings, where `\uXXXX` means the same thing.
fn script_safe_json(value: &Value) -> String {
    let raw = value.to_string();
    let mut out = String::with_capacity(raw.len() + raw.len() / 64);
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

fn node_names(input: &ReportInput) -> Vec<String> {
    let mut names: BTreeSet<String> = input.nodes.iter().cloned().collect();
    for record in &input.history.other {
        if let Some(node) = record.get("node").and_then(Value::as_str) {
            names.insert(node.to_string());
        }
        if record.get("type").and_then(Value::as_str) == Some("final_state") {
            let nodes = record.get("nodes").and_then(Value::as_array);
            for node in nodes.into_iter().flatten() {
                if let Some(name) = node.get("node").and_then(Value::as_str) {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names.into_iter().collect()
}

fn ops_blob(history: &History<Op, Ret>) -> Value {
    let served = served::served_texts(&history.served_by(), &history.leaders_elected());
    let ops: Vec<Value> = history
        .ops
        .iter()
        .map(|op| {
            let (status, output) = match &op.outcome {
                Outcome::Ok { output } => (0, text::ret_text(output)),
                Outcome::Fail { error } => (1, format!("fail: {error}")),
                Outcome::Unknown { error } => match op.return_ns {
                    Some(gave_up_ns) => (
                        2,
                        format!("unknown: {error} (the client gave up at {gave_up_ns} ns)"),
                    ),
                    None => (2, format!("unknown: {error}")),
                },
            };
            let kind = kind_name(&op.input);
            let kind_index = KIND_NAMES.iter().position(|k| *k == kind);
            assert!(kind_index.is_some(), "KIND_NAMES lists every kind_name");
            // -1: open-ended. An unknown outcome may take effect at any time after the call, even
            // after the client gave up, so it is drawn open-ended whatever its return time.
            // Times stay exact integers in JS up to 2^53 ns (104 days).
            let return_ns = match op.outcome {
                Outcome::Unknown { .. } => -1,
                Outcome::Ok { .. } | Outcome::Fail { .. } => op.return_ns.map_or(-1, |t| t as i64),
            };
            let keys: Vec<Value> = text::op_key_ranges(&op.input)
                .into_iter()
                .map(|(key, range_end)| json!([key, range_end]))
                .collect();
            json!([
                op.id,
                op.client,
                op.call_ns,
                return_ns,
                status,
                kind_index.unwrap_or(0),
                text::op_text(&op.input),
                output,
                keys,
                served.get(&op.id)
            ])
        })
        .collect();
    Value::Array(ops)
}

fn linearizability_blob(input: &ReportInput) -> Value {
    match input.linearizability {
        CheckResult::Linearizable => json!({ "verdict": "linearizable", "partition": null }),
        CheckResult::Unknown(why) => {
            json!({ "verdict": "unknown", "message": why, "partition": null })
        }
        CheckResult::NotLinearizable(violation) => {
            let explanation = explain::explain(input.history, violation, &input.model_init);
            let explained: Vec<Value> = explanation
                .stuck
                .iter()
                .map(|s| {
                    let blockers: Vec<Value> =
                        s.blockers.iter().map(|b| json!([b.id, b.progress_max])).collect();
                    json!({ "id": s.id, "observed": s.observed, "expected": s.expected, "change": s.change,
                        "accepted": s.accepted, "blockers": blockers })
                })
                .collect();
            json!({
                "verdict": "not_linearizable",
                "message": violation.to_string(),
                "partition": violation.partition,
                "prefix": violation.longest_prefix,
                "stuck": violation.stuck,
                "state_debug": text::capped(violation.state_debug.clone(), STATE_DEBUG_CHARS_MAX),
                "before": explanation.before,
                "explained": explained,
                "replay_error": explanation.replay_error,
            })
        }
    }
}

fn data_blob(input: &ReportInput) -> Value {
    let lanes = faults::lanes(&input.history.faults, &node_names(input));
    let row_index = |name: &str| lanes.rows.iter().position(|row| row == name).unwrap_or(0);
    let spans: Vec<Value> = lanes
        .spans
        .iter()
        .map(|s| {
            let end_ns = s.end_ns.map_or(-1, |t| t as i64);
            json!([row_index(&s.row), s.start_ns, end_ns, s.class, s.label])
        })
        .collect();
    let marks: Vec<Value> = lanes
        .marks
        .iter()
        .map(|m| json!([row_index(&m.row), m.t_ns, m.label]))
        .collect();
    let watch = watch::watch_rows(&input.history.other);
    let ticks: Vec<Value> = watch
        .ticks
        .iter()
        .map(|t| json!([t.row, t.t_ns, t.code.to_string(), t.text]))
        .collect();
    let properties: Vec<Value> = input
        .properties
        .iter()
        .take(PROPERTIES_EMBEDDED_MAX)
        .cloned()
        .collect();
    json!({
        "v": 1,
        "kinds": KIND_NAMES,
        "ops": ops_blob(input.history),
        "rows": lanes.rows,
        "spans": spans,
        "marks": marks,
        "watchers": watch.watchers,
        "ticks": ticks,
        "wskip": watch.skipped,
        "lin": linearizability_blob(input),
        "props": properties,
        "props_total": input.properties.len(),
    })
}

/// The report as one HTML document.
pub fn render_html(input: &ReportInput) -> String {
    let blob = script_safe_json(&data_blob(input));
    let mut meta = String::new();
    for (name, value) in [
        ("seed", &input.seed),
        ("scenario", &input.scenario),
        ("reproduce", &input.reproduce),
    ] {
        if !value.is_empty() {
            meta.push_str(&format!("<dt>{name}</dt><dd>{}</dd>", escape_html(value)));
        }
    }
    let title = escape_html(&input.title);
    let mut page = String::with_capacity(blob.len() + 64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // No network: even a stray URL in user data cannot make the page fetch anything.
    page.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
        style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    page.push_str(&format!("<title>{title}</title>\n<style>\n"));
    page.push_str(include_str!("report.css"));
    page.push_str("</style>\n</head>\n<body>\n<header>\n");
    page.push_str(&format!("<h1>{title}</h1>\n<dl id=\"meta\">{meta}</dl>\n"));
    page.push_str("<div id=\"verdict\">…</div>\n</header>\n");
    page.push_str(
        "<div id=\"toolbar\"><button id=\"fit\">Fit</button><button id=\"zoom-in\">Zoom in</button>\
         <button id=\"zoom-out\">Zoom out</button><button id=\"goto-violation\">Go to violation</button>\
         <label><input type=\"checkbox\" id=\"dim\"> dim operations outside the linearizable prefix</label>\
         <span class=\"hint\">wheel: zoom · shift+wheel: scroll rows · drag: pan · click: details · keys + − 0 ← → ↑ ↓ · link: report.html#op-ID</span>\
         <span id=\"legend\"></span></div>\n",
    );
    page.push_str(
        "<div id=\"timeline-wrap\"><canvas id=\"timeline\" tabindex=\"0\"></canvas></div>\n\
         <div id=\"tooltip\" hidden></div>\n<main>\n\
         <section id=\"violation-section\"><h2>Linearizability</h2><div id=\"violation\">\
         <noscript>This report needs JavaScript to draw its timeline.</noscript></div></section>\n\
         <section id=\"properties-section\"><h2>Violations</h2><ol id=\"violations\"></ol></section>\n\
         <section id=\"details-section\"><h2>Selected operation</h2><div id=\"details\">\
         Click an operation on the timeline or a link.</div></section>\n\
         <section id=\"key-section\"><h2>Operations on the violation's key</h2><div id=\"per-key\"></div></section>\n\
         <section id=\"charts-section\"><h2>Latency and throughput</h2><div id=\"charts\"></div></section>\n</main>\n\
         <footer id=\"status\"></footer>\n",
    );
    page.push_str("<script type=\"application/json\" id=\"kvsim-data\">");
    page.push_str(&blob);
    page.push_str("</script>\n<script>\n");
    page.push_str(include_str!("report.js"));
    page.push_str("</script>\n</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvsim_checker::history::{FaultEvent, Operation};
    use kvsim_checker::{Budget, CheckOptions};
    use kvsim_model::mvcc::{
        PutRequest, PutResponse, RangeRequest, RangeResponse, Response, ResponseHeader,
    };

    fn put(key: &str, value: &str) -> Op {
        Op::Put(PutRequest {
            key: key.into(),
            value: value.into(),
            ..PutRequest::default()
        })
    }

    /// A put of `key`, then a read of `key` that starts after it returned and sees nothing.
    fn stale_read_history(key: &str, value: &str) -> History<Op, Ret> {
        let written = Ret::Ok(Response::Put(PutResponse {
            header: ResponseHeader { revision: 2 },
            prev_kv: None,
        }));
        let stale = Ret::Ok(Response::Range(RangeResponse {
            header: ResponseHeader { revision: 1 },
            kvs: vec![],
            more: false,
            count: 0,
        }));
        let get = Op::Range(RangeRequest {
            key: key.into(),
            ..RangeRequest::default()
        });
        History {
            ops: vec![
                Operation {
                    id: 0,
                    client: 0,
                    call_ns: 0,
                    return_ns: Some(10),
                    input: put(key, value),
                    outcome: Outcome::Ok { output: written },
                },
                Operation {
                    id: 1,
                    client: 1,
                    call_ns: 20,
                    return_ns: Some(30),
                    input: get,
                    outcome: Outcome::Ok { output: stale },
                },
                Operation {
                    id: 2,
                    client: 2,
                    call_ns: 40,
                    return_ns: None,
                    input: put(key, "late"),
                    outcome: Outcome::Unknown {
                        error: "timeout".into(),
                    },
                },
            ],
            faults: vec![FaultEvent {
                t_ns: 3,
                kind: "crash".into(),
                nodes: vec!["n1".into()],
                detail: json!({ "note": value }),
            }],
            other: vec![
                json!({ "type": "watch", "watcher": 0, "t_ns": 12, "action": "error", "node": "n2", "error": value }),
                json!({ "type": "leader", "t_ns": 0, "node": "n2", "term": 1 }),
                json!({ "type": "leader", "t_ns": 5, "node": "n1", "term": 2 }),
                json!({ "type": "served_by", "id": 0, "t_ns": 10, "node": "n1", "raft_term": 2, "role": "leader" }),
                json!({ "type": "served_by", "id": 1, "t_ns": 30, "node": "n2", "raft_term": 1, "role": "leader" }),
            ],
        }
    }

    fn blob_of(page: &str) -> Value {
        let start =
            page.find("id=\"kvsim-data\">").expect("data element") + "id=\"kvsim-data\">".len();
        let end = start + page[start..].find("</script>").expect("end of data");
        serde_json::from_str(&page[start..end]).expect("the blob is JSON")
    }

    #[test]
    fn user_data_cannot_break_out_of_the_page() {
        let evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>\u{2028}&amp;";
        let history = stale_read_history(evil, evil);
        let result = kvsim_checker::check(
            &history,
            MvccModel::default(),
            &Budget::default(),
            &CheckOptions::default(),
        );
        let properties = vec![json!({ "property": evil, "message": evil, "ops": [1] })];
        let mut input = ReportInput::new(evil, &history, &result);
        input.seed = evil.to_string();
        input.properties = &properties;
        let page = render_html(&input);
        // Exactly the page's own two scripts, and no markup from the data.
        assert_eq!(page.matches("<script").count(), 2, "injected script tag");
        assert_eq!(page.matches("</script>").count(), 2, "injected script end");
        assert!(!page.contains("<img"), "injected element");
        let raw_blob = &page[page.find("id=\"kvsim-data\">").unwrap()..];
        assert!(
            !raw_blob[..raw_blob.find("</script>").unwrap()].contains('\u{2028}'),
            "raw U+2028 in the blob"
        );
        // The escaped data still round-trips: the viewer sees the original strings.
        let blob = blob_of(&page);
        assert_eq!(blob["props"][0]["message"], evil);
        assert!(blob["ops"][0][6].as_str().unwrap().contains("</script>"));
        assert!(page.contains("<title>&lt;/script&gt;&lt;script&gt;alert(1)"));
    }

    #[test]
    fn the_blob_carries_ops_faults_watchers_and_the_explained_violation() {
        let history = stale_read_history("k", "v");
        let result = kvsim_checker::check(
            &history,
            MvccModel::default(),
            &Budget::default(),
            &CheckOptions::default(),
        );
        let CheckResult::NotLinearizable(violation) = &result else {
            panic!("stale read must be a violation: {result:?}")
        };
        assert!(!violation.stuck.is_empty());
        let page = render_html(&ReportInput::new("t", &history, &result));
        let blob = blob_of(&page);
        assert_eq!(
            blob["ops"][0],
            json!([
                0,
                0,
                0,
                10,
                0,
                0,
                "put \"k\" = \"v\"",
                "rev 2",
                [["k", ""]],
                "n1 · leader · term 2"
            ])
        );
        assert_eq!(
            blob["ops"][1][9], "n2 · leader · term 1 · deposed: n1 leads term 2 since 0.000 ms",
            "the stale read names the deposed leader that served it"
        );
        assert_eq!(blob["ops"][2][9], Value::Null, "no answer, no server");
        assert_eq!(blob["ops"][2][3], -1, "unknown outcome has no return");
        assert_eq!(blob["ops"][2][4], 2);
        assert_eq!(blob["rows"], json!(["network", "n1", "n2"]));
        assert_eq!(blob["spans"][0][0], 1);
        assert_eq!(
            blob["spans"][0][2], -1,
            "a crash never restarted stays open"
        );
        assert_eq!(blob["watchers"], json!([0]));
        assert_eq!(blob["ticks"][0][2], "x");
        let lin = &blob["lin"];
        assert_eq!(lin["verdict"], "not_linearizable");
        assert_eq!(lin["stuck"], json!(violation.stuck));
        assert_eq!(lin["prefix"], json!(violation.longest_prefix));
        assert_eq!(lin["replay_error"], Value::Null);
        let explained: Vec<&Value> = lin["explained"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["id"])
            .collect();
        assert_eq!(explained.len(), violation.stuck.len());
        assert!(lin["before"].as_str().unwrap().starts_with("revision "));
    }

    #[test]
    fn linearizable_and_inconclusive_verdicts_render() {
        let history = History::default();
        for result in [
            CheckResult::Linearizable,
            CheckResult::Unknown("timeout 1s".into()),
        ] {
            let page = render_html(&ReportInput::new("ok", &history, &result));
            let blob = blob_of(&page);
            assert_eq!(blob["ops"], json!([]));
            assert!(matches!(
                blob["lin"]["verdict"].as_str(),
                Some("linearizable" | "unknown")
            ));
        }
    }

    #[test]
    fn escape_html_covers_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
