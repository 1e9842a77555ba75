//! How big a failing run is, and the one-line reduction `kvsim shrink` prints.

use serde::Serialize;

use super::search::Failure;

/// The dimensions the search reduces, measured on a failing run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Size {
    /// Client operations recorded; None when the run panicked (no history).
    pub operations: Option<u64>,
    /// Faults injected (a majority crash counts once); None when the run panicked.
    pub faults: Option<usize>,
    pub clients: usize,
    pub watchers: usize,
    pub lockers: usize,
    pub campaigners: usize,
    pub nodes: usize,
    pub keys: usize,
    /// Operation kinds with a weight above 0.
    pub op_kinds: usize,
    pub duration_ms: u64,
}

impl Size {
    pub fn of(failure: &Failure) -> Size {
        let scenario = &failure.scenario;
        let w = &scenario.workload;
        // Without a history, an explicit timeline still says how many faults the run had.
        let faults = failure.evidence.faults().or_else(|| {
            (scenario.faults.interval_ms == 0).then_some(scenario.faults.timeline.len())
        });
        Size {
            operations: failure.evidence.ops(),
            faults,
            clients: w.clients,
            watchers: w.watchers,
            lockers: w.lockers,
            campaigners: w.campaigners,
            nodes: scenario.cluster.nodes,
            keys: w.keys,
            op_kinds: w
                .mix
                .weights()
                .iter()
                .filter(|(_, weight)| *weight > 0)
                .count(),
            duration_ms: w.duration_ms,
        }
    }
}

/// `operations 2,400 -> 40, faults 35 -> 2, clients 8 -> 2, ...`: every dimension, the recipe
/// participants only when there were any.
pub fn reduction_line(before: &Size, after: &Size) -> String {
    let count = |value: Option<u64>| value.map_or("?".to_string(), thousands);
    let mut parts = vec![
        format!(
            "operations {} -> {}",
            count(before.operations),
            count(after.operations)
        ),
        format!(
            "faults {} -> {}",
            count(before.faults.map(|n| n as u64)),
            count(after.faults.map(|n| n as u64))
        ),
        format!("clients {} -> {}", before.clients, after.clients),
    ];
    for (name, was, now) in [
        ("watchers", before.watchers, after.watchers),
        ("lockers", before.lockers, after.lockers),
        ("campaigners", before.campaigners, after.campaigners),
    ] {
        if was > 0 {
            parts.push(format!("{name} {was} -> {now}"));
        }
    }
    parts.push(format!("nodes {} -> {}", before.nodes, after.nodes));
    parts.push(format!("keys {} -> {}", before.keys, after.keys));
    parts.push(format!(
        "op kinds {} -> {}",
        before.op_kinds, after.op_kinds
    ));
    parts.push(format!(
        "duration {} -> {}",
        seconds(before.duration_ms),
        seconds(after.duration_ms)
    ));
    parts.join(", ")
}

/// `2400` → `2,400`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `30000` → `30 s`, `6500` → `6.5 s`.
fn seconds(ms: u64) -> String {
    if ms % 1_000 == 0 {
        format!("{} s", ms / 1_000)
    } else {
        format!("{:.1} s", ms as f64 / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_counts_and_durations() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2_400), "2,400");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(seconds(30_000), "30 s");
        assert_eq!(seconds(6_500), "6.5 s");
        let before = Size {
            operations: Some(2_400),
            faults: Some(35),
            clients: 8,
            watchers: 2,
            lockers: 0,
            campaigners: 0,
            nodes: 5,
            keys: 16,
            op_kinds: 15,
            duration_ms: 30_000,
        };
        let after = Size {
            operations: Some(40),
            faults: Some(2),
            clients: 2,
            watchers: 0,
            nodes: 3,
            keys: 2,
            op_kinds: 3,
            duration_ms: 6_000,
            ..before.clone()
        };
        assert_eq!(
            reduction_line(&before, &after),
            "operations 2,400 -> 40, faults 35 -> 2, clients 8 -> 2, watchers 2 -> 0, \
             nodes 5 -> 3, keys 16 -> 2, op kinds 15 -> 3, duration 30 s -> 6 s"
        );
    }
}
