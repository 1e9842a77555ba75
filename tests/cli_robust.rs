//! The command line never panics: extreme flag values are refused with exit 2, a closed stdout
//! pipe ends a command quietly with its usual exit code, a signal to a campaign keeps what ran,
//! a simulation panic is a finding, `run` never overwrites, `check` refuses what is not a file,
//! and strict reading refuses what could hide a violation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn kvsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args(args)
        .output()
        .expect("kvsim runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvsim-cli-robust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

/// A short scenario (every knob at its default but the run length), so a seed takes a second.
fn short_scenario(dir: &Path) -> String {
    let path = dir.join("short.toml");
    std::fs::write(
        &path,
        "description = \"short\"\n[workload]\nduration_ms = 3000\n",
    )
    .unwrap();
    path.display().to_string()
}

fn assert_no_panic(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(101),
        "{what}: exit 101\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panicked\n{stderr}");
}

#[test]
fn extreme_durations_are_refused_with_exit_2_on_every_command() {
    let dir = scratch("durations");
    let scenario = short_scenario(&dir);
    let history = repo("examples/histories/register-ok.log");
    for value in ["1e20", "inf", "nan", "0", "0s", "0.0001", "1000000h", "5x"] {
        let cases: Vec<Vec<&str>> = vec![
            vec!["check", "--timeout", value, &history],
            vec![
                "run",
                "--scenario",
                &scenario,
                "--seed",
                "0",
                "--check-timeout",
                value,
            ],
            vec![
                "fuzz",
                "--scenario",
                &scenario,
                "--seeds",
                "0..2",
                "--check-timeout",
                value,
            ],
            vec![
                "fuzz",
                "--scenario",
                &scenario,
                "--seeds",
                "0..2",
                "--time-budget",
                value,
            ],
            vec!["replay", "--check-timeout", value, dir.to_str().unwrap()],
            vec!["bugs", "--measure", "--check-timeout", value],
            vec![
                "shrink",
                "--scenario",
                &scenario,
                "--seed",
                "0",
                "--check-timeout",
                value,
            ],
            vec![
                "shrink",
                "--scenario",
                &scenario,
                "--seed",
                "0",
                "--time-budget",
                value,
            ],
            vec!["bench", "check", "--timeout", value],
            vec![
                "live",
                "--spawn",
                "1",
                "--scenario",
                &scenario,
                "--check-timeout",
                value,
            ],
        ];
        for args in cases {
            let output = kvsim(&args);
            let what = args.join(" ");
            assert_no_panic(&output, &what);
            assert_eq!(output.status.code(), Some(2), "{what}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("duration") && stderr.contains(value),
                "{what}: names the value and the form\n{stderr}"
            );
        }
    }
    for seeds in ["0..18446744073709551616", "5..5", "-1..3", "x"] {
        let output = kvsim(&["fuzz", "--scenario", &scenario, "--seeds", seeds]);
        assert_no_panic(&output, seeds);
        assert_eq!(output.status.code(), Some(2), "--seeds {seeds}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `args` with stdout a pipe whose reader has already gone (`| head -0`, the extreme of
/// `| head -1`): every write fails with EPIPE.
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvsim runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("kvsim ends")
}

/// Reads one line of stdout and closes it (`| head -1`).
fn with_head_1(args: &[&str]) -> Output {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvsim runs");
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    drop(stdout);
    child.wait_with_output().expect("kvsim ends")
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_its_usual_exit_code() {
    let dir = scratch("epipe");
    let scenario = short_scenario(&dir);
    let histories = repo("examples/histories");
    let run_dir = dir.join("run");
    let reference = kvsim(&[
        "run",
        "--scenario",
        &scenario,
        "--seed",
        "1",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    let out3 = dir.join("fuzz");
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", &histories],
        vec!["check", "--json", &histories],
        vec![
            "fuzz",
            "--scenario",
            &scenario,
            "--seeds",
            "0..2",
            "--out",
            out3.to_str().unwrap(),
        ],
        vec!["replay", run_dir.to_str().unwrap()],
        vec!["bugs"],
        vec!["--help"],
        vec!["check", "--help"],
    ];
    for args in cases {
        let what = args.join(" ");
        let usual = kvsim(&args).status.code();
        for output in [with_closed_stdout(&args), with_head_1(&args)] {
            assert_no_panic(&output, &what);
            assert_eq!(output.status.code(), usual, "{what}: the usual exit code");
        }
    }
    // `run` never reuses a directory: each invocation gets its own.
    for (index, pipe) in [with_closed_stdout, with_head_1].into_iter().enumerate() {
        let out = dir.join(format!("run-{index}"));
        let output = pipe(&[
            "run",
            "--scenario",
            &scenario,
            "--seed",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_no_panic(&output, "run");
        assert_eq!(
            output.status.code(),
            reference.status.code(),
            "run: the usual exit code"
        );
        assert!(out.join("verdict.json").is_file(), "run wrote its verdict");
    }
    assert!(
        out3.read_dir().unwrap().next().is_some(),
        "fuzz wrote its campaign despite the closed pipe"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_campaign_keeps_its_summary_and_junit_and_says_how_to_resume() {
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let dir = scratch(&format!("signal-{signal}"));
        let scenario = short_scenario(&dir);
        let child = Command::new(env!("CARGO_BIN_EXE_kvsim"))
            .args([
                "fuzz",
                "--scenario",
                &scenario,
                "--seeds",
                "0..18446744073709551615",
                "--jobs",
                "2",
                "--out",
                dir.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kvsim runs");
        std::thread::sleep(Duration::from_secs(6));
        // SAFETY: signalling our own child by its pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stdout}\n{stderr}");
        let campaign = dir
            .read_dir()
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.is_dir())
            .expect("campaign directory");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(campaign.join("summary.json")).unwrap())
                .unwrap();
        let run = summary["seeds_run"].as_u64().unwrap();
        assert!(run >= 1, "seeds ran in 6 s: {summary}");
        assert_eq!(summary["seeds_planned"].as_u64(), Some(u64::MAX));
        assert_eq!(
            summary["resume"]["seeds"],
            format!("{run}..18446744073709551615")
        );
        let junit = std::fs::read_to_string(campaign.join("junit.xml")).unwrap();
        for seed in 0..run {
            assert!(junit.contains(&format!("name=\"seed-{seed}\"")), "{junit}");
        }
        assert!(!junit.contains(&format!("name=\"seed-{run}\"")), "{junit}");
        assert!(
            stdout.contains(&format!("--seeds {run}..18446744073709551615")),
            "resume line: {stdout}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_simulation_panic_is_a_violation_with_a_report_that_replays_it() {
    let dir = scratch("panic");
    let out = dir.join("run");
    let output = kvsim(&[
        "run",
        "--scenario",
        &repo("scenarios/crashes.toml"),
        "--seed",
        "3",
        "--bug",
        "lost_fsync",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("VIOLATION of simulation.panic"), "{stdout}");
    assert!(stdout.contains(&format!("replay: kvsim replay {}", out.display())));
    let replay = kvsim(&["replay", out.to_str().unwrap()]);
    let replayed = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{replayed}");
    assert!(replayed.contains("panicked, as recorded"), "{replayed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_never_overwrites_an_existing_directory() {
    let dir = scratch("overwrite");
    let scenario = short_scenario(&dir);
    let mine = dir.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("history.jsonl"), "my own history").unwrap();
    let output = kvsim(&[
        "run",
        "--scenario",
        &scenario,
        "--seed",
        "0",
        "--out",
        mine.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(mine.join("history.jsonl")).unwrap(),
        "my own history"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_refuses_fifos_devices_and_follows_a_symlink_cycle_once() {
    let dir = scratch("check-files");
    let fifo = dir.join("h.jsonl");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let output = kvsim(&["check", fifo.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stdout).contains("a FIFO"));
    let output = kvsim(&["check", "/dev/zero"]);
    assert_eq!(output.status.code(), Some(2));
    std::fs::remove_file(&fifo).unwrap();
    std::fs::copy(
        repo("examples/histories/register-ok.log"),
        dir.join("ok.log"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();
    let output = kvsim(&["check", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("total: 1 files"), "checked once: {stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_misspelt_completion_is_an_error_and_lenient_counts_what_it_dropped() {
    let dir = scratch("strict");
    let path = dir.join("h.jsonl");
    // The read saw 1 although nothing was written: a violation, if the "OK" is read as ok.
    std::fs::write(
        &path,
        "{\"kvsim_history\":1,\"model\":\"cas-register\",\"meta\":{}}\n\
         {\"type\":\"invoke\",\"id\":0,\"client\":1,\"t_ns\":10,\"input\":{\"f\":\"read\"}}\n\
         {\"type\":\"OK\",\"id\":0,\"t_ns\":20,\"output\":{\"f\":\"read\",\"value\":1}}\n",
    )
    .unwrap();
    let output = kvsim(&["check", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("h.jsonl:3:") && stdout.contains("\"OK\""),
        "{stdout}"
    );
    let output = kvsim(&["check", "--lenient", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("dropped (--lenient): 1 × record of unknown type \"OK\""),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The flags a README command-table row names, and the command it is about (`bench check` for
/// the bench row's first form).
fn readme_rows() -> Vec<(Vec<String>, Vec<String>)> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let mut rows = Vec::new();
    for line in readme.lines().filter(|line| line.starts_with("| `kvsim ")) {
        let usage = line.split('|').nth(1).unwrap();
        for form in usage.split(" / ") {
            let form = form.trim().trim_matches('`');
            let words: Vec<String> = form
                .split_whitespace()
                .skip(1)
                .take_while(|word| word.chars().all(|c| c.is_ascii_lowercase()))
                .map(str::to_string)
                .collect();
            let flags: Vec<String> = form
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|word| word.starts_with("--") && word.len() > 2)
                .map(str::to_string)
                .collect();
            rows.push((words, flags));
        }
    }
    rows
}

#[test]
fn the_readme_command_table_and_help_agree() {
    let rows = readme_rows();
    let help = String::from_utf8(kvsim(&["--help"]).stdout).unwrap();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    let documented: Vec<&str> = rows.iter().map(|(words, _)| words[0].as_str()).collect();
    for command in &commands {
        assert!(
            documented.contains(command),
            "README's table lacks `kvsim {command}`"
        );
    }
    for (words, flags) in &rows {
        assert!(
            commands.contains(&words[0].as_str()),
            "README names `kvsim {}`, which --help does not list",
            words[0]
        );
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        args.push("--help");
        let output = kvsim(&args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8(output.stdout).unwrap();
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "README shows `kvsim {} {flag}`, which `--help` does not know",
                words.join(" ")
            );
        }
        // Every duration flag takes one form, and says so.
        for line in help.lines() {
            let line = line.trim();
            if [
                "--timeout",
                "--check-timeout",
                "--time-budget",
                "--duration",
            ]
            .iter()
            .any(|flag| line.starts_with(&format!("{flag} ")))
            {
                assert!(line.contains("<DURATION>"), "{}: {line}", words.join(" "));
            }
        }
    }
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    assert!(
        !readme.contains("SECS"),
        "README shows durations in their one form"
    );
}

#[test]
fn output_that_cannot_be_written_is_an_internal_error_not_bad_input() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args(["check", &repo("examples/histories")])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_no_panic(&output, "check > /dev/full");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("internal error: cannot write to standard output"),
        "{stderr}"
    );
}

/// Twelve concurrent appends to one key and a read that none of their orders can produce: the
/// search tries every order, so with `--timeout 4s` this one file takes the whole 4 s.
fn adversarial_kv_history() -> String {
    let mut lines = Vec::new();
    for process in 0..12 {
        lines.push(format!(
            "{{:process {process}, :type :invoke, :f :append, :key \"0\", :value \"v{process} \"}}"
        ));
    }
    for process in 0..12 {
        lines.push(format!(
            "{{:process {process}, :type :ok, :f :append, :key \"0\", :value \"v{process} \"}}"
        ));
    }
    lines.push("{:process 12, :type :invoke, :f :get, :key \"0\", :value nil}".into());
    lines.push("{:process 12, :type :ok, :f :get, :key \"0\", :value \"impossible\"}".into());
    lines.join("\n") + "\n"
}

/// `kvsim check DIR` stopped by SIGINT between files: the file in flight finishes, the rest are
/// named as not checked, the total counts what was checked, and the exit code is 130.
#[test]
fn a_check_over_a_directory_stopped_by_sigint_names_what_it_did_not_check() {
    let dir = scratch("check-sigint");
    std::fs::write(dir.join("a-slow.txt"), adversarial_kv_history()).unwrap();
    std::fs::write(dir.join("b-never.txt"), adversarial_kv_history()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .args(["check", "--no-partition", "--timeout", "4s"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvsim runs");
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: sending a signal to our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let output = child.wait_with_output().expect("kvsim exits");
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(130), "{shown}");
    assert!(
        shown.contains("not checked: ") && shown.contains("b-never.txt"),
        "{shown}"
    );
    assert!(shown.contains("total: 1 files"), "{shown}");
}

/// #15: the documented maximum duration would need tens of GiB; the scenario is refused with the
/// estimate (exit 2) before anything runs or any directory is made, and fits once shortened.
#[test]
fn a_scenario_this_machine_cannot_hold_is_refused_with_its_estimate() {
    let dir = scratch("memory-estimate");
    let scenario = dir.join("day.toml");
    std::fs::write(&scenario, "[workload]\nduration_ms = 86400000\n").unwrap();
    let scenario = scenario.to_str().unwrap();
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    for args in [
        vec!["run", "--scenario", scenario, "--seed", "1", "--out", out],
        vec![
            "fuzz",
            "--scenario",
            scenario,
            "--seeds",
            "0..2",
            "--out",
            out,
        ],
    ] {
        let run = kvsim(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("would need about") && stderr.contains("--memory-max"),
            "{args:?}: {stderr}"
        );
        assert!(!Path::new(out).exists(), "{args:?} made {out}");
    }
    // The same scenario with a memory budget that holds it is accepted (checked, not run).
    let fits =
        kvsim_sim::scenario::Scenario::parse("day.toml", "[workload]\nduration_ms = 86400000\n")
            .unwrap();
    let need = fits.ops_estimate() * kvsim::memory::SIMULATION_BYTES_PER_OP;
    assert!(need > 20 << 30, "a day of 8 clients is tens of GiB: {need}");
    assert!(kvsim::memory::check_scenario_fits(&fits, need).is_ok());
    assert!(kvsim::memory::check_scenario_fits(&fits, need - 1).is_err());
    // Every shipped scenario fits the smallest default budget of a 2-core fuzz campaign.
    for entry in std::fs::read_dir(repo("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let scenario = kvsim_sim::scenario::Scenario::load(&path).unwrap();
            kvsim::memory::check_scenario_fits(&scenario, 1 << 30)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// One spelling for names (ARCHITECTURE.md, "one name per thing"): snake_case, with the
/// kebab-case spellings a user may type read and noted, and unknown names refused with the list.
#[test]
fn bug_and_property_names_are_snake_case_and_kebab_case_is_read_with_a_note() {
    let listed = kvsim(&["bugs", "--bug", "stale-read", "--json"]);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert_eq!(listed.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("note: --bug stale-read: bug names are snake_case; read as stale_read"),
        "{stderr}"
    );
    let value: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("one JSON object");
    assert_eq!(value["bugs"][0]["bug"], "stale_read");
    assert_eq!(value["bugs"].as_array().map(Vec::len), Some(1));
    assert_eq!(value["bugs"][0]["caught_by"][0], "linearizability");

    let unknown = kvsim(&["bugs", "--bug", "stale-write"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown bug \"stale_write\"") && stderr.contains("lost_fsync"),
        "{stderr}"
    );

    // The properties' kebab-case rule names of before are still read by --property.
    let old = kvsim(&[
        "shrink",
        "--scenario",
        "/nonexistent/scenario.toml",
        "--seed",
        "0",
        "--property",
        "durability.lost-write",
    ]);
    let stderr = String::from_utf8_lossy(&old.stderr);
    assert_eq!(old.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("note: --property durability.lost-write: property names are snake_case now; read as durability.lost_write"),
        "{stderr}"
    );
    let bad = kvsim(&[
        "shrink",
        "--scenario",
        "x.toml",
        "--seed",
        "0",
        "--property",
        "durability.lost",
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown property \"durability.lost\"")
            && stderr.contains("watch.reliable"),
        "{stderr}"
    );
}

/// One CLI convention (issue 12): seed ranges are `A..B` on every command (a bare count, which
/// `bugs` and `bench sim` once took, is refused with the hint instead of read as one seed), a
/// single seed is `--seed N` defaulting to 0 everywhere, spawned members are `--spawn N`.
#[test]
fn seed_ranges_single_seeds_and_spawn_follow_one_convention() {
    for args in [
        &["bugs", "--measure", "--seeds", "5"][..],
        &["bench", "sim", "--seeds", "5"][..],
    ] {
        let output = kvsim(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("expected a seed range A..B") && stderr.contains("0..N"),
            "{args:?}: {stderr}"
        );
    }
    for command in [&["run"][..], &["shrink"], &["live"], &["conformance"]] {
        let output = kvsim(&[command, &["--help"]].concat());
        let help = String::from_utf8_lossy(&output.stdout);
        let seed = help
            .lines()
            .skip_while(|line| !line.trim_start().starts_with("--seed <N>"))
            .take_while(|line| !line.trim_start().starts_with("--") || line.contains("--seed <N>"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            seed.contains("[default: 0]"),
            "{command:?}: {seed:?}\n{help}"
        );
    }
    let output = kvsim(&["conformance", "--spawn", "3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("use --spawn 1"), "{stderr}");
    let help = String::from_utf8_lossy(&kvsim(&["conformance", "--help"]).stdout).to_string();
    assert!(help.contains("--spawn [<N>]"), "{help}");
}
