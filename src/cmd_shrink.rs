//! `kvsim shrink`: minimizes a failing seed — fewer faults, clients, watchers, recipe tasks,
//! operations, keys, nodes, op kinds and a shorter run — for as long as the same property still
//! fails, and writes a scenario file that reproduces the minimal failure with one `kvsim run` line.
//! The search itself is in `shrink/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kvsim_sim::scenario::Scenario;
use serde_json::json;

use kvsim::cli::{humanize, parse_duration};
use kvsim::cli::{scenario_name, SeedArgs};
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim::report_files;
use kvsim::run_dir::write_outputs;
use kvsim::shrink::search::{judge, Attempt, Config, Evidence, Failure, Shrinker};
use kvsim::shrink::size::{reduction_line, Size};
use kvsim::verdict::Status;

#[derive(Args)]
pub struct ShrinkArgs {
    /// The failing run.
    #[command(flatten)]
    pub origin: SeedArgs,
    /// Output directory (must not exist or be empty; else a fresh `DIR-2`, `DIR-3`, ... is used);
    /// default `reports/shrink-<scenario>-<seed>`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop starting new candidates after this much wall time (e.g. 90s, 5m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub time_budget: Duration,
    /// Seeds tried per candidate (the current one, then SEED, SEED+1, ...): a smaller scenario
    /// perturbs madsim's whole schedule, so the failure may need another seed to show again.
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub tries_per_candidate: usize,
    /// Shrink for this property only (repeatable); default: every property the seed violates.
    #[arg(long = "property", value_name = "NAME")]
    pub properties: Vec<String>,
    /// Seeds of one candidate run in parallel; default one per core.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Time budget of the failing run's linearizability check (250ms, 90s, 5m; a bare number is
    /// seconds); candidates get five times what that check took (at least 2s, at most this).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub check_timeout: Duration,
    /// List every candidate tried (stderr).
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn main(args: ShrinkArgs) -> Result<Exit> {
    if args.tries_per_candidate == 0 {
        bail!("--tries-per-candidate: expected at least 1");
    }
    let scenario = args.origin.load()?;
    // Candidates that panic are findings like any other, shown by their attempt line.
    kvsim::panic_hook::install_one_line();
    // Ctrl-C / SIGTERM stop the search between candidates; the smallest failure found so far is
    // still written, and the command exits 130 / 143.
    kvsim::interrupt::install();
    let started = Instant::now();
    let check_timeout = args.check_timeout;
    eprintln!(
        "running seed {} of {} ...",
        args.origin.seed,
        args.origin.scenario.display()
    );
    let evidence = judge(&scenario, args.origin.seed, check_timeout).map_err(anyhow::Error::msg)?;
    let violated = evidence.properties();
    match evidence.status() {
        Status::Ok => {
            eprintln!(
                "kvsim: seed {} of {} passes (no property violated): nothing to shrink",
                args.origin.seed,
                args.origin.scenario.display()
            );
            return Ok(Exit::BadInput);
        }
        Status::Inconclusive => {
            eprintln!(
                "kvsim: seed {} of {} is inconclusive (the linearizability check ran out of budget; \
                 try a larger --check-timeout): nothing to shrink",
                args.origin.seed,
                args.origin.scenario.display()
            );
            return Ok(Exit::Inconclusive);
        }
        Status::Violation => {}
    }
    let target: BTreeSet<String> = if args.properties.is_empty() {
        violated.iter().cloned().collect()
    } else {
        args.properties
            .iter()
            .filter(|property| violated.contains(property))
            .cloned()
            .collect()
    };
    if target.is_empty() {
        eprintln!(
            "kvsim: seed {} violates {}, none of --property {}: nothing to shrink",
            args.origin.seed,
            violated.join(", "),
            args.properties.join(", ")
        );
        return Ok(Exit::BadInput);
    }
    let target_list: Vec<String> = target.iter().cloned().collect();
    eprintln!(
        "seed {} violates {}; shrinking for {} (budget {}, {} seeds per candidate)",
        args.origin.seed,
        violated.join(", "),
        target_list.join(" | "),
        humanize(args.time_budget),
        args.tries_per_candidate
    );

    // A candidate's check gets five times what the failing run's check took (at least 2 s, at
    // most --check-timeout): a history the search cannot settle by then comes back `unknown`,
    // which counts as not failing — slower, never wrong — and 20 s stalls on every candidate
    // would eat the budget.
    let initial_check = match &evidence {
        Evidence::Run { verdict, .. } => Duration::from_millis(verdict.check_ms as u64),
        Evidence::Panic { .. } => check_timeout,
    };
    let candidate_check_timeout = (initial_check * 5)
        .max(Duration::from_secs(2))
        .min(check_timeout);
    let initial = Failure {
        scenario,
        seed: args.origin.seed,
        evidence,
    };
    let before = Size::of(&initial);
    let config = Config {
        base_seed: args.origin.seed,
        seeds_per_candidate: args.tries_per_candidate,
        target,
        deadline: started + args.time_budget,
        check_timeout: candidate_check_timeout,
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
    };
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let verbose = args.verbose;
    let mut shrinker = Shrinker::new(config, initial, |attempt: &Attempt, best: &Failure| {
        let size = Size::of(best);
        progress.set_message(format!(
            "candidate {} ({}): {} ops, {} faults, {} clients, {} nodes, {:.1} s",
            attempt.number,
            attempt.pass,
            size.operations.map_or("?".into(), |n| n.to_string()),
            size.faults.map_or("?".into(), |n| n.to_string()),
            size.clients,
            size.nodes,
            size.duration_ms as f64 / 1000.0
        ));
        if verbose || attempt.result == "fails" {
            progress.suspend(|| eprintln!("{}", attempt_line(attempt)));
        }
    });
    shrinker.run();
    progress.finish_and_clear();

    let best = shrinker.best.clone();
    let after = Size::of(&best);
    let reduction = reduction_line(&before, &after);
    let default_out = PathBuf::from("reports").join(format!(
        "shrink-{}-{}",
        scenario_name(&args.origin.scenario),
        args.origin.seed
    ));
    let dir = fresh_dir(args.out.as_deref().unwrap_or(&default_out))?;
    let shrunk_path = dir.join("shrunk.toml");
    let reproduce = format!(
        "kvsim run --scenario {} --seed {}",
        shrunk_path.display(),
        best.seed
    );
    write_shrunk(&shrunk_path, &args, &best, &reduction, &reproduce)?;
    match &best.evidence {
        Evidence::Run { output, verdict } => {
            write_outputs(&dir, output, verdict)?;
            report_files::write_report(&dir, output, verdict, &reproduce)?;
        }
        Evidence::Panic { message } => {
            let summary = json!({ "seed": best.seed, "panic": message });
            write_json(&dir.join("summary.json"), &summary)?;
        }
    }
    let wall = started.elapsed();
    let record = json!({
        "scenario": args.origin.scenario.display().to_string(),
        "seed": args.origin.seed,
        "bugs": args.origin.bugs,
        "violated": violated,
        "target": target_list,
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

    let count = |result: &str| {
        shrinker
            .attempts
            .iter()
            .filter(|attempt| attempt.result == result)
            .count()
    };
    let (kept, tried) = (count("fails"), shrinker.attempts.len() - count("seen"));
    outln!(
        "shrunk seed {} of {} in {:.1} s: {} candidates ({} kept), {} runs, {} round(s){}",
        args.origin.seed,
        args.origin.scenario.display(),
        wall.as_secs_f64(),
        tried,
        kept,
        shrinker.runs,
        shrinker.rounds,
        if let Some(signal) = shrinker.interrupted {
            match signal {
                kvsim::interrupt::Signal::Interrupt => {
                    " — stopped by SIGINT, not fully minimized (run it again to go on)"
                }
                kvsim::interrupt::Signal::Terminate => {
                    " — stopped by SIGTERM, not fully minimized (run it again to go on)"
                }
            }
        } else if shrinker.out_of_time {
            " — time budget spent, not fully minimized (a larger --time-budget may shrink further)"
        } else {
            " — minimal: no candidate smaller fails"
        }
    );
    outln!("{reduction}");
    outln!(
        "minimal run violates: {}",
        best.evidence.properties().join(", ")
    );
    outln!("shrunk scenario: {}", shrunk_path.display());
    outln!("report: {}", dir.display());
    outln!("reproduce: {reproduce}");
    Ok(shrinker.interrupted.map_or(Exit::Violation, Exit::from))
}

/// One line per candidate: number, pass, change, result, seed and properties when it failed.
fn attempt_line(attempt: &Attempt) -> String {
    let mut line = format!(
        "  #{:<4} {:<11} {:<48} {}",
        attempt.number, attempt.pass, attempt.change, attempt.result
    );
    if let Some(seed) = attempt.seed {
        line.push_str(&format!(
            " (seed {seed}: {})",
            attempt.properties.join(", ")
        ));
    }
    line.push_str(&format!(
        " [{} runs, {:.1} s]",
        attempt.runs,
        attempt.wall_ms as f64 / 1000.0
    ));
    line
}

/// Writes the shrunk scenario with a header saying where it came from, and checks that the file
/// reads back as exactly the scenario that failed (else the reproduce line would lie).
fn write_shrunk(
    path: &Path,
    args: &ShrinkArgs,
    best: &Failure,
    reduction: &str,
    reproduce: &str,
) -> Result<()> {
    let body = toml::to_string(&best.scenario).context("scenario serializes to TOML")?;
    let mut bugs = String::new();
    for bug in &args.origin.bugs {
        bugs.push_str(&format!(" --bug {bug}"));
    }
    let text = format!(
        "# Shrunk by `kvsim shrink --scenario {} --seed {}{bugs}`.\n\
         # {reduction}\n\
         # Violates {} at seed {}. Reproduce: {reproduce}\n\n{body}",
        args.origin.scenario.display(),
        args.origin.seed,
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

/// `wanted` if it does not exist or is an empty directory, else `wanted-2`, `wanted-3`, ...: a
/// shrink never overwrites earlier output.
fn fresh_dir(wanted: &Path) -> Result<PathBuf> {
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

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serializes");
    std::fs::write(path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
