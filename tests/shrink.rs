//! `kvsim shrink` end to end, in separate processes: a planted-bug failure shrinks to a scenario
//! that `kvsim run` alone shows failing the same property, with fewer operations, faults and
//! clients; a passing seed is refused. Plus ddmin itself on a synthetic predicate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kvsim::shrink::ddmin::{ddmin, Probe};

fn kvsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args(args)
        .output()
        .expect("kvsim runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvsim-shrink-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// `stats.ops` and the number of fault records from a run directory's summary.json.
fn ops_and_fault_records(dir: &Path) -> (u64, u64) {
    let path = dir.join("summary.json");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let stats = &summary["stats"];
    let faults = stats["faults_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    (stats["ops"].as_u64().unwrap(), faults)
}

fn clients_of(scenario: &Path) -> i64 {
    let table: toml::Table = std::fs::read_to_string(scenario).unwrap().parse().unwrap();
    table
        .get("workload")
        .and_then(|workload| workload.get("clients"))
        .and_then(|clients| clients.as_integer())
        .unwrap_or(8)
}

/// watch_duplicate is caught by seed 0 of watch.toml (tests/bugs.rs DETECTING_SEEDS) within the
/// first watch responses, so its shrink is quick; the budget bounds the test anyway.
#[test]
fn a_planted_bug_shrinks_to_a_smaller_scenario_that_still_fails_the_same_property() {
    let dir = scratch("watch-duplicate");
    let scenario = scenarios_dir().join("watch.toml");
    let scenario = scenario.to_str().unwrap();
    let original = dir.join("original");
    let run = kvsim(&[
        "run",
        "--scenario",
        scenario,
        "--seed",
        "0",
        "--bug",
        "watch_duplicate",
        "--out",
        original.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(text(&run).contains("watch.unique"), "{}", text(&run));

    let out = dir.join("shrunk");
    let shrink = kvsim(&[
        "shrink",
        "--scenario",
        scenario,
        "--seed",
        "0",
        "--bug",
        "watch_duplicate",
        "--property",
        "watch.unique",
        "--out",
        out.to_str().unwrap(),
        "--time-budget",
        "40s",
        "--tries-per-candidate",
        "2",
    ]);
    let shown = text(&shrink);
    assert_eq!(shrink.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("operations ") && shown.contains(" -> "),
        "{shown}"
    );
    let reproduce = shown
        .lines()
        .find_map(|line| line.strip_prefix("reproduce: kvsim "))
        .unwrap_or_else(|| panic!("no reproduce line:\n{shown}"));
    for file in [
        "shrunk.toml",
        "history.jsonl",
        "verdict.json",
        "report.html",
        "shrink.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing:\n{shown}");
    }

    // (a) The printed line alone reproduces the same property.
    let rerun_dir = dir.join("rerun");
    let mut args: Vec<&str> = reproduce.split_whitespace().collect();
    args.extend(["--out", rerun_dir.to_str().unwrap()]);
    let rerun = kvsim(&args);
    let rerun_text = text(&rerun);
    assert_eq!(rerun.status.code(), Some(1), "{rerun_text}");
    assert!(
        rerun_text.contains("VIOLATION of") && rerun_text.contains("watch.unique"),
        "{rerun_text}"
    );
    assert_eq!(
        std::fs::read(out.join("history.jsonl")).unwrap(),
        std::fs::read(rerun_dir.join("history.jsonl")).unwrap(),
        "the shrink's own minimal run and the rerun are the same run"
    );

    // (b) Strictly smaller in operations, faults and clients.
    let (ops_before, faults_before) = ops_and_fault_records(&original);
    let (ops_after, faults_after) = ops_and_fault_records(&rerun_dir);
    assert!(ops_after < ops_before, "ops {ops_before} -> {ops_after}");
    assert!(
        faults_after < faults_before,
        "fault records {faults_before} -> {faults_after}"
    );
    let (clients_before, clients_after) = (
        clients_of(Path::new(scenario)),
        clients_of(&out.join("shrunk.toml")),
    );
    assert!(
        clients_after < clients_before,
        "clients {clients_before} -> {clients_after}"
    );

    // A second shrink into the same --out never overwrites the first.
    let first = std::fs::read(out.join("shrunk.toml")).unwrap();
    let seed = reproduce.rsplit(' ').next().unwrap();
    let again = kvsim(&[
        "shrink",
        "--scenario",
        out.join("shrunk.toml").to_str().unwrap(),
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
        "--time-budget",
        "5s",
    ]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert_eq!(std::fs::read(out.join("shrunk.toml")).unwrap(), first);
    assert!(dir.join("shrunk-2").join("shrunk.toml").is_file());
}

#[test]
fn a_passing_seed_is_refused_with_exit_2() {
    let dir = scratch("passing");
    let scenario = dir.join("quiet.toml");
    std::fs::write(
        &scenario,
        "[workload]\nduration_ms = 1500\nclients = 2\nwatchers = 0\n[faults]\ninterval_ms = 0\n",
    )
    .unwrap();
    let shrink = kvsim(&[
        "shrink",
        "--scenario",
        scenario.to_str().unwrap(),
        "--seed",
        "3",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(shrink.status.code(), Some(2), "{}", text(&shrink));
    assert!(
        text(&shrink).contains("passes (no property violated)"),
        "{}",
        text(&shrink)
    );
    assert!(
        !dir.join("out").exists(),
        "nothing written for a passing seed"
    );
}

/// A synthetic failure that needs three particular items out of 64, one of them only together
/// with another: ddmin keeps exactly those and probes far fewer subsets than 2^64.
#[test]
fn ddmin_isolates_the_items_a_synthetic_failure_needs() {
    let items: Vec<u32> = (0..64).collect();
    let mut probes = 0;
    let reduced = ddmin(&items, |subset| {
        probes += 1;
        let has = |item| subset.contains(&item);
        if has(5) && has(40) && has(63) {
            Probe::Fails
        } else {
            Probe::Passes
        }
    });
    assert_eq!(reduced.kept, vec![5, 40, 63]);
    assert!(reduced.complete);
    assert_eq!(reduced.probes, probes);
    assert!(probes < 120, "{probes} probes");

    // 1-minimality: removing any kept item makes the failure go away.
    let fails =
        |subset: &[u32]| subset.contains(&5) && subset.contains(&40) && subset.contains(&63);
    for skip in 0..reduced.kept.len() {
        let mut fewer = reduced.kept.clone();
        fewer.remove(skip);
        assert!(!fails(&fewer));
    }

    // A failure that needs nothing reduces to nothing, in one probe.
    let reduced = ddmin(&items, |_| Probe::Fails);
    assert!(reduced.kept.is_empty() && reduced.probes == 1);
}

/// SIGTERM (what `timeout` and CI runners send) stops a shrink between candidates: the smallest
/// failure found so far is still written and reproducible, `shrink.json` says it was
/// interrupted, and the exit code is 143.
#[test]
fn a_shrink_stopped_by_sigterm_keeps_what_it_found() {
    let dir = scratch("sigterm");
    let scenario = scenarios_dir().join("watch.toml");
    let out = dir.join("shrunk");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args([
            "shrink",
            "--scenario",
            scenario.to_str().unwrap(),
            "--seed",
            "0",
            "--bug",
            "watch_duplicate",
            "--out",
            out.to_str().unwrap(),
            "--time-budget",
            "5m",
            "--tries-per-candidate",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kvsim runs");
    // Signal once the first smaller failing candidate is kept (its attempt line says "fails"):
    // the search is then under way, with many candidates still to try.
    use std::io::{BufRead, BufReader, Read};
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut shown = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).expect("stderr reads") > 0 {
        shown.push_str(&line);
        if line.contains(" fails") {
            break;
        }
        line.clear();
    }
    // SAFETY: sending a signal to our own child.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    stderr.read_to_string(&mut shown).expect("stderr reads");
    let output = child.wait_with_output().expect("kvsim exits");
    shown.push_str(&text(&output));
    assert_eq!(output.status.code(), Some(143), "{shown}");
    assert!(shown.contains("stopped by SIGTERM"), "{shown}");
    assert!(out.join("shrunk.toml").is_file(), "{shown}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("shrink.json")).unwrap()).unwrap();
    assert_eq!(record["complete"], false);
    assert_eq!(record["interrupted"], "SIGTERM");
}
