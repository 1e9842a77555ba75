//! The HTML report in a real browser: Debian's headless chromium loads a generated report and
//! dumps the DOM after the page's script ran. The checks look for elements only the script
//! creates, so a page whose JavaScript fails cannot pass.
//!
//! Needs chromium (`apt-get install chromium`). The test is `#[ignore]`d in a plain `cargo test`;
//! `.ci/run` installs chromium and runs it with `--ignored`, and without a browser it FAILS on
//! purpose: a silently skipped browser test would let a broken viewer through.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kvsim::report;
use kvsim_checker::history::{FaultEvent, History, Operation, Outcome};
use kvsim_checker::{Budget, CheckOptions, CheckResult};
use kvsim_model::mvcc::{
    MvccModel, Op, PutRequest, PutResponse, RangeRequest, RangeResponse, Response, ResponseHeader,
    Ret,
};
use serde_json::json;

/// Candidate browser binaries: Debian's chromium first; `KVSIM_CHROMIUM` overrides.
const BROWSERS: [&str; 4] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
];

fn browser() -> PathBuf {
    if let Some(path) = std::env::var_os("KVSIM_CHROMIUM") {
        return PathBuf::from(path);
    }
    match BROWSERS.iter().map(Path::new).find(|path| path.exists()) {
        Some(path) => path.to_path_buf(),
        None => panic!(
            "no headless browser found (looked for {BROWSERS:?} and $KVSIM_CHROMIUM): \
             run `apt-get install -y chromium` — this test does not skip"
        ),
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("kvsim-report-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless chromium on `page`; returns the DOM after scripts ran (or the screenshot's
/// stdout when `screenshot` is set) and the wall time.
fn chromium(page: &Path, profile: &Path, screenshot: Option<&Path>) -> (String, Duration) {
    let mut command = Command::new(browser());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(png) => command.arg(format!("--screenshot={}", png.display())),
        None => command.arg("--dump-dom"),
    };
    command.arg(format!("file://{}", page.display()));
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|error| {
        panic!(
            "cannot run {:?}: {error} — install it with `apt-get install -y chromium`",
            browser()
        )
    });
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        elapsed,
    )
}

fn put(key: &str, value: &str) -> Op {
    Op::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    })
}

fn put_ok(revision: i64) -> Ret {
    Ret::Ok(Response::Put(PutResponse {
        header: ResponseHeader { revision },
        prev_kv: None,
    }))
}

/// Linearizable traffic, then a read that misses a write that returned before it started
/// (op 7), plus faults, an unknown outcome, a failure, a watcher and a watch violation. A key
/// carries markup that must stay text.
fn violating_history() -> History<Op, Ret> {
    let evil = "<img id=\"pwned\" src=x>";
    let mut ops = Vec::new();
    let mut op =
        |client: u64, call_ns: u64, return_ns: Option<u64>, input: Op, outcome: Outcome<Ret>| {
            let id = ops.len() as u64;
            ops.push(Operation {
                id,
                client,
                call_ns,
                return_ns,
                input,
                outcome,
            });
        };
    let ms = 1_000_000;
    op(
        0,
        0,
        Some(3 * ms),
        put("a", "1"),
        Outcome::Ok { output: put_ok(2) },
    );
    op(
        1,
        ms,
        Some(4 * ms),
        put(evil, "x"),
        Outcome::Ok { output: put_ok(3) },
    );
    op(
        2,
        2 * ms,
        None,
        put("b", "lost?"),
        Outcome::Unknown {
            error: "timeout".into(),
        },
    );
    op(
        0,
        5 * ms,
        Some(7 * ms),
        put("a", "2"),
        Outcome::Ok { output: put_ok(4) },
    );
    op(
        3,
        6 * ms,
        Some(8 * ms),
        put("c", "f"),
        Outcome::Fail {
            error: "connection refused".into(),
        },
    );
    op(
        1,
        9 * ms,
        Some(11 * ms),
        put("a", "3"),
        Outcome::Ok { output: put_ok(5) },
    );
    op(
        0,
        12 * ms,
        Some(13 * ms),
        put("d", "4"),
        Outcome::Ok { output: put_ok(6) },
    );
    // Starts after every write returned, yet sees the store before any of them.
    let stale = Ret::Ok(Response::Range(RangeResponse {
        header: ResponseHeader { revision: 1 },
        kvs: vec![],
        more: false,
        count: 0,
    }));
    op(
        4,
        14 * ms,
        Some(15 * ms),
        Op::Range(RangeRequest {
            key: "a".into(),
            ..RangeRequest::default()
        }),
        Outcome::Ok { output: stale },
    );
    let fault = |t_ns: u64, kind: &str, nodes: &[&str], detail: serde_json::Value| FaultEvent {
        t_ns,
        kind: kind.into(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        detail,
    };
    History {
        ops,
        faults: vec![
            fault(
                ms,
                "partition",
                &["n3"],
                json!({ "fault": "partition_random", "groups": [[1, 2], [3]] }),
            ),
            fault(5 * ms, "heal", &[], serde_json::Value::Null),
            fault(
                6 * ms,
                "crash",
                &["n1"],
                json!({ "fault": "crash_leader", "torn": true }),
            ),
            fault(10 * ms, "restart", &["n1"], serde_json::Value::Null),
            fault(
                8 * ms,
                "packet_loss",
                &[],
                json!({ "fault": "packet_loss", "rate": 0.3 }),
            ),
            fault(12 * ms, "packet_loss", &[], json!({ "rate": 0.0 })),
        ],
        other: vec![
            json!({ "type": "watch", "watcher": 0, "t_ns": ms, "action": "start", "node": "n2", "key": "a",
                    "range_end": "", "start_revision": 2, "prev_kv": false }),
            json!({ "type": "watch", "watcher": 0, "t_ns": 8 * ms, "action": "response", "node": "n2",
                    "header_revision": 4, "events": [{ "kind": "put", "kv": { "key": "a", "value": "2",
                    "create_revision": 2, "mod_revision": 4, "version": 2, "lease": 0 } }] }),
            json!({ "type": "watch", "watcher": 0, "t_ns": 16 * ms, "action": "cancel", "node": "n2", "next_revision": 5 }),
        ],
    }
}

fn check(history: &History<Op, Ret>) -> CheckResult {
    kvsim_checker::check(
        history,
        MvccModel::default(),
        &Budget::default(),
        &CheckOptions::default(),
    )
}

/// Writes `report.html` into `dir`; returns its path and size in bytes.
fn write_report(
    dir: &Path,
    history: &History<Op, Ret>,
    result: &CheckResult,
    properties: &[serde_json::Value],
) -> (PathBuf, usize) {
    let mut input = report::ReportInput::new("kvsim report <test>", history, result);
    input.seed = "42".into();
    input.scenario = "scenarios/default.toml".into();
    input.reproduce = "kvsim run --scenario scenarios/default.toml --seed 42".into();
    input.properties = properties;
    let html = report::render_html(&input);
    let path = dir.join("report.html");
    std::fs::write(&path, &html).expect("write report");
    (path, html.len())
}

/// The DOM from the element `<tag id="id"` up to the next `until` (the end of its enclosing
/// section: panels nest elements of the same tag, so their own closing tag is not enough).
fn element<'a>(dom: &'a str, tag: &str, id: &str, until: &str) -> &'a str {
    let open = format!("<{tag} id=\"{id}\"");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag} id={id}> in the DOM"));
    let end = dom[start..]
        .find(until)
        .map_or(dom.len(), |end| start + end);
    &dom[start..end]
}

/// A number the report's script put on `<body>` as `data-<name>`.
fn body_number(dom: &str, name: &str) -> f64 {
    let marker = format!("data-{name}=\"");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("the script sets data-{name}"))
        + marker.len();
    let end = start + dom[start..].find('"').expect("attribute end");
    dom[start..end].parse().expect("a number")
}

#[test]
#[ignore = "needs headless chromium (apt-get install chromium); .ci/run runs it with --ignored"]
fn report_shows_the_violation_in_a_browser() {
    let dir = TempDir::new("violation");
    let history = violating_history();
    let properties = vec![json!({
        "property": "watch.reliable",
        "message": "watcher 0 missed the put of \"a\" at revision 5",
        "ops": [5],
        "watcher": 0,
        "t_ns": 8_000_000u64,
    })];
    let result = check(&history);
    let (page, _) = write_report(&dir.0, &history, &result, &properties);
    let CheckResult::NotLinearizable(violation) = &result else {
        panic!("expected a violation, got {result:?}")
    };
    assert!(!violation.stuck.is_empty());

    let (dom, _) = chromium(&page, &dir.0.join("profile"), None);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the report's script did not finish:\n{dom}"
    );
    let panel = element(&dom, "div", "violation", "</section>");
    assert!(panel.contains("Not linearizable"), "{panel}");
    for id in &violation.stuck {
        assert!(
            panel.contains(&format!("id=\"stuck-op-{id}\"")),
            "no panel for stuck op {id}:\n{panel}"
        );
    }
    // The stale read is named, as the stuck op or as the op a stuck write would strand.
    assert!(
        panel.contains("data-op=\"7\""),
        "the violation panel must link the stale read, op 7:\n{panel}"
    );
    assert!(panel.contains("the model answers here"), "{panel}");
    let listed = element(&dom, "ol", "violations", "</section>");
    assert!(listed.contains("watch.reliable"), "{listed}");
    assert!(listed.contains("data-op=\"5\""), "{listed}");
    assert!(listed.contains("data-watcher=\"0\""), "{listed}");
    let verdict = element(&dom, "div", "verdict", "</header>");
    assert!(verdict.contains("NOT LINEARIZABLE"), "{verdict}");
    assert!(
        !dom.contains("id=\"pwned\""),
        "markup from a key became an element"
    );
    let status = element(&dom, "footer", "status", "</footer>");
    assert!(status.contains("8 operations"), "{status}");
    // Client ids 3 (after 2's unknown put) and 4 (after 0 finished) reuse lanes: 5 ids, 3 rows.
    assert!(status.contains("5 client ids in 3 lanes"), "{status}");

    // The stale read's key, with every operation on it, the read among them.
    let per_key = element(&dom, "div", "per-key", "</section>");
    assert!(per_key.contains("data-key=\"a\""), "{per_key}");
    assert!(
        per_key.contains("data-op=\"7\"") && per_key.contains("data-op=\"0\""),
        "{per_key}"
    );
    assert!(
        !per_key.contains("data-op=\"2\""),
        "the put of b is not an operation on a:\n{per_key}"
    );
    // Latency (one dot per answered operation) and throughput, faults shaded on both.
    let charts = element(&dom, "div", "charts", "</section>");
    for plot in ["latency-plot", "throughput-plot"] {
        assert!(charts.contains(&format!("id=\"{plot}\"")), "{charts}");
    }
    let answered = history
        .ops
        .iter()
        .filter(|op| op.return_ns.is_some() && !matches!(op.outcome, Outcome::Unknown { .. }))
        .count();
    assert_eq!(
        charts.matches("class=\"dot\"").count(),
        answered,
        "one dot per answered operation:\n{charts}"
    );
    assert_eq!(
        charts.matches("class=\"fault\"").count(),
        2 * history_fault_spans(&dom),
        "every fault span shaded on both charts:\n{charts}"
    );
    assert!(charts.contains("class=\"bar\""), "{charts}");

    maybe_screenshot(&page, &dir.0);

    // A link to one operation opens the report focused on it, with its details shown.
    let mut focused = page.into_os_string();
    focused.push("#op-7");
    let (dom, _) = chromium(Path::new(&focused), &dir.0.join("profile-focus"), None);
    let details = element(&dom, "div", "details", "</section>");
    assert!(
        details.contains("data-op=\"7\""),
        "details of op 7 expected:\n{details}"
    );
    assert!(details.contains("get \"a\""), "{details}");
}

/// The number of fault spans the report's data blob carries.
fn history_fault_spans(dom: &str) -> usize {
    let start = dom.find("id=\"kvsim-data\">").expect("data blob") + "id=\"kvsim-data\">".len();
    let end = start + dom[start..].find("</script>").expect("blob end");
    let blob: serde_json::Value =
        serde_json::from_str(&dom[start..end].replace("&quot;", "\"")).expect("blob JSON");
    blob["spans"].as_array().map_or(0, Vec::len)
}

/// For a human look at the layout: `KVSIM_REPORT_SCREENSHOT=/tmp/report.png` keeps a screenshot
/// and a copy of the page beside it.
fn maybe_screenshot(page: &Path, dir: &Path) {
    if let Some(png) = std::env::var_os("KVSIM_REPORT_SCREENSHOT") {
        chromium(page, &dir.join("profile-shot"), Some(Path::new(&png)));
        std::fs::copy(page, Path::new(&png).with_extension("html")).expect("keep the page");
    }
}

/// Size and draw time of a large generated report, for the figures in src/report/mod.rs:
/// `cargo test --test report_browser -- --ignored --nocapture` (KVSIM_REPORT_OPS=100000 for 100k).
#[test]
#[ignore = "measurement; run explicitly"]
fn large_report_size_and_render_time() {
    let ops: usize = std::env::var("KVSIM_REPORT_OPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dir = TempDir::new("large");
    let history = kvsim_checker::generate::generate_mvcc_history(7, ops, 8, 0.05);
    // Linearizable by construction (see generate.rs); checking 100k ops here would only add time.
    let result = CheckResult::Linearizable;
    let rendered = Instant::now();
    let (page, bytes) = write_report(&dir.0, &history, &result, &[]);
    let render_s = rendered.elapsed().as_secs_f64();
    let (dom, wall) = chromium(&page, &dir.0.join("profile"), None);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the report's script did not finish"
    );
    let script_ms = body_number(&dom, "render-ms");
    let draw_ms = body_number(&dom, "draw-ms");
    let loaded_ms = body_number(&dom, "since-navigation-ms");
    println!(
        "{ops} ops: {bytes} bytes ({:.1} bytes/op), render_html {render_s:.2} s (test profile); in chromium: \
         page ready {loaded_ms:.0} ms after navigation, script {script_ms:.0} ms, one full draw {draw_ms:.0} ms; \
         chromium wall {:.2} s",
        bytes as f64 / ops as f64,
        wall.as_secs_f64()
    );
    assert!(loaded_ms < 30_000.0, "the page took {loaded_ms} ms");
    maybe_screenshot(&page, &dir.0);
}
