//! `kvsim live` as users run it, against real etcd 3.4 members (Debian's etcd-server):
//! - a short run on 3 spawned members with kills and pauses (and, as root, a partition) records a
//!   few hundred operations, unknown outcomes, who answered each (member and Raft term), watch
//!   streams and lock / election recipe steps, and
//!   every checker passes it;
//!   the same history with one read altered is reported by `kvsim check` (the live history is
//!   judged for real, not vacuously);
//! - a run against an existing cluster (`--endpoints`) injects no faults and passes, also when an
//!   earlier run left keys, revisions, a compaction and leases on it (issue 13: this was a false
//!   violation); a non-empty `--prefix` is refused (exit 2); a run too short to test anything is
//!   inconclusive (exit 3); a dead endpoint is refused (exit 2; it was "ok", exit 0);
//! - liveness is judged in a default spawned run (the quiet window at its end);
//! - watchers that ask for progress find etcd 3.4.23's etcd#15220 (watch.bookmarkable);
//! - SIGINT, SIGTERM and SIGHUP stop and remove the members, namespaces, bridge, rules and data,
//!   and the interrupted run's history stays on disk, readable by `kvsim check`.
//!
//! Needs /usr/bin/etcd (Debian's etcd-server). The tests are `#[ignore]`d in a plain `cargo test`;
//! `.ci/run` installs etcd and runs them with `--ignored`, and without etcd they fail: nothing
//! else can stand in for a real etcd.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ETCD_BIN: &str = "/usr/bin/etcd";

/// Fails loudly when the referee is missing: these tests are `#[ignore]`d in a plain
/// `cargo test` and run by `.ci/run` with `--ignored`, which installs etcd first.
fn require_etcd() {
    assert!(
        Path::new(ETCD_BIN).is_file(),
        "{ETCD_BIN} is absent: apt-get install etcd-server (this test does not skip)"
    );
}

fn kvsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kvsim"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvsim-live-test-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The records of a history.jsonl after its header line.
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("history written");
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("JSON record"))
        .collect()
}

/// The workload of scenarios/live.toml (with the lock and election recipes), 20 s, with fixed faults instead of random ones: the
/// leader killed, a follower paused, a follower killed, the leader isolated, then one member cut
/// off one way (when partitions are available; otherwise recorded as skipped).
///
/// Watchers ask for no progress notifications: etcd 3.4.23 has etcd#15220, which
/// `etcd_3_4_23_sends_requested_progress_ahead_of_a_catching_up_watcher` is about.
///
/// A follower, not any member, is paused: Debian's etcd 3.4.23 has etcd#15247 (fixed in 3.4.31):
/// a paused leader resumes believing it still leads, its lessor revokes leases its successor
/// renewed, and kvsim rightly reports that as a violation (one run in six here: a lease renewed
/// with TTL 3 s was gone 0.2 s later). That finding is not this test's subject.
const SCENARIO: &str = r#"
description = "live test: kills, a pause, a partition, a one-way cut"
[workload]
clients = 6
keys = 12
duration_ms = 20000
request_timeout_ms = 1000
think_ms_max = 10
lease_ttl_s = 3
compact_depth_revisions = 200
watchers = 3
watch_progress_request_probability = 0
lockers = 2
campaigners = 1
[faults]
interval_ms = 0
settle_ms = 3000
[[faults.timeline]]
at_ms = 3000
kind = "crash_leader"
duration_ms = 3000
[[faults.timeline]]
at_ms = 8000
kind = "pause_follower"
duration_ms = 2000
[[faults.timeline]]
at_ms = 12000
kind = "crash_one"
duration_ms = 2000
[[faults.timeline]]
at_ms = 15000
kind = "isolate_leader"
duration_ms = 2500
[[faults.timeline]]
at_ms = 17700
kind = "one_way"
duration_ms = 1500
"#;

#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn a_short_live_run_with_kills_and_pauses_passes_every_checker() {
    require_etcd();
    let dir = scratch("run");
    let scenario = dir.join("live-test.toml");
    std::fs::write(&scenario, SCENARIO).expect("scenario written");
    let out = dir.join("out");
    // A real etcd answers ~17,000 operations in this run; with the other live tests beside it on
    // 2 cores the default 60 s search budget can end `unknown` (seen once).
    let output = live_spawned("7", &scenario, &out, &["--check-timeout", "300s"]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("verdict: ok"), "{printed}");

    let records = records(&out.join("history.jsonl"));
    let of_type = |kind: &'static str| records.iter().filter(move |r| r["type"] == kind);
    let ops = of_type("invoke").count();
    assert!(ops >= 300, "only {ops} operations:\n{printed}");
    let unknown = of_type("unknown").count();
    assert!(unknown >= 1, "no unknown outcome among {ops} operations");
    // Who answered: the member and the Raft term of etcd's response header (no role: etcd's
    // header has none), for most answers (not for errors).
    let served: Vec<&Value> = of_type("served_by").collect();
    assert!(
        served.len() >= ops / 2,
        "{} served_by records for {ops} operations",
        served.len()
    );
    assert!(
        served
            .iter()
            .all(|r| r["raft_term"].as_u64() >= Some(1) && r.get("role").is_none()),
        "{:?}",
        served.first()
    );
    let terms: std::collections::BTreeSet<u64> = served
        .iter()
        .filter_map(|r| r["raft_term"].as_u64())
        .collect();
    assert!(
        terms.len() >= 2,
        "the killed leader's successor has a higher term: {terms:?}"
    );
    let responses = of_type("watch")
        .filter(|r| r["action"] == "response")
        .count();
    assert!(responses >= 1, "no watch response recorded");
    let events: usize = of_type("watch")
        .filter_map(|r| r["events"].as_array().map(Vec::len))
        .sum();
    assert!(events >= 10, "only {events} watch events");
    let faults: Vec<&str> = of_type("fault")
        .filter_map(|r| r["kind"].as_str())
        .collect();
    for kind in ["crash", "restart", "pause", "resume", "heal_all"] {
        assert!(faults.contains(&kind), "no {kind} fault in {faults:?}");
    }
    for kind in ["partition", "partition_one_way"] {
        assert!(
            faults.contains(&kind) || printed.contains("partitions skipped: "),
            "no {kind} fault, and partitions not reported skipped:\n{printed}"
        );
    }
    let recipe_actions: Vec<&str> = of_type("recipe")
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in ["acquire", "fenced_write", "elected"] {
        assert!(
            recipe_actions.contains(&action),
            "no recipe {action} in {recipe_actions:?}"
        );
    }
    let final_state = of_type("final_state").next().expect("final_state record");
    assert_eq!(final_state["nodes"].as_array().map(Vec::len), Some(3));

    let verdict: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("verdict.json")).expect("verdict written"),
    )
    .expect("verdict JSON");
    assert_eq!(verdict["status"], "ok");
    assert_eq!(
        verdict["checkers"],
        serde_json::json!(["linearizability", "watch", "durability", "recipes", "raft"])
    );
    // The quiet window after the faults gives liveness a healed window to judge.
    let liveness = verdict["coverage"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["checker"] == "liveness"))
        .expect("liveness coverage");
    assert!(
        liveness["judged"].as_u64() >= Some(1),
        "liveness judged nothing: {liveness}\n{printed}"
    );
    assert!(printed.contains("liveness: "), "{printed}");
    assert!(out.join("report.html").is_file());
    // What etcd itself said stays beside the history.
    for id in 1..=3 {
        let log = out.join(format!("members/n{id}.log"));
        let size = std::fs::metadata(&log).map_or(0, |meta| meta.len());
        assert!(size > 0, "{} missing or empty:\n{printed}", log.display());
        // A passing run's data directories are removed; only a violation keeps them.
        let data = out.join(format!("members/n{id}.etcd"));
        assert!(!data.exists(), "{} kept on a passing run", data.display());
    }

    // The same history with one successful read's value altered must not pass.
    let history = std::fs::read_to_string(out.join("history.jsonl")).expect("history");
    let tampered = tamper_one_read(&history).expect("some read returned a value");
    let tampered_path = dir.join("tampered.jsonl");
    std::fs::write(&tampered_path, tampered).expect("written");
    let check = kvsim()
        .args(["check", "--only", "linearizability"])
        .arg(&tampered_path)
        .output()
        .expect("kvsim check runs");
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    std::fs::remove_dir_all(&dir).ok();
}

/// etcd#15220 in the etcd this suite runs (Debian's 3.4.23; fixed upstream by etcd PR #15237):
/// etcd answers a progress request on the stream's control channel at its current revision,
/// ahead of events still on their way to a watcher that is catching up, so the notification
/// vouches for revisions whose events arrive after it. kvsim plants that bug in its own store
/// (`watch_progress_unsynced`); here its watch checker finds it in the real thing
/// (`watch.bookmarkable`; `watch.reliable` where the watcher resumed before the late events came).
#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn etcd_3_4_23_sends_requested_progress_ahead_of_a_catching_up_watcher() {
    require_etcd();
    let version = Command::new(ETCD_BIN)
        .arg("--version")
        .output()
        .expect("etcd --version runs");
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(
        version.contains("etcd Version: 3.4.23"),
        "this test pins etcd 3.4.23, which has etcd#15220; on another etcd decide what it \
         should expect:\n{version}"
    );
    let dir = scratch("progress");
    let out = dir.join("out");
    let scenario = Path::new("scenarios/watch-progress.toml");
    let output = live_spawned("1", scenario, &out, &["--duration", "8s"]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    let verdict: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("verdict.json")).expect("verdict written"),
    )
    .expect("verdict JSON");
    let properties: Vec<&str> = verdict["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|finding| finding["property"].as_str())
        .collect();
    assert!(
        properties.contains(&"watch.bookmarkable"),
        "{properties:?}\n{printed}"
    );
    assert!(
        properties
            .iter()
            .all(|p| ["watch.bookmarkable", "watch.reliable"].contains(p)),
        "a finding beyond etcd#15220's: {properties:?}\n{printed}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// What `kvsim live` does with a violation's members: stopped, their logs copied, then their data
/// directories (WAL and snapshots) moved into the report, and nothing left in the temporary
/// directory. The verdict's side of it is `session::finish_members`.
#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn a_violations_members_keep_their_data_directories() {
    require_etcd();
    let dir = scratch("keep-data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut cluster = runtime
        .block_on(kvsim::live::etcd_process::EtcdCluster::spawn(
            1,
            Path::new(ETCD_BIN),
            None,
        ))
        .expect("one member starts");
    let members = dir.join("members");
    let logs = cluster.stop_keeping_logs(&members).expect("logs copied");
    assert_eq!(logs, vec![members.join("n1.log")]);
    let kept = cluster.keep_data(&members).expect("data kept");
    assert_eq!(kept, vec![members.join("n1.etcd")]);
    let wal = members.join("n1.etcd/member/wal");
    let wal_files = std::fs::read_dir(&wal)
        .unwrap_or_else(|error| panic!("{}: {error}", wal.display()))
        .count();
    assert!(wal_files >= 1, "{} is empty", wal.display());
    let prefix = format!("kvsim-etcd-{}-", std::process::id());
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left in the temporary directory: {left:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The history with the value of the first successful linearizable single-key read that found a
/// key replaced by one no client ever wrote.
fn tamper_one_read(history: &str) -> Option<String> {
    let mut lines: Vec<String> = history.lines().map(str::to_string).collect();
    let mut reads = std::collections::BTreeSet::new();
    for line in lines.iter_mut().skip(1) {
        let mut record: Value = serde_json::from_str(line).ok()?;
        let input = &record["input"];
        if record["type"] == "invoke"
            && input["op"] == "range"
            && input["range_end"] == ""
            && input["revision"] == 0
            && input["serializable"] == false
        {
            reads.insert(record["id"].as_u64()?);
            continue;
        }
        if record["type"] != "ok" || !record["id"].as_u64().is_some_and(|id| reads.contains(&id)) {
            continue;
        }
        let Some(kv) = record
            .pointer_mut("/output/ok/kvs/0/value")
            .filter(|value| value.is_string())
        else {
            continue;
        };
        *kv = Value::String("never-written".to_string());
        *line = record.to_string();
        return Some(lines.join("\n") + "\n");
    }
    None
}

/// A single etcd member of the test's own on a free loopback port; killed when dropped.
struct SoloEtcd {
    child: Child,
    endpoint: String,
}

impl SoloEtcd {
    fn start(dir: &Path) -> SoloEtcd {
        let port = free_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let child = Command::new(ETCD_BIN)
            .args(["--name", "solo", "--data-dir"])
            .arg(dir.join("solo.etcd"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", port + 1),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", port + 1),
            ])
            .args([
                "--initial-cluster",
                &format!("solo=http://127.0.0.1:{}", port + 1),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd starts");
        // Serving once its client port accepts connections (a fresh member takes ~1 s).
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "etcd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        SoloEtcd { child, endpoint }
    }
}

impl Drop for SoloEtcd {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `kvsim live --spawn 3 --etcd-bin ETCD_BIN --seed SEED --scenario SCENARIO --out OUT EXTRA..`
fn live_spawned(seed: &str, scenario: &Path, out: &Path, extra: &[&str]) -> Output {
    kvsim()
        .args([
            "live",
            "--spawn",
            "3",
            "--etcd-bin",
            ETCD_BIN,
            "--seed",
            seed,
        ])
        .arg("--scenario")
        .arg(scenario)
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .expect("kvsim runs")
}

/// `kvsim live --endpoints ENDPOINT --scenario scenarios/live.toml --seed SEED --duration D`
/// with `extra` arguments, writing to `out`.
fn live_against(endpoint: &str, seed: &str, duration: &str, out: &Path, extra: &[&str]) -> Output {
    kvsim()
        .args(["live", "--endpoints", endpoint, "--duration", duration])
        .args(["--seed", seed, "--scenario", "scenarios/live.toml"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .expect("kvsim runs")
}

#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn an_existing_cluster_is_run_without_faults() {
    require_etcd();
    let dir = scratch("endpoints");
    let etcd = SoloEtcd::start(&dir);
    let output = live_against(&etcd.endpoint, "3", "4s", &dir.join("out"), &["--json"]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("faults: none"), "{printed}");
    // `--json`: stdout is one object; the human lines above went to stderr.
    let json: Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim())
        .unwrap_or_else(|error| panic!("{error}: {printed}"));
    assert_eq!(
        (json["command"].as_str(), json["status"].as_str()),
        (Some("live"), Some("ok"))
    );
    assert_eq!(json["exit"], 0, "{json}");
    assert!(
        printed.contains("warning: writing to a cluster kvsim did not spawn"),
        "{printed}"
    );
    let records = records(&dir.join("out/history.jsonl"));
    assert!(records.iter().filter(|r| r["type"] == "invoke").count() >= 50);
    assert!(!records.iter().any(|r| r["type"] == "fault"));
    // No command overwrites a report directory.
    let again = live_against(&etcd.endpoint, "3", "4s", &dir.join("out"), &[]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    drop(etcd);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 13's first reproduction: a second run against a cluster an earlier run wrote to (keys,
/// a higher revision, a compaction, leases) was judged as if the store were empty and reported a
/// linearizability violation with a 0-operation prefix. Each run now works under a fresh prefix
/// at translated revisions; a prefix that is not empty is refused.
#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn a_cluster_an_earlier_run_wrote_to_is_judged_correctly() {
    require_etcd();
    let dir = scratch("non-empty");
    let etcd = SoloEtcd::start(&dir);
    let first = live_against(&etcd.endpoint, "2", "5s", &dir.join("first"), &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let second = live_against(&etcd.endpoint, "2", "5s", &dir.join("second"), &[]);
    let printed = text(&second);
    assert_eq!(second.status.code(), Some(0), "{printed}");
    assert!(printed.contains("verdict: ok"), "{printed}");
    // The second run really ran on a used cluster: it started above revision 1.
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("second/history.jsonl"))
            .expect("history")
            .lines()
            .next()
            .expect("header"),
    )
    .expect("JSON header");
    let initial = &header["meta"]["initial"];
    assert!(initial["revision"].as_i64() > Some(100), "{header}");
    assert_eq!(initial["keys_under_prefix"], 0);

    // A prefix that holds keys (the first run's) is refused, exit 2.
    let prefix = header_of(&dir.join("first/history.jsonl"))["meta"]["initial"]["prefix"]
        .as_str()
        .expect("the first run's prefix")
        .to_string();
    let refused = live_against(
        &etcd.endpoint,
        "2",
        "5s",
        &dir.join("third"),
        &["--prefix", &prefix],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("already exist under it"),
        "{}",
        text(&refused)
    );

    // A run that tests too little (one slow client for 2 s) is inconclusive, not ok.
    let slow = dir.join("slow.toml");
    std::fs::write(
        &slow,
        "description = \"one slow client\"\n[workload]\nclients = 1\nkeys = 4\n\
         duration_ms = 2000\nthink_ms_max = 400\nrequest_timeout_ms = 1000\n\
         watch_progress_request_probability = 0\n",
    )
    .expect("scenario written");
    let short = kvsim()
        .args(["live", "--endpoints", &etcd.endpoint, "--seed", "2"])
        .arg("--scenario")
        .arg(&slow)
        .arg("--out")
        .arg(dir.join("short"))
        .output()
        .expect("kvsim runs");
    let printed = text(&short);
    assert_eq!(short.status.code(), Some(3), "{printed}");
    assert!(printed.contains("too little tested"), "{printed}");
    let verdict: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("short/verdict.json")).expect("verdict written"),
    )
    .expect("verdict JSON");
    assert_eq!(verdict["status"], "inconclusive");
    assert_eq!(verdict["inconclusive"][0]["kind"], "too_little_tested");
    drop(etcd);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 13's second reproduction: against a dead endpoint every operation failed and the run
/// passed (exit 0). Nothing can be tested there: refused, exit 2, saying why.
#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn a_dead_endpoint_is_not_a_pass() {
    require_etcd();
    let dir = scratch("dead");
    let output = live_against("http://127.0.0.1:1", "2", "3s", &dir.join("out"), &[]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(printed.contains("no etcd member answered"), "{printed}");
    assert!(!printed.contains("verdict: ok"), "{printed}");
    std::fs::remove_dir_all(&dir).ok();
}

fn header_of(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("history written");
    serde_json::from_str(text.lines().next().expect("a header")).expect("JSON header")
}

fn free_port() -> u16 {
    // Two consecutive free ports (client, peer), away from the spawner's range; tests of one
    // process take different pairs (a pair is free until its etcd binds it).
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(41_000);
    while let Ok(port) = NEXT.fetch_update(
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
        |port| (port < 42_000).then_some(port + 2),
    ) {
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 1) {
            return port;
        }
    }
    panic!("no free loopback port pair in 41000..42000")
}

#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn sigint_stops_and_removes_the_spawned_members() {
    interrupted_run_cleans_up_and_keeps_its_history("INT");
}

/// Issue 13's third and fourth reproductions: SIGTERM (what `timeout` and CI runners send) left
/// three members, three namespaces, a bridge, a FORWARD rule and the data behind, and no
/// interrupted run kept its history.
#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn sigterm_stops_and_removes_everything_and_keeps_the_history() {
    interrupted_run_cleans_up_and_keeps_its_history("TERM");
}

#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn sighup_stops_and_removes_everything() {
    interrupted_run_cleans_up_and_keeps_its_history("HUP");
}

fn interrupted_run_cleans_up_and_keeps_its_history(signal: &str) {
    require_etcd();
    let dir = scratch(&format!("signal-{signal}"));
    let out = dir.join("out");
    let mut child: Child = kvsim()
        .args([
            "live",
            "--spawn",
            "3",
            "--etcd-bin",
            ETCD_BIN,
            "--duration",
            "60s",
        ])
        .args(["--scenario", "scenarios/live.toml"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kvsim starts");
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("kvsim printed the prefix line before exiting")
            .expect("utf-8");
        if line.starts_with("prefix: ") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no prefix line"
        );
    }
    // Long enough for operations and the first journal snapshot.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        members_of(pid) > 0,
        "the members of kvsim {pid} should be running"
    );
    let isolated = is_root();
    if isolated {
        assert!(namespaces_of(pid) > 0, "members run in namespaces as root");
    }
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = child.wait().expect("kvsim exits");
    assert_eq!(status.code(), Some(130), "SIG{signal}");
    assert_eq!(members_of(pid), 0, "members left running after SIG{signal}");
    assert_eq!(namespaces_of(pid), 0, "namespaces left after SIG{signal}");
    let marker = format!("kvb{pid}x");
    assert!(
        !command_text("ip", &["link", "show"]).contains(&marker),
        "bridge left after SIG{signal}"
    );
    if isolated {
        assert!(
            !command_text("iptables", &["-S", "FORWARD"]).contains(&marker),
            "FORWARD rule left after SIG{signal}"
        );
    }
    let data_left = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("kvsim-etcd-{pid}-"))
        })
        .count();
    assert_eq!(data_left, 0, "data directories left after SIG{signal}");

    // The interrupted run's history is on disk, and `kvsim check` judges it.
    let history = out.join("history.jsonl");
    let recorded = records(&history);
    let ops = recorded.iter().filter(|r| r["type"] == "invoke").count();
    assert!(ops >= 10, "only {ops} operations kept after SIG{signal}");
    let check = kvsim()
        .args(["check", "--only", "linearizability"])
        .arg(&history)
        .output()
        .expect("kvsim check runs");
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    std::fs::remove_dir_all(&dir).ok();
}

/// A SIGKILLed run cannot clean up after itself: `kvsim live --cleanup` removes its members,
/// namespaces, bridge, rules and data by kvsim's markers.
#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn cleanup_removes_what_a_killed_run_left() {
    require_etcd();
    let dir = scratch("killed");
    let mut child: Child = kvsim()
        .args([
            "live",
            "--spawn",
            "3",
            "--etcd-bin",
            ETCD_BIN,
            "--duration",
            "60s",
        ])
        .args(["--scenario", "scenarios/live.toml"])
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kvsim starts");
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("a prefix line").expect("utf-8");
        if line.starts_with("prefix: ") {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    child.wait().expect("kvsim exits");
    assert!(members_of(pid) > 0, "a SIGKILLed run leaves its members");
    let cleanup = kvsim()
        .args(["live", "--cleanup"])
        .output()
        .expect("kvsim runs");
    assert_eq!(cleanup.status.code(), Some(0), "{}", text(&cleanup));
    assert!(
        text(&cleanup).contains("removed etcd process"),
        "{}",
        text(&cleanup)
    );
    assert_eq!(members_of(pid), 0, "members left after --cleanup");
    assert_eq!(namespaces_of(pid), 0, "namespaces left after --cleanup");
    let marker = format!("kvb{pid}x");
    assert!(!command_text("ip", &["link", "show"]).contains(&marker));
    if is_root() {
        assert!(!command_text("iptables", &["-S", "FORWARD"]).contains(&marker));
    }
    let data_left = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("kvsim-etcd-{pid}-"))
        })
        .count();
    assert_eq!(data_left, 0, "data directories left after --cleanup");
    std::fs::remove_dir_all(&dir).ok();
}

fn is_root() -> bool {
    command_text("id", &["-u"]).trim() == "0"
}

fn command_text(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} runs: {error}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Network namespaces of kvsim process `pid` (kvsim-<pid>-<serial>-n<id>).
fn namespaces_of(pid: u32) -> usize {
    command_text("ip", &["netns", "list"])
        .lines()
        .filter(|line| line.starts_with(&format!("kvsim-{pid}-")))
        .count()
}

/// etcd processes whose data directory belongs to kvsim process `pid` (kvsim-etcd-<pid>-*).
fn members_of(pid: u32) -> usize {
    let output = Command::new("pgrep")
        .args(["-f", &format!("kvsim-etcd-{pid}-")])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&output.stdout).lines().count()
}
