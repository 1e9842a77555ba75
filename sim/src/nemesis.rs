//! The simulator's nemesis: executes the run's fault schedule ([`crate::schedule`], which decides
//! what comes when and what is skipped) on the simulated [`Cluster`], recording every injection
//! and heal as a `fault` record with its simulated time.
//!
//! Healing a network fault heals every cut (the cluster keeps one set of cut links), which may
//! end an overlapping timeline partition early; the `fault` records show exactly what happened
//! when. The simulator can inject every fault kind.
//!
//! Record kinds: `partition` (detail: `fault`, `groups`), `partition_one_way` (`from`, `to`),
//! `heal` (network), `crash` (`torn`), `restart`, `pause`, `resume`, `packet_loss` (`rate`),
//! `latency` (`min_ms`, `max_ms`), `clock_skew` (`skew_ms`), `disk_stall`, `disk_release`,
//! `heal_all`, `skipped` (`reason`).

use crate::client::Recorder;
use crate::cluster::Cluster;
use crate::scenario::{ClusterKnobs, FaultKnobs};
use crate::schedule::{Action, Fault, FaultRecord, Heal, HealAll, Outcome, Schedule};
use madsim::rand::{thread_rng, Rng};
use madsim::time::sleep;
use std::time::Duration;

pub struct Nemesis<'a> {
    cluster: &'a Cluster,
    recorder: Recorder,
    knobs: FaultKnobs,
    latency_base_ms: (u64, u64),
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
        }
    }

    /// Runs the schedule until `duration_ms` after the recorder's start, ending with its heal-all
    /// there.
    pub async fn run(&mut self, duration_ms: u64) {
        // The schedule's own stream, seeded from the simulation's RNG.
        let seed = thread_rng().gen::<u64>();
        let mut schedule = Schedule::new(
            &self.knobs,
            self.cluster.node_ids(),
            self.latency_base_ms,
            duration_ms,
            seed,
            &|_| None,
        );
        while let Some(step) = schedule.next_step() {
            let now_ms = self.recorder.now_ns() / 1_000_000;
            if step.at_ms > now_ms {
                sleep(Duration::from_millis(step.at_ms - now_ms)).await;
            }
            match step.action {
                Action::Inject(fault) => {
                    let outcome = self.inject(fault.at_leader(self.cluster.leader()));
                    schedule.report(outcome);
                }
                Action::Skip { kind, reason } => self.log(FaultRecord::skipped(kind, &reason)),
                Action::Heal(heal) => self.heal(&heal),
                Action::HealAll(all) => self.heal_all(&all),
            }
        }
    }

    fn log(&self, record: FaultRecord) {
        self.recorder
            .fault(record.kind, &record.nodes, record.detail);
    }

    fn inject(&self, fault: Fault) -> Outcome {
        let mut nodes = Vec::new();
        match &fault {
            Fault::Partition { side, rest, .. } => {
                self.cluster.partition(&[rest.clone(), side.clone()]);
            }
            Fault::Bridge { left, right, .. } => {
                self.cluster.heal_network();
                self.cluster.partition_one_way(left, right);
                self.cluster.partition_one_way(right, left);
            }
            Fault::OneWay { from, to } => self.cluster.partition_one_way(from, to),
            Fault::Crash { nodes: crashed, .. } => {
                for (node, torn) in crashed {
                    self.cluster.crash(*node, *torn);
                    nodes.push(*node);
                }
            }
            Fault::Pause { nodes: paused, .. } => {
                for node in paused {
                    self.cluster.pause(*node);
                }
                nodes.clone_from(paused);
            }
            Fault::PacketLoss { rate } => self.cluster.set_packet_loss(*rate),
            Fault::Latency { min_ms, max_ms } => self.cluster.set_latency_ms(*min_ms, *max_ms),
            Fault::ClockSkew { node, skew_ms } => self.cluster.set_clock_skew_ms(*node, *skew_ms),
            Fault::DiskStall { node, .. } => {
                self.cluster.set_disk_stalled(*node, true);
                nodes.push(*node);
            }
            Fault::AtLeader { .. } => unreachable!("aimed by Fault::at_leader"),
        }
        for record in fault.records() {
            self.log(record);
        }
        Outcome::Injected { nodes }
    }

    fn heal(&self, heal: &Heal) {
        match heal {
            Heal::Network => self.cluster.heal_network(),
            Heal::Restart(nodes) => nodes.iter().for_each(|node| self.cluster.restart(*node)),
            Heal::Resume(nodes) => nodes.iter().for_each(|node| self.cluster.resume(*node)),
            Heal::PacketLoss => self.cluster.set_packet_loss(0.0),
            Heal::Latency { min_ms, max_ms } => self.cluster.set_latency_ms(*min_ms, *max_ms),
            Heal::ClockSkew(node) => self.cluster.set_clock_skew_ms(*node, 0),
            Heal::ReleaseDisk(node) => self.cluster.set_disk_stalled(*node, false),
        }
        for record in heal.records() {
            self.log(record);
        }
    }

    /// Undoes every fault: network, crashed nodes, paused nodes, stalled disks, loss, latency, clock skew.
    fn heal_all(&self, all: &HealAll) {
        self.cluster.heal_network();
        // Per-node records too, so a durability checker sees every restart the same way.
        self.heal(&Heal::Restart(all.crashed.clone()));
        self.heal(&Heal::Resume(all.paused.clone()));
        for node in &all.stalled {
            self.heal(&Heal::ReleaseDisk(*node));
        }
        for node in &all.skewed {
            self.cluster.set_clock_skew_ms(*node, 0);
        }
        self.cluster.set_packet_loss(0.0);
        let (min_ms, max_ms) = all.latency_ms;
        self.cluster.set_latency_ms(min_ms, max_ms);
        self.log(all.record());
    }
}
