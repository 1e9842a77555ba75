//! Live mode's nemesis: the scenario's fault schedule (random faults at exponential gaps with mean
//! `faults.interval_ms`, plus the explicit timeline) applied to spawned etcd members: SIGKILL and
//! restart, SIGSTOP / SIGCONT, and network partitions (symmetric, bridge, one-way) when the
//! members run in their own network namespaces. Every fault and heal goes into the history with
//! the simulator's record shapes (sim/src/nemesis.rs), so reports and the durability checker
//! read both alike.
//!
//! Faults a real cluster here cannot get (packet loss and latency need `tc netem`, clock skew a
//! time namespace per member; `host.rs` probes both, and this nemesis injects neither yet) are
//! never silently dropped: the
//! random draw leaves them out and says so, a timeline entry is recorded as `skipped` with the
//! reason.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvsim_sim::client::Recorder;
use kvsim_sim::scenario::{FaultKind, FaultKnobs, TimelineFault};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;

use super::etcd_process::EtcdCluster;
use super::host::HostSupport;
use super::ops;
use super::run::LiveShared;

/// How to undo one fault.
#[derive(Clone, Debug)]
enum Heal {
    Network,
    Restart(Vec<u64>),
    Resume(Vec<u64>),
}

pub struct LiveNemesis {
    cluster: Option<Arc<Mutex<EtcdCluster>>>,
    recorder: Recorder,
    knobs: FaultKnobs,
    /// Member ids, 1..=N.
    nodes: Vec<u64>,
    endpoints: Vec<String>,
    rng: StdRng,
    /// Why partitions cannot be injected, when they cannot.
    partitions_unavailable: Option<String>,
    crashed: BTreeSet<u64>,
    paused: BTreeSet<u64>,
    partitioned: bool,
    /// Fault kinds not injected, with the reason (one line each in the run's summary).
    skipped: BTreeMap<&'static str, String>,
    /// The schedule is over and everything healed: a second `heal_all` records nothing.
    finished: bool,
    /// What this host supports (probed once).
    host: HostSupport,
}

impl LiveNemesis {
    pub fn new(
        cluster: Option<Arc<Mutex<EtcdCluster>>>,
        recorder: Recorder,
        knobs: &FaultKnobs,
        endpoints: Vec<String>,
        rng: StdRng,
        partitions_unavailable: Option<String>,
    ) -> LiveNemesis {
        LiveNemesis {
            cluster,
            recorder,
            knobs: knobs.clone(),
            nodes: (1..=endpoints.len() as u64).collect(),
            endpoints,
            rng,
            partitions_unavailable,
            crashed: BTreeSet::new(),
            paused: BTreeSet::new(),
            partitioned: false,
            skipped: BTreeMap::new(),
            finished: false,
            host: super::host::probe(),
        }
    }

    /// The fault kinds that were not injected, with why: `kind: reason`.
    pub fn skipped(&self) -> Vec<String> {
        self.skipped
            .iter()
            .map(|(kind, reason)| format!("{kind}: {reason}"))
            .collect()
    }

    /// Why `kind` cannot be injected on this cluster, or `None` if it can.
    fn unsupported(&self, kind: FaultKind) -> Option<String> {
        if self.cluster.is_none() {
            return Some("the cluster was not spawned by kvsim (--endpoints)".to_string());
        }
        match kind {
            FaultKind::PartitionRandom
            | FaultKind::IsolateLeader
            | FaultKind::IsolateOne
            | FaultKind::Bridge
            | FaultKind::OneWay => self.partitions_unavailable.clone(),
            // What the host offers is probed (host.rs); the live nemesis injects neither yet,
            // and the reason says which of the two stands in the way.
            FaultKind::PacketLoss | FaultKind::Latency => Some(match &self.host.netem {
                Ok(()) => "tc netem is available on this host, but the live nemesis does not \
                           inject packet loss or latency yet"
                    .to_string(),
                Err(why) => format!("needs tc netem: {why}"),
            }),
            FaultKind::ClockSkew => Some(match &self.host.clock_namespaces {
                Ok(()) => "time namespaces are available on this host, but the live nemesis \
                           does not run members in them yet"
                    .to_string(),
                Err(why) => format!("needs a time namespace per member: {why}"),
            }),
            FaultKind::CrashOne
            | FaultKind::CrashLeader
            | FaultKind::CrashMajority
            | FaultKind::Pause
            | FaultKind::HealAll => None,
        }
    }

    /// Injects faults until the workload's deadline (the same schedule rules as the simulator's
    /// nemesis: heals first, then timeline faults, then random ones at equal times).
    pub async fn run(&mut self, shared: &LiveShared) {
        let duration_ms = shared.knobs.duration_ms;
        let mut timeline: Vec<TimelineFault> = self.knobs.timeline.clone();
        timeline.sort_by_key(|fault| fault.at_ms);
        let mut timeline = timeline.into_iter().peekable();
        let weights: Vec<(FaultKind, u32)> = self
            .knobs
            .weights
            .weights()
            .into_iter()
            .filter(|(kind, weight)| {
                if *weight == 0 {
                    return false;
                }
                match self.unsupported(*kind) {
                    Some(reason) => {
                        self.skipped.insert(kind.name(), reason);
                        false
                    }
                    None => true,
                }
            })
            .collect();
        let random = self.knobs.interval_ms > 0 && !weights.is_empty();
        let mut random_at_ms = random.then(|| self.knobs.start_ms + self.gap_ms());
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
                tokio::time::sleep(Duration::from_millis(next_ms - now_ms)).await;
            }
            if heal_at == Some(next_ms) {
                let (_, _, heal, ends_random) = heals.remove(0);
                self.heal(heal);
                if ends_random {
                    random_at_ms = Some(next_ms + self.gap_ms());
                }
            } else if timeline_at == Some(next_ms) {
                let fault = timeline.next().expect("peeked");
                if let Some(heal) = self.apply(fault.kind, &fault.nodes).await {
                    if let Some(duration_ms) = fault.duration_ms {
                        sequence += 1;
                        heals.push((next_ms + duration_ms, sequence, heal, false));
                    }
                }
            } else {
                let kind = draw(&weights, &mut self.rng);
                let duration_ms = self
                    .rng
                    .gen_range(self.knobs.duration_min_ms..=self.knobs.duration_max_ms);
                match self.apply(kind, &[]).await {
                    Some(heal) => {
                        sequence += 1;
                        heals.push((next_ms + duration_ms, sequence, heal, true));
                        random_at_ms = None;
                    }
                    None => random_at_ms = Some(next_ms + self.gap_ms()),
                }
            }
        }
        // The faults' window is over: heal now, so the rest of the run (the quiet window) is a
        // whole-cluster window the liveness check judges.
        self.heal_all().await;
        self.finished = true;
        if let Some(left) = shared.time_left() {
            tokio::time::sleep(left).await;
        }
    }

    /// An exponential gap with mean `interval_ms`, at least 1 ms.
    fn gap_ms(&mut self) -> u64 {
        let uniform: f64 = self.rng.gen_range(f64::EPSILON..=1.0);
        ((-uniform.ln()) * self.knobs.interval_ms as f64).max(1.0) as u64
    }

    fn skip(&mut self, kind: FaultKind, reason: &str) -> Option<Heal> {
        self.recorder.fault(
            "skipped",
            &[],
            json!({ "fault": kind.name(), "reason": reason }),
        );
        self.skipped.insert(kind.name(), reason.to_string());
        None
    }

    fn cluster(&self) -> std::sync::MutexGuard<'_, EtcdCluster> {
        let cluster = self
            .cluster
            .as_ref()
            .expect("faults only on spawned clusters");
        // A poisoned lock means a panic elsewhere; the cluster itself is still usable for cleanup.
        cluster
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn random_node(&mut self, exclude: &BTreeSet<u64>) -> Option<u64> {
        let candidates: Vec<u64> = self
            .nodes
            .iter()
            .copied()
            .filter(|id| !exclude.contains(id))
            .collect();
        candidates.choose(&mut self.rng).copied()
    }

    /// The member the running members name as leader, or a random running one.
    async fn leader_or_random(&mut self) -> Option<u64> {
        let unavailable: BTreeSet<u64> = self.crashed.union(&self.paused).copied().collect();
        for id in self.nodes.clone() {
            if unavailable.contains(&id) {
                continue;
            }
            if let Some(leader) = leader_seen_by(&self.endpoints, id).await {
                return Some(leader);
            }
        }
        self.random_node(&unavailable)
    }

    async fn apply(&mut self, kind: FaultKind, chosen: &[u64]) -> Option<Heal> {
        if let Some(reason) = self.unsupported(kind) {
            return self.skip(kind, &reason);
        }
        let n = self.nodes.len();
        match kind {
            FaultKind::PartitionRandom => {
                let side = if chosen.is_empty() {
                    if n < 3 {
                        return self.skip(kind, "needs at least 3 members");
                    }
                    let mut shuffled = self.nodes.clone();
                    shuffled.shuffle(&mut self.rng);
                    let minority = self.rng.gen_range(1..=(n - 1) / 2);
                    let mut side = shuffled[..minority].to_vec();
                    side.sort_unstable();
                    side
                } else {
                    chosen.to_vec()
                };
                self.partition(kind, side)
            }
            FaultKind::IsolateLeader => match self.leader_or_random().await {
                Some(leader) => self.partition(kind, vec![leader]),
                None => self.skip(kind, "every member is down"),
            },
            FaultKind::IsolateOne => {
                let node = match chosen.first() {
                    Some(node) => Some(*node),
                    None => self.random_node(&BTreeSet::new()),
                };
                match node {
                    Some(node) => self.partition(kind, vec![node]),
                    None => self.skip(kind, "no member"),
                }
            }
            FaultKind::CrashOne | FaultKind::CrashLeader => {
                let node = match chosen.first() {
                    Some(node) => Some(*node),
                    None if kind == FaultKind::CrashLeader => self.leader_or_random().await,
                    None => {
                        let crashed = self.crashed.clone();
                        self.random_node(&crashed)
                    }
                };
                match node {
                    Some(node) => self.crash(kind, vec![node]),
                    None => self.skip(kind, "every member is down"),
                }
            }
            FaultKind::CrashMajority => {
                let nodes = if chosen.is_empty() {
                    let mut shuffled = self.nodes.clone();
                    shuffled.shuffle(&mut self.rng);
                    let mut majority = shuffled[..n / 2 + 1].to_vec();
                    majority.sort_unstable();
                    majority
                } else {
                    chosen.to_vec()
                };
                self.crash(kind, nodes)
            }
            FaultKind::Pause => {
                let unavailable: BTreeSet<u64> =
                    self.crashed.union(&self.paused).copied().collect();
                let nodes: Vec<u64> = if chosen.is_empty() {
                    self.random_node(&unavailable).into_iter().collect()
                } else {
                    chosen
                        .iter()
                        .copied()
                        .filter(|node| !unavailable.contains(node))
                        .collect()
                };
                if nodes.is_empty() {
                    return self.skip(kind, "no running member to pause");
                }
                let mut done = Vec::new();
                for node in nodes {
                    let paused = self.cluster().pause(node);
                    match paused {
                        Ok(()) => {
                            self.paused.insert(node);
                            done.push(node);
                        }
                        Err(error) => {
                            self.skip(kind, &format!("{error:#}"));
                        }
                    }
                }
                if done.is_empty() {
                    return None;
                }
                self.recorder
                    .fault("pause", &done, json!({ "fault": kind.name() }));
                Some(Heal::Resume(done))
            }
            FaultKind::HealAll => {
                self.heal_all().await;
                None
            }
            FaultKind::Bridge => {
                if n < 3 {
                    return self.skip(kind, "needs at least 3 members");
                }
                let bridge = match chosen.first() {
                    Some(node) => *node,
                    None => self.nodes[self.rng.gen_range(0..n)],
                };
                let mut rest: Vec<u64> = self.others(&[bridge]);
                rest.shuffle(&mut self.rng);
                let (left, right) = rest.split_at(rest.len() / 2);
                let (mut left, mut right) = (left.to_vec(), right.to_vec());
                left.sort_unstable();
                right.sort_unstable();
                let links = both_ways(&left, &right);
                self.cut(
                    kind,
                    &links,
                    "partition",
                    &[bridge],
                    json!({ "fault": kind.name(), "groups": [left, right], "bridge": bridge }),
                )
            }
            FaultKind::OneWay => {
                let from = if chosen.is_empty() {
                    match self.random_node(&BTreeSet::new()) {
                        Some(node) => vec![node],
                        None => return self.skip(kind, "no member"),
                    }
                } else {
                    chosen.to_vec()
                };
                let to = self.others(&from);
                if to.is_empty() {
                    return self.skip(kind, "needs members on both sides");
                }
                let links: Vec<(u64, u64)> = from
                    .iter()
                    .flat_map(|a| to.iter().map(move |b| (*a, *b)))
                    .collect();
                self.cut(
                    kind,
                    &links,
                    "partition_one_way",
                    &from,
                    json!({ "fault": kind.name(), "from": from, "to": to }),
                )
            }
            FaultKind::PacketLoss | FaultKind::Latency | FaultKind::ClockSkew => {
                unreachable!("unsupported kinds are skipped above")
            }
        }
    }

    fn partition(&mut self, kind: FaultKind, side: Vec<u64>) -> Option<Heal> {
        if side.is_empty() || side.len() >= self.nodes.len() {
            return self.skip(kind, "a partition needs members on both sides");
        }
        let others = self.others(&side);
        let links = both_ways(&others, &side);
        let groups = vec![others, side.clone()];
        self.cut(
            kind,
            &links,
            "partition",
            &side,
            json!({ "fault": kind.name(), "groups": groups }),
        )
    }

    /// The members not in `nodes`, in id order.
    fn others(&self, nodes: &[u64]) -> Vec<u64> {
        self.nodes
            .iter()
            .copied()
            .filter(|id| !nodes.contains(id))
            .collect()
    }

    /// Replaces any earlier cut by the one-way `links` (every network fault is a set of them)
    /// and records it as the simulator does.
    fn cut(
        &mut self,
        kind: FaultKind,
        links: &[(u64, u64)],
        record: &str,
        nodes: &[u64],
        detail: serde_json::Value,
    ) -> Option<Heal> {
        let cut = {
            let mut cluster = self.cluster();
            cluster
                .heal_network()
                .and_then(|()| cluster.cut_links(links))
        };
        if let Err(error) = cut {
            // Whatever part of the cut was made stays until the next heal.
            self.partitioned = true;
            return self.skip(kind, &format!("{error:#}"));
        }
        self.partitioned = true;
        self.recorder.fault(record, nodes, detail);
        Some(Heal::Network)
    }

    fn crash(&mut self, kind: FaultKind, nodes: Vec<u64>) -> Option<Heal> {
        let mut crashed = Vec::new();
        for node in nodes {
            if self.crashed.contains(&node) {
                continue;
            }
            let killed = self.cluster().kill(node);
            if let Err(error) = killed {
                self.skip(kind, &format!("{error:#}"));
                continue;
            }
            self.crashed.insert(node);
            self.paused.remove(&node);
            // SIGKILL loses nothing etcd acknowledged: it fsyncs before answering.
            self.recorder.fault(
                "crash",
                &[node],
                json!({ "fault": kind.name(), "torn": false }),
            );
            crashed.push(node);
        }
        if crashed.is_empty() {
            return None;
        }
        Some(Heal::Restart(crashed))
    }

    fn heal(&mut self, heal: Heal) {
        match heal {
            Heal::Network => {
                if self.partitioned {
                    self.heal_network();
                }
            }
            Heal::Restart(nodes) => {
                for node in nodes {
                    if self.crashed.remove(&node) {
                        self.restart(node);
                    }
                }
            }
            Heal::Resume(nodes) => {
                for node in nodes {
                    if self.paused.remove(&node) {
                        self.resume(node);
                    }
                }
            }
        }
    }

    fn heal_network(&mut self) {
        let healed = self.cluster().heal_network();
        match healed {
            Ok(()) => {
                self.partitioned = false;
                self.recorder.fault("heal", &[], serde_json::Value::Null);
            }
            // Recorded, so the durability checker does not treat the cluster as whole again.
            Err(error) => {
                self.recorder
                    .fault("heal_failed", &[], json!({ "error": format!("{error:#}") }))
            }
        }
    }

    fn restart(&mut self, node: u64) {
        let restarted = self.cluster().restart(node);
        match restarted {
            Ok(()) => self
                .recorder
                .fault("restart", &[node], serde_json::Value::Null),
            Err(error) => self.recorder.fault(
                "restart_failed",
                &[node],
                json!({ "error": format!("{error:#}") }),
            ),
        }
    }

    fn resume(&mut self, node: u64) {
        let resumed = self.cluster().resume(node);
        match resumed {
            Ok(()) => self
                .recorder
                .fault("resume", &[node], serde_json::Value::Null),
            Err(error) => self.recorder.fault(
                "resume_failed",
                &[node],
                json!({ "error": format!("{error:#}") }),
            ),
        }
    }

    /// Undoes every fault (network, killed and paused members), recording one record per node as
    /// the simulator's nemesis does, then `heal_all`.
    pub async fn heal_all(&mut self) {
        let whole = !self.partitioned && self.crashed.is_empty() && self.paused.is_empty();
        if self.cluster.is_none() || (self.finished && whole) {
            return;
        }
        if self.partitioned {
            self.heal_network();
        }
        for node in std::mem::take(&mut self.crashed) {
            self.restart(node);
        }
        for node in std::mem::take(&mut self.paused) {
            self.resume(node);
        }
        self.recorder
            .fault("heal_all", &self.nodes.clone(), serde_json::Value::Null);
    }
}

/// A kind drawn from `weights` (all positive, not empty).
fn draw(weights: &[(FaultKind, u32)], rng: &mut StdRng) -> FaultKind {
    let total: u64 = weights.iter().map(|(_, weight)| u64::from(*weight)).sum();
    let mut pick = rng.gen_range(0..total);
    for (kind, weight) in weights {
        if pick < u64::from(*weight) {
            return *kind;
        }
        pick -= u64::from(*weight);
    }
    unreachable!("pick < total")
}

/// The leader member `id` names (as a member id 1..=N), if it answers within half a second.
async fn leader_seen_by(endpoints: &[String], id: u64) -> Option<u64> {
    let timeout = Duration::from_millis(500);
    let endpoint = endpoints.get(id as usize - 1)?;
    let leader_member_id = tokio::time::timeout(timeout, async {
        let mut client = ops::connect(endpoint, timeout).await.ok()?;
        let leader = client.status().await.ok()?.leader();
        (leader != 0).then_some(leader)
    })
    .await
    .ok()??;
    // etcd names members by a hash id; ask each member for its own to map it to 1..=N.
    for (index, endpoint) in endpoints.iter().enumerate() {
        let own = tokio::time::timeout(timeout, async {
            let mut client = ops::connect(endpoint, timeout).await.ok()?;
            let status = client.status().await.ok()?;
            Some(status.header()?.member_id())
        })
        .await
        .ok()
        .flatten();
        if own == Some(leader_member_id) {
            return Some(index as u64 + 1);
        }
    }
    None
}

/// Every link between a member of `a` and a member of `b`, in both directions.
fn both_ways(a: &[u64], b: &[u64]) -> Vec<(u64, u64)> {
    a.iter()
        .flat_map(|x| b.iter().flat_map(move |y| [(*x, *y), (*y, *x)]))
        .collect()
}
