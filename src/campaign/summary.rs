//! A campaign's summary (`summary.json`, the printed table, `--json`) and, for a campaign that
//! stopped early, the remainder to resume.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Outcome, SeedResult, SeedStatus, Stopped};
use crate::cli::{campaign_seed_count, SeedRange, Shard};

/// The seeds a stopped campaign did not run, and the flags that run exactly those.
#[derive(Serialize)]
pub struct Resume {
    /// `--seeds` of the remainder: every seed below its start ran.
    pub seeds: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub seeds_not_run: u64,
    /// What stopped the campaign: `SIGINT`, `SIGTERM`, `--time-budget`, `--stop-on-first`.
    pub why: String,
}

impl Resume {
    /// The remainder of `range` (sharded by `shard`) from `first`, the first seed not run.
    /// Shard I/N of A..B takes A+I-1, A+I-1+N, …; the first seed not run is one of them, so the
    /// rest is shard 1/N of `first..B`.
    pub fn of(range: SeedRange, shard: Option<Shard>, first: u64, why: Stopped) -> Resume {
        let rest_shard = shard.map(|shard| Shard {
            index: 1,
            count: shard.count,
        });
        Resume {
            seeds: format!("{first}..{}", range.end),
            shard: rest_shard.map(|shard| format!("1/{}", shard.count)),
            seeds_not_run: campaign_seed_count(
                SeedRange {
                    start: first,
                    end: range.end,
                },
                rest_shard,
            ),
            why: why.as_str().to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct CampaignSummary {
    pub id: String,
    pub seeds_planned: u64,
    pub seeds_run: usize,
    pub ok: usize,
    pub violations: usize,
    pub unknown: usize,
    pub errors: usize,
    pub violations_by_property: BTreeMap<String, usize>,
    pub wall_s: f64,
    pub simulated_s: f64,
    pub failing: Vec<SeedResult>,
    /// Present when the campaign stopped before its last seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

impl CampaignSummary {
    pub fn of(id: &str, outcome: &Outcome, planned: u64, resume: Option<Resume>) -> Self {
        let results = &outcome.results;
        let count = |status: SeedStatus| results.iter().filter(|r| r.status == status).count();
        let mut by_property = BTreeMap::new();
        for result in results {
            for property in &result.properties {
                *by_property.entry(property.clone()).or_insert(0) += 1;
            }
        }
        let summary = CampaignSummary {
            id: id.to_string(),
            seeds_planned: planned,
            seeds_run: results.len(),
            ok: count(SeedStatus::Ok),
            violations: count(SeedStatus::Violation),
            unknown: count(SeedStatus::Inconclusive),
            errors: count(SeedStatus::Error),
            violations_by_property: by_property,
            wall_s: outcome.wall.as_secs_f64(),
            simulated_s: results.iter().map(|r| r.simulated_ms).sum::<u64>() as f64 / 1000.0,
            failing: results
                .iter()
                .filter(|r| r.status != SeedStatus::Ok)
                .cloned()
                .collect(),
            resume,
        };
        assert_eq!(
            summary.ok + summary.violations + summary.unknown + summary.errors,
            summary.seeds_run,
            "every seed has one status"
        );
        summary
    }

    /// The campaign's exit code: internal errors dominate, then violations, then inconclusive.
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        if self.errors > 0 {
            Exit::Internal
        } else if self.violations > 0 {
            Exit::Violation
        } else if self.unknown > 0 {
            Exit::Inconclusive
        } else {
            Exit::Ok
        }
    }

    /// The wall time the campaign ran, never zero (for rates).
    pub fn wall(&self) -> Duration {
        Duration::from_secs_f64(self.wall_s.max(1e-9))
    }
}
