//! Every planted bug is caught, and clean runs report nothing.
//!
//! For each bug of the catalogue (src/catalogue.rs), a few fixed seeds of its catalogue scenario —
//! seeds `kvsim bugs --measure --detections 3` found — must violate one of the bug's expected
//! properties: a checker or simulator change that stops catching a bug fails here. Then the same
//! scenarios without bugs must report no violation at all: a false positive is a checker bug (or a
//! real bug of the simulated server), never noise.
//!
//! The catalogue and the judging are the command's own (`kvsim::catalogue`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kvsim::catalogue::{self, SeedOutcome, CATALOGUE};
use kvsim::verdict::Status;
use kvsim_model::mvcc::Op;
use kvsim_sim::scenario::Scenario;

/// Seeds that caught each bug when measured (`kvsim bugs --measure --detections 3`). Runs are
/// deterministic, so each must catch it again.
const DETECTING_SEEDS: &[(&str, &[u64])] = &[
    // deposed-leader.toml with round-robin clients: 81 of 100 seeds, each by linearizability
    // (quorum.revision_regress too).
    ("stale_read", &[2, 3]),
    // partitions.toml: every seed, by durability.lost_write first (two writes acknowledged at
    // one revision), linearizability too.
    ("ack_before_commit", &[0, 1]),
    // power-loss.toml: every seed, by raft.invariant and durability.lost_write (on crashes.toml
    // raft-rs's own assertion fires first: a follower that lost its log is told to commit past
    // its end).
    ("lost_fsync", &[0, 1]),
    ("watch_gap", &[0, 1]),
    ("watch_duplicate", &[0, 1]),
    ("watch_regress", &[0, 1]),
    // watch.toml: 100 of 100 seeds, by watch.bookmarkable (a progress notification vouches for
    // revisions whose events the catch-up sends later; etcd#15220).
    ("watch_progress_unsynced", &[0, 1]),
    ("lease_early_expiry", &[0, 1]),
    // 100 of 100 leases.toml seeds, by lease.expired_late (the time left a time-to-live reports).
    ("lease_late_expiry", &[0, 1]),
    ("revision_regress_after_restart", &[0, 1]),
    ("compacted_read", &[0, 1]),
    // 70 of 100 watch.toml seeds (watch streams), all by watch.reliable.
    ("watch_compacted_skip", &[1, 2]),
    // 100 of 100 default.toml seeds, linearizability first (the watch checker sees the missing
    // put too).
    ("txn_partial", &[0, 1]),
    // live.toml with a leader's disk stalled 4-8 s (catalogue overrides): 72 of 100 seeds, by
    // lease.expired_early (the successor expires a lease the deposed leader renewed).
    ("lease_renew_unconfirmed", &[0, 1]),
    // 78 of 100 recipes.toml seeds, by lock.unfenced_write.
    ("lock_unfenced", &[0, 1]),
];

/// Planted bugs no checker catches yet, with what was seen: listed so the gap stays visible (and
/// this list must shrink, never silently grow).
const NOT_YET_CAUGHT: &[(&str, &str)] = &[];

/// Seeds of every scenario run without bugs. The issue asks for 200 per scenario; measured here
/// (2 cores, shared, test profile): 25 seeds × 9 scenarios plus the 19 detection runs took 199 s,
/// ~0.8 s of wall time per run, so 200 × 9 would take ~25 minutes. 20 seeds keep this file near
/// 2.5 minutes; the wide sweep belongs to `kvsim fuzz` (CI nightly).
///
/// Seed 11 of `live.toml` is among them: it was a clean-seed linearizability finding, a deposed
/// raft-rs leader answering a keep-alive with "lease not found" for a lease its successor had
/// granted (etcd #15247; now planted bug `lease_renew_unconfirmed`).
const CLEAN_SEEDS: u64 = 20;

/// Per-seed linearizability budget. Bug-free runs check in well under a second; a detecting seed
/// that came back `unknown` would fail the detection test, so this is generous for a loaded machine.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Runs every `(scenario, seed)` job on a pool of worker threads (each run makes its own thread and
/// runtime inside `runner::run`); results come back in job order.
fn run_all(jobs: &[(Scenario, u64)]) -> Vec<SeedOutcome> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let budget = kvsim::memory::budget(CHECK_TIMEOUT, kvsim::memory::default_memory_max(workers));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<SeedOutcome>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((scenario, seed)) = jobs.get(index) else {
                    break;
                };
                let outcome = catalogue::judge_seed(scenario, *seed, budget)
                    .unwrap_or_else(|error| panic!("seed {seed}: {error:#}"));
                results.lock().unwrap()[index] = Some(outcome);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|outcome| outcome.expect("every job ran"))
        .collect()
}

fn first_lines(outcome: &SeedOutcome) -> String {
    outcome
        .findings
        .iter()
        .map(|finding| {
            format!(
                "[{}] {}",
                finding.property,
                finding.message.lines().next().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n    ")
}

#[test]
fn every_catalogued_bug_has_detecting_seeds() {
    for entry in CATALOGUE {
        let tested = DETECTING_SEEDS
            .iter()
            .filter(|(bug, _)| *bug == entry.bug.as_str())
            .count();
        let known_gap = NOT_YET_CAUGHT
            .iter()
            .filter(|(bug, _)| *bug == entry.bug.as_str())
            .count();
        assert_eq!(
            tested + known_gap,
            1,
            "{}: needs detecting seeds or a NOT_YET_CAUGHT note",
            entry.bug
        );
    }
    for (bug, seeds) in DETECTING_SEEDS {
        assert!(
            !seeds.is_empty() && seeds.len() <= 50,
            "{bug}: 1..=50 seeds"
        );
    }
}

#[test]
fn every_planted_bug_is_caught_by_the_property_named_for_it() {
    let dir = scenarios_dir();
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for (bug, seeds) in DETECTING_SEEDS {
        let bug = kvsim_sim::bugs::Bug::parse(bug).unwrap_or_else(|error| panic!("{error}"));
        let entry = catalogue::entry(bug).unwrap_or_else(|| panic!("{bug}: not in the catalogue"));
        let scenario =
            catalogue::load_scenario(&dir, entry, true).unwrap_or_else(|error| panic!("{error:#}"));
        for &seed in *seeds {
            jobs.push((scenario.clone(), seed));
            expected.push(entry);
        }
    }
    let outcomes = run_all(&jobs);
    // Caught by the property named for the bug (the catalogue's first), not only by a side
    // effect: a detecting seed must violate that one, whatever else fires.
    let missed: Vec<String> = outcomes
        .iter()
        .zip(&expected)
        .filter(|(outcome, entry)| {
            !outcome
                .findings
                .iter()
                .any(|finding| finding.property == entry.properties[0])
        })
        .map(|(outcome, entry)| {
            format!(
                "{} seed {} of {}: expected {:?} (the first above all), got {} {:?}\n    {}",
                entry.bug,
                outcome.seed,
                entry.scenario,
                entry.properties,
                outcome.status,
                outcome.properties(),
                first_lines(outcome)
            )
        })
        .collect();
    assert!(
        missed.is_empty(),
        "planted bugs not caught:\n{}",
        missed.join("\n")
    );
}

#[test]
fn clean_scenarios_report_no_violation() {
    let dir = scenarios_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 13,
        "expected the 13 shipped scenarios in {}",
        dir.display()
    );
    let mut jobs = Vec::new();
    let mut names = Vec::new();
    for path in &files {
        let scenario = Scenario::load(path).unwrap_or_else(|error| panic!("{error}"));
        assert!(
            !scenario.bugs().unwrap().any(),
            "{}: a shipped scenario plants no bug",
            path.display()
        );
        for seed in 0..CLEAN_SEEDS {
            jobs.push((scenario.clone(), seed));
            names.push(path.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    // The catalogue's scenario variants (shipped file plus overrides) must be clean too.
    for entry in CATALOGUE.iter().filter(|entry| !entry.overrides.is_empty()) {
        let scenario = catalogue::load_scenario(&dir, entry, false)
            .unwrap_or_else(|error| panic!("{error:#}"));
        for seed in 0..CLEAN_SEEDS {
            jobs.push((scenario.clone(), seed));
            names.push(entry.scenario_label());
        }
    }
    let outcomes = run_all(&jobs);
    // An `unknown` verdict (the linearizability search ran out of time) depends on the machine's
    // speed, so it is reported but not failed on; any finding fails.
    for (outcome, name) in outcomes.iter().zip(&names) {
        if outcome.status == kvsim::verdict::Status::Inconclusive {
            eprintln!(
                "note: {name} seed {}: linearizability unknown within {CHECK_TIMEOUT:?}",
                outcome.seed
            );
        }
    }
    let flagged: Vec<String> = outcomes
        .iter()
        .zip(&names)
        .filter(|(outcome, _)| !outcome.findings.is_empty())
        .map(|(outcome, name)| {
            format!(
                "{name} seed {}: {} {:?}\n    {}\n    reproduce: kvsim run --scenario scenarios/{name} --seed {} (apply the overrides shown, if any)",
                outcome.seed,
                outcome.status,
                outcome.properties(),
                first_lines(outcome),
                outcome.seed
            )
        })
        .collect();
    assert!(
        flagged.is_empty(),
        "clean runs flagged:\n{}",
        flagged.join("\n")
    );
}

/// A stale read needs a client talking to a deposed leader. etcd's clientv3 sends each request
/// to the next endpoint in turn (`balancer = "round_robin"`, the default), so a leader cut off
/// from its peers keeps its share of the requests and serves some after its successor's
/// election; a leader-aware client (`balancer = "leader"`) leaves it at its first timeout. Seeds
/// 31 and 36 of default.toml: caught with the first, clean with the second (measured: 16 of 100
/// default seeds caught with round-robin clients, 1 of 50 before they existed).
#[test]
fn round_robin_clients_reach_a_deposed_leader_on_the_default_scenario() {
    let path = scenarios_dir().join("default.toml");
    let source = std::fs::read_to_string(&path).unwrap();
    assert!(source.contains("balancer = \"round_robin\""));
    let scenario_with = |balancer: &str| {
        let text = source.replace(
            "balancer = \"round_robin\"",
            &format!("balancer = \"{balancer}\""),
        );
        let mut scenario =
            Scenario::parse("default.toml", &text).unwrap_or_else(|error| panic!("{error}"));
        scenario.bugs.insert("stale_read".to_string(), true);
        scenario
    };
    let seeds = [31, 36];
    let mut jobs = Vec::new();
    for balancer in ["round_robin", "leader"] {
        for seed in seeds {
            jobs.push((scenario_with(balancer), seed));
        }
    }
    let outcomes = run_all(&jobs);
    let expected = catalogue::entry(kvsim_sim::bugs::Bug::StaleRead)
        .unwrap()
        .properties;
    for (index, outcome) in outcomes.iter().enumerate() {
        let round_robin = index < seeds.len();
        assert_eq!(
            outcome.caught_by(expected).is_some(),
            round_robin,
            "seed {} with {} clients: {} {:?}",
            outcome.seed,
            if round_robin {
                "round-robin"
            } else {
                "leader-aware"
            },
            outcome.status,
            outcome.properties()
        );
    }
}

/// Application retries (`retry_unknown_probability`, retries.toml): a put, delete or txn whose
/// outcome was unknown is sent again, so a history holds one request twice and, where both took
/// effect, two writes of one value. The checkers must not assume values unique: clean seeds stay
/// clean, and a planted lost write is still caught by the property named for it.
#[test]
fn retried_writes_leave_clean_seeds_clean_and_a_planted_bug_caught() {
    let scenario = Scenario::load(&scenarios_dir().join("retries.toml"))
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(scenario.workload.retry_unknown_probability > 0.5);
    // The retries are there: unknown writes whose exact request comes again later.
    let output = kvsim_sim::runner::run(&scenario, 1).unwrap_or_else(|error| panic!("{error}"));
    let ops = &output.history.ops;
    let retried = ops
        .iter()
        .enumerate()
        .filter(|(index, op)| {
            matches!(op.outcome, kvsim_checker::history::Outcome::Unknown { .. })
                && matches!(op.input, Op::Put(_) | Op::DeleteRange(_) | Op::Txn(_))
                && ops[index + 1..].iter().any(|later| later.input == op.input)
        })
        .count();
    assert!(retried >= 5, "only {retried} retried writes");

    let mut buggy = scenario.clone();
    buggy.bugs.insert("ack_before_commit".to_string(), true);
    let outcomes = run_all(&[(scenario.clone(), 1), (scenario, 2), (buggy, 1)]);
    for outcome in &outcomes[..2] {
        assert_eq!(
            outcome.status,
            Status::Ok,
            "seed {}: {:?}",
            outcome.seed,
            outcome.properties()
        );
    }
    let expected = catalogue::entry(kvsim_sim::bugs::Bug::AckBeforeCommit)
        .unwrap()
        .properties;
    assert_eq!(
        outcomes[2].caught_by(expected),
        Some(expected[0]),
        "{:?}",
        outcomes[2].properties()
    );
}
