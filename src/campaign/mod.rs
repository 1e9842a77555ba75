//! A fuzz campaign: many seeds of one scenario (or of swarm-drawn ones) on parallel workers, a
//! report directory for every seed that did not pass, and the summary and JUnit files a CI job
//! reads. `kvsim fuzz` is this module behind a command line.
//!
//! Every seed runs on a fresh OS thread with a fresh madsim runtime (inside `runner::run`), so no
//! state leaks between seeds; workers only decide which seed runs next (see [`crate::work_queue`]).

pub mod junit;
pub mod seed;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kvsim_checker::Budget;
use kvsim_sim::scenario::Scenario;

use crate::swarm;
use crate::work_queue::{self, Flow};
pub use seed::{SeedResult, SeedStatus};
pub use summary::{CampaignSummary, Resume};

/// What a campaign runs, and where its output goes.
pub struct Campaign {
    /// The scenario every seed runs, or the base swarm draws from.
    pub base: Scenario,
    /// Draw each seed's knobs from the seed itself (see [`crate::swarm`]).
    pub swarm: bool,
    /// The campaign's own directory (fresh: see [`crate::run_dir::fresh_dir`]); a seed that did
    /// not pass writes `seed-<N>/` inside it.
    pub dir: PathBuf,
    /// Each seed's check budget (time and search memory).
    pub check_budget: Budget,
    /// Parallel workers, at least 1.
    pub jobs: usize,
    /// Take no seed after the first violation or error.
    pub stop_on_first: bool,
    /// Take no seed once this much wall time has passed.
    pub time_budget: Option<Duration>,
}

/// What stopped a campaign before its last seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    Signal(crate::interrupt::Signal),
    StopOnFirst,
    TimeBudget,
}

impl Stopped {
    /// The spelling summary.json's `resume.why` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Stopped::Signal(signal) => signal.name(),
            Stopped::StopOnFirst => "--stop-on-first",
            Stopped::TimeBudget => "--time-budget",
        }
    }
}

/// A finished (or stopped) campaign: every seed that ran, in seed order.
pub struct Outcome {
    pub results: Vec<SeedResult>,
    /// The first seed not run, and why, when the campaign stopped early.
    pub not_run: Option<(u64, Stopped)>,
    pub wall: Duration,
}

impl Campaign {
    /// Runs `seeds` in order on [`Campaign::jobs`] workers, calling `on_seed` as each seed ends
    /// (from a worker thread; for progress and early lines). Stops taking seeds on a signal
    /// ([`crate::interrupt::requested`]), the time budget, or the first failure with
    /// `stop_on_first`; seeds already running finish.
    pub fn run(
        &self,
        seeds: impl Iterator<Item = u64> + Send,
        on_seed: impl Fn(&SeedResult) + Sync,
    ) -> Outcome {
        assert!(self.jobs > 0, "a campaign has at least one worker");
        let results: Mutex<Vec<SeedResult>> = Mutex::new(Vec::new());
        let started = Instant::now();
        let stop_before_next = || {
            crate::interrupt::requested().is_some()
                || self
                    .time_budget
                    .is_some_and(|budget| started.elapsed() >= budget)
        };
        let mut not_run = work_queue::run(seeds, self.jobs, stop_before_next, |seed| {
            let scenario = if self.swarm {
                swarm::draw(&self.base, seed)
            } else {
                self.base.clone()
            };
            let result = seed::run_seed(&scenario, seed, &self.dir, self.check_budget);
            on_seed(&result);
            let flow = if result.status.is_failure() && self.stop_on_first {
                Flow::Stop
            } else {
                Flow::Continue
            };
            results
                .lock()
                .expect("no worker panics holding the lock")
                .push(result);
            flow
        });
        let mut results = results.into_inner().expect("workers done");
        results.sort_by_key(|result| result.seed);
        let not_run = not_run.next().map(|first| {
            let why = match crate::interrupt::requested() {
                Some(signal) => Stopped::Signal(signal),
                None if self.stop_on_first && results.iter().any(|r| r.status.is_failure()) => {
                    Stopped::StopOnFirst
                }
                None => Stopped::TimeBudget,
            };
            (first, why)
        });
        Outcome {
            results,
            not_run,
            wall: started.elapsed(),
        }
    }
}

/// Writes `summary.json` and `junit.xml` into the campaign directory. Called whatever stopped the
/// campaign: a signal or a budget loses nothing that ran.
pub fn write_files(dir: &Path, summary: &CampaignSummary, outcome: &Outcome) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let text = serde_json::to_string_pretty(summary).expect("a summary serializes");
    let path = dir.join("summary.json");
    std::fs::write(&path, text + "\n")
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let path = dir.join("junit.xml");
    std::fs::write(
        &path,
        junit::junit_xml(&summary.id, &outcome.results, outcome.wall),
    )
    .with_context(|| format!("{}: cannot write", path.display()))
}
