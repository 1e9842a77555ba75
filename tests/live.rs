//! `kvsim live` as users run it, against real etcd 3.4 members (Debian's etcd-server):
//! - a short run on 3 spawned members with kills and pauses (and, as root, a partition) records a
//!   few hundred operations, unknown outcomes, watch streams and lock / election recipe steps, and
//!   every checker passes it;
//!   the same history with one read altered is reported by `kvsim check` (the live history is
//!   judged for real, not vacuously);
//! - a run against an existing cluster (`--endpoints`) injects no faults and passes;
//! - Ctrl-C stops and removes the spawned members.
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
/// leader killed, a member paused, a follower killed, the leader isolated, then one member cut
/// off one way (when partitions are available; otherwise recorded as skipped).
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
kind = "pause"
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
    let output = kvsim()
        .args([
            "live",
            "--spawn",
            "3",
            "--etcd-bin",
            ETCD_BIN,
            "--seed",
            "7",
        ])
        .arg("--scenario")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("kvsim runs");
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("verdict: ok"), "{printed}");

    let records = records(&out.join("history.jsonl"));
    let of_type = |kind: &'static str| records.iter().filter(move |r| r["type"] == kind);
    let ops = of_type("invoke").count();
    assert!(ops >= 300, "only {ops} operations:\n{printed}");
    let unknown = of_type("unknown").count();
    assert!(unknown >= 1, "no unknown outcome among {ops} operations");
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
    assert!(out.join("report.html").is_file());

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

#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn an_existing_cluster_is_run_without_faults() {
    require_etcd();
    let dir = scratch("endpoints");
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut etcd = Command::new(ETCD_BIN)
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
    let output = kvsim()
        .args([
            "live",
            "--endpoints",
            &endpoint,
            "--duration",
            "4s",
            "--seed",
            "3",
        ])
        .args(["--scenario", "scenarios/live.toml"])
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .expect("kvsim runs");
    etcd.kill().ok();
    etcd.wait().ok();
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("faults: none"), "{printed}");
    let records = records(&dir.join("out/history.jsonl"));
    assert!(records.iter().filter(|r| r["type"] == "invoke").count() >= 50);
    assert!(!records.iter().any(|r| r["type"] == "fault"));
    std::fs::remove_dir_all(&dir).ok();
}

fn free_port() -> u16 {
    // Two consecutive free ports (client, peer), away from the spawner's range.
    for port in (41_000..42_000).step_by(2) {
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 1) {
            return port;
        }
    }
    panic!("no free loopback port pair in 41000..42000")
}

#[test]
#[ignore = "needs a real etcd (apt-get install etcd-server); .ci/run runs it with --ignored"]
fn ctrl_c_stops_and_removes_the_spawned_members() {
    require_etcd();
    let dir = scratch("ctrl-c");
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
    let started = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("kvsim printed the spawn line before exiting")
            .expect("utf-8");
        if line.starts_with("etcd: spawned 3 member(s)") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no spawn line");
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        members_of(pid) > 0,
        "the members of kvsim {pid} should be running"
    );
    let signal = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(signal.success());
    let status = child.wait().expect("kvsim exits");
    assert_eq!(status.code(), Some(130));
    assert_eq!(members_of(pid), 0, "members left running after Ctrl-C");
    std::fs::remove_dir_all(&dir).ok();
}

/// etcd processes whose data directory belongs to kvsim process `pid` (kvsim-etcd-<pid>-*).
fn members_of(pid: u32) -> usize {
    let output = Command::new("pgrep")
        .args(["-f", &format!("kvsim-etcd-{pid}-")])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&output.stdout).lines().count()
}
