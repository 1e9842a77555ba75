//! `kvsim bugs` as a library: which catalogue entries a target and `--bug` select, their
//! scenarios, and the summary of a measurement ([`crate::catalogue::measure`]): per bug the seeds
//! until its first detection, the property that caught it, what else fired, and the median / max
//! over every bug.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use kvsim_checker::property::Property;
use kvsim_sim::bugs::Bug;
use kvsim_sim::scenario::Scenario;
use serde::Serialize;

use crate::catalogue::{self, entry, median, BugMeasurement, CatalogueEntry};
use crate::catalogue::{SeedOutcome, CATALOGUE};
use crate::exit::Exit;
use crate::verdict::Status;

/// The catalogue entries of `target`'s planted bugs, restricted to `bugs` unless empty. Errors
/// name an unknown bug or one `target` does not plant.
pub fn select(bugs: &[String], target: &str) -> Result<Vec<&'static CatalogueEntry>> {
    let bugs: Vec<Bug> = bugs
        .iter()
        .map(|name| crate::cli::parse_bug(name))
        .collect::<Result<_>>()?;
    for bug in &bugs {
        assert!(entry(*bug).is_some(), "every bug has a catalogue entry");
    }
    let target = kvsim_sim::targets::by_name(target)
        .map_err(|error| anyhow::anyhow!("--target: {error}"))?;
    let planted = target.planted_bugs();
    for bug in &bugs {
        if !planted.contains(bug) {
            let names: Vec<&str> = planted.iter().map(|bug| bug.as_str()).collect();
            bail!(
                "--bug {bug}: target {} has no such planted bug (it has: {})",
                target.name(),
                names.join(", ")
            );
        }
    }
    Ok(CATALOGUE
        .iter()
        .filter(|entry| planted.contains(&entry.bug))
        .filter(|entry| bugs.is_empty() || bugs.contains(&entry.bug))
        .collect())
}

/// Each selected bug's scenario from `dir`, its bug on, run against `target`.
pub fn scenarios(dir: &Path, selected: &[&CatalogueEntry], target: &str) -> Result<Vec<Scenario>> {
    selected
        .iter()
        .map(|entry| {
            let scenario = catalogue::load_scenario(dir, entry, true)?;
            crate::cli::with_flags(scenario, &[], Some(target))
                .map_err(|error| anyhow::anyhow!("bug {}: {error:#}", entry.bug))
        })
        .collect()
}

/// One catalogue entry as `kvsim bugs` lists it.
#[derive(Serialize)]
pub struct Listed {
    pub bug: Bug,
    pub description: &'static str,
    /// The properties expected to catch it.
    pub caught_by: &'static [Property],
    pub scenario: String,
}

impl Listed {
    pub fn of(entry: &CatalogueEntry) -> Listed {
        Listed {
            bug: entry.bug,
            description: entry.bug.description(),
            caught_by: entry.properties,
            scenario: entry.scenario_label(),
        }
    }
}

/// One bug's line of the measurement table.
#[derive(Serialize)]
pub struct BugRow {
    pub bug: Bug,
    pub scenario: String,
    /// Seeds run until the first detection (counted from the first seed of `--seeds`); `None`: not caught.
    pub seeds_until_first: Option<u64>,
    /// The expected property the first detecting seed violated (the first in the catalogue's
    /// order: the one named for the bug, when it fired).
    pub caught_by: Option<Property>,
    /// The first detecting seed's other violated properties.
    pub also_fired: Vec<String>,
    /// Not caught: what the seeds violated instead, `property×count` (and `inconclusive×count`).
    pub seen: Vec<String>,
    /// The first `--detections` detecting seeds.
    pub detecting_seeds: Vec<u64>,
    /// The property named for the bug: the first the catalogue lists for it.
    pub named_property: Property,
    /// How many of `detecting_seeds` violated `named_property` (whatever else fired, in any
    /// order): the bug seen for what it is, not only through a side effect.
    pub named_property_seeds: usize,
    /// Wall time of every seed of this bug together.
    pub wall_s: f64,
}

/// A measurement, summarized.
#[derive(Serialize)]
pub struct MeasureSummary {
    /// Seeds tried per bug at most, from `first_seed`.
    pub seeds_max: u64,
    pub first_seed: u64,
    pub detections: usize,
    pub rows: Vec<BugRow>,
    /// Median and max of `seeds_until_first` over the caught bugs.
    pub median: Option<u64>,
    pub max: Option<u64>,
    pub caught: usize,
    pub missed: usize,
}

impl MeasureSummary {
    pub fn of(
        selected: &[&CatalogueEntry],
        measured: &[BugMeasurement],
        seeds: crate::cli::SeedRange,
        detections: usize,
    ) -> MeasureSummary {
        let rows: Vec<BugRow> = selected
            .iter()
            .zip(measured)
            .map(|(entry, measurement)| row(entry, measurement, seeds.start, detections))
            .collect();
        let until_first: Vec<u64> = rows.iter().filter_map(|r| r.seeds_until_first).collect();
        MeasureSummary {
            seeds_max: seeds.len(),
            first_seed: seeds.start,
            detections,
            median: median(&until_first),
            max: until_first.iter().max().copied(),
            caught: until_first.len(),
            missed: rows.len() - until_first.len(),
            rows,
        }
    }

    /// 1 when a bug was not caught within `seeds_max`, else 0.
    pub fn exit(&self) -> Exit {
        if self.missed > 0 {
            Exit::Violation
        } else {
            Exit::Ok
        }
    }
}

fn row(
    entry: &CatalogueEntry,
    measurement: &BugMeasurement,
    first_seed: u64,
    detections: usize,
) -> BugRow {
    let wall_s = measurement
        .outcomes
        .values()
        .map(|outcome| outcome.wall_ms)
        .sum::<u128>() as f64
        / 1000.0;
    let found: Vec<&SeedOutcome> = measurement.detections(entry).take(detections).collect();
    let mut row = BugRow {
        bug: entry.bug,
        scenario: entry.scenario_label(),
        seeds_until_first: None,
        caught_by: None,
        also_fired: Vec::new(),
        seen: Vec::new(),
        detecting_seeds: found.iter().map(|outcome| outcome.seed).collect(),
        named_property: entry.properties[0],
        named_property_seeds: found
            .iter()
            .filter(|outcome| {
                outcome
                    .findings
                    .iter()
                    .any(|finding| finding.property == entry.properties[0])
            })
            .count(),
        wall_s,
    };
    match found.first() {
        None => row.seen = seen_properties(measurement),
        Some(first) => {
            let caught_by = first.caught_by(entry.properties).expect("a detection");
            row.also_fired = first
                .properties()
                .into_iter()
                .filter(|name| *name != caught_by.as_str())
                .map(str::to_string)
                .collect();
            row.seeds_until_first = Some(first.seed + 1 - first_seed);
            row.caught_by = Some(caught_by);
        }
    }
    row
}

/// What a bug's seeds violated when none violated the expected property: `property×count`.
fn seen_properties(measurement: &BugMeasurement) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in measurement.outcomes.values() {
        for property in outcome.properties() {
            *counts.entry(property).or_insert(0) += 1;
        }
        if outcome.status == Status::Inconclusive {
            *counts.entry("inconclusive").or_insert(0) += 1;
        }
    }
    counts
        .iter()
        .map(|(name, count)| format!("{name}×{count}"))
        .collect()
}
