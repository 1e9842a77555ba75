//! One seed of a campaign: run it, judge it, and write its report directory if it did not pass.

use std::path::Path;
use std::time::Instant;

use kvsim_checker::Budget;
use kvsim_sim::runner;
use kvsim_sim::scenario::Scenario;
use serde::Serialize;

use crate::report_files;
use crate::run_dir::{replay_line, write_outputs, write_panic, SIMULATION_PANIC};
use crate::verdict::Status;

/// A seed's outcome: the verdict's status, or `error` when kvsim could not write its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedStatus {
    Ok,
    Violation,
    Inconclusive,
    /// kvsim failed (an I/O error writing the report): an internal error, not a finding.
    Error,
}

impl SeedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SeedStatus::Ok => "ok",
            SeedStatus::Violation => "violation",
            SeedStatus::Inconclusive => "inconclusive",
            SeedStatus::Error => "error",
        }
    }

    /// A violation or an error: what `--stop-on-first` stops at and JUnit counts as a failure.
    pub fn is_failure(self) -> bool {
        matches!(self, SeedStatus::Violation | SeedStatus::Error)
    }
}

impl From<Status> for SeedStatus {
    fn from(status: Status) -> SeedStatus {
        match status {
            Status::Ok => SeedStatus::Ok,
            Status::Violation => SeedStatus::Violation,
            Status::Inconclusive => SeedStatus::Inconclusive,
        }
    }
}

/// One seed's line in the campaign summary.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    pub seed: u64,
    pub status: SeedStatus,
    pub properties: Vec<String>,
    pub ops: u64,
    pub simulated_ms: u64,
    pub wall_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs `seed` of `scenario`, judges it within `check_budget`, and writes `dir/seed-<N>/` (history,
/// verdict, report) unless it passed.
pub fn run_seed(scenario: &Scenario, seed: u64, dir: &Path, check_budget: Budget) -> SeedResult {
    let started = Instant::now();
    let seed_dir = dir.join(format!("seed-{seed}"));
    let mut result = SeedResult {
        seed,
        status: SeedStatus::Ok,
        properties: Vec::new(),
        ops: 0,
        simulated_ms: 0,
        wall_ms: 0,
        report_dir: None,
        replay: None,
        error: None,
    };
    let mut panicked = false;
    let written = match runner::run(scenario, seed) {
        Err(error) => {
            panicked = true;
            // A panic inside the simulation is an assertion of the simulated server or node firing,
            // or a hang caught by the time limit: a finding, reported like a violation.
            result.status = SeedStatus::Violation;
            result.properties = vec![SIMULATION_PANIC.into()];
            result.error = Some(error.to_string());
            let message = match &error {
                runner::RunError::Panicked { message, .. } => message.clone(),
                runner::RunError::Scenario(message) => message.clone(),
            };
            Some(write_panic(&seed_dir, scenario, seed, &message))
        }
        Ok(output) => {
            let verdict = crate::memory::judge_run_within(&output, check_budget);
            result.ops = output.stats.ops;
            result.simulated_ms = output.simulated_ms;
            result.status = verdict.status.into();
            result.properties = verdict.properties();
            (verdict.status != Status::Ok).then(|| {
                write_outputs(&seed_dir, &output, &verdict).and_then(|()| {
                    report_files::write_report(
                        &seed_dir,
                        &output,
                        &verdict,
                        &replay_line(&seed_dir),
                    )
                })
            })
        }
    };
    if let Some(written) = written {
        if let Err(error) = written {
            // A simulation panic stays a finding (its error line says why no report was kept);
            // a verdict whose report cannot be written is kvsim's failure.
            if !panicked {
                result.status = SeedStatus::Error;
            }
            result.error = Some(format!("{error:#}"));
        }
        result.replay = Some(replay_line(&seed_dir));
        result.report_dir = Some(seed_dir.display().to_string());
    }
    result.wall_ms = started.elapsed().as_millis();
    result
}
