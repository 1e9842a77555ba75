//! The nemesis: injects the scenario's faults into the cluster (random ones at seeded exponential
//! intervals, explicit ones from `[[faults.timeline]]`), heals each after its duration, and records
//! every injection and heal as a `fault` record with its simulated time.
//!
//! Random faults never overlap each other: the next one is drawn after the previous one healed.
//! Timeline faults are applied at their time whatever else is active. Healing a network fault
//! heals every cut (the cluster keeps one set of cut links), which may end an overlapping timeline
//! partition early; the `fault` records show exactly what happened when.
//!
//! Record kinds: `partition` (detail: `fault`, `groups`), `partition_one_way` (`from`, `to`),
//! `heal` (network), `crash` (`torn`), `restart`, `pause`, `resume`, `packet_loss` (`rate`),
//! `latency` (`min_ms`, `max_ms`), `clock_skew` (`skew_ms`), `heal_all`, `skipped` (`reason`).

use crate::client::Recorder;
use crate::cluster::Cluster;
use crate::scenario::{ClusterKnobs, FaultKind, FaultKnobs, TimelineFault};
use madsim::rand::seq::SliceRandom;
use madsim::rand::{thread_rng, Rng};
use madsim::time::sleep;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// How a fault is undone.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Heal {
    Network,
    Restart(Vec<u64>),
    Resume(Vec<u64>),
    PacketLoss,
    Latency,
    ClockSkew(u64),
}

/// A fault to apply: its kind plus the optional parameters a timeline entry may pin.
#[derive(Clone, Debug, Default)]
struct FaultSpec {
    nodes: Vec<u64>,
    torn: Option<bool>,
    rate: Option<f64>,
    latency_ms: Option<u64>,
    skew_ms: Option<i64>,
}

impl From<&TimelineFault> for FaultSpec {
    fn from(fault: &TimelineFault) -> Self {
        FaultSpec {
            nodes: fault.nodes.clone(),
            torn: fault.torn,
            rate: fault.rate,
            latency_ms: fault.latency_ms,
            skew_ms: fault.skew_ms,
        }
    }
}

pub struct Nemesis<'a> {
    cluster: &'a Cluster,
    recorder: Recorder,
    knobs: FaultKnobs,
    latency_base_ms: (u64, u64),
    nodes: Vec<u64>,
    crashed: BTreeSet<u64>,
    paused: BTreeSet<u64>,
    skewed: BTreeSet<u64>,
}

impl<'a> Nemesis<'a> {
    pub fn new(
        cluster: &'a Cluster,
        recorder: Recorder,
        knobs: &FaultKnobs,
        cluster_knobs: &ClusterKnobs,
    ) -> Self {
        Nemesis {
            cluster,
            recorder,
            knobs: knobs.clone(),
            latency_base_ms: (
                cluster_knobs.net_latency_min_ms,
                cluster_knobs.net_latency_max_ms,
            ),
            nodes: cluster.node_ids(),
            crashed: BTreeSet::new(),
            paused: BTreeSet::new(),
            skewed: BTreeSet::new(),
        }
    }

    /// Injects faults until `duration_ms` after the recorder's start and returns then, with
    /// faults possibly still active (call [`Nemesis::heal_all`]).
    pub async fn run(&mut self, duration_ms: u64) {
        let mut timeline: Vec<TimelineFault> = self.knobs.timeline.clone();
        // Stable: entries with equal times keep their file order.
        timeline.sort_by_key(|fault| fault.at_ms);
        let mut timeline = timeline.into_iter().peekable();
        let mut random_at_ms =
            (self.knobs.interval_ms > 0).then(|| self.knobs.start_ms + self.gap_ms());
        // (heal time, sequence number, heal, whether it ends the random fault)
        let mut heals: Vec<(u64, u64, Heal, bool)> = Vec::new();
        let mut sequence = 0u64;
        loop {
            heals.sort_by_key(|(at_ms, sequence, _, _)| (*at_ms, *sequence));
            let heal_at = heals.first().map(|(at_ms, ..)| *at_ms);
            let timeline_at = timeline.peek().map(|fault| fault.at_ms);
            let Some(next_ms) = [heal_at, timeline_at, random_at_ms]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            if next_ms >= duration_ms {
                break;
            }
            let now_ms = self.recorder.now_ns() / 1_000_000;
            if next_ms > now_ms {
                sleep(Duration::from_millis(next_ms - now_ms)).await;
            }
            // Heals first, then explicit faults, then random ones, at equal times.
            if heal_at == Some(next_ms) {
                let (_, _, heal, ends_random) = heals.remove(0);
                self.heal(heal);
                if ends_random {
                    random_at_ms = Some(next_ms + self.gap_ms());
                }
            } else if timeline_at == Some(next_ms) {
                let fault = timeline.next().expect("peeked");
                if let Some(heal) = self.apply(fault.kind, &FaultSpec::from(&fault)) {
                    if let Some(duration_ms) = fault.duration_ms {
                        sequence += 1;
                        heals.push((next_ms + duration_ms, sequence, heal, false));
                    }
                }
            } else {
                assert_eq!(random_at_ms, Some(next_ms));
                let kind = self.draw_kind();
                let duration_ms =
                    thread_rng().gen_range(self.knobs.duration_min_ms..=self.knobs.duration_max_ms);
                match self.apply(kind, &FaultSpec::default()) {
                    Some(heal) => {
                        sequence += 1;
                        heals.push((next_ms + duration_ms, sequence, heal, true));
                        random_at_ms = None;
                    }
                    None => random_at_ms = Some(next_ms + self.gap_ms()),
                }
            }
        }
        let now_ms = self.recorder.now_ns() / 1_000_000;
        if duration_ms > now_ms {
            sleep(Duration::from_millis(duration_ms - now_ms)).await;
        }
    }

    /// An exponential gap with mean `interval_ms` (faults as a Poisson process), at least 1 ms.
    fn gap_ms(&self) -> u64 {
        let uniform: f64 = thread_rng().gen_range(f64::EPSILON..=1.0);
        ((-uniform.ln()) * self.knobs.interval_ms as f64).max(1.0) as u64
    }

    fn draw_kind(&self) -> FaultKind {
        let weights = self.knobs.weights.weights();
        let total: u64 = weights.iter().map(|(_, weight)| u64::from(*weight)).sum();
        assert!(
            total > 0,
            "validated: fault weights are positive when faults.interval_ms > 0"
        );
        let mut pick = thread_rng().gen_range(0..total);
        for (kind, weight) in weights {
            if pick < u64::from(weight) {
                return kind;
            }
            pick -= u64::from(weight);
        }
        unreachable!("pick < total")
    }

    fn skip(&self, kind: FaultKind, reason: &str) -> Option<Heal> {
        self.recorder.fault(
            "skipped",
            &[],
            json!({ "fault": kind.name(), "reason": reason }),
        );
        None
    }

    fn random_node(&self, exclude: &BTreeSet<u64>) -> Option<u64> {
        let candidates: Vec<u64> = self
            .nodes
            .iter()
            .copied()
            .filter(|id| !exclude.contains(id))
            .collect();
        candidates.choose(&mut thread_rng()).copied()
    }

    fn others(&self, side: &[u64]) -> Vec<u64> {
        self.nodes
            .iter()
            .copied()
            .filter(|id| !side.contains(id))
            .collect()
    }

    fn leader_or_random(&self) -> Option<u64> {
        self.cluster
            .leader()
            .or_else(|| self.random_node(&self.crashed))
    }

    fn partition(&mut self, kind: FaultKind, side: Vec<u64>) -> Option<Heal> {
        if side.is_empty() || side.len() >= self.nodes.len() {
            return self.skip(kind, "a partition needs nodes on both sides");
        }
        let groups = vec![self.others(&side), side.clone()];
        self.cluster.partition(&groups);
        self.recorder.fault(
            "partition",
            &side,
            json!({ "fault": kind.name(), "groups": groups }),
        );
        Some(Heal::Network)
    }

    /// Applies one fault now; returns how to heal it, or `None` if it could not apply.
    fn apply(&mut self, kind: FaultKind, spec: &FaultSpec) -> Option<Heal> {
        let n = self.nodes.len();
        let rng = &mut thread_rng();
        match kind {
            FaultKind::PartitionRandom => {
                let side = if spec.nodes.is_empty() {
                    if n < 3 {
                        return self.skip(kind, "needs at least 3 nodes");
                    }
                    let mut shuffled = self.nodes.clone();
                    shuffled.shuffle(rng);
                    let minority = rng.gen_range(1..=(n - 1) / 2);
                    let mut side = shuffled[..minority].to_vec();
                    side.sort_unstable();
                    side
                } else {
                    spec.nodes.clone()
                };
                self.partition(kind, side)
            }
            FaultKind::IsolateLeader => match self.leader_or_random() {
                Some(leader) => self.partition(kind, vec![leader]),
                None => self.skip(kind, "every node is down"),
            },
            FaultKind::IsolateOne => {
                let node = spec
                    .nodes
                    .first()
                    .copied()
                    .or_else(|| self.random_node(&BTreeSet::new()));
                match node {
                    Some(node) => self.partition(kind, vec![node]),
                    None => self.skip(kind, "no node"),
                }
            }
            FaultKind::Bridge => {
                if n < 3 {
                    return self.skip(kind, "needs at least 3 nodes");
                }
                let bridge = spec
                    .nodes
                    .first()
                    .copied()
                    .unwrap_or_else(|| self.nodes[rng.gen_range(0..n)]);
                let mut rest = self.others(&[bridge]);
                rest.shuffle(rng);
                let (left, right) = rest.split_at(rest.len() / 2);
                let (mut left, mut right) = (left.to_vec(), right.to_vec());
                left.sort_unstable();
                right.sort_unstable();
                self.cluster.heal_network();
                self.cluster.partition_one_way(&left, &right);
                self.cluster.partition_one_way(&right, &left);
                self.recorder.fault(
                    "partition",
                    &[bridge],
                    json!({ "fault": kind.name(), "groups": [left, right], "bridge": bridge }),
                );
                Some(Heal::Network)
            }
            FaultKind::OneWay => {
                let from = if spec.nodes.is_empty() {
                    match self.random_node(&BTreeSet::new()) {
                        Some(node) => vec![node],
                        None => return self.skip(kind, "no node"),
                    }
                } else {
                    spec.nodes.clone()
                };
                let to = self.others(&from);
                if to.is_empty() {
                    return self.skip(kind, "needs nodes on both sides");
                }
                self.cluster.partition_one_way(&from, &to);
                self.recorder.fault(
                    "partition_one_way",
                    &from,
                    json!({ "fault": kind.name(), "from": from, "to": to }),
                );
                Some(Heal::Network)
            }
            FaultKind::CrashOne | FaultKind::CrashLeader => {
                let node = if let Some(node) = spec.nodes.first() {
                    Some(*node)
                } else if kind == FaultKind::CrashLeader {
                    self.leader_or_random()
                } else {
                    self.random_node(&self.crashed)
                };
                match node {
                    Some(node) => self.crash(kind, vec![node], spec.torn),
                    None => self.skip(kind, "every node is down"),
                }
            }
            FaultKind::CrashMajority => {
                let nodes = if spec.nodes.is_empty() {
                    let mut shuffled = self.nodes.clone();
                    shuffled.shuffle(rng);
                    let mut majority = shuffled[..n / 2 + 1].to_vec();
                    majority.sort_unstable();
                    majority
                } else {
                    spec.nodes.clone()
                };
                self.crash(kind, nodes, spec.torn)
            }
            FaultKind::Pause => {
                // Only running nodes can be paused: a crashed or already paused one is left alone.
                let unavailable: BTreeSet<u64> =
                    self.crashed.union(&self.paused).copied().collect();
                let nodes: Vec<u64> = if spec.nodes.is_empty() {
                    self.random_node(&unavailable).into_iter().collect()
                } else {
                    spec.nodes
                        .iter()
                        .copied()
                        .filter(|node| !unavailable.contains(node))
                        .collect()
                };
                if nodes.is_empty() {
                    return self.skip(kind, "no running node to pause");
                }
                for node in &nodes {
                    self.cluster.pause(*node);
                    self.paused.insert(*node);
                }
                self.recorder
                    .fault("pause", &nodes, json!({ "fault": kind.name() }));
                Some(Heal::Resume(nodes))
            }
            FaultKind::PacketLoss => {
                let rate = spec.rate.unwrap_or(self.knobs.packet_loss_rate);
                self.cluster.set_packet_loss(rate);
                self.recorder.fault(
                    "packet_loss",
                    &[],
                    json!({ "fault": kind.name(), "rate": rate }),
                );
                Some(Heal::PacketLoss)
            }
            FaultKind::Latency => {
                let max_ms = spec
                    .latency_ms
                    .unwrap_or(self.knobs.latency_spike_ms)
                    .max(self.latency_base_ms.0);
                let min_ms = self.latency_base_ms.0;
                self.cluster.set_latency_ms(min_ms, max_ms);
                self.recorder.fault(
                    "latency",
                    &[],
                    json!({ "fault": kind.name(), "min_ms": min_ms, "max_ms": max_ms }),
                );
                Some(Heal::Latency)
            }
            FaultKind::ClockSkew => {
                let node = match spec
                    .nodes
                    .first()
                    .copied()
                    .or_else(|| self.random_node(&BTreeSet::new()))
                {
                    Some(node) => node,
                    None => return self.skip(kind, "no node"),
                };
                let max = self.knobs.clock_skew_ms_max;
                let skew_ms = spec.skew_ms.unwrap_or_else(|| rng.gen_range(-max..=max));
                self.cluster.set_clock_skew_ms(node, skew_ms);
                self.skewed.insert(node);
                self.recorder.fault(
                    "clock_skew",
                    &[node],
                    json!({ "fault": kind.name(), "skew_ms": skew_ms }),
                );
                Some(Heal::ClockSkew(node))
            }
            FaultKind::HealAll => {
                self.heal_all();
                None
            }
        }
    }

    fn crash(&mut self, kind: FaultKind, nodes: Vec<u64>, torn: Option<bool>) -> Option<Heal> {
        let mut crashed = Vec::new();
        for node in nodes {
            if self.crashed.contains(&node) {
                continue;
            }
            let torn = torn.unwrap_or_else(|| thread_rng().gen_bool(self.knobs.torn_probability));
            self.cluster.crash(node, torn);
            self.crashed.insert(node);
            self.paused.remove(&node);
            self.recorder.fault(
                "crash",
                &[node],
                json!({ "fault": kind.name(), "torn": torn }),
            );
            crashed.push(node);
        }
        if crashed.is_empty() {
            return self.skip(kind, "the target nodes are already down");
        }
        Some(Heal::Restart(crashed))
    }

    fn heal(&mut self, heal: Heal) {
        match heal {
            Heal::Network => {
                self.cluster.heal_network();
                self.recorder.fault("heal", &[], serde_json::Value::Null);
            }
            Heal::Restart(nodes) => {
                for node in nodes {
                    if self.crashed.remove(&node) {
                        self.cluster.restart(node);
                        self.recorder
                            .fault("restart", &[node], serde_json::Value::Null);
                    }
                }
            }
            Heal::Resume(nodes) => {
                for node in nodes {
                    if self.paused.remove(&node) {
                        self.cluster.resume(node);
                        self.recorder
                            .fault("resume", &[node], serde_json::Value::Null);
                    }
                }
            }
            Heal::PacketLoss => {
                self.cluster.set_packet_loss(0.0);
                self.recorder
                    .fault("packet_loss", &[], json!({ "rate": 0.0 }));
            }
            Heal::Latency => {
                let (min_ms, max_ms) = self.latency_base_ms;
                self.cluster.set_latency_ms(min_ms, max_ms);
                self.recorder.fault(
                    "latency",
                    &[],
                    json!({ "min_ms": min_ms, "max_ms": max_ms }),
                );
            }
            Heal::ClockSkew(node) => {
                if self.skewed.remove(&node) {
                    self.cluster.set_clock_skew_ms(node, 0);
                    self.recorder
                        .fault("clock_skew", &[node], json!({ "skew_ms": 0 }));
                }
            }
        }
    }

    /// Undoes every fault: network, crashed nodes, paused nodes, loss, latency, clock skew.
    pub fn heal_all(&mut self) {
        self.cluster.heal_network();
        // Per-node records too, so a durability checker sees every restart the same way.
        for node in std::mem::take(&mut self.crashed) {
            self.cluster.restart(node);
            self.recorder
                .fault("restart", &[node], serde_json::Value::Null);
        }
        for node in std::mem::take(&mut self.paused) {
            self.cluster.resume(node);
            self.recorder
                .fault("resume", &[node], serde_json::Value::Null);
        }
        for node in std::mem::take(&mut self.skewed) {
            self.cluster.set_clock_skew_ms(node, 0);
        }
        self.cluster.set_packet_loss(0.0);
        let (min_ms, max_ms) = self.latency_base_ms;
        self.cluster.set_latency_ms(min_ms, max_ms);
        self.recorder
            .fault("heal_all", &self.nodes.clone(), serde_json::Value::Null);
    }
}
