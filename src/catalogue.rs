//! The planted-bug catalogue behind `kvsim bugs`: for every bug the simulated server can plant, the
//! scenario that exercises it best and the properties expected to catch it, and the measurement
//! that counts how many seeds each bug needs before a checker catches it.
//!
//! A checker is only as good as the bugs it finds: the catalogue is the project's claim that every
//! planted bug is caught, and `--measure` (plus tests/bugs.rs) is the evidence.
//!
//! tests/bugs.rs tests this very catalogue and judging through the library.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};
use kvsim_sim::bugs::Bug;
use kvsim_sim::runner::{self, RunError};
use kvsim_sim::scenario::Scenario;

use kvsim_checker::property::Property;
use kvsim_checker::Budget;

use crate::verdict::{Finding, Status};
use crate::work_queue::{self, Flow};

/// One planted bug: where to look for it and what should see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub bug: Bug,
    /// The scenario file (in the scenarios directory) that exercises the bug best.
    pub scenario: &'static str,
    /// TOML merged over the scenario file (inline tables, one line), when no shipped scenario
    /// exercises the bug well enough on its own; empty otherwise.
    pub overrides: &'static str,
    /// The properties expected to catch it; a run violating any one of them counts as caught.
    /// The first is the property named for the bug: `kvsim bugs --measure` credits a seed to it
    /// whenever it fired, and counts the seeds it fired in.
    pub properties: &'static [Property],
}

/// Every planted bug, in `Bug::ALL` order. Scenarios were chosen by measurement
/// (`kvsim bugs --measure` over the candidate scenarios; see the figures in docs and the report).
pub const CATALOGUE: &[CatalogueEntry] = &[
    // A deposed leader serving reads locally: needs leader isolation while the majority moves on
    // (etcd #20418 class). A linearizability check over reads and writes sees it, and often the
    // quorum checker first (the read's revision is below one an earlier op returned).
    // deposed-leader.toml isolates the leader back to back with 16 read-heavy clients on 6 keys,
    // and its clients send each request to the next member in turn (etcd clientv3's round-robin),
    // so the deposed leader keeps being asked: measured 81 of 100 seeds (50 with leader-aware
    // clients, before watch streams), and 16 of 100 on default.toml (1 of 50 with leader-aware
    // clients).
    CatalogueEntry {
        bug: Bug::StaleRead,
        scenario: "deposed-leader.toml",
        overrides: "",
        properties: &[Property::Linearizability, Property::QuorumRevisionRegress],
    },
    // An isolated leader acknowledges writes the majority never commits: they vanish once it
    // rejoins, and the majority gives their revisions to other writes. The lost-write check
    // names the two writes acknowledged at one revision (measured: every partitions.toml seed
    // of 30, durability.lost_write first); linearizability sees it as well.
    CatalogueEntry {
        bug: Bug::AckBeforeCommit,
        scenario: "partitions.toml",
        overrides: "",
        properties: &[Property::DurabilityLostWrite, Property::Linearizability],
    },
    // No fsync: a crash loses entries Raft counted as committed (etcd #14370 class). A crash of
    // one member or a majority leaves a replica that still holds them, and the Raft library of the
    // restarted member refuses its log going backwards (raft-rs panics: `to_commit … out of
    // range`, as etcd does). Only a power loss of the whole cluster leaves no such replica, so the
    // acknowledged writes are gone for good and the durability check names them: power-loss.toml
    // (measured 99 of 100 seeds by durability.lost_write, against 0 by durability.lost_write on
    // crashes.toml).
    CatalogueEntry {
        bug: Bug::LostFsync,
        scenario: "power-loss.toml",
        overrides: "",
        properties: &[Property::DurabilityLostWrite, Property::RaftInvariant, Property::Linearizability, Property::QuorumRevisionRegress, Property::SimulationPanic],
    },
    // Watch bugs fire on watch stream responses: watch.toml has the most watchers, reconnects
    // and watches from the past.
    CatalogueEntry {
        bug: Bug::WatchGap,
        scenario: "watch.toml",
        overrides: "",
        properties: &[Property::WatchReliable],
    },
    CatalogueEntry {
        bug: Bug::WatchDuplicate,
        scenario: "watch.toml",
        overrides: "",
        properties: &[Property::WatchUnique],
    },
    CatalogueEntry {
        bug: Bug::WatchRegress,
        scenario: "watch.toml",
        overrides: "",
        properties: &[Property::WatchHeaderRegress],
    },
    // A requested progress notification answered while the watcher is unsynced (etcd #15220):
    // it vouches for revisions whose events the catch-up sends only later. Needs watches from
    // the past or resumptions (unsynced until the next sync, within 100 ms) and progress
    // requests: watch.toml.
    CatalogueEntry {
        bug: Bug::WatchProgressUnsynced,
        scenario: "watch.toml",
        overrides: "",
        properties: &[Property::WatchBookmarkable, Property::WatchReliable],
    },
    // Leases expiring at half their TTL: keys vanish while the client's keep-alives say the
    // lease is live; linearizability (with the lease-expiry operations added) sees the early delete.
    CatalogueEntry {
        bug: Bug::LeaseEarlyExpiry,
        scenario: "leases.toml",
        overrides: "",
        properties: &[Property::Linearizability],
    },
    // Leases expiring at three times their TTL: nothing about a single history forbids a late
    // expiry, so only the upper bound (`lease.expired_late`: no time-to-live reports more time left
    // than TTL + one election timeout, and no Ok read, put, keep-alive or time-to-live sees the
    // lease alive long after its deadline in a whole cluster) sees it.
    CatalogueEntry {
        bug: Bug::LeaseLateExpiry,
        scenario: "leases.toml",
        overrides: "",
        properties: &[Property::LeaseExpiredLate],
    },
    // A restarted node that skips replay goes back in revision and diverges (etcd #17780 class).
    CatalogueEntry {
        bug: Bug::RevisionRegressAfterRestart,
        scenario: "crashes.toml",
        overrides: "",
        properties: &[Property::QuorumRevisionRegress, Property::ReplicasConverge, Property::RaftInvariant, Property::Linearizability],
    },
    // Reads at a compacted revision must fail with Compacted; needs compactions and historic reads.
    CatalogueEntry {
        bug: Bug::CompactedRead,
        scenario: "default.toml",
        // Shipped scenarios compact further back than their historic reads reach, so no read ever
        // asks for a compacted revision: read deeper, compact shallower and more often.
        overrides: "workload = { historic_depth_revisions = 40, compact_depth_revisions = 5, mix = { get_historic = 12, compact = 4 } }",
        properties: &[Property::Linearizability],
    },
    // A watch from a compacted revision served from the oldest kept revision instead of refused:
    // the events between its start and the compaction never arrive, which the watch checker sees
    // as missing events inside the revisions the stream claims to cover. Needs watchers that fall
    // behind a compaction (watch.toml: 8 watchers with reconnects, compactions): 70 of 100 seeds.
    CatalogueEntry {
        bug: Bug::WatchCompactedSkip,
        scenario: "watch.toml",
        overrides: "",
        properties: &[Property::WatchReliable],
    },
    // A txn applied in part: every replica drops the same put (deterministic apply), so they agree
    // and the Raft invariants hold; only a later read that misses the acknowledged put shows it,
    // which is the linearizability search's to see. The default mix asks multi-write txns.
    CatalogueEntry {
        bug: Bug::TxnPartial,
        scenario: "default.toml",
        overrides: "",
        properties: &[Property::Linearizability],
    },
    // A deposed leader that has not stepped down yet answers keep-alives from its own lessor: it
    // renews a lease its successor will expire (the client was told the lease lives TTL more), or
    // denies one its successor granted (etcd #15247). Aimed by `disk_stall_leader`: the leader's
    // Raft loop blocks in fsync for 4-8 s, the others elect a new leader, and its keep-alive
    // handler, outside Raft, goes on answering the clients that still talk to it; a lease-heavy
    // mix keeps those clients renewing. Leader isolation alone (live.toml as shipped) leaves a
    // window of under one election timeout: after Raft §5.2's randomized timeouts were drawn
    // afresh per election it caught the bug in 0 of 100 seeds, with these overrides 6 of 16.
    CatalogueEntry {
        bug: Bug::LeaseRenewUnconfirmed,
        scenario: "live.toml",
        overrides: "workload = { mix = { lease_keepalive = 12, lease_grant = 4 } }\n\
                    faults = { duration_min_ms = 4000, duration_max_ms = 8000, \
                    weights = { disk_stall_leader = 6 } }",
        properties: &[Property::LeaseExpiredEarly, Property::Linearizability],
    },
    // A client-side bug of the lock recipe: a holder whose lease lapsed during a stall keeps writing
    // without the fence; the recipe checker sees writes outside the holder's tenure.
    CatalogueEntry {
        bug: Bug::LockUnfenced,
        scenario: "recipes.toml",
        overrides: "",
        properties: &[Property::LockUnfencedWrite, Property::LockMutualExclusion],
    },
];

impl CatalogueEntry {
    /// The scenario as the tables show it: the file, then the overrides if any.
    pub fn scenario_label(&self) -> String {
        if self.overrides.is_empty() {
            self.scenario.to_string()
        } else {
            format!("{} + {}", self.scenario, self.overrides)
        }
    }
}

/// The catalogue entry of `bug`, if it has one.
pub fn entry(bug: Bug) -> Option<&'static CatalogueEntry> {
    CATALOGUE.iter().find(|entry| entry.bug == bug)
}

/// Loads the catalogue scenario of `entry` from `dir`, its overrides applied, with its bug switched
/// on (or off, for the no-false-positive runs).
pub fn load_scenario(dir: &Path, entry: &CatalogueEntry, with_bug: bool) -> Result<Scenario> {
    let path = dir.join(entry.scenario);
    let mut scenario = if entry.overrides.is_empty() {
        Scenario::load(&path).map_err(|error| anyhow::anyhow!("{error}"))?
    } else {
        let source = std::fs::read_to_string(&path)
            .map_err(|error| anyhow::anyhow!("{}: cannot read: {error}", path.display()))?;
        let label = format!(
            "{} (with the overrides of bug {})",
            path.display(),
            entry.bug
        );
        let merged = merge_toml(&source, entry.overrides)
            .map_err(|error| anyhow::anyhow!("{label}: {error}"))?;
        Scenario::parse(&label, &merged).map_err(|error| anyhow::anyhow!("{error}"))?
    };
    if with_bug {
        scenario.bugs.insert(entry.bug.as_str().to_string(), true);
        scenario
            .bugs()
            .map_err(|error| anyhow::anyhow!("bug {}: {error}", entry.bug))?;
    }
    Ok(scenario)
}

/// `base` with every key of `overrides` replaced, tables merged key by key, as TOML text.
fn merge_toml(base: &str, overrides: &str) -> Result<String, String> {
    fn merge(base: &mut toml::Table, overrides: toml::Table) {
        for (key, value) in overrides {
            match (base.get_mut(&key), value) {
                (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
                (_, value) => {
                    base.insert(key, value);
                }
            }
        }
    }
    let mut table: toml::Table = base.parse().map_err(|error| format!("{error}"))?;
    let overrides: toml::Table = overrides
        .parse()
        .map_err(|error| format!("overrides: {error}"))?;
    merge(&mut table, overrides);
    toml::to_string(&table).map_err(|error| format!("{error}"))
}

/// What one seed showed: the verdict's status and findings, a simulation panic counted as a
/// `simulation.panic` finding (it is an assertion of the simulated server firing, or a hang).
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    pub seed: u64,
    /// `ok` | `violation` | `unknown`.
    pub status: Status,
    pub findings: Vec<Finding>,
    pub wall_ms: u128,
}

impl SeedOutcome {
    /// The violated property names, deduplicated, in first-seen order.
    pub fn properties(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for finding in &self.findings {
            if !names.contains(&finding.property.as_str()) {
                names.push(finding.property.as_str());
            }
        }
        names
    }

    /// The first of `expected`, in `expected`'s order, that this seed violated: a catalogue
    /// entry lists the property named for its bug first, so a seed that violated it is credited
    /// to it whatever else fired and in whatever order the checkers reported (the order findings
    /// come in is the checkers' order, not the order things went wrong in the run).
    pub fn caught_by(&self, expected: &[Property]) -> Option<Property> {
        expected.iter().copied().find(|property| {
            self.findings
                .iter()
                .any(|finding| finding.property == *property)
        })
    }
}

/// Runs and judges one seed. Errors only when the scenario itself is invalid.
pub fn judge_seed(scenario: &Scenario, seed: u64, budget: Budget) -> Result<SeedOutcome> {
    let started = Instant::now();
    let (status, findings) = match runner::run(scenario, seed) {
        Ok(output) => {
            let verdict = crate::memory::judge_run_within(&output, budget);
            (verdict.status, verdict.findings)
        }
        Err(RunError::Panicked { message, .. }) => {
            let finding = Finding {
                property: Property::SimulationPanic,
                message,
                ops: Vec::new(),
            };
            (Status::Violation, vec![finding])
        }
        Err(error @ RunError::Scenario(_)) => bail!("seed {seed}: {error}"),
    };
    Ok(SeedOutcome {
        seed,
        status,
        findings,
        wall_ms: started.elapsed().as_millis(),
    })
}

/// One bug's measurement: every seed run, in seed order.
#[derive(Debug, Default)]
pub struct BugMeasurement {
    pub outcomes: BTreeMap<u64, SeedOutcome>,
}

impl BugMeasurement {
    /// Detecting seeds (the expected property violated), smallest first.
    pub fn detections<'a>(
        &'a self,
        entry: &'a CatalogueEntry,
    ) -> impl Iterator<Item = &'a SeedOutcome> + 'a {
        self.outcomes
            .values()
            .filter(|outcome| outcome.caught_by(entry.properties).is_some())
    }

    pub fn detections_below(&self, entry: &CatalogueEntry, seed: u64) -> usize {
        self.outcomes
            .range(..seed)
            .filter(|(_, outcome)| outcome.caught_by(entry.properties).is_some())
            .count()
    }
}

/// Runs `seeds` of every selected bug in `jobs` workers. A seed is skipped once
/// `detections` smaller seeds of its bug have caught the bug, so the first `detections` detecting
/// seeds are exact: every seed below them ran. After SIGINT / SIGTERM (once
/// [`crate::interrupt::install`]ed) no new seed starts; the seeds in flight finish and the
/// measurement so far is returned (the caller reports it as partial).
///
/// `on_seed` sees every seed as it ends (from a worker thread): its outcome, or `None` for a seed
/// skipped that way.
pub fn measure(
    selected: &[&CatalogueEntry],
    scenarios: &[Scenario],
    seeds: std::ops::Range<u64>,
    detections: usize,
    jobs: usize,
    budget: Budget,
    on_seed: impl Fn(&CatalogueEntry, Option<&SeedOutcome>) + Sync,
) -> Result<Vec<BugMeasurement>> {
    assert_eq!(selected.len(), scenarios.len());
    // Produced lazily: --seeds may be large.
    let tasks = (0..selected.len()).flat_map(|bug| seeds.clone().map(move |seed| (bug, seed)));
    let results: Mutex<Vec<BugMeasurement>> = Mutex::new(
        (0..selected.len())
            .map(|_| BugMeasurement::default())
            .collect(),
    );
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let stop = || crate::interrupt::requested().is_some();
    // The seeds not taken (after an error or a signal) need no list: the caller says the
    // measurement is partial.
    let _not_taken = work_queue::run(tasks, jobs, stop, |(bug, seed)| {
        let entry = selected[bug];
        let done = results.lock().expect("no worker panics holding the lock")[bug]
            .detections_below(entry, seed)
            >= detections;
        if done {
            on_seed(entry, None);
            return Flow::Continue;
        }
        match judge_seed(&scenarios[bug], seed, budget) {
            Ok(outcome) => {
                on_seed(entry, Some(&outcome));
                results.lock().expect("no worker panics holding the lock")[bug]
                    .outcomes
                    .insert(seed, outcome);
                Flow::Continue
            }
            Err(error) => {
                failure
                    .lock()
                    .expect("no worker panics holding the lock")
                    .get_or_insert(error);
                Flow::Stop
            }
        }
    });
    if let Some(error) = failure.into_inner().expect("workers done") {
        return Err(error);
    }
    Ok(results.into_inner().expect("workers done"))
}

/// The median of `values` (the lower middle for an even count), None when empty.
pub fn median(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planted_bug_has_exactly_one_catalogue_entry_in_bug_order() {
        let catalogued: Vec<Bug> = CATALOGUE.iter().map(|entry| entry.bug).collect();
        assert_eq!(catalogued, Bug::ALL);
    }

    #[test]
    fn every_catalogue_scenario_loads_with_its_bug_on() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        for entry in CATALOGUE {
            assert!(!entry.properties.is_empty(), "{}", entry.bug);
            let scenario =
                load_scenario(&dir, entry, true).unwrap_or_else(|error| panic!("{error:#}"));
            assert_eq!(scenario.bugs().unwrap().enabled(), vec![entry.bug]);
        }
    }

    #[test]
    fn caught_by_picks_the_first_expected_property_in_the_catalogue_order() {
        let finding = |property: Property| Finding {
            property,
            message: String::new(),
            ops: Vec::new(),
        };
        let outcome = SeedOutcome {
            seed: 3,
            status: Status::Violation,
            findings: vec![
                finding(Property::Liveness),
                finding(Property::Linearizability),
                finding(Property::DurabilityLostWrite),
            ],
            wall_ms: 0,
        };
        assert_eq!(
            outcome.properties(),
            vec!["liveness", "linearizability", "durability.lost_write"]
        );
        assert_eq!(
            outcome.caught_by(&[Property::DurabilityLostWrite, Property::Linearizability]),
            Some(Property::DurabilityLostWrite),
            "the property named for the bug, though linearizability was reported before it"
        );
        assert_eq!(
            outcome.caught_by(&[Property::WatchUnique, Property::Linearizability]),
            Some(Property::Linearizability)
        );
        assert_eq!(outcome.caught_by(&[Property::WatchUnique]), None);
    }

    #[test]
    fn overrides_replace_keys_and_merge_tables() {
        let merged = merge_toml(
            "[workload]\nclients = 6\nkeys = 4\n[workload.mix]\nput = 1\n",
            "workload = { keys = 9, mix = { get = 2 } }",
        )
        .unwrap();
        let table: toml::Table = merged.parse().unwrap();
        let workload = table["workload"].as_table().unwrap();
        assert_eq!(workload["clients"].as_integer(), Some(6));
        assert_eq!(workload["keys"].as_integer(), Some(9));
        assert_eq!(workload["mix"]["put"].as_integer(), Some(1));
        assert_eq!(workload["mix"]["get"].as_integer(), Some(2));
        assert!(merge_toml("a = 1", "b = ")
            .unwrap_err()
            .contains("overrides"));
    }

    #[test]
    fn median_is_the_lower_middle() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[9, 1, 4]), Some(4));
        assert_eq!(median(&[4, 1, 9, 2]), Some(2));
    }
}
