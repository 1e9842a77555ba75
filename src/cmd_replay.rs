//! `kvsim replay DIR`: re-runs a seed from its report directory (the `scenario.toml` written
//! beside it and the seed in `summary.json`), checks that the new history is byte-identical to the
//! recorded one, and judges it again.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use kvsim_sim::runner::{self, RunError};
use kvsim_sim::scenario::Scenario;
use serde_json::json;

use kvsim::cli::{CheckBudgetArgs, InvariantArgs, JsonArgs};
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim::run_dir::SIMULATION_PANIC;
use kvsim::verdict::Status;

#[derive(Args)]
pub struct ReplayArgs {
    /// A report directory written by `kvsim fuzz` or `kvsim run` (with scenario.toml, summary.json
    /// and history.jsonl).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub budget: CheckBudgetArgs,
    #[command(flatten)]
    pub invariants: InvariantArgs,
    #[command(flatten)]
    pub output: JsonArgs,
}

pub fn main(args: ReplayArgs) -> Result<Exit> {
    args.output.apply();
    args.invariants.apply();
    refuse_live_dir(&args.dir)?;
    let scenario_path = args.dir.join("scenario.toml");
    let scenario = Scenario::load(&scenario_path).map_err(|error| anyhow::anyhow!("{error}"))?;
    let summary_path = args.dir.join("summary.json");
    let seed = read_seed(&summary_path)?;
    let output = match runner::run(&scenario, seed) {
        Ok(output) => output,
        Err(RunError::Panicked { message, .. }) => {
            // The seed's recorded panic (or a new one): reproduced, and a finding (exit 1).
            let recorded = recorded_panic(&summary_path);
            let same = recorded.as_deref() == Some(message.as_str());
            outln!(
                "seed {seed}: the simulation panicked{}: {}",
                if same { ", as recorded" } else { "" },
                message.lines().next().unwrap_or("")
            );
            outln!("verdict: VIOLATION of {SIMULATION_PANIC}");
            if args.output.json {
                kvsim::stdout::write_json(&json!({
                    "command": "replay",
                    "dir": args.dir,
                    "seed": seed,
                    "status": Status::Violation,
                    "exit": Exit::Violation.code(),
                    "properties": [SIMULATION_PANIC],
                    "panic": message,
                    "panic_as_recorded": same,
                }));
            }
            return Ok(Exit::Violation);
        }
        Err(error) => return Err(anyhow::anyhow!("{error}")),
    };
    let mut replayed = Vec::new();
    runner::write_history(&mut replayed, &output).context("history serializes")?;
    let history_path = args.dir.join("history.jsonl");
    // `None`: no recorded history to compare with.
    let mut identical = Some(true);
    match std::fs::read(&history_path) {
        Ok(recorded) if recorded == replayed => {
            outln!(
                "seed {seed}: history identical to {} ({} bytes)",
                history_path.display(),
                recorded.len()
            );
        }
        Ok(recorded) => {
            let line = first_difference_line(&recorded, &replayed);
            outln!(
                "seed {seed}: the replayed history differs from {} from line {line} on \
                 (a different kvsim binary, or a determinism bug if the binary is the same)",
                history_path.display()
            );
            identical = Some(false);
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            identical = None;
            outln!(
                "seed {seed}: no recorded history to compare (the run panicked before writing one)"
            );
        }
        Err(error) => {
            return Err(error).with_context(|| format!("{}: cannot read", history_path.display()))
        }
    }
    let verdict = kvsim::memory::judge_run_within(&output, args.budget.budget(1));
    match verdict.status {
        Status::Ok => outln!("verdict: ok"),
        Status::Inconclusive => outln!("verdict: inconclusive ({})", verdict.inconclusive_line()),
        Status::Violation => {
            outln!("verdict: VIOLATION of {}", verdict.properties().join(", "));
            for finding in &verdict.findings {
                outln!(
                    "  [{}] {}",
                    finding.property,
                    finding.message.lines().next().unwrap_or("")
                );
            }
        }
    }
    // A replay that does not reproduce the recorded bytes is a finding in itself.
    let exit = if identical == Some(false) {
        verdict.exit().worst(Exit::Violation)
    } else {
        verdict.exit()
    };
    if args.output.json {
        kvsim::stdout::write_json(&json!({
            "command": "replay",
            "dir": args.dir,
            "seed": seed,
            "history_identical": identical,
            "status": verdict.status,
            "exit": exit.code(),
            "properties": verdict.properties(),
            "verdict": verdict,
        }));
    }
    Ok(exit)
}

fn read_seed(path: &std::path::Path) -> Result<u64> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON summary", path.display()))?;
    match value.get("seed").and_then(serde_json::Value::as_u64) {
        Some(seed) => Ok(seed),
        None => bail!(
            "{}: expected a \"seed\" field with a whole number",
            path.display()
        ),
    }
}

/// The panic message a `summary.json` of a panicked run records.
fn recorded_panic(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("panic")?.as_str().map(str::to_string)
}

/// A `kvsim live` directory cannot be replayed: its seed fixes what the clients asked and which
/// faults were drawn, not how etcd and the OS scheduled them, so a second run is another
/// history, not a replay. Its history can be judged again instead.
fn refuse_live_dir(dir: &std::path::Path) -> Result<()> {
    let summary_path = dir.join("summary.json");
    let Ok(text) = std::fs::read_to_string(&summary_path) else {
        return Ok(());
    };
    let Ok(summary) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(());
    };
    // `live` since issue 13; earlier live summaries only name the target.
    if summary["live"] == true || summary["target"]["target"] == "etcd" {
        bail!(
            "{}: a kvsim live run against real etcd, which cannot be replayed (live histories are \
             not reproducible byte for byte: etcd and the OS schedule as they like). Judge it \
             again with: kvsim check {}",
            dir.display(),
            dir.join("history.jsonl").display()
        );
    }
    Ok(())
}

/// 1-based line where two byte strings first differ.
fn first_difference_line(a: &[u8], b: &[u8]) -> usize {
    let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    1 + a[..same].iter().filter(|&&byte| byte == b'\n').count()
}
