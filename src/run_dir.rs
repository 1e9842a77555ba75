//! A run's output directory: `history.jsonl`, `summary.json`, `verdict.json`, `scenario.toml`,
//! and the line that replays it.

use std::path::Path;

use anyhow::{Context, Result};
use kvsim_sim::runner::{self, RunOutput};
use kvsim_sim::scenario::Scenario;

use crate::verdict::Verdict;

/// Writes `history.jsonl`, `summary.json`, `verdict.json` and the `scenario.toml` the run used
/// (with every knob, so `kvsim replay DIR` needs nothing else) into `dir`.
pub fn write_outputs(dir: &Path, output: &RunOutput, verdict: &Verdict) -> Result<()> {
    runner::write_run(dir, output)
        .with_context(|| format!("{}: cannot write the run", dir.display()))?;
    write_scenario(dir, &output.scenario)?;
    let path = dir.join("verdict.json");
    let text = serde_json::to_string_pretty(verdict).expect("verdict serializes");
    std::fs::write(&path, text + "\n")
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

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
