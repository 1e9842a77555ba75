//! `kvsim bugs`: prints the planted-bug catalogue (`kvsim::catalogue`) and, with `--measure`,
//! how many seeds each bug needs before a checker catches it. Selecting, measuring and
//! summarizing are [`kvsim::bugs_measure`] and [`kvsim::catalogue::measure`]; this file reads the
//! flags, shows progress and prints.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use kvsim::bugs_measure::{self, Listed, MeasureSummary};
use kvsim::catalogue::measure;
use kvsim::cli::{CheckBudgetArgs, JsonArgs};
use kvsim::exit::Exit;
use kvsim::outln;

#[derive(Args)]
pub struct BugsArgs {
    /// Run each bug's scenario with the bug on, seeds 0.., until the expected property is violated.
    #[arg(long)]
    pub measure: bool,
    /// The seeds tried per bug, `A..B` (B excluded), in order until --detections caught it (with
    /// --measure).
    #[arg(long, value_name = "A..B", value_parser = kvsim::cli::parse_seed_span, default_value = "0..50")]
    pub seeds: kvsim::cli::SeedRange,
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
    #[command(flatten)]
    pub budget: CheckBudgetArgs,
    /// The store whose planted bugs are listed and measured (`kvsim targets`); default raft-rs.
    #[arg(long, value_name = "NAME", default_value = kvsim_sim::targets::DEFAULT)]
    pub target: String,
    #[command(flatten)]
    pub output: JsonArgs,
}

pub fn main(args: BugsArgs) -> Result<Exit> {
    args.output.apply();
    kvsim::panic_hook::install_one_line();
    let selected = bugs_measure::select(&args.bugs, &args.target)?;
    if !args.measure {
        let listed: Vec<Listed> = selected.iter().map(|entry| Listed::of(entry)).collect();
        print_catalogue(&listed);
        if args.output.json {
            kvsim::stdout::write_json(&json!({
                "command": "bugs",
                "target": args.target,
                "bugs": listed,
                "exit": Exit::Ok.code(),
            }));
        }
        return Ok(Exit::Ok);
    }
    if args.detections == 0 {
        bail!("--detections: expected at least 1");
    }
    let scenarios = bugs_measure::scenarios(&args.scenarios, &selected, &args.target)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    eprintln!(
        "measuring {} bugs, seeds {}..{} each until {} detection(s), {jobs} workers",
        selected.len(),
        args.seeds.start,
        args.seeds.end,
        args.detections
    );
    kvsim::interrupt::install();
    let started = Instant::now();
    let progress =
        kvsim::progress::seeds_bar(selected.len() as u64 * args.seeds.len(), args.output.json);
    let measured = measure(
        &selected,
        &scenarios,
        args.seeds.start..args.seeds.end,
        args.detections,
        jobs,
        args.budget.budget(jobs),
        |entry, outcome| {
            if let Some(outcome) = outcome {
                if let Some(property) = outcome.caught_by(entry.properties) {
                    progress.suspend(|| {
                        eprintln!("{}: seed {} caught by {property}", entry.bug, outcome.seed)
                    });
                }
            }
            progress.inc(1);
        },
    );
    progress.finish_and_clear();
    let summary = MeasureSummary::of(&selected, &measured?, args.seeds, args.detections);
    print_measurements(&summary);
    let wall_s = started.elapsed().as_secs_f64();
    outln!("wall time {wall_s:.1} s");
    let signal = kvsim::interrupt::requested();
    let exit = match signal {
        Some(signal) => {
            // The table above is what ran; a bug shown as missed may just not have had its seeds.
            outln!(
                "interrupted by {}: the seeds in flight finished, later seeds did not run; the \
                 table is partial (run `kvsim bugs --measure` again for the full one)",
                signal.name()
            );
            Exit::from(signal)
        }
        None => summary.exit(),
    };
    if args.output.json {
        let mut value = serde_json::to_value(&summary).expect("a summary serializes");
        value["command"] = "bugs".into();
        value["measure"] = true.into();
        value["target"] = args.target.clone().into();
        value["wall_s"] = wall_s.into();
        value["interrupted"] = signal.map(|signal| signal.name()).into();
        value["exit"] = exit.code().into();
        kvsim::stdout::write_json(&value);
    }
    Ok(exit)
}

/// The catalogue as a table: bug, description, expected properties, scenario.
fn print_catalogue(listed: &[Listed]) {
    let rows: Vec<[String; 4]> = listed
        .iter()
        .map(|entry| {
            [
                entry.bug.to_string(),
                entry.description.to_string(),
                entry
                    .caught_by
                    .iter()
                    .map(|property| property.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
                entry.scenario.clone(),
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

/// The measurement table and the median / max of seeds-until-first-detection.
fn print_measurements(summary: &MeasureSummary) {
    let dash_if_empty = |text: String| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text
        }
    };
    let rows: Vec<[String; 8]> = summary
        .rows
        .iter()
        .map(|row| match (&row.seeds_until_first, &row.caught_by) {
            (Some(seeds), Some(caught_by)) => [
                row.bug.to_string(),
                row.scenario.clone(),
                seeds.to_string(),
                caught_by.to_string(),
                format!(
                    "{} {}/{}",
                    row.named_property,
                    row.named_property_seeds,
                    row.detecting_seeds.len()
                ),
                dash_if_empty(row.also_fired.join(", ")),
                row.detecting_seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                format!("{:.1}", row.wall_s),
            ],
            _ => [
                row.bug.to_string(),
                row.scenario.clone(),
                format!(">{}", summary.seeds_max),
                "NOT CAUGHT".to_string(),
                format!("{} 0/0", row.named_property),
                dash_if_empty(row.seen.join(", ")),
                "-".to_string(),
                format!("{:.1}", row.wall_s),
            ],
        })
        .collect();
    let header = [
        "bug",
        "scenario",
        "seeds",
        "caught by",
        "named property",
        "also fired",
        "detecting seeds",
        "wall s",
    ]
    .map(str::to_string);
    let mut widths = [0usize; 8];
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
                2 | 7 => format!("{cell:>width$}"),
                _ => format!("{cell:<width$}"),
            })
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
    if let (Some(median), Some(max)) = (summary.median, summary.max) {
        outln!(
            "seeds until first detection: median {median}, max {max} ({} of {} bugs caught \
             within {} seeds)",
            summary.caught,
            summary.rows.len(),
            summary.seeds_max
        );
    }
}
