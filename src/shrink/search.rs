//! The shrinking search: propose a smaller scenario, run it, keep it if the target property still
//! fails, until nothing smaller fails or the time budget is spent.
//!
//! madsim drives everything from one seeded RNG, so any change to a scenario (one fault fewer, one
//! client fewer) perturbs the whole schedule: the same seed of a smaller scenario is a different
//! run. A candidate therefore counts as failing when the target fails for ANY of K seeds (the
//! seed that reproduced the current best first, then the original seed, seed + 1, ...), and the
//! result records the seed that reproduces it. Every seed tried is deterministic, so the search is
//! too: the same inputs and budget give the same result, whatever the worker count.
//!
//! Passes, repeated while a round makes progress, the ones that usually cut most first: faults
//! (random faults into an explicit timeline, then ddmin over its entries; if the conversion does
//! not reproduce, ddmin over the random fault kinds instead), workload duration, clients, nodes
//! (7 → 5 → 3 → 1), watchers, recipe participants, keys, think time (a longer think time is kept
//! only if the failing run has fewer operations), and op-mix kinds (ddmin over the kinds with a
//! weight; last, as it costs the most probes).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kvsim_checker::history::History;
use kvsim_model::mvcc::{Op, Ret};
use kvsim_sim::runner::{self, RunError, RunOutput};
use kvsim_sim::scenario::{FaultKind, OpKind, Scenario};
use serde::Serialize;

use super::ddmin::{ddmin, Probe};
use super::timeline::{fit, recorded_faults};
use crate::verdict::{judge_run, Status, Verdict};

/// What one run of one seed showed.
#[derive(Clone, Debug)]
pub enum Evidence {
    Run {
        output: Box<RunOutput>,
        verdict: Box<Verdict>,
    },
    /// The simulation panicked: a server or raft-rs assertion, or the simulated time limit.
    Panic { message: String },
}

impl Evidence {
    /// The violated properties; a panic counts as `simulation.panic` (as `kvsim bugs` counts it).
    pub fn properties(&self) -> Vec<String> {
        match self {
            Evidence::Run { verdict, .. } => verdict.properties(),
            Evidence::Panic { .. } => vec!["simulation.panic".to_string()],
        }
    }

    pub fn status(&self) -> Status {
        match self {
            Evidence::Run { verdict, .. } => verdict.status,
            Evidence::Panic { .. } => Status::Violation,
        }
    }

    pub fn history(&self) -> Option<&History<Op, Ret>> {
        match self {
            Evidence::Run { output, .. } => Some(&output.history),
            Evidence::Panic { .. } => None,
        }
    }

    /// Client operations recorded, when the run completed.
    pub fn ops(&self) -> Option<u64> {
        match self {
            Evidence::Run { output, .. } => Some(output.stats.ops),
            Evidence::Panic { .. } => None,
        }
    }

    /// Faults injected, when the run completed (a majority crash counts once).
    pub fn faults(&self) -> Option<usize> {
        self.history()
            .map(|history| recorded_faults(&history.faults).len())
    }

    fn matches(&self, target: &BTreeSet<String>) -> bool {
        self.properties()
            .iter()
            .any(|property| target.contains(property))
    }
}

/// Runs and judges `seed` of `scenario`. Errors only when the scenario is invalid.
pub fn judge(scenario: &Scenario, seed: u64, check_timeout: Duration) -> Result<Evidence, String> {
    match runner::run(scenario, seed) {
        Ok(output) => {
            let verdict = judge_run(&output, check_timeout);
            Ok(Evidence::Run {
                output: Box::new(output),
                verdict: Box::new(verdict),
            })
        }
        Err(RunError::Panicked { message, .. }) => Ok(Evidence::Panic { message }),
        Err(error @ RunError::Scenario(_)) => Err(error.to_string()),
    }
}

/// A failing run: the scenario, the seed that makes it fail, and what it showed.
#[derive(Clone, Debug)]
pub struct Failure {
    pub scenario: Scenario,
    pub seed: u64,
    pub evidence: Evidence,
}

/// How the search is bounded and what it looks for.
#[derive(Clone, Debug)]
pub struct Config {
    /// The seed the user gave; candidates try it and the ones after it.
    pub base_seed: u64,
    /// K: seeds tried per candidate before it counts as passing.
    pub seeds_per_candidate: usize,
    /// A candidate fails when it violates any of these properties.
    pub target: BTreeSet<String>,
    /// No candidate starts after this instant.
    pub deadline: Instant,
    /// Linearizability budget per run (cut to the time left).
    pub check_timeout: Duration,
    /// Seeds of one candidate run in parallel, this many at a time.
    pub jobs: usize,
}

impl Config {
    /// The properties to shrink for: those of `wanted` the run violates, or every property it
    /// violates when `wanted` is empty. Empty when none of `wanted` is violated.
    pub fn target_of(violated: &[String], wanted: &[String]) -> BTreeSet<String> {
        violated
            .iter()
            .filter(|property| wanted.is_empty() || wanted.contains(property))
            .cloned()
            .collect()
    }

    /// A candidate's check gets five times what the failing run's check took (at least 2 s, at
    /// most `check_timeout`): a history the search cannot settle by then comes back `unknown`,
    /// which counts as not failing — slower, never wrong — and 20 s stalls on every candidate
    /// would eat the budget.
    pub fn candidate_check_timeout(initial: &Evidence, check_timeout: Duration) -> Duration {
        let initial_check = match initial {
            Evidence::Run { verdict, .. } => Duration::from_millis(verdict.check_ms as u64),
            Evidence::Panic { .. } => check_timeout,
        };
        (initial_check * 5)
            .max(Duration::from_secs(2))
            .min(check_timeout)
    }
}

/// One candidate tried, for the progress output and `shrink.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub number: usize,
    pub pass: &'static str,
    pub change: String,
    /// `fails` (kept), `passes`, `invalid` (not a valid scenario), `not smaller`, `seen` (tried
    /// before, passed).
    pub result: &'static str,
    /// The seed that reproduced the target, for `fails`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub properties: Vec<String>,
    pub runs: usize,
    pub wall_ms: u128,
}

/// Told about every candidate, with the best failure after it (progress output).
type OnAttempt<'a> = Box<dyn FnMut(&Attempt, &Failure) + 'a>;

/// The search state: the smallest failure found so far, and what it cost.
pub struct Shrinker<'a> {
    config: Config,
    pub best: Failure,
    pub attempts: Vec<Attempt>,
    pub runs: usize,
    pub rounds: usize,
    /// The budget ran out before the search finished.
    pub out_of_time: bool,
    /// The stop request (SIGINT / SIGTERM) that ended the search early, if any.
    pub interrupted: Option<crate::interrupt::Signal>,
    /// Candidates (as TOML, with the first seed tried) that passed, never run twice.
    passed: BTreeSet<(String, u64)>,
    on_attempt: OnAttempt<'a>,
}

impl<'a> Shrinker<'a> {
    /// Starts from `initial`, which must violate a target property.
    pub fn new(
        config: Config,
        initial: Failure,
        on_attempt: impl FnMut(&Attempt, &Failure) + 'a,
    ) -> Self {
        assert!(config.seeds_per_candidate >= 1 && config.jobs >= 1);
        assert!(
            initial.evidence.matches(&config.target),
            "the initial run fails the target"
        );
        Shrinker {
            config,
            best: initial,
            attempts: Vec::new(),
            runs: 0,
            rounds: 0,
            out_of_time: false,
            interrupted: None,
            passed: BTreeSet::new(),
            on_attempt: Box::new(on_attempt),
        }
    }

    /// Runs rounds of every pass until a round keeps nothing or the budget is spent.
    pub fn run(&mut self) {
        loop {
            self.rounds += 1;
            let kept_before = self.kept();
            self.pass_faults();
            self.pass_number(
                "duration",
                1_000,
                100,
                |s| s.workload.duration_ms,
                |s, v| s.workload.duration_ms = v,
            );
            self.pass_number(
                "clients",
                1,
                1,
                |s| s.workload.clients as u64,
                |s, v| s.workload.clients = v as usize,
            );
            self.pass_nodes();
            self.pass_number(
                "watchers",
                0,
                1,
                |s| s.workload.watchers as u64,
                |s, v| s.workload.watchers = v as usize,
            );
            self.pass_number(
                "lockers",
                0,
                1,
                |s| s.workload.lockers as u64,
                |s, v| s.workload.lockers = v as usize,
            );
            self.pass_number(
                "campaigners",
                0,
                1,
                |s| s.workload.campaigners as u64,
                |s, v| s.workload.campaigners = v as usize,
            );
            self.pass_number(
                "keys",
                1,
                1,
                |s| s.workload.keys as u64,
                |s, v| s.workload.keys = v as usize,
            );
            self.pass_think();
            self.pass_mix();
            if self.out_of_time || self.interrupted.is_some() || self.kept() == kept_before {
                break;
            }
        }
    }

    fn kept(&self) -> usize {
        self.attempts
            .iter()
            .filter(|attempt| attempt.result == "fails")
            .count()
    }

    /// The seeds a candidate tries, in order: the best failure's seed, then base, base + 1, ...
    fn seeds(&self) -> Vec<u64> {
        let mut seeds = vec![self.best.seed];
        let mut next = self.config.base_seed;
        while seeds.len() < self.config.seeds_per_candidate {
            if !seeds.contains(&next) {
                seeds.push(next);
            }
            next = next.wrapping_add(1);
        }
        seeds
    }

    /// Tries `candidate`: runs its seeds (in parallel chunks) until one fails the target, and
    /// keeps it as the new best if it does and `smaller` agrees.
    fn probe(
        &mut self,
        pass: &'static str,
        change: String,
        candidate: Result<Scenario, String>,
        smaller: &dyn Fn(&Evidence, &Evidence) -> bool,
    ) -> Probe {
        if Instant::now() >= self.config.deadline {
            self.out_of_time = true;
            return Probe::Stop;
        }
        // SIGINT / SIGTERM: stop between candidates; the best failure so far is what the
        // command writes (a candidate in flight is abandoned, never half-kept).
        if let Some(signal) = crate::interrupt::requested() {
            self.interrupted = Some(signal);
            return Probe::Stop;
        }
        let started = Instant::now();
        let mut attempt = Attempt {
            number: self.attempts.len() + 1,
            pass,
            change,
            result: "passes",
            seed: None,
            properties: Vec::new(),
            runs: 0,
            wall_ms: 0,
        };
        let probe = match candidate {
            Err(_) => {
                attempt.result = "invalid";
                Probe::Passes
            }
            Ok(candidate) => self.run_candidate(candidate, &mut attempt, smaller),
        };
        attempt.wall_ms = started.elapsed().as_millis();
        self.runs += attempt.runs;
        (self.on_attempt)(&attempt, &self.best);
        self.attempts.push(attempt);
        probe
    }

    fn run_candidate(
        &mut self,
        candidate: Scenario,
        attempt: &mut Attempt,
        smaller: &dyn Fn(&Evidence, &Evidence) -> bool,
    ) -> Probe {
        if candidate.validate().is_err() {
            attempt.result = "invalid";
            return Probe::Passes;
        }
        let seeds = self.seeds();
        let key = (
            toml::to_string(&candidate).unwrap_or_default(),
            self.best.seed,
        );
        if self.passed.contains(&key) {
            attempt.result = "seen";
            return Probe::Passes;
        }
        for chunk in seeds.chunks(self.config.jobs) {
            let left = self
                .config
                .deadline
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.out_of_time = true;
                return Probe::Stop;
            }
            let check_timeout = self
                .config
                .check_timeout
                .min(left)
                .max(Duration::from_secs(1));
            let results: Vec<Result<Evidence, String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&seed| {
                        let candidate = &candidate;
                        scope.spawn(move || judge(candidate, seed, check_timeout))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| {
                        handle
                            .join()
                            .unwrap_or_else(|_| Err("the judging thread panicked".to_string()))
                    })
                    .collect()
            });
            attempt.runs += chunk.len();
            for (&seed, result) in chunk.iter().zip(results) {
                let Ok(evidence) = result else {
                    attempt.result = "invalid";
                    return Probe::Passes;
                };
                if !evidence.matches(&self.config.target) {
                    continue;
                }
                attempt.seed = Some(seed);
                attempt.properties = evidence.properties();
                if !smaller(&evidence, &self.best.evidence) {
                    attempt.result = "not smaller";
                    return Probe::Passes;
                }
                attempt.result = "fails";
                self.best = Failure {
                    scenario: candidate,
                    seed,
                    evidence,
                };
                return Probe::Fails;
            }
        }
        self.passed.insert(key);
        Probe::Passes
    }

    /// Faults: random faults into an explicit timeline, then ddmin over its entries; when the
    /// conversion does not reproduce, ddmin over the random fault kinds.
    fn pass_faults(&mut self) {
        let scenario = &self.best.scenario;
        if scenario.faults.interval_ms > 0 {
            if let Some(history) = self.best.evidence.history() {
                let mut timeline = recorded_faults(&history.faults);
                // Explicit heal_all entries left no injection record; keep them as written.
                timeline.extend(
                    scenario
                        .faults
                        .timeline
                        .iter()
                        .filter(|entry| entry.kind == FaultKind::HealAll)
                        .cloned(),
                );
                timeline.sort_by_key(|entry| entry.at_ms);
                let mut candidate = scenario.clone();
                candidate.faults.interval_ms = 0;
                candidate.faults.timeline = timeline;
                let change = format!(
                    "random faults -> explicit timeline of {} entries",
                    candidate.faults.timeline.len()
                );
                if self.probe("faults", change, fit(candidate), &always) == Probe::Stop {
                    return;
                }
            }
        }
        if self.best.scenario.faults.interval_ms > 0 {
            let kinds: Vec<FaultKind> = self
                .best
                .scenario
                .faults
                .weights
                .weights()
                .into_iter()
                .filter(|(_, weight)| *weight > 0)
                .map(|(kind, _)| kind)
                .collect();
            let base = self.best.scenario.clone();
            ddmin(&kinds, |kept| {
                let mut candidate = base.clone();
                // Keep the timeline the best failure has now (ddmin only changes weights).
                candidate.faults.timeline = self.best.scenario.faults.timeline.clone();
                let change = if kept.is_empty() {
                    candidate.faults.interval_ms = 0;
                    "no random faults".to_string()
                } else {
                    let names: Vec<&str> = kept.iter().map(|kind| kind.name()).collect();
                    format!("random fault kinds {}", names.join(", "))
                };
                let weights = only_kinds(&candidate.faults.weights, kept);
                candidate.faults.weights = weights;
                self.probe("faults", change, fit(candidate), &always)
            });
        }
        let timeline = self.best.scenario.faults.timeline.clone();
        if timeline.is_empty() {
            return;
        }
        let total = timeline.len();
        ddmin(&timeline, |kept| {
            let mut candidate = self.best.scenario.clone();
            candidate.faults.timeline = kept.to_vec();
            let change = format!("timeline {} of {total} entries", kept.len());
            self.probe("faults", change, fit(candidate), &always)
        });
    }

    /// Lowers one number toward `min`: the biggest step first (min itself), then half as far,
    /// and so on down to steps of an eighth of the value (smaller steps are not worth K runs).
    fn pass_number(
        &mut self,
        pass: &'static str,
        min: u64,
        granularity: u64,
        get: fn(&Scenario) -> u64,
        set: fn(&mut Scenario, u64),
    ) {
        'lower: loop {
            let current = get(&self.best.scenario);
            if current <= min {
                return;
            }
            let mut delta = current - min;
            loop {
                let value = ((current - delta) / granularity * granularity).max(min);
                if value < current {
                    let mut candidate = self.best.scenario.clone();
                    set(&mut candidate, value);
                    let change = format!("{pass} {current} -> {value}");
                    match self.probe(pass, change, fit(candidate), &always) {
                        Probe::Fails => continue 'lower,
                        Probe::Stop => return,
                        Probe::Passes => {}
                    }
                }
                if delta <= granularity || delta * 8 < current {
                    return;
                }
                delta /= 2;
            }
        }
    }

    /// Fewer Raft members: 1, 3, 5 below the current size, smallest first.
    fn pass_nodes(&mut self) {
        let current = self.best.scenario.cluster.nodes;
        for nodes in [1, 3, 5].into_iter().filter(|nodes| *nodes < current) {
            let mut candidate = self.best.scenario.clone();
            candidate.cluster.nodes = nodes;
            let change = format!("nodes {current} -> {nodes}");
            if self.probe("nodes", change, fit(candidate), &always) != Probe::Passes {
                return;
            }
        }
    }

    /// ddmin over the op kinds with a weight: the others get weight 0.
    fn pass_mix(&mut self) {
        let kinds: Vec<OpKind> = self
            .best
            .scenario
            .workload
            .mix
            .weights()
            .into_iter()
            .filter(|(_, weight)| *weight > 0)
            .map(|(kind, _)| kind)
            .collect();
        if kinds.len() <= 1 {
            return;
        }
        ddmin(&kinds, |kept| {
            let mut candidate = self.best.scenario.clone();
            let change = if kept.is_empty() {
                "op kinds (none)".to_string()
            } else {
                let names: Vec<&str> = kept.iter().map(|kind| kind.name()).collect();
                format!("op kinds {}", names.join(", "))
            };
            let candidate = zero_weights_except(&candidate.workload.mix, kept).map(|mix| {
                candidate.workload.mix = mix;
                candidate
            });
            self.probe("op kinds", change, candidate.and_then(fit), &always)
        });
    }

    /// Longer think time means fewer operations in the same duration; kept only if the failing
    /// run really has fewer.
    fn pass_think(&mut self) {
        let current = self.best.scenario.workload.think_ms_max;
        let mut values = vec![(current * 4).max(100), (current * 2).max(50)];
        values.retain(|value| *value > current && *value <= 2_000);
        values.dedup();
        for value in values {
            let mut candidate = self.best.scenario.clone();
            candidate.workload.think_ms_max = value;
            let change = format!("think_ms_max {current} -> {value}");
            let fewer_ops = |new: &Evidence, best: &Evidence| match (new.ops(), best.ops()) {
                (Some(new), Some(best)) => new < best,
                _ => false,
            };
            if self.probe("think time", change, Ok(candidate), &fewer_ops) != Probe::Passes {
                return;
            }
        }
    }
}

/// Structural reductions (fewer faults, clients, ...) are smaller by construction.
fn always(_: &Evidence, _: &Evidence) -> bool {
    true
}

/// `weights` with every kind not in `kept` set to 0. Goes through serde so that a fault kind added
/// to the scenario later is handled without a change here.
fn only_kinds(
    weights: &kvsim_sim::scenario::FaultWeights,
    kept: &[FaultKind],
) -> kvsim_sim::scenario::FaultWeights {
    let mut value = serde_json::to_value(weights).expect("weights serialize");
    for (kind, _) in weights.weights() {
        if !kept.contains(&kind) {
            value[kind.name()] = 0.into();
        }
    }
    serde_json::from_value(value).expect("same shape")
}

/// `mix` with every kind not in `kept` set to 0.
fn zero_weights_except(
    mix: &kvsim_sim::scenario::OpMix,
    kept: &[OpKind],
) -> Result<kvsim_sim::scenario::OpMix, String> {
    let mut mix = mix.clone();
    for kind in OpKind::ALL {
        if !kept.contains(&kind) {
            *mix.weight_mut(kind) = 0;
        }
    }
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_helpers_zero_exactly_the_others() {
        let mix = zero_weights_except(&Default::default(), &[OpKind::Put, OpKind::Get]).unwrap();
        let nonzero: Vec<OpKind> = mix
            .weights()
            .into_iter()
            .filter(|(_, weight)| *weight > 0)
            .map(|(kind, _)| kind)
            .collect();
        assert_eq!(nonzero, vec![OpKind::Put, OpKind::Get]);
        let weights = only_kinds(&Default::default(), &[FaultKind::Pause]);
        let nonzero: Vec<FaultKind> = weights
            .weights()
            .into_iter()
            .filter(|(_, weight)| *weight > 0)
            .map(|(kind, _)| kind)
            .collect();
        assert_eq!(nonzero, vec![FaultKind::Pause]);
    }
}
