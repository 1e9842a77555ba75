//! `kvsim bugs`: prints the planted-bug catalogue (`kvsim::catalogue`) and, with `--measure`,
//! how many seeds each bug needs before a checker catches it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use kvsim::catalogue::{
    description, entry, load_scenario, measure, median, BugMeasurement, CatalogueEntry,
    SeedOutcome, CATALOGUE,
};
use kvsim::cli::parse_duration;
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim::verdict::Status;
use kvsim_sim::scenario::Scenario;

#[derive(Args)]
pub struct BugsArgs {
    /// Run each bug's scenario with the bug on, seeds 0.., until the expected property is violated.
    #[arg(long)]
    pub measure: bool,
    /// Most seeds tried per bug (with --measure).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub seeds: u64,
    /// Detecting seeds to find per bug before stopping (with --measure); more than 1 lists seeds
    /// for regression tests.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub detections: usize,
    /// Measure only this bug (repeatable).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Parallel workers; default one per core.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The directory holding the catalogue's scenario files.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    pub scenarios: PathBuf,
    /// Time budget of each seed's linearizability check (250ms, 90s, 5m; a bare number is
    /// seconds); a check not decided by then is `unknown`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub check_timeout: Duration,
    /// The store whose planted bugs are listed and measured (`kvsim targets`); default raft-rs.
    #[arg(long, value_name = "NAME", default_value = kvsim_sim::targets::DEFAULT)]
    pub target: String,
}

pub fn main(args: BugsArgs) -> Result<Exit> {
    kvsim::panic_hook::install_one_line();
    for bug in &args.bugs {
        if entry(bug).is_none() {
            let known: Vec<&str> = CATALOGUE.iter().map(|entry| entry.bug).collect();
            bail!(
                "--bug {bug:?}: unknown bug, expected one of {}",
                known.join(", ")
            );
        }
    }
    let target = kvsim_sim::targets::by_name(&args.target)
        .map_err(|error| anyhow::anyhow!("--target: {error}"))?;
    let planted = target.planted_bugs();
    for bug in &args.bugs {
        if !planted.contains(&bug.as_str()) {
            bail!(
                "--bug {bug:?}: target {} has no such planted bug (it has: {})",
                target.name(),
                planted.join(", ")
            );
        }
    }
    let selected: Vec<&CatalogueEntry> = CATALOGUE
        .iter()
        .filter(|entry| planted.contains(&entry.bug))
        .filter(|entry| args.bugs.is_empty() || args.bugs.iter().any(|bug| bug == entry.bug))
        .collect();
    if !args.measure {
        print_catalogue(&selected);
        return Ok(Exit::Ok);
    }
    if args.seeds == 0 || args.detections == 0 {
        bail!("--seeds and --detections: expected at least 1");
    }
    let scenarios = selected
        .iter()
        .map(|entry| {
            let scenario = load_scenario(&args.scenarios, entry, true)?;
            kvsim::cli::with_flags(scenario, &[], Some(target.name()))
                .map_err(|error| anyhow::anyhow!("bug {}: {error:#}", entry.bug))
        })
        .collect::<Result<Vec<Scenario>>>()?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let check_timeout = args.check_timeout;
    eprintln!(
        "measuring {} bugs, up to {} seeds each until {} detection(s), {jobs} workers",
        selected.len(),
        args.seeds,
        args.detections
    );
    kvsim::interrupt::install();
    let started = Instant::now();
    let measured = measure(
        &selected,
        &scenarios,
        args.seeds,
        args.detections,
        jobs,
        check_timeout,
    )?;
    let missed = print_measurements(&selected, &measured, args.seeds, args.detections);
    outln!("wall time {:.1} s", started.elapsed().as_secs_f64());
    if let Some(signal) = kvsim::interrupt::requested() {
        // The table above is what ran; a bug shown as missed may just not have had its seeds.
        outln!(
            "interrupted by {}: the seeds in flight finished, later seeds did not run; the \
             table is partial (run `kvsim bugs --measure` again for the full one)",
            signal.name()
        );
        return Ok(Exit::from(signal));
    }
    Ok(if missed > 0 {
        Exit::Violation
    } else {
        Exit::Ok
    })
}

/// The catalogue as a table: bug, description, expected properties, scenario.
fn print_catalogue(selected: &[&CatalogueEntry]) {
    let rows: Vec<[String; 4]> = selected
        .iter()
        .map(|entry| {
            [
                entry.bug.to_string(),
                description(entry.bug).unwrap_or("").to_string(),
                entry.properties.join(" | "),
                entry.scenario_label(),
            ]
        })
        .collect();
    let header = ["bug", "description", "caught by", "scenario"].map(str::to_string);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [bug, text, properties, scenario] = row;
        let [w0, w1, w2, _] = widths;
        outln!("{bug:<w0$}  {text:<w1$}  {properties:<w2$}  {scenario}");
    }
}

/// Prints the measurement table and the median / max of seeds-until-first-detection; returns the
/// number of bugs not caught within `seeds_max`.
fn print_measurements(
    selected: &[&CatalogueEntry],
    measured: &[BugMeasurement],
    seeds_max: u64,
    detections: usize,
) -> usize {
    let mut rows: Vec<[String; 7]> = Vec::new();
    let mut until_first: Vec<u64> = Vec::new();
    for (entry, measurement) in selected.iter().zip(measured) {
        let wall_s = measurement
            .outcomes
            .values()
            .map(|outcome| outcome.wall_ms)
            .sum::<u128>() as f64
            / 1000.0;
        let found: Vec<&SeedOutcome> = measurement.detections(entry).take(detections).collect();
        let row = match found.first() {
            None => {
                let seen = summarize_properties(measurement);
                [
                    entry.bug.to_string(),
                    entry.scenario_label(),
                    format!(">{seeds_max}"),
                    "NOT CAUGHT".to_string(),
                    if seen.is_empty() {
                        "-".to_string()
                    } else {
                        seen
                    },
                    "-".to_string(),
                    format!("{wall_s:.1}"),
                ]
            }
            Some(first) => {
                until_first.push(first.seed + 1);
                let caught_by = first.caught_by(entry.properties).expect("a detection");
                let also: Vec<&str> = first
                    .properties()
                    .into_iter()
                    .filter(|name| *name != caught_by)
                    .collect();
                let seeds: Vec<String> = found
                    .iter()
                    .map(|outcome| outcome.seed.to_string())
                    .collect();
                [
                    entry.bug.to_string(),
                    entry.scenario_label(),
                    (first.seed + 1).to_string(),
                    caught_by,
                    if also.is_empty() {
                        "-".to_string()
                    } else {
                        also.join(", ")
                    },
                    seeds.join(" "),
                    format!("{wall_s:.1}"),
                ]
            }
        };
        rows.push(row);
    }
    let header = [
        "bug",
        "scenario",
        "seeds",
        "caught by",
        "also fired",
        "detecting seeds",
        "wall s",
    ]
    .map(str::to_string);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(column, (cell, width))| match column {
                2 | 6 => format!("{cell:>width$}"),
                _ => format!("{cell:<width$}"),
            })
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
    let missed = selected.len() - until_first.len();
    if let (Some(median), Some(max)) = (median(&until_first), until_first.iter().max()) {
        outln!(
            "seeds until first detection: median {median}, max {max} ({} of {} bugs caught within {seeds_max} seeds)",
            until_first.len(),
            selected.len()
        );
    }
    missed
}

/// What a bug's seeds violated when none violated the expected property: `property×count`.
fn summarize_properties(measurement: &BugMeasurement) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in measurement.outcomes.values() {
        for property in outcome.properties() {
            *counts.entry(property).or_insert(0) += 1;
        }
        if outcome.status == Status::Inconclusive {
            *counts.entry("inconclusive").or_insert(0) += 1;
        }
    }
    counts
        .iter()
        .map(|(name, count)| format!("{name}×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}
