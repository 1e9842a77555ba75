//! `kvsim bench`: speed figures for the checker and the simulator. Speed goals live here, not in
//! timed tests. Run in release: `cargo run --release -- bench check`. The benchmarks are
//! [`kvsim::bench`]; this file reads the flags, shows progress and prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use kvsim::bench::check::{CheckBench, CheckEvent, RegisterBench};
use kvsim::bench::sim::{SimBench, SimBenchReport};
use kvsim::cli::{load_scenario, parse_duration};
use kvsim::exit::Exit;
use kvsim::outln;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
    /// Print the figures as one JSON object on stdout when done (with `command`, `bench` and
    /// `exit`); the human lines go to stderr.
    #[arg(long, global = true)]
    json: bool,
}

/// Parts of `bench check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchCase {
    /// porcupine's own test data (Jepsen etcd logs, kv logs).
    Anchors,
    /// Generated MVCC histories.
    Mvcc,
    /// Generated hard cas-register families (issue 11's shape and variants).
    Registers,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// The linearizability checker on porcupine's test data and on generated MVCC histories.
    Check {
        /// porcupine's test data (EXPECTED.tsv, jepsen/, kv/); default: the copy vendored in
        /// this repository, `checker/tests/data/porcupine`.
        #[arg(
            long,
            value_name = "DIR",
            default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/checker/tests/data/porcupine")
        )]
        anchors: PathBuf,
        /// Time budget of each single check (250ms, 90s, 5m; a bare number is seconds).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
        timeout: Duration,
        /// Sizes of the generated MVCC histories (32 clients, 1% unknown outcomes).
        #[arg(
            long,
            value_name = "OPS,...",
            value_delimiter = ',',
            default_value = "10000,100000"
        )]
        mvcc_ops: Vec<usize>,
        /// Which parts to run.
        #[arg(
            long,
            value_enum,
            value_name = "CASE,...",
            value_delimiter = ',',
            default_value = "anchors,mvcc,registers"
        )]
        cases: Vec<BenchCase>,
        /// Files per generated cas-register family (seeds 0..N; odd seeds carry a planted stale
        /// read).
        #[arg(long, value_name = "N", default_value_t = 10)]
        register_files: usize,
        /// Where the generated register logs are written (to re-check one with
        /// `kvsim check --model cas-register --format jepsen FILE`).
        #[arg(long, value_name = "DIR", default_value = "reports/bench-registers")]
        register_out: PathBuf,
        /// A checkout of porcupine's Go module (github.com/anishathalye/porcupine): run
        /// porcupine beside kvsim on every register file (needs `go`; builds offline).
        #[arg(long, value_name = "DIR")]
        porcupine: Option<PathBuf>,
        /// Print every register file's line, not only the family totals.
        #[arg(short, long)]
        verbose: bool,
    },
    /// The simulator: simulated seconds per wall second and seeds per minute.
    Sim {
        #[arg(long, value_name = "FILE", default_value = "scenarios/default.toml")]
        scenario: PathBuf,
        /// The seeds run, `A..B` (B excluded).
        #[arg(long, value_name = "A..B", value_parser = kvsim::cli::parse_seed_span, default_value = "0..20")]
        seeds: kvsim::cli::SeedRange,
        /// Parallel workers (default: one per core).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Also run the checkers on every seed (seeds per minute end to end).
        #[arg(long)]
        with_check: bool,
        /// The store under test (`raft-rs`, `openraft`); overrides the scenario's `target`.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
    },
}

pub fn main(args: BenchArgs) -> Result<Exit> {
    if args.json {
        kvsim::stdout::json_mode();
    }
    if kvsim::bench::DEBUG_BUILD {
        eprintln!("warning: a debug build; figures mean little (use cargo run --release)");
    }
    let (exit, mut value) = match args.what {
        BenchWhat::Check {
            anchors,
            timeout,
            mvcc_ops,
            cases,
            register_files,
            register_out,
            porcupine,
            verbose,
        } => {
            let bench = CheckBench {
                anchors: cases.contains(&BenchCase::Anchors).then_some(anchors),
                mvcc_ops: cases.contains(&BenchCase::Mvcc).then_some(mvcc_ops),
                registers: cases
                    .contains(&BenchCase::Registers)
                    .then_some(RegisterBench {
                        files: register_files,
                        out: register_out,
                        porcupine,
                    }),
                timeout,
            };
            let report = bench.run(|event| print_check_event(event, verbose))?;
            if report.wrong() > 0 {
                outln!("{} verdicts differ from the expected ones", report.wrong());
            }
            (report.exit(), report.to_json())
        }
        BenchWhat::Sim {
            scenario,
            seeds,
            jobs,
            with_check,
            target,
        } => {
            let bench = SimBench {
                scenario: load_scenario(&scenario, &[], target.as_deref())?,
                seeds,
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .max(1),
                with_check,
            };
            let progress = kvsim::progress::seeds_bar(seeds.len(), args.json);
            let report = bench.run(|_| progress.inc(1));
            progress.finish_and_clear();
            print_sim(&scenario, &report);
            let mut value = serde_json::to_value(&report).expect("a report serializes");
            value["bench"] = "sim".into();
            value["scenario"] = scenario.display().to_string().into();
            value["debug_build"] = kvsim::bench::DEBUG_BUILD.into();
            (report.exit(), value)
        }
    };
    if args.json {
        value["command"] = "bench".into();
        value["exit"] = exit.code().into();
        kvsim::stdout::write_json(&value);
    }
    Ok(exit)
}

fn print_check_event(event: CheckEvent<'_>, verbose: bool) {
    match event {
        CheckEvent::HistoriesStart => outln!(
            "{:<34} {:>11} {:>11} {:>17}  verdict",
            "history",
            "ops",
            "seconds",
            "search steps"
        ),
        CheckEvent::Line(line) => outln!("{line}"),
        CheckEvent::Disagreements(count) => outln!("{count} verdicts differ from porcupine's"),
        CheckEvent::PorcupineSkipped(why) => outln!("porcupine skipped: {why}"),
        CheckEvent::RegistersStart(registers) => outln!(
            "cas-register families, {} files each, written to {}",
            registers.files,
            registers.out.display()
        ),
        CheckEvent::RegisterFile(file) => {
            if verbose {
                outln!("{file}");
            }
        }
        CheckEvent::Family(family) => outln!("{family}"),
    }
}

fn print_sim(scenario: &std::path::Path, report: &SimBenchReport) {
    outln!(
        "scenario {} — {} seeds, {} workers{}",
        scenario.display(),
        report.seeds,
        report.jobs,
        if report.with_check { ", checked" } else { "" }
    );
    outln!("wall time            {:>10.2} s", report.wall_s);
    outln!("simulated time       {:>10.1} s", report.simulated_s);
    outln!("simulated/wall       {:>10.0} ×", report.simulated_per_wall);
    outln!("seeds per minute     {:>10.0}", report.seeds_per_minute);
    outln!("operations           {:>10}", report.ops);
    for failure in &report.failures {
        outln!("  {failure}");
    }
}
