//! `kvsim shrink`: minimizes a failing seed — fewer faults, clients, watchers, recipe tasks,
//! operations, keys, nodes, op kinds and a shorter run — for as long as the same property still
//! fails, and writes a scenario file that reproduces the minimal failure with one `kvsim run` line.
//! The search and its output files are [`kvsim::shrink`]; this file reads the flags, shows
//! progress and prints the result.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use kvsim::cli::{humanize, parse_duration};
use kvsim::cli::{scenario_name, JsonArgs, SeedArgs};
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim::shrink::search::{judge, Attempt, Config, Failure, Shrinker};
use kvsim::shrink::size::Size;
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
    #[arg(long = "property", value_name = "NAME", value_parser = kvsim::cli::parse_property)]
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
    #[command(flatten)]
    pub output: JsonArgs,
}

pub fn main(args: ShrinkArgs) -> Result<Exit> {
    args.output.apply();
    args.origin.invariants.apply();
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
    let (seed, file) = (args.origin.seed, args.origin.scenario.display());
    eprintln!("running seed {seed} of {file} ...");
    let evidence = judge(&scenario, seed, args.check_timeout).map_err(anyhow::Error::msg)?;
    let violated = evidence.properties();
    match evidence.status() {
        Status::Ok => {
            eprintln!(
                "kvsim: seed {seed} of {file} passes (no property violated): nothing to shrink"
            );
            return Ok(Exit::BadInput);
        }
        Status::Inconclusive => {
            eprintln!(
                "kvsim: seed {seed} of {file} is inconclusive (the linearizability check ran out of budget; \
                 try a larger --check-timeout): nothing to shrink"
            );
            return Ok(Exit::Inconclusive);
        }
        Status::Violation => {}
    }
    let target = Config::target_of(&violated, &args.properties);
    if target.is_empty() {
        eprintln!(
            "kvsim: seed {seed} violates {}, none of --property {}: nothing to shrink",
            violated.join(", "),
            args.properties.join(", ")
        );
        return Ok(Exit::BadInput);
    }
    let target_list: Vec<String> = target.iter().cloned().collect();
    eprintln!(
        "seed {seed} violates {}; shrinking for {} (budget {}, {} seeds per candidate)",
        violated.join(", "),
        target_list.join(" | "),
        humanize(args.time_budget),
        args.tries_per_candidate
    );
    let config = Config {
        base_seed: seed,
        seeds_per_candidate: args.tries_per_candidate,
        target,
        deadline: started + args.time_budget,
        check_timeout: Config::candidate_check_timeout(&evidence, args.check_timeout),
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
    };
    let initial = Failure {
        scenario,
        seed,
        evidence,
    };
    let before = Size::of(&initial);
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let (verbose, deadline) = (args.verbose, config.deadline);
    let mut shrinker = Shrinker::new(config, initial, |attempt: &Attempt, best: &Failure| {
        let size = Size::of(best);
        // The search ends by itself or at the budget: what is left of the budget bounds the ETA.
        progress.set_message(format!(
            "candidate {} ({}): {} ops, {} faults, {} clients, {} nodes, {:.1} s; at most {} left",
            attempt.number,
            attempt.pass,
            size.operations.map_or("?".into(), |n| n.to_string()),
            size.faults.map_or("?".into(), |n| n.to_string()),
            size.clients,
            size.nodes,
            size.duration_ms as f64 / 1000.0,
            humanize(deadline.saturating_duration_since(Instant::now())),
        ));
        if verbose || attempt.result == "fails" {
            progress.suspend(|| eprintln!("{}", attempt_line(attempt)));
        }
    });
    shrinker.run();
    progress.finish_and_clear();

    let default_out = PathBuf::from("reports").join(format!(
        "shrink-{}-{seed}",
        scenario_name(&args.origin.scenario)
    ));
    let dir = kvsim::run_dir::fresh_dir(args.out.as_deref().unwrap_or(&default_out))?;
    let wall = started.elapsed();
    let written = kvsim::shrink::output::write(
        &dir,
        &args.origin,
        &shrinker,
        &before,
        &violated,
        &target_list,
        wall,
    )?;
    let count = |result: &str| {
        shrinker
            .attempts
            .iter()
            .filter(|a| a.result == result)
            .count()
    };
    let (kept, tried) = (count("fails"), shrinker.attempts.len() - count("seen"));
    let ending = match shrinker.interrupted {
        Some(signal) => format!(
            " — stopped by {}, not fully minimized (run it again to go on)",
            signal.name()
        ),
        None if shrinker.out_of_time => {
            " — time budget spent, not fully minimized (a larger --time-budget may shrink further)"
                .to_string()
        }
        None => " — minimal: no candidate smaller fails".to_string(),
    };
    outln!(
        "shrunk seed {seed} of {file} in {:.1} s: {tried} candidates ({kept} kept), {} runs, {} round(s){ending}",
        wall.as_secs_f64(),
        shrinker.runs,
        shrinker.rounds,
    );
    outln!("{}", written.reduction);
    let best = &shrinker.best;
    outln!(
        "minimal run violates: {}",
        best.evidence.properties().join(", ")
    );
    outln!("shrunk scenario: {}", written.shrunk_path.display());
    outln!("report: {}", dir.display());
    outln!("reproduce: {}", written.reproduce);
    let exit = shrinker.interrupted.map_or(Exit::Violation, Exit::from);
    if args.output.json {
        let mut value = written.record;
        value
            .as_object_mut()
            .expect("a record is an object")
            .remove("attempts");
        value["command"] = "shrink".into();
        value["dir"] = dir.display().to_string().into();
        value["shrunk_scenario"] = written.shrunk_path.display().to_string().into();
        value["exit"] = exit.code().into();
        kvsim::stdout::write_json(&value);
    }
    Ok(exit)
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
