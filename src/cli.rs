//! Argument types and parsers every command shares, so one flag means one thing everywhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use kvsim_sim::scenario::Scenario;

/// The run a command starts from: a scenario, a seed and planted bugs. `run` and `shrink`
/// share it so the line one prints is the line the other takes.
#[derive(Args)]
pub struct SeedArgs {
    /// The scenario file (TOML; see scenarios/README.md).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// The seed: everything random in the run is drawn from it.
    #[arg(long)]
    pub seed: u64,
    /// Switch on a planted bug in the simulated server (repeatable); adds to the scenario's [bugs].
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

impl SeedArgs {
    /// The scenario file with the planted bugs switched on.
    pub fn load(&self) -> Result<Scenario> {
        load_scenario(&self.scenario, &self.bugs)
    }

    /// The `kvsim run` line that reproduces this seed.
    pub fn reproduce_command(&self) -> String {
        reproduce_command(&self.scenario, self.seed, &self.bugs)
    }
}

/// Loads `path` and switches on `bugs` in it; errors name the file and what is wrong.
pub fn load_scenario(path: &Path, bugs: &[String]) -> Result<Scenario> {
    let mut scenario = Scenario::load(path).map_err(|error| anyhow::anyhow!("{error}"))?;
    for bug in bugs {
        scenario.bugs.insert(bug.clone(), true);
    }
    scenario
        .bugs()
        .map_err(|error| anyhow::anyhow!("--bug: {error}"))?;
    Ok(scenario)
}

/// The scenario's short name: its file stem.
pub fn scenario_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string()
}

/// The one command line that reproduces `seed` of `scenario` with `bugs`.
pub fn reproduce_command(scenario: &Path, seed: u64, bugs: &[String]) -> String {
    let mut line = format!("kvsim run --scenario {} --seed {seed}", scenario.display());
    for bug in bugs {
        line.push_str(&format!(" --bug {bug}"));
    }
    line
}

/// `90s`, `40m`, `2h`, `1h30m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let error = || format!("expected a duration like 90s, 40m, 2h or 1h30m, got {text:?}");
    let mut total_s = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: u64 = number.parse().map_err(|_| error())?;
        number.clear();
        total_s += value
            * match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => return Err(error()),
            };
    }
    if !number.is_empty() {
        total_s += number.parse::<u64>().map_err(|_| error())?;
    }
    if total_s == 0 {
        return Err(error());
    }
    Ok(Duration::from_secs(total_s))
}
