//! Live mode's nemesis: executes the run's fault schedule (`kvsim_sim::schedule`, the same one
//! the simulator draws: random faults at exponential gaps with mean `faults.interval_ms`, the
//! explicit timeline, the skip rules, the final heal-all) on spawned etcd members: SIGKILL and
//! restart, SIGSTOP / SIGCONT, and network partitions (symmetric, bridge, one-way) when the
//! members run in their own network namespaces. Every fault and heal goes into the history with
//! the schedule's record shapes, so reports and the durability checker read both alike.
//!
//! Faults a real cluster here cannot get (packet loss and latency need `tc netem`, clock skew a
//! time namespace per member; `host.rs` probes both, and this nemesis injects neither yet) are
//! never silently dropped: the schedule leaves them out of the random draw and this nemesis says
//! so, a timeline entry is recorded as `skipped` with the reason. An injection that fails here
//! (a kill, a pause, a cut) is recorded as `skipped` with the error too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvsim_sim::client::Recorder;
use kvsim_sim::scenario::{FaultKind, FaultKnobs};
use kvsim_sim::schedule::{Action, Fault, FaultRecord, Heal, HealAll, Outcome, Schedule};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use super::etcd_process::EtcdCluster;
use super::host::HostSupport;
use super::ops;
use super::run::LiveShared;

pub struct LiveNemesis {
    cluster: Option<Arc<Mutex<EtcdCluster>>>,
    recorder: Recorder,
    knobs: FaultKnobs,
    /// Member ids, 1..=N.
    nodes: Vec<u64>,
    endpoints: Vec<String>,
    /// The schedule's seed.
    seed: u64,
    /// Why partitions cannot be injected, when they cannot.
    partitions_unavailable: Option<String>,
    /// Some cut may be in place (also after a cut that failed half way).
    partitioned: bool,
    /// Fault kinds not injected, with the reason (one line each in the run's summary).
    skipped: BTreeMap<&'static str, String>,
    /// What this host supports (probed once).
    host: HostSupport,
}

impl LiveNemesis {
    pub fn new(
        cluster: Option<Arc<Mutex<EtcdCluster>>>,
        recorder: Recorder,
        knobs: &FaultKnobs,
        endpoints: Vec<String>,
        mut rng: StdRng,
        partitions_unavailable: Option<String>,
    ) -> LiveNemesis {
        LiveNemesis {
            cluster,
            recorder,
            knobs: knobs.clone(),
            nodes: (1..=endpoints.len() as u64).collect(),
            endpoints,
            seed: rng.gen(),
            partitions_unavailable,
            partitioned: false,
            skipped: BTreeMap::new(),
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
            FaultKind::DiskStallLeader => Some(
                "needs a member disk kvsim can hold back (a dm-delay or FUSE device under its data \
                 dir); the live nemesis does not set one up"
                    .to_string(),
            ),
            FaultKind::CrashOne
            | FaultKind::CrashLeader
            | FaultKind::CrashMajority
            | FaultKind::CrashAll
            | FaultKind::Pause
            | FaultKind::PauseLeader
            | FaultKind::PauseFollower
            | FaultKind::HealAll => None,
        }
    }

    /// Executes the schedule until the workload's duration (the faults' window), ending with its
    /// heal-all, then waits out the quiet window: a whole-cluster stretch the liveness check
    /// judges.
    pub async fn run(&mut self, shared: &LiveShared) {
        let mut schedule = Schedule::new(
            &self.knobs,
            self.nodes.clone(),
            (0, 0),
            shared.knobs.duration_ms,
            self.seed,
            &|kind| self.unsupported(kind),
        );
        for (kind, reason) in schedule.not_drawn() {
            self.skipped.insert(kind.name(), reason);
        }
        while let Some(step) = schedule.next_step() {
            let now_ms = self.recorder.now_ns() / 1_000_000;
            if step.at_ms > now_ms {
                tokio::time::sleep(Duration::from_millis(step.at_ms - now_ms)).await;
            }
            match step.action {
                Action::Inject(fault) => {
                    let outcome = self.inject(fault).await;
                    schedule.report(outcome);
                }
                Action::Skip { kind, reason } => self.skip(kind, &reason),
                Action::Heal(heal) => self.heal(&heal),
                Action::HealAll(all) => self.heal_all(&all),
            }
        }
        if let Some(left) = shared.time_left() {
            tokio::time::sleep(left).await;
        }
    }

    fn log(&self, record: FaultRecord) {
        self.recorder
            .fault(record.kind, &record.nodes, record.detail);
    }

    fn skip(&mut self, kind: FaultKind, reason: &str) {
        self.log(FaultRecord::skipped(kind, reason));
        self.skipped.insert(kind.name(), reason.to_string());
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

    /// The member the running members name as leader.
    async fn leader(&self, running: &[u64]) -> Option<u64> {
        for id in running {
            if let Some(leader) = leader_seen_by(&self.endpoints, *id).await {
                return Some(leader);
            }
        }
        None
    }

    async fn inject(&mut self, fault: Fault) -> Outcome {
        let fault = match &fault {
            Fault::AtLeader { running, .. } => {
                let leader = self.leader(running).await;
                fault.at_leader(leader)
            }
            _ => fault,
        };
        let kind = fault.kind();
        let links: Vec<(u64, u64)> = match &fault {
            Fault::Partition { side, rest, .. } => both_ways(rest, side),
            Fault::Bridge { left, right, .. } => both_ways(left, right),
            Fault::OneWay { from, to } => from
                .iter()
                .flat_map(|a| to.iter().map(move |b| (*a, *b)))
                .collect(),
            Fault::Crash { nodes, .. } => {
                let mut crashed = Vec::new();
                for (node, _) in nodes {
                    let killed = self.cluster().kill(*node);
                    match killed {
                        Ok(()) => crashed.push(*node),
                        Err(error) => self.skip(kind, &format!("{error:#}")),
                    }
                }
                // SIGKILL loses nothing etcd acknowledged: it fsyncs before answering.
                let done = Fault::Crash {
                    kind,
                    nodes: crashed.iter().map(|node| (*node, false)).collect(),
                };
                return self.injected(done, crashed);
            }
            Fault::Pause { nodes, .. } => {
                let mut paused = Vec::new();
                for node in nodes {
                    let result = self.cluster().pause(*node);
                    match result {
                        Ok(()) => paused.push(*node),
                        Err(error) => self.skip(kind, &format!("{error:#}")),
                    }
                }
                let done = Fault::Pause {
                    kind,
                    nodes: paused.clone(),
                };
                return self.injected(done, paused);
            }
            Fault::PacketLoss { .. }
            | Fault::Latency { .. }
            | Fault::ClockSkew { .. }
            | Fault::DiskStall { .. }
            | Fault::AtLeader { .. } => {
                // The schedule skips the kinds `unsupported` names; nothing else reaches here.
                self.skip(kind, "not injected by the live nemesis");
                return Outcome::NotInjected;
            }
        };
        // Replaces any earlier cut (every network fault is a set of one-way links).
        let cut = {
            let mut cluster = self.cluster();
            cluster
                .heal_network()
                .and_then(|()| cluster.cut_links(&links))
        };
        // Whatever part of a failed cut was made stays until the next heal.
        self.partitioned = true;
        if let Err(error) = cut {
            self.skip(kind, &format!("{error:#}"));
            return Outcome::NotInjected;
        }
        self.injected(fault, Vec::new())
    }

    /// Records `done` (what of a fault happened) and reports it, or nothing if `nodes` were to be
    /// taken down and none was.
    fn injected(&self, done: Fault, nodes: Vec<u64>) -> Outcome {
        if nodes.is_empty() && matches!(done, Fault::Crash { .. } | Fault::Pause { .. }) {
            return Outcome::NotInjected;
        }
        for record in done.records() {
            self.log(record);
        }
        Outcome::Injected { nodes }
    }

    fn heal(&mut self, heal: &Heal) {
        match heal {
            Heal::Network => {
                if self.partitioned {
                    self.heal_network();
                }
            }
            Heal::Restart(nodes) => {
                for node in nodes {
                    let restarted = self.cluster().restart(*node);
                    self.logged(
                        Heal::Restart(vec![*node]),
                        "restart_failed",
                        *node,
                        restarted,
                    );
                }
            }
            Heal::Resume(nodes) => {
                for node in nodes {
                    let resumed = self.cluster().resume(*node);
                    self.logged(Heal::Resume(vec![*node]), "resume_failed", *node, resumed);
                }
            }
            // Never injected here (unsupported), so never healed.
            Heal::PacketLoss | Heal::Latency { .. } | Heal::ClockSkew(_) | Heal::ReleaseDisk(_) => {
            }
        }
    }

    /// Records `heal` if `result` is ok, else `failed` with the error (so the durability checker
    /// does not treat the cluster as whole again).
    fn logged(&self, heal: Heal, failed: &'static str, node: u64, result: anyhow::Result<()>) {
        match result {
            Ok(()) => heal
                .records()
                .into_iter()
                .for_each(|record| self.log(record)),
            Err(error) => {
                self.recorder
                    .fault(failed, &[node], json!({ "error": format!("{error:#}") }))
            }
        }
    }

    fn heal_network(&mut self) {
        let healed = self.cluster().heal_network();
        match healed {
            Ok(()) => {
                self.partitioned = false;
                self.log(Heal::Network.records().remove(0));
            }
            // Recorded, so the durability checker does not treat the cluster as whole again.
            Err(error) => {
                self.recorder
                    .fault("heal_failed", &[], json!({ "error": format!("{error:#}") }))
            }
        }
    }

    /// Undoes every fault (network, killed and paused members), recording one record per node as
    /// the simulator's nemesis does, then `heal_all`.
    fn heal_all(&mut self, all: &HealAll) {
        if self.cluster.is_none() {
            return;
        }
        if self.partitioned {
            self.heal_network();
        }
        self.heal(&Heal::Restart(all.crashed.clone()));
        self.heal(&Heal::Resume(all.paused.clone()));
        self.log(all.record());
    }
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
