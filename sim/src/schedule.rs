//! The fault schedule: which fault comes next, when, and what is skipped and why, drawn once from
//! a seed for the simulator's nemesis (sim/src/nemesis.rs, effects on [`crate::cluster::Cluster`])
//! and live mode's (src/live/nemesis.rs, effects on spawned etcd members) alike. Pure: no madsim,
//! no etcd, no clock; only the scenario's `[faults]`, the member ids, a seed, and what the side
//! executing the steps reports back.
//!
//! The rules:
//! - random faults start at exponential gaps with mean `faults.interval_ms` (a Poisson process)
//!   from `faults.start_ms` on, their kind drawn by weight, and never overlap each other: the next
//!   gap starts when the previous one healed (after a duration drawn uniformly from
//!   `[duration_min_ms, duration_max_ms]`) or was skipped;
//! - `[[faults.timeline]]` entries apply at their time whatever else is active (entries with equal
//!   times keep their file order), healed after their `duration_ms` if they have one;
//! - at equal times: heals first, then timeline faults, then random ones;
//! - a fault that cannot apply (too few nodes, every target already down, a kind the executing
//!   side cannot inject) is a [`Action::Skip`] step with its reason, recorded as a `skipped` fault;
//!   a kind the side cannot inject is left out of the random draw ([`Schedule::not_drawn`]);
//! - the fault window ends at `faults_end_ms`: nothing is injected from then on, and one last
//!   [`Action::HealAll`] step there heals whatever is still active, so the rest of the run (live
//!   mode's quiet window, the simulator's settle phase) sees a whole cluster.
//!
//! Two things only the executing side knows are asked for: the current leader
//! ([`Fault::at_leader`], for `isolate_leader` / `crash_leader`), and whether an injection worked
//! ([`Schedule::report`] after every [`Action::Inject`]): the nodes it crashed or paused, or that
//! nothing happened (then a random fault's next gap starts at once).

use crate::scenario::{FaultKind, FaultKnobs, TimelineFault};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One step of the schedule: at `at_ms` (since the start of the run), do `action`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at_ms: u64,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Inject this fault, then [`Schedule::report`] what happened.
    Inject(Fault),
    /// `kind` does not apply now, for `reason` (record it as a `skipped` fault).
    Skip { kind: FaultKind, reason: String },
    /// Undo one earlier fault.
    Heal(Heal),
    /// Undo every fault: the network, these crashed and paused nodes, clock skews, loss and
    /// latency (back to the cluster's base `latency_ms`).
    HealAll(HealAll),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealAll {
    pub crashed: Vec<u64>,
    pub paused: Vec<u64>,
    pub skewed: Vec<u64>,
    /// Nodes whose disk is stalled.
    pub stalled: Vec<u64>,
    pub latency_ms: (u64, u64),
    /// Every member, for the `heal_all` record.
    pub nodes: Vec<u64>,
}

/// A fault with every target drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// `side` cut from `rest`, both ways.
    Partition {
        kind: FaultKind,
        side: Vec<u64>,
        rest: Vec<u64>,
    },
    /// `left` and `right` cut from each other both ways; `bridge` still talks to both (any
    /// earlier cut is healed first).
    Bridge {
        bridge: u64,
        left: Vec<u64>,
        right: Vec<u64>,
    },
    /// `from` cannot send to `to`.
    OneWay {
        from: Vec<u64>,
        to: Vec<u64>,
    },
    /// Kill these nodes, each tearing its unsynced disk tail or not.
    Crash {
        kind: FaultKind,
        nodes: Vec<(u64, bool)>,
    },
    /// Stop these nodes (SIGSTOP-like) without losing anything: `pause`, `pause_leader` or
    /// `pause_follower`.
    Pause {
        kind: FaultKind,
        nodes: Vec<u64>,
    },
    PacketLoss {
        rate: f64,
    },
    Latency {
        min_ms: u64,
        max_ms: u64,
    },
    ClockSkew {
        node: u64,
        skew_ms: i64,
    },
    /// Stall this node's disk: no fsync completes until [`Heal::ReleaseDisk`]
    /// (`disk_stall_leader`).
    DiskStall {
        kind: FaultKind,
        node: u64,
    },
    /// `isolate_leader`, `crash_leader`, `pause_leader` or `disk_stall_leader`: aimed at the node the cluster names as
    /// leader when the step runs ([`Fault::at_leader`]), if it is running, else at `fallback`
    /// (drawn from the running nodes). `pause_follower`: aimed at `fallback` unless that is the
    /// leader, then at the next running node after it.
    AtLeader {
        kind: FaultKind,
        running: Vec<u64>,
        fallback: u64,
        /// For a crash.
        torn: bool,
        members: Vec<u64>,
    },
}

/// How one fault is undone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heal {
    /// Heal every cut link.
    Network,
    Restart(Vec<u64>),
    Resume(Vec<u64>),
    PacketLoss,
    /// Back to the cluster's base latency.
    Latency {
        min_ms: u64,
        max_ms: u64,
    },
    ClockSkew(u64),
    /// Let this node's disk complete fsyncs again.
    ReleaseDisk(u64),
}

/// What the executing side reports after an [`Action::Inject`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Injected; `nodes` are the nodes a crash or pause actually took down, or whose disk a
    /// stall stopped (ignored for other faults).
    Injected { nodes: Vec<u64> },
    /// Nothing was injected (the side recorded why).
    NotInjected,
}

/// One `fault` record: `Recorder::fault(kind, nodes, detail)`. Both nemeses record through these,
/// so simulated and live histories have the same shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRecord {
    pub kind: &'static str,
    pub nodes: Vec<u64>,
    pub detail: Value,
}

impl FaultRecord {
    fn new(kind: &'static str, nodes: &[u64], detail: Value) -> FaultRecord {
        FaultRecord {
            kind,
            nodes: nodes.to_vec(),
            detail,
        }
    }

    pub fn skipped(kind: FaultKind, reason: &str) -> FaultRecord {
        FaultRecord::new(
            "skipped",
            &[],
            json!({ "fault": kind.name(), "reason": reason }),
        )
    }
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition { kind, .. } | Fault::Crash { kind, .. } => *kind,
            Fault::AtLeader { kind, .. } => *kind,
            Fault::Bridge { .. } => FaultKind::Bridge,
            Fault::OneWay { .. } => FaultKind::OneWay,
            Fault::Pause { kind, .. } | Fault::DiskStall { kind, .. } => *kind,
            Fault::PacketLoss { .. } => FaultKind::PacketLoss,
            Fault::Latency { .. } => FaultKind::Latency,
            Fault::ClockSkew { .. } => FaultKind::ClockSkew,
        }
    }

    /// An [`Fault::AtLeader`] aimed at `leader` (the node the cluster names now, if any): the
    /// partition of that node alone, or its crash. Any other fault is returned unchanged.
    pub fn at_leader(self, leader: Option<u64>) -> Fault {
        let Fault::AtLeader {
            kind,
            running,
            fallback,
            torn,
            members,
        } = self
        else {
            return self;
        };
        let leader = leader.filter(|leader| running.contains(leader));
        let node = match kind {
            // `running` holds at least two nodes (`plan` skips otherwise): one is not the leader.
            FaultKind::PauseFollower if leader == Some(fallback) => {
                let at = running.iter().position(|n| *n == fallback).unwrap_or(0);
                running[(at + 1) % running.len()]
            }
            FaultKind::PauseFollower => fallback,
            _ => leader.unwrap_or(fallback),
        };
        assert!(
            running.contains(&node),
            "an aimed fault hits a running node"
        );
        match kind {
            FaultKind::CrashLeader => Fault::Crash {
                kind,
                nodes: vec![(node, torn)],
            },
            FaultKind::PauseLeader | FaultKind::PauseFollower => Fault::Pause {
                kind,
                nodes: vec![node],
            },
            FaultKind::DiskStallLeader => Fault::DiskStall { kind, node },
            _ => Fault::Partition {
                kind,
                side: vec![node],
                rest: others(&members, &[node]),
            },
        }
    }

    /// The records of this fault, injected as it stands (a side that injected part of it
    /// records the part: e.g. a crash of the nodes it killed).
    pub fn records(&self) -> Vec<FaultRecord> {
        let kind = self.kind();
        let name = kind.name();
        match self {
            Fault::Partition { side, rest, .. } => vec![FaultRecord::new(
                "partition",
                side,
                json!({ "fault": name, "groups": [rest, side] }),
            )],
            Fault::Bridge {
                bridge,
                left,
                right,
            } => vec![FaultRecord::new(
                "partition",
                &[*bridge],
                json!({ "fault": name, "groups": [left, right], "bridge": bridge }),
            )],
            Fault::OneWay { from, to } => vec![FaultRecord::new(
                "partition_one_way",
                from,
                json!({ "fault": name, "from": from, "to": to }),
            )],
            Fault::Crash { nodes, .. } => nodes
                .iter()
                .map(|(node, torn)| {
                    FaultRecord::new("crash", &[*node], json!({ "fault": name, "torn": torn }))
                })
                .collect(),
            Fault::Pause { nodes, .. } => {
                vec![FaultRecord::new("pause", nodes, json!({ "fault": name }))]
            }
            Fault::PacketLoss { rate } => vec![FaultRecord::new(
                "packet_loss",
                &[],
                json!({ "fault": name, "rate": rate }),
            )],
            Fault::Latency { min_ms, max_ms } => vec![FaultRecord::new(
                "latency",
                &[],
                json!({ "fault": name, "min_ms": min_ms, "max_ms": max_ms }),
            )],
            Fault::ClockSkew { node, skew_ms } => vec![FaultRecord::new(
                "clock_skew",
                &[*node],
                json!({ "fault": name, "skew_ms": skew_ms }),
            )],
            Fault::DiskStall { node, .. } => vec![FaultRecord::new(
                "disk_stall",
                &[*node],
                json!({ "fault": name }),
            )],
            Fault::AtLeader { .. } => panic!("aim an AtLeader fault first (Fault::at_leader)"),
        }
    }
}

impl Heal {
    /// The records of this heal, done as it stands.
    pub fn records(&self) -> Vec<FaultRecord> {
        let each = |kind, nodes: &[u64]| {
            nodes
                .iter()
                .map(|node| FaultRecord::new(kind, &[*node], Value::Null))
                .collect()
        };
        match self {
            Heal::Network => vec![FaultRecord::new("heal", &[], Value::Null)],
            Heal::Restart(nodes) => each("restart", nodes),
            Heal::Resume(nodes) => each("resume", nodes),
            Heal::PacketLoss => vec![FaultRecord::new("packet_loss", &[], json!({ "rate": 0.0 }))],
            Heal::Latency { min_ms, max_ms } => vec![FaultRecord::new(
                "latency",
                &[],
                json!({ "min_ms": min_ms, "max_ms": max_ms }),
            )],
            Heal::ClockSkew(node) => vec![FaultRecord::new(
                "clock_skew",
                &[*node],
                json!({ "skew_ms": 0 }),
            )],
            Heal::ReleaseDisk(node) => {
                vec![FaultRecord::new("disk_release", &[*node], Value::Null)]
            }
        }
    }
}

impl HealAll {
    /// The closing `heal_all` record (the per-node `restart` / `resume` records come first).
    pub fn record(&self) -> FaultRecord {
        FaultRecord::new("heal_all", &self.nodes, Value::Null)
    }
}

/// What a timeline entry may pin; a random fault pins nothing.
#[derive(Clone, Debug, Default)]
struct Pinned {
    nodes: Vec<u64>,
    torn: Option<bool>,
    rate: Option<f64>,
    latency_ms: Option<u64>,
    skew_ms: Option<i64>,
}

impl From<&TimelineFault> for Pinned {
    fn from(fault: &TimelineFault) -> Self {
        Pinned {
            nodes: fault.nodes.clone(),
            torn: fault.torn,
            rate: fault.rate,
            latency_ms: fault.latency_ms,
            skew_ms: fault.skew_ms,
        }
    }
}

enum Plan {
    Inject(Fault),
    Skip(String),
    HealAll,
}

/// A heal waiting for its time.
#[derive(Clone, Debug)]
struct PendingHeal {
    at_ms: u64,
    sequence: u64,
    heal: Heal,
    /// It ends the random fault: the next random gap starts when it runs.
    ends_random: bool,
}

/// The inject step waiting for its [`Outcome`].
#[derive(Clone, Debug)]
struct Awaiting {
    at_ms: u64,
    fault: Fault,
    heal_after_ms: Option<u64>,
    random: bool,
}

/// The fault schedule of one run (see the module doc). Call [`Schedule::next_step`] until it
/// returns `None`, and [`Schedule::report`] after every [`Action::Inject`].
pub struct Schedule {
    knobs: FaultKnobs,
    nodes: Vec<u64>,
    latency_base_ms: (u64, u64),
    faults_end_ms: u64,
    rng: StdRng,
    /// Kinds the executing side cannot inject, with why.
    unsupported: BTreeMap<FaultKind, String>,
    /// The random draw: positive weights of supported kinds.
    weights: Vec<(FaultKind, u32)>,
    timeline: VecDeque<TimelineFault>,
    random_at_ms: Option<u64>,
    heals: Vec<PendingHeal>,
    sequence: u64,
    crashed: BTreeSet<u64>,
    paused: BTreeSet<u64>,
    skewed: BTreeSet<u64>,
    stalled: BTreeSet<u64>,
    awaiting: Option<Awaiting>,
    finished: bool,
}

impl Schedule {
    /// The schedule of `knobs` over `nodes` until `faults_end_ms`, drawn from `seed`.
    /// `latency_base_ms` is the cluster's normal one-way latency range (a latency spike starts at
    /// its minimum; healing returns to it); `unsupported` says why the executing side cannot
    /// inject a kind, or `None` if it can.
    pub fn new(
        knobs: &FaultKnobs,
        nodes: Vec<u64>,
        latency_base_ms: (u64, u64),
        faults_end_ms: u64,
        seed: u64,
        unsupported: &dyn Fn(FaultKind) -> Option<String>,
    ) -> Schedule {
        let unsupported: BTreeMap<FaultKind, String> = FaultKind::ALL
            .into_iter()
            .filter_map(|kind| unsupported(kind).map(|why| (kind, why)))
            .collect();
        let weights: Vec<(FaultKind, u32)> = knobs
            .weights
            .weights()
            .into_iter()
            .filter(|(kind, weight)| *weight > 0 && !unsupported.contains_key(kind))
            .collect();
        let mut timeline: Vec<TimelineFault> = knobs.timeline.clone();
        // Stable: entries with equal times keep their file order.
        timeline.sort_by_key(|fault| fault.at_ms);
        let mut schedule = Schedule {
            knobs: knobs.clone(),
            nodes,
            latency_base_ms,
            faults_end_ms,
            rng: StdRng::seed_from_u64(seed),
            unsupported,
            weights,
            timeline: timeline.into(),
            random_at_ms: None,
            heals: Vec::new(),
            sequence: 0,
            crashed: BTreeSet::new(),
            paused: BTreeSet::new(),
            skewed: BTreeSet::new(),
            stalled: BTreeSet::new(),
            awaiting: None,
            finished: false,
        };
        if schedule.knobs.interval_ms > 0 && !schedule.weights.is_empty() {
            schedule.random_at_ms = Some(schedule.knobs.start_ms + schedule.gap_ms());
        }
        schedule
    }

    /// Kinds with a positive weight that the random draw leaves out because the executing side
    /// cannot inject them, with why (`not injected: <kind>: <why>` in a run's summary).
    pub fn not_drawn(&self) -> Vec<(FaultKind, String)> {
        self.knobs
            .weights
            .weights()
            .into_iter()
            .filter(|(_, weight)| *weight > 0)
            .filter_map(|(kind, _)| Some((kind, self.unsupported.get(&kind)?.clone())))
            .collect()
    }

    /// When the fault window ends (the final [`Action::HealAll`]).
    pub fn faults_end_ms(&self) -> u64 {
        self.faults_end_ms
    }

    /// The next step, `None` after the final heal-all.
    ///
    /// # Panics
    /// If the previous step was an [`Action::Inject`] whose outcome was not reported.
    pub fn next_step(&mut self) -> Option<Step> {
        assert!(
            self.awaiting.is_none(),
            "Schedule::report the outcome of an inject step before asking for the next step"
        );
        if self.finished {
            return None;
        }
        loop {
            self.heals
                .sort_by_key(|pending| (pending.at_ms, pending.sequence));
            let heal_at = self.heals.first().map(|pending| pending.at_ms);
            let timeline_at = self.timeline.front().map(|fault| fault.at_ms);
            let next_ms = [heal_at, timeline_at, self.random_at_ms]
                .into_iter()
                .flatten()
                .min()
                .filter(|next_ms| *next_ms < self.faults_end_ms);
            let Some(at_ms) = next_ms else {
                self.finished = true;
                if self.unsupported.contains_key(&FaultKind::HealAll) {
                    return None;
                }
                let action = Action::HealAll(self.heal_all());
                return Some(Step {
                    at_ms: self.faults_end_ms,
                    action,
                });
            };
            let step = |action| Some(Step { at_ms, action });
            if heal_at == Some(at_ms) {
                let pending = self.heals.remove(0);
                if pending.ends_random {
                    self.random_at_ms = Some(at_ms + self.gap_ms());
                }
                if let Some(heal) = self.heal_now(pending.heal) {
                    return step(Action::Heal(heal));
                }
            } else if timeline_at == Some(at_ms) {
                let fault = self.timeline.pop_front().expect("peeked");
                let plan = match self.unsupported.get(&fault.kind) {
                    Some(why) => Plan::Skip(why.clone()),
                    None => self.plan(fault.kind, &Pinned::from(&fault)),
                };
                return step(self.act(at_ms, fault.kind, plan, fault.duration_ms, false));
            } else {
                assert_eq!(
                    self.random_at_ms,
                    Some(at_ms),
                    "schedule: the step is the timeline's or the random fault's"
                );
                let kind = self.draw_kind();
                let duration_ms = self
                    .rng
                    .gen_range(self.knobs.duration_min_ms..=self.knobs.duration_max_ms);
                let plan = self.plan(kind, &Pinned::default());
                self.random_at_ms = None;
                return step(self.act(at_ms, kind, plan, Some(duration_ms), true));
            }
        }
    }

    /// What the last [`Action::Inject`] did.
    ///
    /// # Panics
    /// If the last step was not an inject step, or was reported already.
    pub fn report(&mut self, outcome: Outcome) {
        let awaiting = self
            .awaiting
            .take()
            .expect("Schedule::report follows an inject step");
        let nodes = match outcome {
            Outcome::Injected { nodes } => nodes,
            Outcome::NotInjected => {
                if awaiting.random {
                    self.random_at_ms = Some(awaiting.at_ms + self.gap_ms());
                }
                return;
            }
        };
        let heal = match &awaiting.fault {
            Fault::Partition { .. } | Fault::Bridge { .. } | Fault::OneWay { .. } => Heal::Network,
            Fault::AtLeader {
                kind: FaultKind::IsolateLeader,
                ..
            } => Heal::Network,
            Fault::AtLeader {
                kind: FaultKind::PauseLeader | FaultKind::PauseFollower,
                ..
            }
            | Fault::Pause { .. } => {
                self.paused.extend(nodes.iter().copied());
                Heal::Resume(nodes)
            }
            Fault::AtLeader {
                kind: FaultKind::DiskStallLeader,
                ..
            }
            | Fault::DiskStall { .. } => {
                let [node] = nodes[..] else {
                    panic!("schedule: a disk stall reports its one node, got {nodes:?}");
                };
                self.stalled.insert(node);
                Heal::ReleaseDisk(node)
            }
            Fault::Crash { .. } | Fault::AtLeader { .. } => {
                for node in &nodes {
                    self.crashed.insert(*node);
                    self.paused.remove(node);
                }
                Heal::Restart(nodes)
            }
            Fault::PacketLoss { .. } => Heal::PacketLoss,
            Fault::Latency { .. } => Heal::Latency {
                min_ms: self.latency_base_ms.0,
                max_ms: self.latency_base_ms.1,
            },
            Fault::ClockSkew { node, .. } => {
                self.skewed.insert(*node);
                Heal::ClockSkew(*node)
            }
        };
        match awaiting.heal_after_ms {
            Some(after_ms) => {
                self.sequence += 1;
                self.heals.push(PendingHeal {
                    at_ms: awaiting.at_ms + after_ms,
                    sequence: self.sequence,
                    heal,
                    ends_random: awaiting.random,
                });
            }
            // A timeline fault without a duration lasts until the end; a random one always has
            // a duration.
            None => assert!(
                !awaiting.random,
                "schedule: a random fault always has a duration"
            ),
        }
    }

    /// The step for `plan`; an inject step waits for its outcome.
    fn act(
        &mut self,
        at_ms: u64,
        kind: FaultKind,
        plan: Plan,
        heal_after_ms: Option<u64>,
        random: bool,
    ) -> Action {
        match plan {
            Plan::Inject(fault) => {
                self.awaiting = Some(Awaiting {
                    at_ms,
                    fault: fault.clone(),
                    heal_after_ms,
                    random,
                });
                Action::Inject(fault)
            }
            Plan::Skip(reason) => {
                if random {
                    self.random_at_ms = Some(at_ms + self.gap_ms());
                }
                Action::Skip { kind, reason }
            }
            Plan::HealAll => Action::HealAll(self.heal_all()),
        }
    }

    /// `heal` as it applies now: restarts, resumes and clock resets only of nodes still down or
    /// skewed (a heal-all may have come first); `None` if nothing is left to do.
    fn heal_now(&mut self, heal: Heal) -> Option<Heal> {
        let heal = match heal {
            Heal::Restart(nodes) => Heal::Restart(
                nodes
                    .into_iter()
                    .filter(|n| self.crashed.remove(n))
                    .collect(),
            ),
            Heal::Resume(nodes) => Heal::Resume(
                nodes
                    .into_iter()
                    .filter(|n| self.paused.remove(n))
                    .collect(),
            ),
            Heal::ClockSkew(node) if !self.skewed.remove(&node) => return None,
            Heal::ReleaseDisk(node) if !self.stalled.remove(&node) => return None,
            other => other,
        };
        match &heal {
            Heal::Restart(nodes) | Heal::Resume(nodes) if nodes.is_empty() => None,
            _ => Some(heal),
        }
    }

    fn heal_all(&mut self) -> HealAll {
        HealAll {
            crashed: std::mem::take(&mut self.crashed).into_iter().collect(),
            paused: std::mem::take(&mut self.paused).into_iter().collect(),
            skewed: std::mem::take(&mut self.skewed).into_iter().collect(),
            stalled: std::mem::take(&mut self.stalled).into_iter().collect(),
            latency_ms: self.latency_base_ms,
            nodes: self.nodes.clone(),
        }
    }

    /// An exponential gap with mean `interval_ms` (faults as a Poisson process), at least 1 ms.
    fn gap_ms(&mut self) -> u64 {
        let uniform: f64 = self.rng.gen_range(f64::EPSILON..=1.0);
        ((-uniform.ln()) * self.knobs.interval_ms as f64).max(1.0) as u64
    }

    fn draw_kind(&mut self) -> FaultKind {
        let total: u64 = self
            .weights
            .iter()
            .map(|(_, weight)| u64::from(*weight))
            .sum();
        let mut pick = self.rng.gen_range(0..total);
        for (kind, weight) in &self.weights {
            if pick < u64::from(*weight) {
                return *kind;
            }
            pick -= u64::from(*weight);
        }
        unreachable!("pick < total")
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

    fn unavailable(&self) -> BTreeSet<u64> {
        self.crashed.union(&self.paused).copied().collect()
    }

    fn partition(&self, kind: FaultKind, side: Vec<u64>) -> Plan {
        if side.is_empty() || side.len() >= self.nodes.len() {
            return Plan::Skip("a partition needs nodes on both sides".into());
        }
        Plan::Inject(Fault::Partition {
            kind,
            rest: others(&self.nodes, &side),
            side,
        })
    }

    /// `kind` with its targets drawn (or pinned), or why it does not apply now.
    fn plan(&mut self, kind: FaultKind, pinned: &Pinned) -> Plan {
        let n = self.nodes.len();
        let skip = |reason: &str| Plan::Skip(reason.to_string());
        match kind {
            FaultKind::PartitionRandom => {
                let side = if pinned.nodes.is_empty() {
                    if n < 3 {
                        return skip("needs at least 3 nodes");
                    }
                    let mut shuffled = self.nodes.clone();
                    shuffled.shuffle(&mut self.rng);
                    let minority = self.rng.gen_range(1..=(n - 1) / 2);
                    let mut side = shuffled[..minority].to_vec();
                    side.sort_unstable();
                    side
                } else {
                    pinned.nodes.clone()
                };
                self.partition(kind, side)
            }
            FaultKind::IsolateOne => match pinned.nodes.first().copied() {
                Some(node) => self.partition(kind, vec![node]),
                None => match self.random_node(&BTreeSet::new()) {
                    Some(node) => self.partition(kind, vec![node]),
                    None => skip("no node"),
                },
            },
            FaultKind::IsolateLeader
            | FaultKind::CrashLeader
            | FaultKind::PauseLeader
            | FaultKind::PauseFollower
            | FaultKind::DiskStallLeader => {
                if kind == FaultKind::CrashLeader {
                    if let Some(node) = pinned.nodes.first() {
                        return self.crash(kind, vec![*node], pinned.torn);
                    }
                }
                let unavailable = self.unavailable();
                let Some(fallback) = self.random_node(&unavailable) else {
                    return skip("every node is down");
                };
                if kind == FaultKind::IsolateLeader && n < 2 {
                    return skip("a partition needs nodes on both sides");
                }
                if kind == FaultKind::PauseFollower && n - unavailable.len() < 2 {
                    return skip("no running follower to pause");
                }
                let torn = kind == FaultKind::CrashLeader && self.torn(pinned.torn);
                Plan::Inject(Fault::AtLeader {
                    kind,
                    running: others(&self.nodes, &unavailable.into_iter().collect::<Vec<_>>()),
                    fallback,
                    torn,
                    members: self.nodes.clone(),
                })
            }
            FaultKind::Bridge => {
                if n < 3 {
                    return skip("needs at least 3 nodes");
                }
                let bridge = match pinned.nodes.first() {
                    Some(node) => *node,
                    None => self.nodes[self.rng.gen_range(0..n)],
                };
                let mut rest = others(&self.nodes, &[bridge]);
                rest.shuffle(&mut self.rng);
                let (left, right) = rest.split_at(rest.len() / 2);
                let (mut left, mut right) = (left.to_vec(), right.to_vec());
                left.sort_unstable();
                right.sort_unstable();
                Plan::Inject(Fault::Bridge {
                    bridge,
                    left,
                    right,
                })
            }
            FaultKind::OneWay => {
                let from = if pinned.nodes.is_empty() {
                    match self.random_node(&BTreeSet::new()) {
                        Some(node) => vec![node],
                        None => return skip("no node"),
                    }
                } else {
                    pinned.nodes.clone()
                };
                let to = others(&self.nodes, &from);
                if to.is_empty() {
                    return skip("needs nodes on both sides");
                }
                Plan::Inject(Fault::OneWay { from, to })
            }
            FaultKind::CrashOne => {
                let node = match pinned.nodes.first() {
                    Some(node) => Some(*node),
                    None => {
                        let crashed = self.crashed.clone();
                        self.random_node(&crashed)
                    }
                };
                match node {
                    Some(node) => self.crash(kind, vec![node], pinned.torn),
                    None => skip("every node is down"),
                }
            }
            FaultKind::CrashMajority => {
                let nodes = if pinned.nodes.is_empty() {
                    let mut shuffled = self.nodes.clone();
                    shuffled.shuffle(&mut self.rng);
                    let mut majority = shuffled[..n / 2 + 1].to_vec();
                    majority.sort_unstable();
                    majority
                } else {
                    pinned.nodes.clone()
                };
                self.crash(kind, nodes, pinned.torn)
            }
            FaultKind::CrashAll => {
                let nodes = self.nodes.clone();
                self.crash(kind, nodes, pinned.torn)
            }
            FaultKind::Pause => {
                // Only running nodes can be paused: a crashed or already paused one is left alone.
                let unavailable = self.unavailable();
                let nodes: Vec<u64> = if pinned.nodes.is_empty() {
                    self.random_node(&unavailable).into_iter().collect()
                } else {
                    others(&pinned.nodes, &unavailable.into_iter().collect::<Vec<_>>())
                };
                if nodes.is_empty() {
                    return skip("no running node to pause");
                }
                Plan::Inject(Fault::Pause { kind, nodes })
            }
            FaultKind::PacketLoss => Plan::Inject(Fault::PacketLoss {
                rate: pinned.rate.unwrap_or(self.knobs.packet_loss_rate),
            }),
            FaultKind::Latency => {
                let min_ms = self.latency_base_ms.0;
                let max_ms = pinned
                    .latency_ms
                    .unwrap_or(self.knobs.latency_spike_ms)
                    .max(min_ms);
                Plan::Inject(Fault::Latency { min_ms, max_ms })
            }
            FaultKind::ClockSkew => {
                let node = match pinned.nodes.first() {
                    Some(node) => *node,
                    None => match self.random_node(&BTreeSet::new()) {
                        Some(node) => node,
                        None => return skip("no node"),
                    },
                };
                let max = self.knobs.clock_skew_ms_max;
                let skew_ms = match pinned.skew_ms {
                    Some(skew_ms) => skew_ms,
                    None => self.rng.gen_range(-max..=max),
                };
                Plan::Inject(Fault::ClockSkew { node, skew_ms })
            }
            FaultKind::HealAll => Plan::HealAll,
        }
    }

    fn torn(&mut self, pinned: Option<bool>) -> bool {
        match pinned {
            Some(torn) => torn,
            None => self.rng.gen_bool(self.knobs.torn_probability),
        }
    }

    /// A crash of the `nodes` not already down.
    fn crash(&mut self, kind: FaultKind, nodes: Vec<u64>, torn: Option<bool>) -> Plan {
        let mut targets = Vec::new();
        for node in nodes {
            if !self.crashed.contains(&node) && !targets.iter().any(|(n, _)| *n == node) {
                let torn = self.torn(torn);
                targets.push((node, torn));
            }
        }
        if targets.is_empty() {
            return Plan::Skip("the target nodes are already down".into());
        }
        Plan::Inject(Fault::Crash {
            kind,
            nodes: targets,
        })
    }
}

/// The members of `all` not in `nodes`, in `all`'s order.
fn others(all: &[u64], nodes: &[u64]) -> Vec<u64> {
    all.iter()
        .copied()
        .filter(|id| !nodes.contains(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::FaultWeights;

    /// Runs the schedule to its end as a side that injects everything as drawn (and names no
    /// leader), returning every step.
    fn steps(schedule: &mut Schedule) -> Vec<Step> {
        let mut steps = Vec::new();
        while let Some(step) = schedule.next_step() {
            if let Action::Inject(fault) = &step.action {
                let nodes = match fault.clone().at_leader(None) {
                    Fault::Crash { nodes, .. } => nodes.iter().map(|(n, _)| *n).collect(),
                    Fault::Pause { nodes, .. } => nodes,
                    Fault::DiskStall { node, .. } => vec![node],
                    _ => Vec::new(),
                };
                schedule.report(Outcome::Injected { nodes });
            }
            steps.push(step);
        }
        steps
    }

    fn knobs() -> FaultKnobs {
        FaultKnobs {
            interval_ms: 1_000,
            start_ms: 500,
            duration_min_ms: 200,
            duration_max_ms: 3_000,
            ..FaultKnobs::default()
        }
    }

    fn schedule(knobs: &FaultKnobs, end_ms: u64, seed: u64) -> Schedule {
        Schedule::new(knobs, vec![1, 2, 3, 4, 5], (1, 5), end_ms, seed, &|_| None)
    }

    fn timeline(
        at_ms: u64,
        kind: FaultKind,
        nodes: Vec<u64>,
        duration_ms: Option<u64>,
    ) -> TimelineFault {
        TimelineFault {
            at_ms,
            kind,
            nodes,
            duration_ms,
            torn: None,
            rate: None,
            latency_ms: None,
            skew_ms: None,
        }
    }

    #[test]
    fn same_seed_same_schedule_other_seeds_differ() {
        let knobs = knobs();
        let a = steps(&mut schedule(&knobs, 60_000, 7));
        let b = steps(&mut schedule(&knobs, 60_000, 7));
        let c = steps(&mut schedule(&knobs, 60_000, 8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            a.len() > 20,
            "a minute of faults every second: {} steps",
            a.len()
        );
        assert!(
            a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
            "in time order"
        );
    }

    #[test]
    fn nothing_is_injected_in_the_quiet_window_and_the_last_step_heals_all() {
        let knobs = FaultKnobs {
            duration_min_ms: 5_000,
            duration_max_ms: 9_000,
            timeline: vec![
                timeline(9_999, FaultKind::CrashOne, vec![2], Some(60_000)),
                timeline(10_000, FaultKind::CrashOne, vec![3], None),
            ],
            ..knobs()
        };
        for seed in 0..20 {
            let all = steps(&mut schedule(&knobs, 10_000, seed));
            let (last, rest) = all.split_last().expect("at least the final heal-all");
            assert_eq!(last.at_ms, 10_000);
            let Action::HealAll(heal_all) = &last.action else {
                panic!("the last step heals all: {last:?}");
            };
            assert!(
                heal_all.crashed.contains(&2),
                "the long crash is healed by the final heal-all"
            );
            assert!(
                rest.iter().all(|step| step.at_ms < 10_000),
                "seed {seed}: {rest:?}"
            );
        }
    }

    #[test]
    fn timeline_faults_apply_at_their_time_and_skip_rules_hold() {
        let knobs = FaultKnobs {
            interval_ms: 0,
            timeline: vec![
                timeline(1_000, FaultKind::CrashOne, vec![2], Some(1_000)),
                timeline(1_500, FaultKind::CrashMajority, vec![2], None),
                timeline(1_500, FaultKind::Pause, vec![2], None),
                timeline(2_000, FaultKind::IsolateOne, vec![1], Some(500)),
                timeline(3_000, FaultKind::PartitionRandom, vec![1, 2, 3, 4, 5], None),
            ],
            ..knobs()
        };
        let all = steps(&mut schedule(&knobs, 10_000, 1));
        let summary: Vec<(u64, String)> = all
            .iter()
            .map(|step| {
                let what = match &step.action {
                    Action::Inject(fault) => format!("inject {}", fault.kind().name()),
                    Action::Skip { kind, reason } => format!("skip {}: {reason}", kind.name()),
                    Action::Heal(heal) => format!("heal {heal:?}"),
                    Action::HealAll(_) => "heal_all".to_string(),
                };
                (step.at_ms, what)
            })
            .collect();
        let expected = [
            (1_000, "inject crash_one"),
            (
                1_500,
                "skip crash_majority: the target nodes are already down",
            ),
            (1_500, "skip pause: no running node to pause"),
            (2_000, "heal Restart([2])"),
            (2_000, "inject isolate_one"),
            (2_500, "heal Network"),
            (
                3_000,
                "skip partition_random: a partition needs nodes on both sides",
            ),
            (10_000, "heal_all"),
        ];
        let expected: Vec<(u64, String)> = expected
            .iter()
            .map(|(at, what)| (*at, what.to_string()))
            .collect();
        assert_eq!(summary, expected);
    }

    #[test]
    fn unsupported_kinds_are_not_drawn_and_skipped_on_the_timeline() {
        let knobs = FaultKnobs {
            weights: FaultWeights {
                packet_loss: 5,
                crash_one: 1,
                ..FaultWeights::default()
            },
            timeline: vec![timeline(700, FaultKind::PacketLoss, vec![], Some(100))],
            ..knobs()
        };
        let unsupported = |kind| (kind == FaultKind::PacketLoss).then(|| "no netem".to_string());
        let mut schedule = Schedule::new(&knobs, vec![1, 2, 3], (1, 5), 30_000, 3, &unsupported);
        assert_eq!(
            schedule.not_drawn(),
            vec![(FaultKind::PacketLoss, "no netem".to_string())]
        );
        let all = steps(&mut schedule);
        assert!(all.contains(&Step {
            at_ms: 700,
            action: Action::Skip {
                kind: FaultKind::PacketLoss,
                reason: "no netem".into()
            }
        }));
        assert!(all.iter().all(|step| !matches!(
            &step.action,
            Action::Inject(fault) if fault.kind() == FaultKind::PacketLoss
        )));
    }

    #[test]
    fn random_faults_never_overlap_and_a_failed_injection_draws_the_next_gap_at_once() {
        let knobs = knobs();
        let mut schedule = schedule(&knobs, 60_000, 11);
        let mut active_random = false;
        let mut injected = 0;
        while let Some(step) = schedule.next_step() {
            match &step.action {
                Action::Inject(_) => {
                    assert!(!active_random, "random faults overlap at {}", step.at_ms);
                    injected += 1;
                    // Every other injection fails: the schedule must not wait for a heal.
                    if injected % 2 == 0 {
                        schedule.report(Outcome::NotInjected);
                    } else {
                        active_random = true;
                        schedule.report(Outcome::Injected { nodes: vec![1] });
                    }
                }
                Action::Heal(_) => active_random = false,
                _ => {}
            }
        }
        assert!(injected > 20, "{injected}");
    }

    #[test]
    fn aimed_pauses_hit_the_leader_or_a_follower_and_resume_it() {
        let knobs = FaultKnobs {
            interval_ms: 0,
            timeline: vec![
                timeline(1_000, FaultKind::PauseLeader, vec![], Some(500)),
                timeline(2_000, FaultKind::PauseFollower, vec![], Some(500)),
            ],
            ..knobs()
        };
        for seed in 0..30 {
            for leader in 1..=5 {
                let mut schedule = schedule(&knobs, 10_000, seed);
                let mut paused = Vec::new();
                let mut resumed = Vec::new();
                while let Some(step) = schedule.next_step() {
                    match step.action {
                        Action::Inject(fault) => {
                            let Fault::Pause { kind, nodes } = fault.at_leader(Some(leader)) else {
                                panic!("an aimed pause stays a pause");
                            };
                            paused.push((kind, nodes.clone()));
                            schedule.report(Outcome::Injected { nodes });
                        }
                        Action::Heal(Heal::Resume(nodes)) => resumed.extend(nodes),
                        _ => {}
                    }
                }
                let [(FaultKind::PauseLeader, at_leader), (FaultKind::PauseFollower, follower)] =
                    &paused[..]
                else {
                    panic!("seed {seed}: {paused:?}");
                };
                assert_eq!(at_leader, &vec![leader], "seed {seed}");
                assert_eq!(follower.len(), 1, "seed {seed}");
                assert_ne!(
                    follower[0], leader,
                    "seed {seed}: a follower, not the leader"
                );
                assert_eq!(resumed, vec![leader, follower[0]], "seed {seed}");
            }
        }
        // With the leader unknown, a leader pause still pauses one running node.
        let mut schedule = schedule(&knobs, 10_000, 1);
        let step = schedule.next_step().expect("the first fault");
        let Action::Inject(fault) = step.action else {
            panic!("{step:?}");
        };
        assert!(matches!(fault.at_leader(None), Fault::Pause { nodes, .. } if nodes.len() == 1));
    }

    #[test]
    fn an_aimed_disk_stall_hits_the_leader_and_is_released_by_its_heal_or_the_heal_all() {
        let knobs = FaultKnobs {
            interval_ms: 0,
            timeline: vec![
                timeline(1_000, FaultKind::DiskStallLeader, vec![], Some(500)),
                // No duration: it lasts until the closing heal-all.
                timeline(3_000, FaultKind::DiskStallLeader, vec![], None),
            ],
            ..knobs()
        };
        for leader in 1..=5 {
            let mut schedule = schedule(&knobs, 10_000, 7);
            let (mut stalled, mut released, mut healed_all) = (Vec::new(), Vec::new(), Vec::new());
            while let Some(step) = schedule.next_step() {
                match step.action {
                    Action::Inject(fault) => {
                        let aimed = fault.at_leader(Some(leader));
                        let Fault::DiskStall { node, .. } = aimed else {
                            panic!("an aimed disk stall stays a disk stall: {aimed:?}");
                        };
                        assert_eq!(aimed.records()[0].kind, "disk_stall");
                        stalled.push(node);
                        schedule.report(Outcome::Injected { nodes: vec![node] });
                    }
                    Action::Heal(Heal::ReleaseDisk(node)) => released.push(node),
                    Action::HealAll(all) => healed_all = all.stalled,
                    _ => {}
                }
            }
            assert_eq!(stalled, vec![leader, leader]);
            assert_eq!(released, vec![leader], "the first one's own heal");
            assert_eq!(healed_all, vec![leader], "the second one's heal-all");
        }
    }
}
