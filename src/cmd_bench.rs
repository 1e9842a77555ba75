//! `kvsim bench`: speed figures for the checker and the simulator. Speed goals live here, not in
//! timed tests. Run in release: `cargo run --release -- bench check`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kvsim_checker::bench::{bench_check, BenchConfig};
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
    },
}

pub fn main(args: BenchArgs) -> Result<Exit> {
    match args.what {
        BenchWhat::Check {
            anchors,
            timeout,
            mvcc_ops,
        } => bench_checker(anchors, timeout, mvcc_ops),
        BenchWhat::Sim {
            scenario,
            seeds,
            jobs,
            with_check,
        } => bench_sim(scenario, seeds, jobs, with_check),
    }
}

fn bench_checker(anchors: PathBuf, timeout: Duration, mvcc_ops: Vec<usize>) -> Result<Exit> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; figures mean little (use cargo run --release)");
    }
    let mut config = BenchConfig {
        mvcc_ops,
        ..BenchConfig::default()
    };
    config.budget.timeout = Some(timeout);
    outln!(
        "{:<34} {:>11} {:>11} {:>17}  verdict",
        "history",
        "ops",
        "seconds",
        "search steps"
    );
    let lines = bench_check(&anchors, &config, |line| outln!("{line}"))
        .map_err(|error| anyhow::anyhow!(error))?;
    let disagreements = lines
        .iter()
        .filter(|line| line.verdict.contains("disagree"))
        .count();
    if disagreements > 0 {
        outln!("{disagreements} verdicts differ from porcupine's");
        return Ok(Exit::Violation);
    }
    Ok(Exit::Ok)
}

fn bench_sim(
    scenario_path: PathBuf,
    seeds: u64,
    jobs: Option<usize>,
    with_check: bool,
) -> Result<Exit> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; figures mean little (use cargo run --release)");
    }
    if seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let scenario = load_scenario(&scenario_path, &[])?;
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
