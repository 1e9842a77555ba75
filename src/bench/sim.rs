//! `kvsim bench sim`: the simulator's speed, simulated seconds per wall second and seeds per
//! minute, over seeds `0..N` on parallel workers (both figures count the workers together).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kvsim_sim::runner;
use kvsim_sim::scenario::Scenario;
use serde::Serialize;

use crate::exit::Exit;
use crate::verdict::{judge_run, Status};

/// What `bench sim` is asked to do.
pub struct SimBench {
    pub scenario: Scenario,
    /// The seeds run (not empty).
    pub seeds: crate::cli::SeedRange,
    /// Parallel workers, at least 1.
    pub jobs: usize,
    /// Also judge every seed (seeds per minute end to end).
    pub with_check: bool,
}

/// What `bench sim` measured.
#[derive(Serialize)]
pub struct SimBenchReport {
    /// How many seeds ran, from `first_seed`.
    pub seeds: u64,
    pub first_seed: u64,
    pub jobs: usize,
    pub with_check: bool,
    pub wall_s: f64,
    pub simulated_s: f64,
    pub simulated_per_wall: f64,
    pub seeds_per_minute: f64,
    pub ops: u64,
    /// `seed N: <status or error>` for every seed that did not run or (checked) did not pass.
    pub failures: Vec<String>,
}

impl SimBench {
    /// Runs every seed, calling `on_seed` (from a worker thread) as each one ends.
    pub fn run(&self, on_seed: impl Fn(u64) + Sync) -> SimBenchReport {
        let next = AtomicU64::new(0);
        let simulated_ms = AtomicU64::new(0);
        let ops = AtomicU64::new(0);
        let failures = Mutex::new(Vec::new());
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.max(1) {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= self.seeds.len() {
                        break;
                    }
                    let seed = self.seeds.start + index;
                    match runner::run(&self.scenario, seed) {
                        Ok(output) => {
                            simulated_ms.fetch_add(output.simulated_ms, Ordering::Relaxed);
                            ops.fetch_add(output.stats.ops, Ordering::Relaxed);
                            if self.with_check {
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
                    on_seed(seed);
                });
            }
        });
        let wall_s = started.elapsed().as_secs_f64();
        let simulated_s = simulated_ms.into_inner() as f64 / 1000.0;
        SimBenchReport {
            seeds: self.seeds.len(),
            first_seed: self.seeds.start,
            jobs: self.jobs,
            with_check: self.with_check,
            wall_s,
            simulated_s,
            simulated_per_wall: simulated_s / wall_s,
            seeds_per_minute: self.seeds.len() as f64 * 60.0 / wall_s,
            ops: ops.into_inner(),
            failures: failures.into_inner().unwrap(),
        }
    }
}

impl SimBenchReport {
    /// 0 when every seed ran (and, checked, passed), else 1.
    pub fn exit(&self) -> Exit {
        if self.failures.is_empty() {
            Exit::Ok
        } else {
            Exit::Violation
        }
    }
}
