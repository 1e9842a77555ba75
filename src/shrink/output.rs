//! What a finished (or stopped) shrink leaves behind: `shrunk.toml` (a scenario that reproduces
//! the smallest failure with one `kvsim run` line), the minimal run's history, verdict and report,
//! and `shrink.json` (the whole search, candidate by candidate).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kvsim_sim::scenario::Scenario;
use serde_json::json;

use super::search::{Evidence, Failure, Shrinker};
use super::size::{reduction_line, Size};
use crate::cli::SeedArgs;
use crate::report_files;
use crate::run_dir::write_outputs;

/// The files of one shrink, and the record `shrink.json` holds (also `--json`'s body).
pub struct Written {
    pub shrunk_path: PathBuf,
    /// The `kvsim run` line that reproduces the smallest failure.
    pub reproduce: String,
    pub reduction: String,
    pub record: serde_json::Value,
}

/// Writes the shrink's output into `dir` (fresh, see [`crate::run_dir::fresh_dir`]). `before`
/// is the size of the failing run the search started from; `violated` what it violated and
/// `target` the properties the search kept failing.
pub fn write(
    dir: &Path,
    origin: &SeedArgs,
    shrinker: &Shrinker<'_>,
    before: &Size,
    violated: &[String],
    target: &[String],
    wall: Duration,
) -> Result<Written> {
    let best = &shrinker.best;
    let after = Size::of(best);
    let reduction = reduction_line(before, &after);
    let shrunk_path = dir.join("shrunk.toml");
    let reproduce = format!(
        "kvsim run --scenario {} --seed {}",
        shrunk_path.display(),
        best.seed
    );
    write_shrunk(&shrunk_path, origin, best, &reduction, &reproduce)?;
    match &best.evidence {
        Evidence::Run { output, verdict } => {
            write_outputs(dir, output, verdict)?;
            report_files::write_report(dir, output, verdict, &reproduce)?;
        }
        Evidence::Panic { message } => {
            let summary = json!({ "seed": best.seed, "panic": message });
            write_json(&dir.join("summary.json"), &summary)?;
        }
    }
    let record = json!({
        "scenario": origin.scenario.display().to_string(),
        "seed": origin.seed,
        "bugs": origin.bugs,
        "violated": violated,
        "target": target,
        "shrunk_seed": best.seed,
        "shrunk_violates": best.evidence.properties(),
        "before": before,
        "after": after,
        "reduction": reduction,
        "complete": !shrinker.out_of_time && shrinker.interrupted.is_none(),
        "interrupted": shrinker.interrupted.map(|signal| signal.name()),
        "rounds": shrinker.rounds,
        "candidates": shrinker.attempts.len(),
        "runs": shrinker.runs,
        "wall_s": wall.as_secs_f64(),
        "reproduce": reproduce,
        "attempts": shrinker.attempts,
    });
    write_json(&dir.join("shrink.json"), &record)?;
    Ok(Written {
        shrunk_path,
        reproduce,
        reduction,
        record,
    })
}

/// Writes the shrunk scenario with a header saying where it came from, and checks that the file
/// reads back as exactly the scenario that failed (else the reproduce line would lie).
fn write_shrunk(
    path: &Path,
    origin: &SeedArgs,
    best: &Failure,
    reduction: &str,
    reproduce: &str,
) -> Result<()> {
    let body = toml::to_string(&best.scenario).context("scenario serializes to TOML")?;
    let mut bugs = String::new();
    for bug in &origin.bugs {
        bugs.push_str(&format!(" --bug {bug}"));
    }
    let text = format!(
        "# Shrunk by `kvsim shrink --scenario {} --seed {}{bugs}`.\n\
         # {reduction}\n\
         # Violates {} at seed {}. Reproduce: {reproduce}\n\n{body}",
        origin.scenario.display(),
        origin.seed,
        best.evidence.properties().join(", "),
        best.seed,
    );
    std::fs::write(path, &text).with_context(|| format!("{}: cannot write", path.display()))?;
    let reread = Scenario::parse(&path.display().to_string(), &text)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    if reread != best.scenario {
        bail!(
            "{}: the written scenario does not read back identically (a TOML round-trip bug)",
            path.display()
        );
    }
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serializes");
    std::fs::write(path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}
