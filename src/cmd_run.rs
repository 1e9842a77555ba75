//! `kvsim run`: one seed of one scenario, judged, with the line that reproduces it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use kvsim_sim::runner::{self, RunOutput};
use kvsim_sim::scenario::Scenario;

use crate::exit::Exit;
use crate::verdict::{judge_run, Verdict};

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

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub origin: SeedArgs,
    /// Output directory; default `reports/<scenario>-<seed>`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Time budget of the linearizability check, in seconds (then the verdict is `unknown`).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub check_timeout: f64,
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

pub fn main(args: RunArgs) -> Result<Exit> {
    let scenario = args.origin.load()?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "{}-{}",
            scenario_name(&args.origin.scenario),
            args.origin.seed
        ))
    });
    let started = Instant::now();
    let output =
        runner::run(&scenario, args.origin.seed).map_err(|error| anyhow::anyhow!("{error}"))?;
    let run_s = started.elapsed().as_secs_f64();
    let timeout = Duration::from_secs_f64(args.check_timeout.max(0.001));
    let verdict = judge_run(&output, timeout);
    write_outputs(&out, &output, &verdict)?;
    print_result(&output, &verdict, run_s);
    println!("history: {}", out.join("history.jsonl").display());
    println!("reproduce: {}", args.origin.reproduce_command());
    Ok(verdict.exit())
}

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

/// Findings printed per property; the rest are counted.
const FINDINGS_SHOWN_PER_PROPERTY_MAX: usize = 5;

fn print_result(output: &RunOutput, verdict: &Verdict, run_s: f64) {
    let stats = &output.stats;
    println!(
        "seed {}: {} ops ({} ok, {} fail, {} unknown), {} faults, {:.1} s simulated in {:.2} s; check {} ms",
        output.seed,
        stats.ops,
        stats.ok,
        stats.fail,
        stats.unknown,
        stats.faults_by_kind.values().sum::<u64>(),
        output.simulated_ms as f64 / 1000.0,
        run_s,
        verdict.check_ms
    );
    match verdict.status {
        "ok" => println!("verdict: ok (linearizable; all checked properties hold)"),
        "unknown" => println!(
            "verdict: unknown ({})",
            verdict
                .unknown_reason
                .as_deref()
                .unwrap_or("budget exhausted")
        ),
        _ => {
            println!("verdict: VIOLATION of {}", verdict.properties().join(", "));
            // A broken invariant repeats at every later index and on every node: the first few
            // findings per property tell the story; verdict.json keeps them all.
            let mut shown_per_property: BTreeMap<&str, usize> = BTreeMap::new();
            for finding in &verdict.findings {
                let shown = shown_per_property
                    .entry(finding.property.as_str())
                    .or_default();
                *shown += 1;
                if *shown <= FINDINGS_SHOWN_PER_PROPERTY_MAX {
                    println!(
                        "  [{}] {}",
                        finding.property,
                        finding.message.lines().next().unwrap_or("")
                    );
                }
            }
            for (property, count) in shown_per_property {
                if count > FINDINGS_SHOWN_PER_PROPERTY_MAX {
                    println!(
                        "  [{property}] ... and {} more (all in verdict.json)",
                        count - FINDINGS_SHOWN_PER_PROPERTY_MAX
                    );
                }
            }
        }
    }
}

/// Writes `scenario` as `dir/scenario.toml`, creating `dir`.
pub fn write_scenario(dir: &Path, scenario: &Scenario) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let text = toml::to_string(scenario).context("scenario serializes to TOML")?;
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
}
