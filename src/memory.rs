//! The one memory budget, `--memory-max`, of `check`, `run` and `fuzz`: it bounds the
//! linearizability search's memo, the part of a check that grows without limit on an
//! adversarial history (12 concurrent appends to one key and an impossible read explore every
//! order). When the memo would outgrow it, the search stops and the verdict is `unknown`
//! ("memo reached N entries (budget M)"), exit 3, never a guess.
//!
//! What it does not cover: the history itself (bounded by the scenario's size, or by
//! `check --file-size-max`) and the simulation of a seed (bounded by its scenario).
//!
//! The default is half of this machine's memory shared by the workers (`fuzz --jobs N` gives
//! each N-th of it), at most [`MEMORY_MAX_DEFAULT_CAP`]: N searches at once fit beside the OS
//! and the simulations.

use std::time::Duration;

use kvsim_checker::durability::DurabilityOptions;
use kvsim_checker::Budget;
use kvsim_sim::runner::RunOutput;

use crate::verdict::{judge_with, JudgeOptions, Verdict};

/// Bytes one memoized search node may cost, with the hash table's slack and growth: measured,
/// the adversarial 13-op kv history with a 4,194,304-entry memo peaked at 412 MiB RSS (~100
/// bytes an entry, the process included); 128 keeps the budget an upper bound of the RSS.
pub const MEMO_ENTRY_BYTES: u64 = 128;

/// The largest default, 3 GiB (~25M memo entries): a fuzz campaign's two workers fit a small
/// machine's memory beside their simulations.
pub const MEMORY_MAX_DEFAULT_CAP: u64 = 3 << 30;

/// When /proc/meminfo cannot be read (not Linux): a small machine's 4 GiB.
const MACHINE_BYTES_FALLBACK: u64 = 4 << 30;

/// The machine's memory, from /proc/meminfo's `MemTotal`.
pub fn machine_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
        .unwrap_or(MACHINE_BYTES_FALLBACK)
}

/// The default `--memory-max` of one of `workers` concurrent checks (see the module doc).
pub fn default_memory_max(workers: usize) -> u64 {
    assert!(workers > 0, "at least one worker");
    (machine_bytes() / 2 / workers as u64).clamp(MEMO_ENTRY_BYTES, MEMORY_MAX_DEFAULT_CAP)
}

/// Bytes one recorded operation costs a seed at its peak (the simulation's history, the checkers'
/// copies and indexes, the report): measured, a 200-simulated-second default run of 36,583 ops
/// peaked 201 MiB above a 20-second one of 4,512 ops (~6.4 KiB an op); 8 KiB keeps it an upper
/// bound.
pub const SIMULATION_BYTES_PER_OP: u64 = 8 << 10;

/// Refuses (bad input, exit 2) a scenario whose seed would need more than `memory_max` bytes by
/// [`kvsim_sim::scenario::Scenario::ops_estimate`], with the estimate and what to change, instead
/// of letting the machine run out of memory hours into a campaign.
pub fn check_scenario_fits(
    scenario: &kvsim_sim::scenario::Scenario,
    memory_max: u64,
) -> anyhow::Result<()> {
    let ops = scenario.ops_estimate();
    let bytes = ops.saturating_mul(SIMULATION_BYTES_PER_OP);
    if bytes > memory_max {
        anyhow::bail!(
            "the scenario would need about {} MiB per seed (~{ops} operations × {} KiB), more than \
             --memory-max {} MiB: shorten workload.duration_ms, use fewer clients, or raise \
             --memory-max",
            bytes >> 20,
            SIMULATION_BYTES_PER_OP >> 10,
            memory_max >> 20
        );
    }
    Ok(())
}

/// The search budget of `timeout` and `memory_max` bytes.
pub fn budget(timeout: Duration, memory_max: u64) -> Budget {
    Budget {
        timeout: Some(timeout),
        memo_entries_max: Some(
            usize::try_from(memory_max / MEMO_ENTRY_BYTES).unwrap_or(usize::MAX),
        ),
    }
}

/// Judges a simulated run as `verdict::judge_run` does (the same liveness bound: five election
/// timeouts), within `budget`.
pub fn judge_run_within(output: &RunOutput, budget: Budget) -> Verdict {
    let cluster = &output.scenario.cluster;
    let election_timeout_ns = cluster.election_tick as u64 * cluster.tick_ms * 1_000_000;
    let options = JudgeOptions {
        budget,
        durability: DurabilityOptions {
            liveness_bound_ns: 5 * election_timeout_ns,
        },
        only: Vec::new(),
    };
    judge_with(&output.history, &output.invariant_violations, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_shared_by_the_workers_and_capped() {
        let one = default_memory_max(1);
        assert!(one <= MEMORY_MAX_DEFAULT_CAP && one <= machine_bytes() / 2);
        let many = default_memory_max(64);
        assert!(many <= machine_bytes() / 2 / 64 + MEMO_ENTRY_BYTES);
        assert_eq!(
            budget(Duration::from_secs(1), 1280).memo_entries_max,
            Some(10)
        );
    }
}
