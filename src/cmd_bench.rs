//! `kvsim bench`: speed figures for the checker and the simulator. Speed goals live here, not in
//! timed tests. Run in release: `cargo run --release -- bench check`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kvsim_checker::bench::porcupine::Porcupine;
use kvsim_checker::bench::register::bench_registers;
use kvsim_checker::bench::{bench_check, BenchConfig};
use kvsim_checker::generate::register::register_families;
use kvsim_sim::runner;

use kvsim::cli::{load_scenario, parse_duration};
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim::verdict::{judge_run, Status};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
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
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        mvcc_ops: Vec<usize>,
        /// Which parts to run.
        #[arg(
            long,
            value_enum,
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
        /// Seeds 0..N.
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// Parallel workers (default: one per core).
        #[arg(long)]
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
    match args.what {
        BenchWhat::Check {
            anchors,
            timeout,
            mvcc_ops,
            cases,
            register_files,
            register_out,
            porcupine,
            verbose,
        } => bench_checker(CheckBench {
            anchors,
            timeout,
            mvcc_ops,
            cases,
            register_files,
            register_out,
            porcupine,
            verbose,
        }),
        BenchWhat::Sim {
            scenario,
            seeds,
            jobs,
            with_check,
            target,
        } => bench_sim(scenario, seeds, jobs, with_check, target),
    }
}

/// What `bench check` was asked to do.
struct CheckBench {
    anchors: PathBuf,
    timeout: Duration,
    mvcc_ops: Vec<usize>,
    cases: Vec<BenchCase>,
    register_files: usize,
    register_out: PathBuf,
    porcupine: Option<PathBuf>,
    verbose: bool,
}

fn bench_checker(args: CheckBench) -> Result<Exit> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; figures mean little (use cargo run --release)");
    }
    let mut config = BenchConfig {
        mvcc_ops: if args.cases.contains(&BenchCase::Mvcc) {
            args.mvcc_ops
        } else {
            Vec::new()
        },
        ..BenchConfig::default()
    };
    config.budget.timeout = Some(args.timeout);
    let mut wrong = 0;
    if args.cases.contains(&BenchCase::Anchors) || args.cases.contains(&BenchCase::Mvcc) {
        outln!(
            "{:<34} {:>11} {:>11} {:>17}  verdict",
            "history",
            "ops",
            "seconds",
            "search steps"
        );
        let anchors = args
            .cases
            .contains(&BenchCase::Anchors)
            .then_some(args.anchors.as_path());
        let lines = bench_check(anchors, &config, |line| outln!("{line}"))
            .map_err(|error| anyhow::anyhow!(error))?;
        let disagreements = lines
            .iter()
            .filter(|line| line.verdict.contains("disagree"))
            .count();
        if disagreements > 0 {
            outln!("{disagreements} verdicts differ from porcupine's");
            wrong += disagreements;
        }
    }
    if args.cases.contains(&BenchCase::Registers) {
        let mut porcupine = match &args.porcupine {
            None => {
                outln!("porcupine skipped: no --porcupine DIR (a checkout of its Go module)");
                None
            }
            Some(dir) => {
                let harness = PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tools/porcupine-bench"
                ));
                match Porcupine::start(&harness, dir) {
                    Ok(porcupine) => Some(porcupine),
                    Err(why) => {
                        outln!("porcupine skipped: {why}");
                        None
                    }
                }
            }
        };
        outln!(
            "cas-register families, {} files each, written to {}",
            args.register_files,
            args.register_out.display()
        );
        let verbose = args.verbose;
        let families = bench_registers(
            &register_families(),
            args.register_files,
            &args.register_out,
            &config.budget,
            porcupine.as_mut(),
            |file| {
                if verbose {
                    outln!("{file}");
                }
            },
        )
        .map_err(|error| anyhow::anyhow!(error))?;
        for family in &families {
            outln!("{family}");
            wrong += family.kvsim_wrong();
        }
    }
    if wrong > 0 {
        outln!("{wrong} verdicts differ from the expected ones");
        return Ok(Exit::Violation);
    }
    Ok(Exit::Ok)
}

fn bench_sim(
    scenario_path: PathBuf,
    seeds: u64,
    jobs: Option<usize>,
    with_check: bool,
    target: Option<String>,
) -> Result<Exit> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; figures mean little (use cargo run --release)");
    }
    if seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let scenario = load_scenario(&scenario_path, &[], target.as_deref())?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicU64::new(0);
    let simulated_ms = AtomicU64::new(0);
    let ops = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds {
                    break;
                }
                match runner::run(&scenario, seed) {
                    Ok(output) => {
                        simulated_ms.fetch_add(output.simulated_ms, Ordering::Relaxed);
                        ops.fetch_add(output.stats.ops, Ordering::Relaxed);
                        if with_check {
                            let verdict = judge_run(&output, Duration::from_secs(60));
                            if verdict.status != Status::Ok {
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("seed {seed}: {}", verdict.status));
                            }
                        }
                    }
                    Err(error) => failures
                        .lock()
                        .unwrap()
                        .push(format!("seed {seed}: {error}")),
                }
            });
        }
    });
    let wall_s = started.elapsed().as_secs_f64();
    let simulated_s = simulated_ms.into_inner() as f64 / 1000.0;
    outln!(
        "scenario {} — {seeds} seeds, {jobs} workers{}",
        scenario_path.display(),
        if with_check { ", checked" } else { "" }
    );
    outln!("wall time            {wall_s:>10.2} s");
    outln!("simulated time       {simulated_s:>10.1} s");
    outln!("simulated/wall       {:>10.0} ×", simulated_s / wall_s);
    outln!(
        "seeds per minute     {:>10.0}",
        seeds as f64 * 60.0 / wall_s
    );
    outln!("operations           {:>10}", ops.into_inner());
    let failures = failures.into_inner().unwrap();
    for failure in &failures {
        outln!("  {failure}");
    }
    Ok(if failures.is_empty() {
        Exit::Ok
    } else {
        Exit::Violation
    })
}
