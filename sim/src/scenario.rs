//! Scenario files: what cluster to build, what the clients do, which faults the nemesis injects.
//!
//! A scenario is TOML (documented knob by knob in `scenarios/README.md`). Every section and every
//! knob has a default, so an empty file is the default scenario. Unknown keys are errors (a typo
//! must not silently become a default), and every validation error names the file, the field,
//! the value and what is allowed, e.g. `scenarios/x.toml:3: cluster.nodes = 4: expected one of
//! 1, 3, 5, 7`.

use crate::client::Balancer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A parsed and validated scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free text shown in reports.
    #[serde(default)]
    pub description: String,
    /// The store under test, by target name (`kvsim targets` lists them); `--target` overrides it.
    #[serde(default = "default_target")]
    pub target: String,
    #[serde(default)]
    pub cluster: ClusterKnobs,
    #[serde(default)]
    pub workload: WorkloadKnobs,
    #[serde(default)]
    pub faults: FaultKnobs,
    /// Planted bugs to switch on, by name (see `crate::bugs`): `stale_read = true`.
    #[serde(default)]
    pub bugs: BTreeMap<String, bool>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            description: String::new(),
            target: default_target(),
            cluster: ClusterKnobs::default(),
            workload: WorkloadKnobs::default(),
            faults: FaultKnobs::default(),
            bugs: BTreeMap::new(),
        }
    }
}

fn default_target() -> String {
    crate::targets::DEFAULT.to_string()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterKnobs {
    /// Number of Raft members: 1, 3, 5 or 7.
    pub nodes: usize,
    /// Simulated time between two Raft ticks.
    pub tick_ms: u64,
    /// Ticks without a heartbeat before a follower campaigns (raft-rs `election_tick`).
    pub election_tick: usize,
    /// Ticks between two leader heartbeats (raft-rs `heartbeat_tick`).
    pub heartbeat_tick: usize,
    /// Applied entries between two snapshots (and log compactions) on each node.
    pub snapshot_entries: u64,
    /// Simulated time one fsync takes.
    pub fsync_latency_ms: u64,
    /// One-way network latency, drawn uniformly in `[net_latency_min_ms, net_latency_max_ms]`.
    pub net_latency_min_ms: u64,
    pub net_latency_max_ms: u64,
}

impl Default for ClusterKnobs {
    fn default() -> Self {
        Self {
            nodes: 3,
            tick_ms: 100,
            election_tick: 10,
            heartbeat_tick: 2,
            snapshot_entries: 500,
            fsync_latency_ms: 1,
            net_latency_min_ms: 1,
            net_latency_max_ms: 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadKnobs {
    /// Concurrent client tasks issuing operations (one operation in flight each).
    pub clients: usize,
    /// Size of the key space (`k000`, `k001`, ...); prefixes group keys by all but the last digit.
    pub keys: usize,
    /// Simulated time the clients run before the final heal-and-settle phase.
    pub duration_ms: u64,
    /// Per-RPC timeout; a write that times out has an unknown outcome.
    pub request_timeout_ms: u64,
    /// Attempts per operation on `NotLeader` / `Unavailable` replies before giving up (`fail`).
    pub attempts_max: u32,
    /// Pause after a `NotLeader`-without-hint or `Unavailable` reply before the next attempt.
    pub retry_backoff_ms: u64,
    /// Which member gets each operation's first attempt: `round_robin` (etcd clientv3: the next
    /// endpoint in turn) or `leader` (the member that answered last).
    pub balancer: Balancer,
    /// Each client sleeps a uniform `[0, think_ms_max]` between two operations.
    pub think_ms_max: u64,
    /// TTL of the leases clients grant.
    pub lease_ttl_s: i64,
    /// Historic reads go back uniformly up to this many revisions from the last one seen.
    pub historic_depth_revisions: i64,
    /// Compactions target a revision this many revisions behind the last one seen.
    pub compact_depth_revisions: i64,
    /// Relative weights of the operation kinds.
    pub mix: OpMix,
    /// Probability that a client sends a put, delete or txn again after it ended `unknown` (an
    /// application retrying on a timeout; `workload::retry_of`).
    pub retry_unknown_probability: f64,
    /// Watcher tasks (each follows one key or prefix on a watch stream).
    pub watchers: usize,
    /// How often a member sends a progress notification on a caught-up stream that had nothing
    /// else to send (etcd's `--experimental-watch-progress-notify-interval`, for watches created
    /// with `progress_notify`). `watch_wait_ms` is its name from when watches were polls.
    #[serde(alias = "watch_wait_ms")]
    pub watch_progress_notify_ms: u64,
    /// Probability that a watcher asks for a progress notification (etcd's `RequestProgress`)
    /// after its stream opens and after each response.
    pub watch_progress_request_probability: f64,
    /// Probability that a watcher drops its stream after a response and resumes from last
    /// revision + 1.
    pub watch_reconnect_probability: f64,
    /// Probability that a watch starts from a past revision instead of the current one.
    pub watch_from_past_probability: f64,
    /// Lock recipe tasks competing for one lease-based lock (`crate::recipes`).
    pub lockers: usize,
    /// Leader election recipe tasks campaigning on one election key.
    pub campaigners: usize,
    /// How long a locker keeps the lock (its critical section) before releasing it.
    pub lock_hold_ms: u64,
    /// How long an elected campaigner leads before resigning.
    pub leader_term_ms: u64,
    /// Probability that a recipe task stalls (a paused client process) before a step.
    pub recipe_stall_probability: f64,
    /// A stall lasts uniformly `[1, recipe_stall_ms_max]`; 0 = recipe tasks never stall.
    pub recipe_stall_ms_max: u64,
}

impl Default for WorkloadKnobs {
    fn default() -> Self {
        Self {
            clients: 8,
            keys: 16,
            duration_ms: 20_000,
            request_timeout_ms: 1_000,
            attempts_max: 6,
            retry_backoff_ms: 100,
            balancer: Balancer::RoundRobin,
            think_ms_max: 20,
            lease_ttl_s: 3,
            historic_depth_revisions: 10,
            compact_depth_revisions: 20,
            mix: OpMix::default(),
            watchers: 2,
            retry_unknown_probability: 0.0,
            watch_progress_notify_ms: 500,
            watch_progress_request_probability: 0.2,
            watch_reconnect_probability: 0.05,
            watch_from_past_probability: 0.3,
            lockers: 0,
            campaigners: 0,
            lock_hold_ms: 1_500,
            leader_term_ms: 2_000,
            recipe_stall_probability: 0.0,
            recipe_stall_ms_max: 0,
        }
    }
}

/// The operation mix (`[workload.mix]`) is the model's drawer's: one vocabulary of operation
/// kinds for scenarios, the drawer and the capability fit.
pub use kvsim_model::mvcc::gen::{OpKind, OpMix};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultKnobs {
    /// Mean simulated time between two random faults (exponential gaps); 0 = no random faults.
    pub interval_ms: u64,
    /// No random fault starts before this time.
    pub start_ms: u64,
    /// A random fault lasts uniformly `[duration_min_ms, duration_max_ms]` before it is healed.
    pub duration_min_ms: u64,
    pub duration_max_ms: u64,
    /// Relative weights of random fault kinds.
    pub weights: FaultWeights,
    /// Probability that a crash also tears the unsynced tail of the disk (keeps a random prefix).
    pub torn_probability: f64,
    /// Message loss rate during a packet-loss burst.
    pub packet_loss_rate: f64,
    /// Upper bound of the one-way latency during a latency spike.
    pub latency_spike_ms: u64,
    /// Clock skew faults shift a node's lessor clock by up to this much, either way.
    pub clock_skew_ms_max: i64,
    /// After the workload: heal everything and let the cluster settle this long before reading
    /// the final state of every node.
    pub settle_ms: u64,
    /// Explicit faults at fixed times, in addition to the random ones.
    pub timeline: Vec<TimelineFault>,
}

impl Default for FaultKnobs {
    fn default() -> Self {
        Self {
            interval_ms: 4_000,
            start_ms: 2_000,
            duration_min_ms: 1_000,
            duration_max_ms: 4_000,
            weights: FaultWeights::default(),
            torn_probability: 0.5,
            packet_loss_rate: 0.2,
            latency_spike_ms: 300,
            clock_skew_ms_max: 1_000,
            settle_ms: 5_000,
            timeline: Vec::new(),
        }
    }
}

/// Relative weights of the random fault kinds; 0 disables a kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultWeights {
    pub partition_random: u32,
    pub isolate_leader: u32,
    pub isolate_one: u32,
    pub bridge: u32,
    pub one_way: u32,
    pub crash_one: u32,
    pub crash_leader: u32,
    pub crash_majority: u32,
    pub pause: u32,
    /// Aimed at a leader that resumes believing it still leads (etcd#15247: its lessor revokes
    /// leases the new leader renewed).
    pub pause_leader: u32,
    pub pause_follower: u32,
    /// Aimed at a leader whose disk stops completing fsyncs: its Raft loop blocks, the others
    /// elect a new leader, and it serves what it serves outside Raft (etcd#15247's lease renewals).
    pub disk_stall_leader: u32,
    /// A power loss of the whole cluster: every member crashes at once, each losing what it had
    /// not synced, and all restart at the heal. The fault that shows a store's acknowledged
    /// writes were never durable: no surviving replica still holds them.
    pub crash_all: u32,
    pub packet_loss: u32,
    pub latency: u32,
    pub clock_skew: u32,
}

impl Default for FaultWeights {
    fn default() -> Self {
        Self {
            partition_random: 3,
            isolate_leader: 3,
            isolate_one: 2,
            bridge: 1,
            one_way: 1,
            crash_one: 2,
            crash_leader: 2,
            crash_majority: 1,
            pause: 2,
            pause_leader: 0,
            pause_follower: 0,
            disk_stall_leader: 0,
            crash_all: 0,
            packet_loss: 1,
            latency: 1,
            clock_skew: 1,
        }
    }
}

impl FaultWeights {
    pub fn weights(&self) -> [(FaultKind, u32); 16] {
        [
            (FaultKind::PartitionRandom, self.partition_random),
            (FaultKind::IsolateLeader, self.isolate_leader),
            (FaultKind::IsolateOne, self.isolate_one),
            (FaultKind::Bridge, self.bridge),
            (FaultKind::OneWay, self.one_way),
            (FaultKind::CrashOne, self.crash_one),
            (FaultKind::CrashLeader, self.crash_leader),
            (FaultKind::CrashMajority, self.crash_majority),
            (FaultKind::Pause, self.pause),
            (FaultKind::PacketLoss, self.packet_loss),
            (FaultKind::Latency, self.latency),
            (FaultKind::ClockSkew, self.clock_skew),
            // Last, so that weights of 0 leave every earlier draw as it was.
            (FaultKind::PauseLeader, self.pause_leader),
            (FaultKind::PauseFollower, self.pause_follower),
            (FaultKind::DiskStallLeader, self.disk_stall_leader),
            (FaultKind::CrashAll, self.crash_all),
        ]
    }
}

/// What a fault does. Random faults pick their targets themselves; timeline faults may name them
/// (`nodes`, 1-based ids), and the kinds that need targets fall back to random ones if they don't.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A random majority / minority split (`nodes` = the minority, if given).
    PartitionRandom,
    /// The current leader alone on one side.
    IsolateLeader,
    /// One node (`nodes[0]` or random) alone on one side.
    IsolateOne,
    /// Two halves that cannot talk to each other but both talk to one bridge node (`nodes[0]`).
    Bridge,
    /// `nodes` (or one random node) cannot send to the others; they can still send to it.
    OneWay,
    /// Kill one node (`nodes[0]` or random), losing its unsynced writes; restart it at the end.
    CrashOne,
    /// Kill the current leader.
    CrashLeader,
    /// Kill a majority at once (`nodes`, or random).
    CrashMajority,
    /// Kill every member at once (a power loss of the whole cluster); all restart at the heal.
    CrashAll,
    /// Pause (SIGSTOP-like) `nodes` or one random node.
    Pause,
    /// Pause the current leader: it resumes believing it still leads, until it hears the new
    /// term (aimed at etcd#15247, fixed in 3.4.31 / 3.5.13: its lessor revokes leases the new
    /// leader renewed, and it renews and answers time-to-live from a stale lessor).
    PauseLeader,
    /// Pause one running node that is not the leader.
    PauseFollower,
    /// Stall the current leader's disk: no fsync completes until the heal (see
    /// `target::DiskStall`).
    DiskStallLeader,
    /// Drop messages at `rate` (or `faults.packet_loss_rate`).
    PacketLoss,
    /// Raise one-way latency up to `latency_ms` (or `faults.latency_spike_ms`).
    Latency,
    /// Shift the lessor clock of `nodes[0]` (or a random node) by `skew_ms` (or a random amount).
    ClockSkew,
    /// Heal everything now: network, restart crashed nodes, resume paused ones, reset clocks.
    HealAll,
}

impl FaultKind {
    pub const ALL: [FaultKind; 17] = [
        FaultKind::PartitionRandom,
        FaultKind::IsolateLeader,
        FaultKind::IsolateOne,
        FaultKind::Bridge,
        FaultKind::OneWay,
        FaultKind::CrashOne,
        FaultKind::CrashLeader,
        FaultKind::CrashMajority,
        FaultKind::CrashAll,
        FaultKind::Pause,
        FaultKind::PauseLeader,
        FaultKind::PauseFollower,
        FaultKind::DiskStallLeader,
        FaultKind::PacketLoss,
        FaultKind::Latency,
        FaultKind::ClockSkew,
        FaultKind::HealAll,
    ];

    /// The name used in scenario files and `fault` records.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::PartitionRandom => "partition_random",
            FaultKind::IsolateLeader => "isolate_leader",
            FaultKind::IsolateOne => "isolate_one",
            FaultKind::Bridge => "bridge",
            FaultKind::OneWay => "one_way",
            FaultKind::CrashOne => "crash_one",
            FaultKind::CrashLeader => "crash_leader",
            FaultKind::CrashMajority => "crash_majority",
            FaultKind::CrashAll => "crash_all",
            FaultKind::Pause => "pause",
            FaultKind::PauseLeader => "pause_leader",
            FaultKind::PauseFollower => "pause_follower",
            FaultKind::DiskStallLeader => "disk_stall_leader",
            FaultKind::PacketLoss => "packet_loss",
            FaultKind::Latency => "latency",
            FaultKind::ClockSkew => "clock_skew",
            FaultKind::HealAll => "heal_all",
        }
    }
}

/// One explicit fault: `[[faults.timeline]]` with `at_ms`, `kind` and kind-specific fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineFault {
    /// Simulated time since the start of the run.
    pub at_ms: u64,
    pub kind: FaultKind,
    /// Target nodes (1-based); empty = chosen at random (or the leader, for `*_leader`).
    #[serde(default)]
    pub nodes: Vec<u64>,
    /// How long until this fault is healed; absent = until the end of the workload.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Crashes: tear the unsynced tail; absent = drawn with `faults.torn_probability`.
    #[serde(default)]
    pub torn: Option<bool>,
    /// `packet_loss`: loss rate in `[0, 1)`.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `latency`: upper bound of the one-way latency.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// `clock_skew`: signed shift of the lessor clock.
    #[serde(default)]
    pub skew_ms: Option<i64>,
}

/// A scenario file that could not be read, parsed or validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| ScenarioError {
            file: file.clone(),
            line: None,
            message: format!("cannot read: {error}"),
        })?;
        let source = std::str::from_utf8(&bytes).map_err(|error| {
            let valid = &bytes[..error.valid_up_to()];
            ScenarioError {
                file: file.clone(),
                line: Some(valid.iter().filter(|&&byte| byte == b'\n').count() + 1),
                message: format!(
                    "invalid UTF-8 at byte {}: expected a UTF-8 TOML file",
                    error.valid_up_to()
                ),
            }
        })?;
        Scenario::parse(&file, source)
    }

    /// Parses and validates scenario text; `file` only names it in errors.
    pub fn parse(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(source).map_err(|error| {
            let line = error.span().map(|span| line_of_offset(source, span.start));
            let message = error.message().trim_end().to_string();
            // toml's error names the line but not the field; the field is the key on that line
            // in its table (scenarios/README.md promises file, line and field).
            let message = match line.and_then(|line| field_at_line(source, line)) {
                Some(field) if !message.contains(&field) => format!("{field}: {message}"),
                _ => message,
            };
            ScenarioError {
                file: file.to_string(),
                line,
                message,
            }
        })?;
        scenario.validate().map_err(|invalid| ScenarioError {
            file: file.to_string(),
            line: locate(source, &invalid.field),
            message: format!(
                "{} = {}: {}",
                invalid.field, invalid.value, invalid.expected
            ),
        })?;
        Ok(scenario)
    }

    /// An upper estimate of the operations one seed records: every client and recipe task issues
    /// one operation per think time plus a round trip (two client hops and a Raft round, each at
    /// most the mean of the latency range, and one fsync), over the whole workload. Measured on
    /// the default knobs it is about 1.3× what a run records (30 against 23 ops per client-second).
    pub fn ops_estimate(&self) -> u64 {
        let w = &self.workload;
        let c = &self.cluster;
        let latency_ms = (c.net_latency_min_ms + c.net_latency_max_ms) / 2;
        let op_ms = (w.think_ms_max / 2 + 4 * latency_ms + c.fsync_latency_ms).max(1);
        let tasks = (w.clients + w.lockers + w.campaigners + w.watchers) as u64;
        tasks.saturating_mul(w.duration_ms) / op_ms
    }

    /// The planted bugs switched on. Names were checked by [`Scenario::validate`].
    pub fn bugs(&self) -> Result<crate::bugs::Bugs, String> {
        let mut bugs = crate::bugs::Bugs::default();
        for (name, on) in &self.bugs {
            if *on {
                bugs.enable(crate::bugs::Bug::parse(name)?);
            }
        }
        Ok(bugs)
    }

    /// What the simulation draws from once [`Scenario::validate`] passed, asserted (O(1)) by the
    /// runner: a `validate` that let a bad value through fails here, naming the invariant,
    /// instead of as an empty random range or a division by zero deep in a run.
    pub fn assert_validated(&self) {
        let (c, w, f) = (&self.cluster, &self.workload, &self.faults);
        assert!(
            [1, 3, 5, 7].contains(&c.nodes),
            "validated scenario: cluster.nodes is 1, 3, 5 or 7"
        );
        assert!(
            c.tick_ms >= 1 && c.heartbeat_tick >= 1 && c.election_tick > c.heartbeat_tick,
            "validated scenario: ticks are positive and election_tick > heartbeat_tick"
        );
        assert!(
            c.net_latency_min_ms <= c.net_latency_max_ms,
            "validated scenario: the latency range is not empty"
        );
        assert!(
            f.duration_min_ms <= f.duration_max_ms,
            "validated scenario: the random fault duration range is not empty"
        );
        assert!(
            w.attempts_max >= 1,
            "validated scenario: an operation is attempted at least once"
        );
    }

    /// Checks every value against its allowed range. The first violation is reported.
    pub fn validate(&self) -> Result<(), Invalid> {
        let c = &self.cluster;
        check(
            [1, 3, 5, 7].contains(&c.nodes),
            "cluster.nodes",
            c.nodes,
            "expected one of 1, 3, 5, 7",
        )?;
        check(
            (1..=10_000).contains(&c.tick_ms),
            "cluster.tick_ms",
            c.tick_ms,
            "expected 1..=10000",
        )?;
        check(
            (1..=1_000).contains(&c.heartbeat_tick),
            "cluster.heartbeat_tick",
            c.heartbeat_tick,
            "expected 1..=1000",
        )?;
        check(
            c.election_tick > c.heartbeat_tick && c.election_tick <= 10_000,
            "cluster.election_tick",
            c.election_tick,
            "expected greater than cluster.heartbeat_tick and at most 10000",
        )?;
        check(
            (10..=1_000_000).contains(&c.snapshot_entries),
            "cluster.snapshot_entries",
            c.snapshot_entries,
            "expected 10..=1000000",
        )?;
        check(
            c.fsync_latency_ms <= 10_000,
            "cluster.fsync_latency_ms",
            c.fsync_latency_ms,
            "expected 0..=10000",
        )?;
        check(
            c.net_latency_max_ms <= 10_000,
            "cluster.net_latency_max_ms",
            c.net_latency_max_ms,
            "expected 0..=10000",
        )?;
        check(
            c.net_latency_min_ms <= c.net_latency_max_ms,
            "cluster.net_latency_min_ms",
            c.net_latency_min_ms,
            "expected at most cluster.net_latency_max_ms",
        )?;

        let w = &self.workload;
        check(
            (1..=256).contains(&w.clients),
            "workload.clients",
            w.clients,
            "expected 1..=256",
        )?;
        check(
            (1..=1_000).contains(&w.keys),
            "workload.keys",
            w.keys,
            "expected 1..=1000",
        )?;
        check(
            (1..=86_400_000).contains(&w.duration_ms),
            "workload.duration_ms",
            w.duration_ms,
            "expected 1..=86400000 (one simulated day)",
        )?;
        check(
            (10..=600_000).contains(&w.request_timeout_ms),
            "workload.request_timeout_ms",
            w.request_timeout_ms,
            "expected 10..=600000",
        )?;
        check(
            (1..=100).contains(&w.attempts_max),
            "workload.attempts_max",
            w.attempts_max,
            "expected 1..=100",
        )?;
        check(
            (1..=60_000).contains(&w.retry_backoff_ms),
            "workload.retry_backoff_ms",
            w.retry_backoff_ms,
            "expected 1..=60000",
        )?;
        check(
            w.think_ms_max <= 600_000,
            "workload.think_ms_max",
            w.think_ms_max,
            "expected 0..=600000",
        )?;
        check(
            (1..=3_600).contains(&w.lease_ttl_s),
            "workload.lease_ttl_s",
            w.lease_ttl_s,
            "expected 1..=3600",
        )?;
        check(
            (1..=1_000_000).contains(&w.historic_depth_revisions),
            "workload.historic_depth_revisions",
            w.historic_depth_revisions,
            "expected 1..=1000000",
        )?;
        check(
            (1..=1_000_000).contains(&w.compact_depth_revisions),
            "workload.compact_depth_revisions",
            w.compact_depth_revisions,
            "expected 1..=1000000",
        )?;
        let mix_total: u64 = w
            .mix
            .weights()
            .iter()
            .map(|(_, weight)| u64::from(*weight))
            .sum();
        check(
            mix_total > 0,
            "workload.mix",
            "all 0",
            "expected at least one weight above 0",
        )?;
        for (kind, weight) in w.mix.weights() {
            check(
                weight <= 1_000_000,
                &format!("workload.mix.{}", kind.name()),
                weight,
                "expected 0..=1000000",
            )?;
        }
        check(
            w.watchers <= 64,
            "workload.watchers",
            w.watchers,
            "expected 0..=64",
        )?;
        check(
            (1..=600_000).contains(&w.watch_progress_notify_ms),
            "workload.watch_progress_notify_ms",
            w.watch_progress_notify_ms,
            "expected 1..=600000",
        )?;
        check_probability(
            "workload.retry_unknown_probability",
            w.retry_unknown_probability,
        )?;
        check_probability(
            "workload.watch_progress_request_probability",
            w.watch_progress_request_probability,
        )?;
        check_probability(
            "workload.watch_reconnect_probability",
            w.watch_reconnect_probability,
        )?;
        check_probability(
            "workload.watch_from_past_probability",
            w.watch_from_past_probability,
        )?;
        check(
            w.lockers <= 16,
            "workload.lockers",
            w.lockers,
            "expected 0..=16",
        )?;
        check(
            w.campaigners <= 16,
            "workload.campaigners",
            w.campaigners,
            "expected 0..=16",
        )?;
        check(
            (1..=600_000).contains(&w.lock_hold_ms),
            "workload.lock_hold_ms",
            w.lock_hold_ms,
            "expected 1..=600000",
        )?;
        check(
            (1..=600_000).contains(&w.leader_term_ms),
            "workload.leader_term_ms",
            w.leader_term_ms,
            "expected 1..=600000",
        )?;
        check_probability(
            "workload.recipe_stall_probability",
            w.recipe_stall_probability,
        )?;
        // Stalls stay well inside the runner's 60 s of slack in its simulated time limit.
        check(
            w.recipe_stall_ms_max <= 20_000,
            "workload.recipe_stall_ms_max",
            w.recipe_stall_ms_max,
            "expected 0..=20000",
        )?;

        let f = &self.faults;
        check(
            f.interval_ms <= 86_400_000,
            "faults.interval_ms",
            f.interval_ms,
            "expected 0..=86400000",
        )?;
        check(
            (1..=86_400_000).contains(&f.duration_max_ms),
            "faults.duration_max_ms",
            f.duration_max_ms,
            "expected 1..=86400000",
        )?;
        check(
            f.duration_min_ms <= f.duration_max_ms,
            "faults.duration_min_ms",
            f.duration_min_ms,
            "expected at most faults.duration_max_ms",
        )?;
        let fault_total: u64 = f
            .weights
            .weights()
            .iter()
            .map(|(_, weight)| u64::from(*weight))
            .sum();
        check(
            f.interval_ms == 0 || fault_total > 0,
            "faults.weights",
            "all 0",
            "expected at least one weight above 0 when faults.interval_ms > 0",
        )?;
        check_probability("faults.torn_probability", f.torn_probability)?;
        check(
            (0.0..1.0).contains(&f.packet_loss_rate),
            "faults.packet_loss_rate",
            f.packet_loss_rate,
            "expected 0 <= rate < 1",
        )?;
        check(
            f.latency_spike_ms <= 60_000,
            "faults.latency_spike_ms",
            f.latency_spike_ms,
            "expected 0..=60000",
        )?;
        check(
            (0..=3_600_000).contains(&f.clock_skew_ms_max),
            "faults.clock_skew_ms_max",
            f.clock_skew_ms_max,
            "expected 0..=3600000",
        )?;
        check(
            f.settle_ms <= 3_600_000,
            "faults.settle_ms",
            f.settle_ms,
            "expected 0..=3600000",
        )?;
        for (index, fault) in f.timeline.iter().enumerate() {
            self.validate_timeline_fault(index, fault)?;
        }

        for name in self.bugs.keys() {
            if crate::bugs::Bug::parse(name).is_err() {
                let known: Vec<&str> = crate::bugs::Bug::ALL
                    .iter()
                    .map(|bug| bug.as_str())
                    .collect();
                let expected = format!("unknown bug; expected one of {}", known.join(", "));
                check(false, &format!("bugs.{name}"), "true", &expected)?;
            }
        }
        let target = crate::targets::by_name(&self.target).map_err(|error| Invalid {
            field: "target".into(),
            value: format!("{:?}", self.target),
            expected: error,
        })?;
        crate::fit::fit(self, target)?;
        Ok(())
    }

    fn validate_timeline_fault(&self, index: usize, fault: &TimelineFault) -> Result<(), Invalid> {
        let at = |field: &str| format!("faults.timeline[{index}].{field}");
        let nodes = self.cluster.nodes as u64;
        check(
            fault.at_ms <= self.workload.duration_ms,
            &at("at_ms"),
            fault.at_ms,
            "expected at most workload.duration_ms",
        )?;
        for node in &fault.nodes {
            check(
                (1..=nodes).contains(node),
                &at("nodes"),
                node,
                &format!("expected node ids in 1..={nodes}"),
            )?;
        }
        let mut sorted = fault.nodes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        check(
            sorted.len() == fault.nodes.len(),
            &at("nodes"),
            format!("{:?}", fault.nodes),
            "expected distinct ids",
        )?;
        check(
            sorted.len() < self.cluster.nodes
                || fault.nodes.is_empty()
                || fault.kind == FaultKind::Pause,
            &at("nodes"),
            format!("{:?}", fault.nodes),
            "expected fewer nodes than the cluster has",
        )?;
        let needs_three = matches!(
            fault.kind,
            FaultKind::Bridge | FaultKind::PartitionRandom | FaultKind::CrashMajority
        );
        check(
            !needs_three || nodes >= 3,
            &at("kind"),
            fault.kind.name(),
            "expected a cluster of at least 3 nodes for this kind",
        )?;
        if let Some(duration_ms) = fault.duration_ms {
            check(
                duration_ms >= 1,
                &at("duration_ms"),
                duration_ms,
                "expected at least 1",
            )?;
        }
        if let Some(rate) = fault.rate {
            check(
                fault.kind == FaultKind::PacketLoss,
                &at("rate"),
                rate,
                "only allowed with kind = \"packet_loss\"",
            )?;
            check(
                (0.0..1.0).contains(&rate),
                &at("rate"),
                rate,
                "expected 0 <= rate < 1",
            )?;
        }
        if let Some(latency_ms) = fault.latency_ms {
            check(
                fault.kind == FaultKind::Latency,
                &at("latency_ms"),
                latency_ms,
                "only allowed with kind = \"latency\"",
            )?;
            check(
                latency_ms <= 60_000,
                &at("latency_ms"),
                latency_ms,
                "expected 0..=60000",
            )?;
        }
        if let Some(skew_ms) = fault.skew_ms {
            check(
                fault.kind == FaultKind::ClockSkew,
                &at("skew_ms"),
                skew_ms,
                "only allowed with kind = \"clock_skew\"",
            )?;
            check(
                // unsigned_abs: `i64::MIN.abs()` overflows (a panic in debug, a negative value
                // that passes the check in release).
                skew_ms.unsigned_abs() <= 3_600_000,
                &at("skew_ms"),
                skew_ms,
                "expected -3600000..=3600000",
            )?;
        }
        if let Some(torn) = fault.torn {
            let crash = matches!(
                fault.kind,
                FaultKind::CrashOne
                    | FaultKind::CrashLeader
                    | FaultKind::CrashMajority
                    | FaultKind::CrashAll
            );
            check(crash, &at("torn"), torn, "only allowed with a crash kind")?;
        }
        if matches!(
            fault.kind,
            FaultKind::PauseLeader | FaultKind::PauseFollower | FaultKind::DiskStallLeader
        ) {
            check(
                fault.nodes.is_empty(),
                &at("nodes"),
                format!("{:?}", fault.nodes),
                "expected none: the target is the leader (or a follower) when the fault runs",
            )?;
        }
        if fault.kind == FaultKind::CrashAll {
            check(
                fault.nodes.is_empty(),
                &at("nodes"),
                format!("{:?}", fault.nodes),
                "expected none: the fault crashes every member",
            )?;
        }
        if fault.kind == FaultKind::CrashMajority && !fault.nodes.is_empty() {
            check(
                fault.nodes.len() > self.cluster.nodes / 2,
                &at("nodes"),
                format!("{:?}", fault.nodes),
                "expected a majority of the cluster",
            )?;
        }
        Ok(())
    }
}

/// A value outside its allowed range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted path, e.g. `cluster.nodes` or `faults.timeline[2].nodes`.
    pub field: String,
    pub value: String,
    pub expected: String,
}

fn check(ok: bool, field: &str, value: impl fmt::Display, expected: &str) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(Invalid {
            field: field.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        })
    }
}

fn check_probability(field: &str, value: f64) -> Result<(), Invalid> {
    check(
        (0.0..=1.0).contains(&value),
        field,
        value,
        "expected a probability in 0..=1",
    )
}

fn line_of_offset(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source.as_bytes()[..offset]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

/// The dotted field (`workload.clients`, `faults.timeline[1].kind`) whose `key = value` is on
/// 1-based `line`, if that line holds one.
fn field_at_line(source: &str, line: usize) -> Option<String> {
    let text = source.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = text.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let mut table: Option<String> = None;
    let mut arrays_seen: BTreeMap<String, usize> = BTreeMap::new();
    for raw in source.lines().take(line - 1) {
        let raw = raw.trim();
        if let Some(name) = raw.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            let name = name.trim().to_string();
            let index = arrays_seen.entry(name.clone()).or_insert(0);
            table = Some(format!("{name}[{index}]"));
            *index += 1;
        } else if let Some(name) = raw.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = Some(name.trim().to_string());
        }
    }
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_string(),
    })
}

/// Best-effort line of `section.key` (or `faults.timeline[i].key`) in the source, for errors.
/// Plain line scanning: scenario files are simple tables, and a miss only drops the line number.
fn locate(source: &str, field: &str) -> Option<usize> {
    let (path, key) = field.rsplit_once('.').unwrap_or(("", field));
    let (table, wanted_index) = match path.split_once('[') {
        Some((table, rest)) => (table, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (path, None),
    };
    let mut current = String::new();
    let mut array_index: Option<usize> = None;
    let mut arrays_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut key_line = None;
    for (number, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            current = name.trim().to_string();
            let seen = arrays_seen.entry(current.clone()).or_insert(0);
            array_index = Some(*seen);
            *seen += 1;
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = name.trim().to_string();
            array_index = None;
            continue;
        }
        let in_place =
            current == table && wanted_index.is_none_or(|wanted| array_index == Some(wanted));
        let name = line.split('=').next().map(str::trim);
        if in_place && name == Some(key) {
            return Some(number + 1);
        }
        // A whole-table error such as `workload.mix`: point at the table header.
        if key_line.is_none() && current == field {
            key_line = Some(number);
        }
    }
    key_line
}
