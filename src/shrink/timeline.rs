//! Turning the faults a run injected into explicit `[[faults.timeline]]` entries, and fitting a
//! timeline to a (smaller) scenario.
//!
//! Delta debugging needs a list of faults to take apart, but random faults are drawn while the run
//! goes: only their `fault` records say what happened. Each injection record becomes one entry at
//! its time, with its targets and parameters pinned and the time until its heal record as its
//! duration — except that `isolate_leader` / `crash_leader` stay unpinned: under a perturbed
//! schedule the leader is another node, and hitting the leader is what those faults are for.

use kvsim_checker::history::FaultEvent;
use kvsim_sim::scenario::{FaultKind, Scenario, TimelineFault};

/// The faults `records` show injected, in time order, as timeline entries. `skipped` records and
/// heals are not faults; a fault healed only by the final `heal_all` gets no duration (it lasts to
/// the end of the workload, as it did).
pub fn recorded_faults(records: &[FaultEvent]) -> Vec<TimelineFault> {
    let final_heal_all = records.iter().rposition(|record| record.kind == "heal_all");
    let mut entries = Vec::new();
    let mut index = 0;
    while index < records.len() {
        let record = &records[index];
        index += 1;
        let Some(kind) = injected_kind(record) else {
            continue;
        };
        let mut nodes = node_ids(&record.nodes);
        let mut torn = record.detail.get("torn").and_then(|torn| torn.as_bool());
        // A majority (or whole-cluster) crash writes one `crash` record per node, all at the
        // same instant.
        while matches!(kind, FaultKind::CrashMajority | FaultKind::CrashAll)
            && records
                .get(index)
                .is_some_and(|next| next.t_ns == record.t_ns && injected_kind(next) == Some(kind))
        {
            let next = &records[index];
            nodes.extend(node_ids(&next.nodes));
            if next.detail.get("torn").and_then(|torn| torn.as_bool()) != torn {
                torn = None;
            }
            index += 1;
        }
        let heal = records[index..]
            .iter()
            .position(|later| heals(record, &nodes, later))
            .map(|offset| index + offset);
        let duration_ms = match heal {
            Some(heal) if Some(heal) != final_heal_all => {
                let gap_ns = records[heal].t_ns.saturating_sub(record.t_ns);
                Some(gap_ns.div_ceil(1_000_000).max(1))
            }
            _ => None,
        };
        let dynamic = matches!(
            kind,
            FaultKind::IsolateLeader
                | FaultKind::CrashLeader
                | FaultKind::PauseLeader
                | FaultKind::PauseFollower
                | FaultKind::DiskStallLeader
                | FaultKind::CrashAll
        );
        let detail = &record.detail;
        entries.push(TimelineFault {
            at_ms: record.t_ns / 1_000_000,
            kind,
            nodes: if dynamic { Vec::new() } else { nodes },
            duration_ms,
            torn: if is_crash(kind) { torn } else { None },
            rate: (kind == FaultKind::PacketLoss)
                .then(|| detail.get("rate").and_then(|rate| rate.as_f64()))
                .flatten(),
            latency_ms: (kind == FaultKind::Latency)
                .then(|| detail.get("max_ms").and_then(|max| max.as_u64()))
                .flatten(),
            skew_ms: (kind == FaultKind::ClockSkew)
                .then(|| detail.get("skew_ms").and_then(|skew| skew.as_i64()))
                .flatten(),
        });
    }
    entries
}

/// `scenario` with its timeline fitted to its own cluster size and duration: entries after the
/// workload's end are dropped, node ids beyond the cluster removed, and an entry that is still
/// invalid (e.g. a majority crash that lost its majority) loses its pinned nodes or, failing
/// that, is dropped. Errors when the scenario is invalid for a reason other than its timeline.
pub fn fit(mut scenario: Scenario) -> Result<Scenario, String> {
    let timeline = std::mem::take(&mut scenario.faults.timeline);
    scenario.validate().map_err(|invalid| {
        format!(
            "{} = {}: {}",
            invalid.field, invalid.value, invalid.expected
        )
    })?;
    let nodes = scenario.cluster.nodes as u64;
    let valid = |entry: &TimelineFault| {
        let mut probe = scenario.clone();
        probe.faults.timeline = vec![entry.clone()];
        probe.validate().is_ok()
    };
    let mut fitted = Vec::with_capacity(timeline.len());
    for mut entry in timeline {
        if entry.at_ms > scenario.workload.duration_ms {
            continue;
        }
        entry.nodes.retain(|node| (1..=nodes).contains(node));
        if !valid(&entry) {
            entry.nodes.clear();
        }
        if valid(&entry) {
            fitted.push(entry);
        }
    }
    scenario.faults.timeline = fitted;
    debug_assert!(scenario.validate().is_ok(), "every entry was validated");
    Ok(scenario)
}

/// The fault kind a record injected, or None for heals, skips and anything else.
fn injected_kind(record: &FaultEvent) -> Option<FaultKind> {
    if record.kind == "skipped" || record.kind == "heal_all" {
        return None;
    }
    let name = record.detail.get("fault")?.as_str()?;
    FaultKind::ALL
        .into_iter()
        .find(|kind| kind.name() == name && *kind != FaultKind::HealAll)
}

fn is_crash(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::CrashOne
            | FaultKind::CrashLeader
            | FaultKind::CrashMajority
            | FaultKind::CrashAll
    )
}

/// Whether `later` undoes the injection `record` (targets `nodes`), following nemesis.rs's heal
/// records: `heal` for any network fault, `restart` / `resume` / `disk_release` per node, a `packet_loss` /
/// `latency` / `clock_skew` record without a `fault` field, or the `heal_all` of everything.
fn heals(record: &FaultEvent, nodes: &[u64], later: &FaultEvent) -> bool {
    if later.kind == "heal_all" {
        return true;
    }
    if later.detail.get("fault").is_some() {
        return false;
    }
    let on_target = || node_ids(&later.nodes).iter().any(|id| nodes.contains(id));
    match record.kind.as_str() {
        "partition" | "partition_one_way" => later.kind == "heal",
        "crash" => later.kind == "restart" && on_target(),
        "pause" => later.kind == "resume" && on_target(),
        "disk_stall" => later.kind == "disk_release" && on_target(),
        "clock_skew" => later.kind == "clock_skew" && on_target(),
        "packet_loss" | "latency" => later.kind == record.kind,
        _ => false,
    }
}

/// `n3` → 3; names that are not `n<id>` are skipped (they cannot be targeted anyway).
fn node_ids(names: &[String]) -> Vec<u64> {
    names
        .iter()
        .filter_map(|name| name.strip_prefix('n')?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(t_ms: u64, kind: &str, nodes: &[&str], detail: serde_json::Value) -> FaultEvent {
        FaultEvent {
            t_ns: t_ms * 1_000_000 + 250_000,
            kind: kind.to_string(),
            nodes: nodes.iter().map(|node| node.to_string()).collect(),
            detail,
        }
    }

    #[test]
    fn injections_become_pinned_entries_with_their_heal_as_duration() {
        let records = vec![
            record(
                100,
                "partition",
                &["n2"],
                json!({"fault": "isolate_leader", "groups": [[1, 3], [2]]}),
            ),
            record(900, "heal", &[], serde_json::Value::Null),
            record(
                1_000,
                "crash",
                &["n1"],
                json!({"fault": "crash_majority", "torn": true}),
            ),
            record(
                1_000,
                "crash",
                &["n3"],
                json!({"fault": "crash_majority", "torn": true}),
            ),
            record(
                1_500,
                "skipped",
                &[],
                json!({"fault": "pause", "reason": "x"}),
            ),
            record(2_000, "restart", &["n1"], serde_json::Value::Null),
            record(2_000, "restart", &["n3"], serde_json::Value::Null),
            record(
                2_500,
                "packet_loss",
                &[],
                json!({"fault": "packet_loss", "rate": 0.25}),
            ),
            record(
                3_000,
                "clock_skew",
                &["n2"],
                json!({"fault": "clock_skew", "skew_ms": -40}),
            ),
            record(
                4_000,
                "heal_all",
                &["n1", "n2", "n3"],
                serde_json::Value::Null,
            ),
        ];
        let entries = recorded_faults(&records);
        assert_eq!(entries.len(), 4, "{entries:#?}");
        assert_eq!(
            (entries[0].kind, entries[0].at_ms, entries[0].duration_ms),
            (FaultKind::IsolateLeader, 100, Some(800))
        );
        assert!(entries[0].nodes.is_empty(), "the leader is not pinned");
        assert_eq!(entries[1].kind, FaultKind::CrashMajority);
        assert_eq!(entries[1].nodes, vec![1, 3]);
        assert_eq!(
            (entries[1].torn, entries[1].duration_ms),
            (Some(true), Some(1_000))
        );
        assert_eq!(
            (entries[2].rate, entries[2].duration_ms),
            (Some(0.25), None)
        );
        assert_eq!(
            (entries[3].nodes.clone(), entries[3].skew_ms),
            (vec![2], Some(-40))
        );
    }

    #[test]
    fn fit_drops_late_entries_and_nodes_beyond_the_cluster() {
        let mut scenario = Scenario::default();
        scenario.cluster.nodes = 3;
        scenario.workload.duration_ms = 5_000;
        let entry = |at_ms: u64, kind: FaultKind, nodes: Vec<u64>| TimelineFault {
            at_ms,
            kind,
            nodes,
            duration_ms: Some(100),
            torn: None,
            rate: None,
            latency_ms: None,
            skew_ms: None,
        };
        scenario.faults.timeline = vec![
            entry(1_000, FaultKind::CrashOne, vec![5]),
            entry(2_000, FaultKind::CrashMajority, vec![1, 4, 5]),
            entry(9_000, FaultKind::Pause, vec![1]),
            entry(3_000, FaultKind::Pause, vec![1, 2, 3]),
        ];
        let fitted = fit(scenario).unwrap();
        let shown: Vec<(u64, Vec<u64>)> = fitted
            .faults
            .timeline
            .iter()
            .map(|entry| (entry.at_ms, entry.nodes.clone()))
            .collect();
        assert_eq!(
            shown,
            vec![(1_000, vec![]), (2_000, vec![]), (3_000, vec![1, 2, 3])]
        );
        fitted.validate().unwrap();

        let mut invalid = Scenario::default();
        invalid.cluster.nodes = 4;
        assert!(fit(invalid).unwrap_err().contains("cluster.nodes"));
    }
}
