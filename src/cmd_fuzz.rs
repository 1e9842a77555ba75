//! `kvsim fuzz`: many seeds in parallel workers, a report for every failing seed, and one line
//! that replays it. The campaign itself is [`kvsim::campaign`]; this file reads the flags,
//! shows progress and prints the summary.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use kvsim_sim::scenario::Scenario;

use kvsim::campaign::{self, Campaign, CampaignSummary, Resume};
use kvsim::cli::{
    campaign_seed_count, campaign_seeds, load_scenario, parse_duration, parse_seed_range,
    scenario_name, with_flags, CheckBudgetArgs, InvariantArgs, JsonArgs, SeedRange, Shard,
};
use kvsim::exit::{internal, Exit};
use kvsim::outln;

#[derive(Args)]
pub struct FuzzArgs {
    /// The scenario every seed runs (unless --swarm).
    #[arg(long, value_name = "FILE", required_unless_present = "swarm")]
    pub scenario: Option<PathBuf>,
    /// Draw each seed's knobs (cluster size, workload mix, fault kinds and rates) from the seed
    /// itself, starting from --scenario if given, else from the defaults.
    #[arg(long)]
    pub swarm: bool,
    /// Seed range `A..B` (B excluded, up to 18446744073709551615) or a single seed `A`; seeds
    /// are taken one at a time, never listed up front.
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range)]
    pub seeds: SeedRange,
    /// Parallel workers (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Run only the I-th (1-based) of N disjoint slices of the seed range (seed ≡ I-1 mod N), so a
    /// CI matrix can spread one campaign over machines.
    #[arg(long, value_name = "I/N", value_parser = kvsim::cli::parse_shard)]
    pub shard: Option<Shard>,
    /// Stop starting new seeds after this much wall time (250ms, 90s, 40m, 1h30m; a bare
    /// number is seconds); default: no limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub time_budget: Option<Duration>,
    /// Switch on a planted bug in the simulated server (repeatable).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// The store under test (`raft-rs`, `openraft`); overrides the scenario's `target`.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Stop at the first violation.
    #[arg(long)]
    pub stop_on_first: bool,
    /// Where the campaign's directory goes.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    #[command(flatten)]
    pub budget: CheckBudgetArgs,
    #[command(flatten)]
    pub output: JsonArgs,
    #[command(flatten)]
    pub invariants: InvariantArgs,
}

pub fn main(args: FuzzArgs) -> Result<Exit> {
    args.output.apply();
    args.invariants.apply();
    kvsim::panic_hook::install_one_line();
    let base = match &args.scenario {
        Some(path) => load_scenario(path, &args.bugs, args.target.as_deref())?,
        None => with_flags(Scenario::default(), &args.bugs, args.target.as_deref())?,
    };
    let seeds_planned = campaign_seed_count(args.seeds, args.shard);
    if seeds_planned == 0 {
        bail!(
            "the shard selects no seed of {}..{}",
            args.seeds.start,
            args.seeds.end
        );
    }
    let name = match (&args.scenario, args.swarm) {
        (_, true) => "swarm".to_string(),
        (Some(path), false) => scenario_name(path),
        (None, false) => unreachable!("clap requires --scenario without --swarm"),
    };
    let mut id = format!("fuzz-{name}-{}-{}", args.seeds.start, args.seeds.end);
    if let Some(shard) = args.shard {
        id.push_str(&format!("-shard-{}-of-{}", shard.index, shard.count));
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let memory_max = args.budget.memory_max(jobs);
    kvsim::memory::check_scenario_fits(&base, memory_max)?;
    let dir = kvsim::run_dir::fresh_dir(&args.out.join(&id))?;
    eprintln!(
        "campaign {} — {} seeds, {jobs} workers, search memo at most {} MiB each, output {}",
        id,
        seeds_planned,
        memory_max >> 20,
        dir.display()
    );
    kvsim::interrupt::install();
    let campaign = Campaign {
        base,
        swarm: args.swarm,
        dir,
        check_budget: args.budget.budget(jobs),
        jobs,
        stop_on_first: args.stop_on_first,
        time_budget: args.time_budget,
    };
    let progress = kvsim::progress::seeds_bar(seeds_planned, args.output.json);
    let failures = AtomicUsize::new(0);
    let outcome = campaign.run(campaign_seeds(args.seeds, args.shard), |result| {
        if result.status.is_failure() {
            let found = failures.fetch_add(1, Ordering::Relaxed) + 1;
            progress.set_message(format!("{found} violations"));
            progress.suspend(|| {
                eprintln!(
                    "seed {}: {} {}",
                    result.seed,
                    result.status.as_str(),
                    result.properties.join(", ")
                );
                if let Some(replay) = &result.replay {
                    eprintln!("  replay: {replay}");
                }
            });
        }
        progress.inc(1);
    });
    progress.finish_and_clear();
    let resume = outcome
        .not_run
        .map(|(first, why)| Resume::of(args.seeds, args.shard, first, why));
    let summary = CampaignSummary::of(&id, &outcome, seeds_planned, resume);
    print_summary(&summary);
    internal(campaign::write_files(&campaign.dir, &summary, &outcome))?;
    outln!("reports: {}", campaign.dir.display());
    if let Some(resume) = &summary.resume {
        outln!(
            "not run: {} seeds ({}); resume with: {}",
            resume.seeds_not_run,
            resume.why,
            resume_line(&args, resume)
        );
    }
    let exit = match kvsim::interrupt::requested() {
        Some(signal) => Exit::from(signal),
        None => summary.exit(),
    };
    if args.output.json {
        let mut value = serde_json::to_value(&summary).expect("a summary serializes");
        value["command"] = "fuzz".into();
        value["dir"] = campaign.dir.display().to_string().into();
        value["exit"] = exit.code().into();
        kvsim::stdout::write_json(&value);
    }
    Ok(exit)
}

/// The command that runs exactly the seeds a stopped campaign did not, with its other flags.
fn resume_line(args: &FuzzArgs, resume: &Resume) -> String {
    let mut line = String::from("kvsim fuzz");
    if let Some(scenario) = &args.scenario {
        line.push_str(&format!(" --scenario {}", scenario.display()));
    }
    if args.swarm {
        line.push_str(" --swarm");
    }
    line.push_str(&format!(" --seeds {}", resume.seeds));
    if let Some(shard) = &resume.shard {
        line.push_str(&format!(" --shard {shard}"));
    }
    for bug in &args.bugs {
        line.push_str(&format!(" --bug {bug}"));
    }
    if let Some(target) = &args.target {
        line.push_str(&format!(" --target {target}"));
    }
    line
}

fn print_summary(summary: &CampaignSummary) {
    outln!(
        "seeds run       {:>8} of {}",
        summary.seeds_run,
        summary.seeds_planned
    );
    outln!("ok              {:>8}", summary.ok);
    outln!("violations      {:>8}", summary.violations);
    for (property, count) in &summary.violations_by_property {
        outln!("  {property:<28} {count:>5}");
    }
    outln!("unknown         {:>8}", summary.unknown);
    outln!("errors          {:>8}", summary.errors);
    outln!("wall time       {:>8.1} s", summary.wall_s);
    outln!(
        "simulated time  {:>8.1} s ({:.0}× real time)",
        summary.simulated_s,
        summary.simulated_s / summary.wall().as_secs_f64()
    );
    for result in &summary.failing {
        let what = if result.properties.is_empty() {
            result.status.as_str().to_string()
        } else {
            result.properties.join(", ")
        };
        outln!("seed {}: {what}", result.seed);
        if let Some(replay) = &result.replay {
            outln!("  replay: {replay}");
        }
    }
}
