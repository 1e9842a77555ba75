//! `kvsim check` end to end: verdicts, exit codes, JSON output, and errors on bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn kvsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args(args)
        .output()
        .expect("kvsim runs")
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/histories")
        .join(name)
        .display()
        .to_string()
}

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvsim-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn linearizable_register_history_exits_0() {
    let out = kvsim(&["check", &example("register-ok.log")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("linearizable"), "{stdout}");
}

#[test]
fn stale_read_exits_1_and_names_the_violation() {
    let out = kvsim(&["check", &example("register-stale-read.log")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}");
    assert!(stdout.contains("not-linearizable"), "{stdout}");
}

#[test]
fn json_output_has_one_object_per_file() {
    let out = kvsim(&[
        "check",
        "--json",
        &example("register-ok.log"),
        &example("register-stale-read.log"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["verdict"], "linearizable");
    assert_eq!(objects[1]["verdict"], "not-linearizable");
    for object in &objects {
        assert!(
            object["file"].is_string() && object["ops"].is_u64() && object["elapsed_ms"].is_u64(),
            "{object}"
        );
    }
}

#[test]
fn malformed_line_exits_2_naming_file_and_line() {
    let path = temp_file(
        "bad.log",
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:okay\t:write\t1\n",
    );
    let out = kvsim(&["check", "--format", "jepsen", path.to_str().unwrap()]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("bad.log:2"),
        "error must name file and line: {all}"
    );
}

#[test]
fn missing_path_exits_2() {
    let out = kvsim(&["check", "/nonexistent/kvsim/history.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kvsim/history.jsonl"));
}

#[test]
fn bad_usage_exits_2() {
    let out = kvsim(&["check", "--model", "nonsense", &example("register-ok.log")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tiny_timeout_gives_unknown_or_a_verdict_never_a_hang() {
    // A zero-ish budget must end in exit 3 (unknown) or a real verdict, promptly.
    let out = kvsim(&[
        "check",
        "--timeout",
        "0.000001",
        &example("register-ok.log"),
    ]);
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "{out:?}");
}
