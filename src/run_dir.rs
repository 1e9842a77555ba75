//! A run's output directory: `history.jsonl`, `summary.json`, `verdict.json`, `scenario.toml`,
//! and the line that replays it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kvsim_sim::runner::{self, RunOutput};
use kvsim_sim::scenario::Scenario;

use crate::verdict::Verdict;

/// Writes `history.jsonl`, `summary.json`, `verdict.json` and the `scenario.toml` the run used
/// (with every knob, so `kvsim replay DIR` needs nothing else) into `dir`.
pub fn write_outputs(dir: &Path, output: &RunOutput, verdict: &Verdict) -> Result<()> {
    write_run(dir, output)?;
    write_verdict(dir, verdict)
}

/// The run before it is judged: `history.jsonl`, `summary.json` and `scenario.toml`. Written
/// first, so a check that fails or is killed loses nothing.
pub fn write_run(dir: &Path, output: &RunOutput) -> Result<()> {
    runner::write_run(dir, output)
        .with_context(|| format!("{}: cannot write the run", dir.display()))?;
    write_scenario(dir, &output.scenario)
}

/// `verdict.json`.
pub fn write_verdict(dir: &Path, verdict: &Verdict) -> Result<()> {
    let path = dir.join("verdict.json");
    let text = serde_json::to_string_pretty(verdict).expect("verdict serializes");
    std::fs::write(&path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

/// A run whose simulation panicked: `scenario.toml` and a `summary.json` with the seed and the
/// panic message, which is what `kvsim replay DIR` needs to reproduce it.
pub fn write_panic(dir: &Path, scenario: &Scenario, seed: u64, message: &str) -> Result<()> {
    write_scenario(dir, scenario)?;
    let summary = serde_json::json!({
        "seed": seed,
        "status": "violation",
        "properties": [SIMULATION_PANIC],
        "panic": message,
    });
    let path = dir.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    std::fs::write(&path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

/// The property a panic inside the simulation violates: a node's assertion fired, or the
/// simulated-time limit caught a hang. A finding like any other (exit 1), in every command.
pub const SIMULATION_PANIC: &str = kvsim_checker::property::Property::SimulationPanic.as_str();

/// Writes `scenario` as `dir/scenario.toml`, creating `dir`.
pub fn write_scenario(dir: &Path, scenario: &Scenario) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let text = toml::to_string(scenario).context("scenario serializes to TOML")?;
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
}

/// The command that re-runs a failing seed from its report directory and checks the bytes.
pub fn replay_line(seed_dir: &Path) -> String {
    format!("kvsim replay {}", seed_dir.display())
}

/// The directory `kvsim run` writes to. An explicit `--out` must be new or empty: a run never
/// overwrites a user's own history or an earlier seed's report. Without `--out` the default
/// `default_dir` is used, or `default_dir-run-2`, `-run-3`, ... if it holds an earlier run.
pub fn run_out_dir(explicit: Option<&Path>, default_dir: &Path) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if !is_missing_or_empty(dir)? {
            bail!(
                "--out {}: exists and is not empty; kvsim run never overwrites a directory \
                 (remove it, or name a new one)",
                dir.display()
            );
        }
        return Ok(dir.to_path_buf());
    }
    for attempt in 1u32.. {
        let dir = if attempt == 1 {
            default_dir.to_path_buf()
        } else {
            let mut name = default_dir.as_os_str().to_owned();
            name.push(format!("-run-{attempt}"));
            PathBuf::from(name)
        };
        if is_missing_or_empty(&dir)? {
            return Ok(dir);
        }
    }
    unreachable!("u32 attempts exhausted")
}

fn is_missing_or_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => {
            Err(error).with_context(|| format!("{}: exists and cannot be listed", dir.display()))
        }
    }
}

/// `wanted` if it does not exist or is an empty directory, else `wanted-2`, `wanted-3`, ...: a
/// campaign or a shrink never overwrites earlier output.
pub fn fresh_dir(wanted: &Path) -> Result<PathBuf> {
    let empty_dir =
        |path: &Path| std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none());
    for attempt in 1u32.. {
        let dir = if attempt == 1 {
            wanted.to_path_buf()
        } else {
            let mut name = wanted.as_os_str().to_owned();
            name.push(format!("-{attempt}"));
            PathBuf::from(name)
        };
        if empty_dir(&dir) {
            return Ok(dir);
        }
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                if attempt > 1 {
                    eprintln!(
                        "note: {} exists and is not empty; writing to {}",
                        wanted.display(),
                        dir.display()
                    );
                }
                return Ok(dir);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("{}: cannot create", dir.display()))
            }
        }
    }
    unreachable!("u32 attempts exhausted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_never_reuses_a_non_empty_directory() {
        let root = std::env::temp_dir().join(format!("kvsim-run-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let wanted = root.join("default-3");
        assert_eq!(run_out_dir(None, &wanted).unwrap(), wanted);
        std::fs::create_dir_all(&wanted).unwrap();
        assert_eq!(
            run_out_dir(Some(&wanted), &root).unwrap(),
            wanted,
            "empty: used"
        );
        std::fs::write(wanted.join("history.jsonl"), "mine").unwrap();
        let error = run_out_dir(Some(&wanted), &root).unwrap_err().to_string();
        assert!(error.contains("not empty"), "{error}");
        assert_eq!(
            run_out_dir(None, &wanted).unwrap(),
            root.join("default-3-run-2")
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn fresh_dir_never_reuses_a_non_empty_directory() {
        let root = std::env::temp_dir().join(format!("kvsim-shrink-fresh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let wanted = root.join("out");
        assert_eq!(fresh_dir(&wanted).unwrap(), wanted, "created");
        assert_eq!(fresh_dir(&wanted).unwrap(), wanted, "empty: reused");
        std::fs::write(wanted.join("shrunk.toml"), "").unwrap();
        let second = fresh_dir(&wanted).unwrap();
        assert_eq!(second, root.join("out-2"));
        std::fs::write(second.join("x"), "").unwrap();
        assert_eq!(fresh_dir(&wanted).unwrap(), root.join("out-3"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
