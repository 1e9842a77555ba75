//! The differential test behind `kvsim conformance` (src/cmd_conformance.rs parses its
//! arguments and calls [`run`]). One seeded sequential workload that covers every
//! API feature runs against real etcd, against the simulated cluster (fault-free) and through the
//! model; the answers must be identical field by field. Real etcd is the referee: a difference
//! from the simulator is a simulator bug, a difference from the model is a model bug.
//!
//! The workload is a fixed script (every feature and every etcd error the model knows, at least
//! once) followed by `--ops` random operations from the model's operation drawer (`OpDrawer`), all derived
//! from the seed alone: the model answers while the workload is drawn, so the operations do not
//! depend on what etcd or the simulator say. It ends with watches from past revisions.

use anyhow::{bail, Context, Result};
use clap::Args;
use kvsim_checker::history::Outcome;
use kvsim_model::mvcc::gen::{DrawKnobs, OpDrawer};
use kvsim_model::mvcc::{
    prefix_end, Compare, CompareResult, CompareTarget, DeleteRangeRequest, EtcdError, MvccModel,
    Op, PutRequest, RangeRequest, RequestOp, Response, ResponseOp, Ret, TxnRequest, FROM_KEY,
    MAX_TXN_OPS,
};
use kvsim_sim::client::WatchEvent;
use kvsim_sim::sequential::{run_sequential, WatchProbe, WatchSeen};
use kvsim_sim::target::{Capabilities, Feature};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::exit::Exit;
use crate::live::etcd_process::EtcdCluster;
use crate::live::{ops, watch};
use crate::outln;

#[derive(Args)]
pub struct ConformanceArgs {
    /// Start a fresh etcd of N members on loopback for the test (removed afterwards). The test
    /// is sequential, so N is 1 (`--spawn` alone means `--spawn 1`, as before).
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "1",
        conflicts_with = "endpoints",
        required_unless_present = "endpoints"
    )]
    pub spawn: Option<usize>,
    /// Use an existing, EMPTY etcd (revision 1) at these client URLs (the first one is used).
    #[arg(long, value_delimiter = ',', value_name = "URL,...")]
    pub endpoints: Vec<String>,
    /// The etcd server binary for --spawn.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/etcd")]
    pub etcd_bin: PathBuf,
    /// Seeds the random part of the workload and the simulation.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Random operations after the fixed script.
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub ops: usize,
    /// Differences printed at most.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub differences_max: usize,
    /// The simulated store compared with etcd and the model (`raft-rs`, `openraft`).
    #[arg(long, value_name = "NAME", default_value = kvsim_sim::targets::DEFAULT)]
    pub target: String,
    /// Test hook: alter etcd's answer to this operation before comparing (proves the comparator
    /// reports it).
    #[arg(long, hide = true, value_name = "INDEX")]
    pub tamper: Option<usize>,
    #[command(flatten)]
    pub output: crate::cli::JsonArgs,
}

/// Per-request timeout against etcd: generous, a fresh loopback member answers in milliseconds.
const ETCD_TIMEOUT: Duration = Duration::from_secs(10);
/// Leases of the workload outlive the run by far: expiry runs on each server's own clock and is
/// not what this test compares.
const LEASE_TTL_S: i64 = 3_600;
/// The keys of the workload: single keys and one prefix (`d/`).
const KEYS: [&str; 7] = ["a", "b", "c", "d/1", "d/2", "d/3", "e"];

/// Runs the differential test `args` describe, printing what it compares and every difference.
pub fn run(args: &ConformanceArgs) -> Result<Exit> {
    args.output.apply();
    if let Some(members) = args.spawn.filter(|members| *members != 1) {
        bail!(
            "--spawn {members}: the conformance test is sequential and runs against one member; \
             use --spawn 1"
        );
    }
    let target = match kvsim_sim::targets::by_name(&args.target) {
        Ok(target) => target,
        Err(error) => {
            eprintln!("error: --target: {error}");
            return Ok(Exit::BadInput);
        }
    };
    let capabilities = target.capabilities();
    let lacks = capabilities.missing();
    let workload = Workload::for_capabilities(args.seed, args.ops, capabilities);
    if lacks.is_empty() {
        outln!("simulated target: {}", target.name());
    } else {
        let names: Vec<&str> = lacks.iter().map(|f| f.name()).collect();
        outln!(
            "simulated target: {} (lacks {}: {} operations needing it left out for all three)",
            target.name(),
            names.join(", "),
            workload.left_out
        );
    }
    outln!(
        "kvsim conformance --seed {} --ops {}: {} operations ({} scripted), {} watches",
        args.seed,
        args.ops,
        workload.ops.len(),
        workload.scripted,
        workload.probes.len()
    );
    let exercised = features(
        &workload.ops,
        &workload.model,
        &workload.probes,
        workload.compacted_revision,
    );
    // A feature of etcd's the target lacks is not a gap of this test, but it is not counted as
    // exercised either: the count is over what the target has, and the rest is named.
    let lacked: Vec<&str> = FEATURES
        .iter()
        .copied()
        .filter(|feature| feature_of_target_lacks(feature, &lacks))
        .collect();
    let missing: Vec<&str> = FEATURES
        .iter()
        .copied()
        .filter(|feature| !exercised.contains(feature) && !lacked.contains(feature))
        .collect();
    let applicable = FEATURES.len() - lacked.len();
    outln!(
        "features exercised: {}/{}{}{}",
        applicable - missing.len(),
        applicable,
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (missing: {})", missing.join(", "))
        },
        if lacked.is_empty() {
            String::new()
        } else {
            format!("; not tested, the target lacks them: {}", lacked.join(", "))
        }
    );

    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let mut etcd = runtime.block_on(run_etcd(args, &workload))?;
    outln!(
        "etcd: {} answers in {:.1} s",
        etcd.outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(index) = args.tamper {
        let Some(outcome) = etcd.outcomes.get_mut(index) else {
            bail!(
                "--tamper {index}: there are only {} operations",
                workload.ops.len()
            );
        };
        outln!("test hook: altering etcd's answer to op {index}");
        tamper(outcome);
    }

    let started = Instant::now();
    let sim = match run_sequential(&workload.ops, &workload.probes, args.seed, target) {
        Ok(sim) => sim,
        Err(panic) => {
            outln!("DIFFERENCE: the simulation panicked: {panic}");
            if args.output.json {
                crate::stdout::write_json(&serde_json::json!({
                    "command": "conformance",
                    "seed": args.seed,
                    "target": target.name(),
                    "status": "violation",
                    "exit": Exit::Violation.code(),
                    "panic": panic,
                }));
            }
            return Ok(Exit::Violation);
        }
    };
    outln!(
        "sim: {} answers in {:.1} s",
        sim.outcomes.len(),
        started.elapsed().as_secs_f64()
    );

    for (index, probe) in workload.probes.iter().enumerate() {
        outln!(
            "watch {index} (key {:?}, range_end {:?}, from revision {}): etcd {}, sim {}",
            probe.key,
            probe.range_end,
            probe.start_revision,
            seen_summary(etcd.watches.get(index)),
            seen_summary(sim.watches.get(index))
        );
    }
    let differences = compare_answers(&workload, &etcd.outcomes, &sim.outcomes);
    let watch_differences = compare_watches(&workload.probes, &etcd.watches, &sim.watches);
    let total = differences.len() + watch_differences.len();
    for difference in differences.iter().take(args.differences_max) {
        outln!("{difference}");
    }
    for difference in watch_differences
        .iter()
        .take(args.differences_max.saturating_sub(differences.len()))
    {
        outln!("{difference}");
    }
    let exit = if total == 0 {
        Exit::Ok
    } else {
        Exit::Violation
    };
    if args.output.json {
        let shown: Vec<String> = differences
            .iter()
            .map(ToString::to_string)
            .chain(watch_differences.iter().cloned())
            .take(args.differences_max)
            .collect();
        crate::stdout::write_json(&serde_json::json!({
            "command": "conformance",
            "seed": args.seed,
            "ops": workload.ops.len(),
            "scripted": workload.scripted,
            "watches": workload.probes.len(),
            "target": target.name(),
            "features": {
                "exercised": applicable - missing.len(),
                "applicable": applicable,
                "missing": missing,
                "not_tested_target_lacks": lacked,
            },
            "status": if total == 0 { "ok" } else { "violation" },
            "exit": exit.code(),
            "differences": total,
            "differences_in_operations": differences.len(),
            "differences_in_watches": watch_differences.len(),
            "differences_shown": shown,
        }));
    }
    if total == 0 {
        outln!(
            "identical: etcd, the simulated cluster and the model agree on all {} operations and {} watches",
            workload.ops.len(),
            workload.probes.len()
        );
        Ok(exit)
    } else {
        outln!(
            "{total} difference(s) ({} in operations, {} in watches); reproduce with: \
             kvsim conformance --spawn 1 --seed {} --ops {}",
            differences.len(),
            watch_differences.len(),
            args.seed,
            args.ops
        );
        Ok(exit)
    }
}

// ---- the workload ---------------------------------------------------------------------------------

/// The operations, the model's answers to them, and the watches to read at the end.
pub struct Workload {
    pub ops: Vec<Op>,
    /// The model's answer to each operation (it never fails: always a `Ret`).
    pub model: Vec<Ret>,
    /// How many leading operations are the fixed script.
    pub scripted: usize,
    pub probes: Vec<WatchProbe>,
    /// The model's compacted revision after the last operation.
    pub compacted_revision: i64,
    /// Operations the target could not serve, left out of the workload (0 on a full target).
    pub left_out: usize,
}

/// Draws operations while the model answers them, so later operations can aim at revisions,
/// values and leases that exist.
struct Builder {
    model: MvccModel,
    ops: Vec<Op>,
    answers: Vec<Ret>,
    values_drawn: u64,
    /// What the simulated target serves; an operation needing more is left out (for etcd, the
    /// target and the model alike, so the three still answer the same sequence).
    capabilities: Capabilities,
    left_out: usize,
}

impl Builder {
    /// Appends `op` with the model's answer, or leaves it out (`None`) if the target cannot serve it.
    fn push(&mut self, op: Op) -> Option<Ret> {
        if !needs(&op).iter().all(|f| f.present_in(&self.capabilities)) {
            self.left_out += 1;
            return None;
        }
        let ret = self.model.apply(&op);
        self.ops.push(op);
        self.answers.push(ret.clone());
        Some(ret)
    }

    fn value(&mut self) -> String {
        self.values_drawn += 1;
        format!("s{}", self.values_drawn)
    }

    fn put(&mut self, key: &str) -> PutRequest {
        PutRequest {
            key: key.to_string(),
            value: self.value(),
            ..Default::default()
        }
    }

    fn revision(&self) -> i64 {
        self.model.revision()
    }
}

/// The target features `op` needs beyond put / range / delete.
fn needs(op: &Op) -> Vec<Feature> {
    let mut features = Vec::new();
    match op {
        Op::Put(p) if p.lease != 0 => features.push(Feature::Leases),
        Op::Range(r) if r.serializable => features.push(Feature::SerializableReads),
        Op::Put(_) | Op::Range(_) | Op::DeleteRange(_) => {}
        Op::Txn(t) => txn_needs(t, &mut features),
        Op::LeaseGrant { .. }
        | Op::LeaseRevoke { .. }
        | Op::LeaseKeepAlive { .. }
        | Op::LeaseTimeToLive { .. }
        | Op::LeaseExpire { .. } => features.push(Feature::Leases),
        Op::Compact { .. } => features.push(Feature::Compaction),
    }
    features
}

fn txn_needs(t: &TxnRequest, features: &mut Vec<Feature>) {
    features.push(Feature::Txn);
    if t.compare
        .iter()
        .any(|c| matches!(c.target, CompareTarget::Lease(_)))
    {
        features.push(Feature::Leases);
    }
    for request in t.success.iter().chain(&t.failure) {
        match request {
            RequestOp::Put(p) if p.lease != 0 => features.push(Feature::Leases),
            RequestOp::Range(r) if r.serializable => features.push(Feature::SerializableReads),
            RequestOp::Txn(nested) => txn_needs(nested, features),
            RequestOp::Put(_) | RequestOp::Range(_) | RequestOp::DeleteRange(_) => {}
        }
    }
}

/// Whether the conformance feature named `feature` belongs to one of `lacks` (by its name).
fn feature_of_target_lacks(feature: &str, lacks: &[Feature]) -> bool {
    lacks.iter().any(|f| match f {
        Feature::Leases => feature.contains("lease"),
        Feature::Watch => feature.contains("watch"),
        Feature::Compaction => feature.contains("compact"),
        Feature::Txn => feature.contains("txn"),
        Feature::SerializableReads => feature.contains("serializable"),
    })
}

fn range(key: &str) -> RangeRequest {
    RangeRequest {
        key: key.to_string(),
        ..Default::default()
    }
}

fn prefix(prefix: &str) -> RangeRequest {
    RangeRequest {
        key: prefix.to_string(),
        range_end: prefix_end(prefix),
        ..Default::default()
    }
}

fn when(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare {
        key: key.to_string(),
        result,
        target,
    }
}

impl Workload {
    pub fn new(seed: u64, random_ops: usize) -> Workload {
        Workload::for_capabilities(seed, random_ops, Capabilities::ETCD)
    }

    /// The workload of `seed` without the operations (and watches) a target of `capabilities`
    /// cannot serve.
    pub fn for_capabilities(seed: u64, random_ops: usize, capabilities: Capabilities) -> Workload {
        let mut b = Builder {
            model: MvccModel::new(),
            ops: Vec::new(),
            answers: Vec::new(),
            values_drawn: 0,
            capabilities,
            left_out: 0,
        };
        script(&mut b);
        let scripted = b.ops.len();
        let mut rng = StdRng::seed_from_u64(seed);
        let knobs = DrawKnobs {
            lease_ttl_s: LEASE_TTL_S,
            ..DrawKnobs::over(&KEYS)
        };
        let mut gen = OpDrawer::new(1, knobs);
        for _ in 0..random_ops {
            let op = gen.next(&mut rng, 0);
            if let Some(ret) = b.push(op.clone()) {
                gen.observe(&op, &ret);
            }
        }
        let probes = if capabilities.watch {
            probes(&b.model)
        } else {
            Vec::new()
        };
        Workload {
            compacted_revision: b.model.compacted_revision(),
            ops: b.ops,
            model: b.answers,
            scripted,
            probes,
            left_out: b.left_out,
        }
    }
}

/// Every feature at least once, each etcd error the model knows included.
fn script(b: &mut Builder) {
    // Puts, prev_kv, a prefix of three keys.
    let put = b.put("a");
    b.push(Op::Put(put));
    let first_revision = b.revision();
    let mut put = b.put("a");
    put.prev_kv = true;
    b.push(Op::Put(put));
    for key in ["b", "d/1", "d/2", "d/3"] {
        let put = b.put(key);
        b.push(Op::Put(put));
    }
    // Ranges: single, prefix with a limit (more), count only, keys only, from key, historic,
    // future, serializable, empty key.
    b.push(Op::Range(range("a")));
    b.push(Op::Range(RangeRequest {
        limit: 2,
        ..prefix("d/")
    }));
    b.push(Op::Range(RangeRequest {
        count_only: true,
        ..prefix("d/")
    }));
    b.push(Op::Range(RangeRequest {
        keys_only: true,
        ..prefix("d/")
    }));
    b.push(Op::Range(RangeRequest {
        range_end: FROM_KEY.to_string(),
        ..range("b")
    }));
    b.push(Op::Range(RangeRequest {
        revision: first_revision,
        ..range("a")
    }));
    let future = b.revision() + 10;
    b.push(Op::Range(RangeRequest {
        revision: future,
        ..range("a")
    }));
    b.push(Op::Range(RangeRequest {
        serializable: true,
        ..prefix("d/")
    }));
    b.push(Op::Range(range("")));
    // Put flags: empty key, ignore_value (kept value, value provided, missing key).
    let put = b.put("");
    b.push(Op::Put(put));
    b.push(Op::Put(PutRequest {
        key: "a".into(),
        ignore_value: true,
        prev_kv: true,
        ..Default::default()
    }));
    let put = b.put("a");
    b.push(Op::Put(PutRequest {
        ignore_value: true,
        ..put
    }));
    b.push(Op::Put(PutRequest {
        key: "zz".into(),
        ignore_value: true,
        ..Default::default()
    }));
    // Leases: grant with a client-chosen id, duplicate id, minimum TTL, put with a lease,
    // ignore_lease, lease provided, unknown lease, keep-alive, time-to-live, revoke.
    let lease: i64 = 7_001;
    let short: i64 = 7_002;
    let missing: i64 = 7_999;
    b.push(Op::LeaseGrant {
        id: lease,
        ttl_s: LEASE_TTL_S,
    });
    b.push(Op::LeaseGrant {
        id: lease,
        ttl_s: LEASE_TTL_S,
    });
    // TTL 1 is raised to etcd's minimum; revoked at once so it never expires mid-run.
    b.push(Op::LeaseGrant {
        id: short,
        ttl_s: 1,
    });
    b.push(Op::LeaseRevoke { id: short });
    let put = b.put("e");
    b.push(Op::Put(PutRequest { lease, ..put }));
    let put = b.put("e");
    b.push(Op::Put(PutRequest {
        ignore_lease: true,
        prev_kv: true,
        ..put
    }));
    let put = b.put("e");
    b.push(Op::Put(PutRequest {
        ignore_lease: true,
        lease,
        ..put
    }));
    let put = b.put("c");
    b.push(Op::Put(PutRequest {
        lease: missing,
        ..put
    }));
    b.push(Op::LeaseKeepAlive { id: lease });
    b.push(Op::LeaseTimeToLive {
        id: lease,
        keys: true,
    });
    b.push(Op::LeaseTimeToLive {
        id: lease,
        keys: false,
    });
    b.push(Op::LeaseTimeToLive {
        id: missing,
        keys: true,
    });
    b.push(Op::LeaseKeepAlive { id: missing });
    b.push(Op::LeaseRevoke { id: missing });
    // Transactions: every compare target with every result, both branches, every request kind.
    let a_value = b.model.get("a").map(|kv| kv.value).unwrap_or_default();
    let b_mod = b.model.get("b").map_or(0, |kv| kv.mod_revision);
    let b_create = b.model.get("b").map_or(0, |kv| kv.create_revision);
    let targets = [
        ("a", CompareTarget::Value(a_value)),
        ("a", CompareTarget::Version(2)),
        ("b", CompareTarget::CreateRevision(b_create)),
        ("b", CompareTarget::ModRevision(b_mod)),
        ("e", CompareTarget::Lease(lease)),
        ("c", CompareTarget::CreateRevision(0)),
    ];
    let results = [
        CompareResult::Equal,
        CompareResult::NotEqual,
        CompareResult::Less,
        CompareResult::Greater,
    ];
    for (key, target) in targets {
        for result in results {
            let success_put = b.put("d/2");
            b.push(Op::Txn(TxnRequest {
                compare: vec![when(key, result, target.clone())],
                success: vec![
                    RequestOp::Put(PutRequest {
                        prev_kv: true,
                        ..success_put
                    }),
                    RequestOp::Range(prefix("d/")),
                ],
                failure: vec![
                    RequestOp::Range(range(key)),
                    RequestOp::DeleteRange(DeleteRangeRequest {
                        key: "d/3".into(),
                        prev_kv: true,
                        ..Default::default()
                    }),
                ],
            }));
        }
    }
    // No compare at all (succeeds), several compares, a nested txn in each branch.
    let put = b.put("c");
    b.push(Op::Txn(TxnRequest {
        compare: Vec::new(),
        success: vec![RequestOp::Put(put), RequestOp::Range(range("c"))],
        failure: Vec::new(),
    }));
    let inner_put = b.put("d/1");
    let outer_put = b.put("b");
    b.push(Op::Txn(TxnRequest {
        compare: vec![
            when("a", CompareResult::Greater, CompareTarget::Version(0)),
            when("zz", CompareResult::Equal, CompareTarget::Version(0)),
        ],
        success: vec![
            RequestOp::Put(outer_put),
            RequestOp::Txn(TxnRequest {
                compare: vec![when(
                    "b",
                    CompareResult::Less,
                    CompareTarget::ModRevision(1),
                )],
                success: vec![RequestOp::Range(range("b"))],
                failure: vec![RequestOp::Put(inner_put), RequestOp::Range(prefix("d/"))],
            }),
        ],
        failure: vec![RequestOp::Range(range("a"))],
    }));
    let inner_put = b.put("c");
    b.push(Op::Txn(TxnRequest {
        compare: vec![when(
            "a",
            CompareResult::Equal,
            CompareTarget::Value("no such value".into()),
        )],
        success: Vec::new(),
        failure: vec![RequestOp::Txn(TxnRequest {
            compare: Vec::new(),
            success: vec![
                RequestOp::Put(inner_put),
                RequestOp::DeleteRange(DeleteRangeRequest {
                    key: "d/1".into(),
                    prev_kv: true,
                    ..Default::default()
                }),
            ],
            failure: Vec::new(),
        })],
    }));
    // Errors in transactions: the same key written twice, too many operations.
    let (first, second) = (b.put("a"), b.put("a"));
    b.push(Op::Txn(TxnRequest {
        compare: Vec::new(),
        success: vec![RequestOp::Put(first), RequestOp::Put(second)],
        failure: Vec::new(),
    }));
    b.push(Op::Txn(TxnRequest {
        compare: Vec::new(),
        success: vec![RequestOp::Range(range("a")); MAX_TXN_OPS + 1],
        failure: Vec::new(),
    }));
    // Deletes: one key with prev_kv, a prefix, a missing key.
    b.push(Op::DeleteRange(DeleteRangeRequest {
        key: "d/3".into(),
        prev_kv: true,
        ..Default::default()
    }));
    b.push(Op::DeleteRange(DeleteRangeRequest {
        key: "d/".into(),
        range_end: prefix_end("d/"),
        prev_kv: true,
    }));
    b.push(Op::DeleteRange(DeleteRangeRequest {
        key: "zz".into(),
        ..Default::default()
    }));
    // Revoking a lease with a key deletes the key.
    b.push(Op::LeaseRevoke { id: lease });
    b.push(Op::Range(range("e")));
    // Compaction: physical, reads below / at it, again at it, in the future, then logical.
    for key in ["d/1", "d/2"] {
        let put = b.put(key);
        b.push(Op::Put(put));
    }
    let compact_at = b.revision() - 3;
    b.push(Op::Compact {
        revision: compact_at,
        physical: true,
    });
    b.push(Op::Range(RangeRequest {
        revision: compact_at - 1,
        ..range("a")
    }));
    b.push(Op::Range(RangeRequest {
        revision: compact_at,
        ..prefix("d/")
    }));
    b.push(Op::Compact {
        revision: compact_at,
        physical: false,
    });
    let future = b.revision() + 1;
    b.push(Op::Compact {
        revision: future,
        physical: false,
    });
    let put = b.put("a");
    b.push(Op::Put(put));
    let later = b.revision() - 1;
    b.push(Op::Compact {
        revision: later,
        physical: false,
    });
}

/// Watches from the past at the end: every key from a little before the end (with prev_kv),
/// and a prefix from below the compaction (refused as compacted). Every revision is a change
/// of some key, so the watch of every key ends with an event at the final revision.
fn probes(model: &MvccModel) -> Vec<WatchProbe> {
    let end = model.revision();
    let compacted = model.compacted_revision();
    let mut probes = vec![WatchProbe {
        key: FROM_KEY.to_string(),
        range_end: FROM_KEY.to_string(),
        start_revision: (end - 40).max(compacted).max(1),
        until_revision: end,
        prev_kv: true,
    }];
    if compacted > 1 {
        probes.push(WatchProbe {
            key: "d/".to_string(),
            range_end: prefix_end("d/"),
            start_revision: compacted - 1,
            until_revision: end,
            prev_kv: false,
        });
    }
    probes
}

// ---- features ---------------------------------------------------------------------------------------

/// What the workload must exercise (the test asserts all of them).
pub const FEATURES: [&str; 43] = [
    "put",
    "put.prev_kv",
    "put.lease",
    "put.ignore_value",
    "put.ignore_lease",
    "range",
    "range.prefix",
    "range.from_key",
    "range.limit_more",
    "range.count_only",
    "range.keys_only",
    "range.revision",
    "range.serializable",
    "delete",
    "delete.range",
    "delete.prev_kv",
    "txn.compare.value",
    "txn.compare.version",
    "txn.compare.create_revision",
    "txn.compare.mod_revision",
    "txn.compare.lease",
    "txn.result.equal",
    "txn.result.not_equal",
    "txn.result.less",
    "txn.result.greater",
    "txn.succeeded",
    "txn.failed",
    "txn.nested",
    "lease.grant",
    "lease.keepalive",
    "lease.ttl_keys",
    "lease.revoke",
    "compact.physical",
    "error.compacted",
    "error.future_revision",
    "error.lease_not_found",
    "error.lease_exists",
    "error.duplicate_key",
    "error.key_not_found",
    "error.empty_key",
    "error.too_many_ops",
    "watch.past_revision",
    "watch.compacted",
];

/// The features `ops` (answered by the model with `answers`) and `probes` exercise, given the
/// store's compacted revision at the end.
pub fn features(
    ops: &[Op],
    answers: &[Ret],
    probes: &[WatchProbe],
    compacted: i64,
) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    for (op, ret) in ops.iter().zip(answers) {
        match op {
            Op::Put(put) => put_features(put, &mut seen),
            Op::Range(range) => range_features(range, &mut seen),
            Op::DeleteRange(delete) => delete_features(delete, &mut seen),
            Op::Txn(txn) => txn_features(txn, false, &mut seen),
            Op::LeaseGrant { .. } => {
                seen.insert("lease.grant");
            }
            Op::LeaseKeepAlive { .. } => {
                seen.insert("lease.keepalive");
            }
            Op::LeaseTimeToLive { keys: true, .. } => {
                seen.insert("lease.ttl_keys");
            }
            Op::LeaseRevoke { .. } => {
                seen.insert("lease.revoke");
            }
            Op::Compact { physical: true, .. } => {
                seen.insert("compact.physical");
            }
            Op::LeaseTimeToLive { .. } | Op::Compact { .. } | Op::LeaseExpire { .. } => {}
        }
        match ret {
            Ret::Ok(Response::Range(range)) if range.more => {
                seen.insert("range.limit_more");
            }
            Ret::Ok(Response::Txn(txn)) => {
                seen.insert(if txn.succeeded {
                    "txn.succeeded"
                } else {
                    "txn.failed"
                });
                if txn
                    .responses
                    .iter()
                    .any(|r| matches!(r, ResponseOp::Range(range) if range.more))
                {
                    seen.insert("range.limit_more");
                }
            }
            Ret::Ok(_) => {}
            Ret::Err(error) => {
                seen.insert(match error {
                    EtcdError::Compacted => "error.compacted",
                    EtcdError::FutureRevision => "error.future_revision",
                    EtcdError::LeaseNotFound => "error.lease_not_found",
                    EtcdError::LeaseExists => "error.lease_exists",
                    EtcdError::DuplicateKey => "error.duplicate_key",
                    EtcdError::KeyNotFound => "error.key_not_found",
                    EtcdError::EmptyKey => "error.empty_key",
                    EtcdError::TooManyOps => "error.too_many_ops",
                    EtcdError::ValueProvided => "error.value_provided",
                    EtcdError::LeaseProvided => "error.lease_provided",
                });
            }
        }
    }
    for probe in probes {
        if probe.start_revision < compacted {
            seen.insert("watch.compacted");
        } else if probe.start_revision > 1 {
            seen.insert("watch.past_revision");
        }
    }
    seen
}

fn put_features(put: &PutRequest, seen: &mut BTreeSet<&'static str>) {
    seen.insert("put");
    for (on, feature) in [
        (put.prev_kv, "put.prev_kv"),
        (put.lease != 0, "put.lease"),
        (put.ignore_value, "put.ignore_value"),
        (put.ignore_lease, "put.ignore_lease"),
    ] {
        if on {
            seen.insert(feature);
        }
    }
}

fn range_features(range: &RangeRequest, seen: &mut BTreeSet<&'static str>) {
    seen.insert("range");
    for (on, feature) in [
        (range.range_end == FROM_KEY, "range.from_key"),
        (
            !range.range_end.is_empty() && range.range_end != FROM_KEY,
            "range.prefix",
        ),
        (range.count_only, "range.count_only"),
        (range.keys_only, "range.keys_only"),
        (range.revision != 0, "range.revision"),
        (range.serializable, "range.serializable"),
    ] {
        if on {
            seen.insert(feature);
        }
    }
}

fn delete_features(delete: &DeleteRangeRequest, seen: &mut BTreeSet<&'static str>) {
    seen.insert("delete");
    if !delete.range_end.is_empty() {
        seen.insert("delete.range");
    }
    if delete.prev_kv {
        seen.insert("delete.prev_kv");
    }
}

fn txn_features(txn: &TxnRequest, nested: bool, seen: &mut BTreeSet<&'static str>) {
    if nested {
        seen.insert("txn.nested");
    }
    for compare in &txn.compare {
        seen.insert(match compare.target {
            CompareTarget::Value(_) => "txn.compare.value",
            CompareTarget::Version(_) => "txn.compare.version",
            CompareTarget::CreateRevision(_) => "txn.compare.create_revision",
            CompareTarget::ModRevision(_) => "txn.compare.mod_revision",
            CompareTarget::Lease(_) => "txn.compare.lease",
        });
        seen.insert(match compare.result {
            CompareResult::Equal => "txn.result.equal",
            CompareResult::NotEqual => "txn.result.not_equal",
            CompareResult::Less => "txn.result.less",
            CompareResult::Greater => "txn.result.greater",
        });
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            RequestOp::Put(put) => put_features(put, seen),
            RequestOp::Range(range) => range_features(range, seen),
            RequestOp::DeleteRange(delete) => delete_features(delete, seen),
            RequestOp::Txn(inner) => txn_features(inner, true, seen),
        }
    }
}

// ---- running against etcd ---------------------------------------------------------------------------

struct EtcdAnswers {
    outcomes: Vec<Outcome<Ret>>,
    watches: Vec<WatchSeen>,
}

async fn run_etcd(args: &ConformanceArgs, workload: &Workload) -> Result<EtcdAnswers> {
    // Kept alive until the end of this function: dropping it stops etcd and removes its data.
    let mut _cluster = None;
    let endpoint = if args.spawn.is_some() {
        let cluster = EtcdCluster::spawn(1, &args.etcd_bin, None).await?;
        let endpoint = cluster.endpoint(1)?;
        outln!("etcd: spawned one member at {endpoint}");
        _cluster = Some(cluster);
        endpoint
    } else {
        match args.endpoints.first() {
            Some(endpoint) => endpoint.clone(),
            None => bail!("--endpoints: expected at least one URL"),
        }
    };
    let mut client = ops::connect(&endpoint, ETCD_TIMEOUT)
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))?;
    // The answers name revisions: only an empty store gives the same ones as the others.
    let probe = Op::Range(range("a"));
    match ops::execute(&mut client, &probe, ETCD_TIMEOUT)
        .await
        .outcome
    {
        Outcome::Ok {
            output: Ret::Ok(Response::Range(answer)),
        } if answer.header.revision == 1 => {}
        Outcome::Ok {
            output: Ret::Ok(Response::Range(answer)),
        } => bail!(
            "etcd at {endpoint} is at revision {}: conformance needs an empty etcd (revision 1); \
             use --spawn 1",
            answer.header.revision
        ),
        other => bail!("etcd at {endpoint} does not answer a read: {other:?}"),
    }
    let mut outcomes = Vec::with_capacity(workload.ops.len());
    for op in &workload.ops {
        outcomes.push(ops::execute(&mut client, op, ETCD_TIMEOUT).await.outcome);
    }
    let mut watches = Vec::with_capacity(workload.probes.len());
    for probe in &workload.probes {
        let seen = watch::collect(
            &mut client,
            &probe.key,
            &probe.range_end,
            probe.start_revision,
            probe.until_revision,
            probe.prev_kv,
            ETCD_TIMEOUT,
        )
        .await;
        watches.push(match seen {
            Ok(watch::Collected::Events(events)) => WatchSeen::Events(events),
            Ok(watch::Collected::Compacted(revision)) => WatchSeen::Compacted(revision),
            Err(error) => WatchSeen::Error(error),
        });
    }
    Ok(EtcdAnswers { outcomes, watches })
}

/// The `--tamper` hook: a plausible but wrong answer (one revision off, or another error).
fn tamper(outcome: &mut Outcome<Ret>) {
    let mut value = serde_json::to_value(&*outcome).unwrap_or(Value::Null);
    if let Some(revision) = value.pointer_mut("/output/ok/header/revision") {
        *revision = Value::from(revision.as_i64().unwrap_or(0) + 1);
        if let Ok(tampered) = serde_json::from_value(value) {
            *outcome = tampered;
            return;
        }
    }
    *outcome = Outcome::Ok {
        output: Ret::Err(EtcdError::LeaseExists),
    };
}

// ---- comparing ---------------------------------------------------------------------------------------

/// One operation on which the three answers are not identical.
#[derive(Clone, Debug)]
pub struct Difference {
    pub index: usize,
    pub op: Value,
    /// The first JSON path where the answers differ (`sim` or `model` against etcd).
    pub path: String,
    pub etcd: Value,
    pub sim: Value,
    pub model: Value,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "DIFFERENCE at op {} {}: first at {}",
            self.index,
            short(&self.op),
            self.path
        )?;
        writeln!(f, "  etcd:  {}", short(&self.etcd))?;
        writeln!(f, "  sim:   {}", short(&self.sim))?;
        write!(f, "  model: {}", short(&self.model))
    }
}

fn short(value: &Value) -> String {
    const CHARS_MAX: usize = 600;
    let text = value.to_string();
    if text.chars().count() <= CHARS_MAX {
        text
    } else {
        let cut: String = text.chars().take(CHARS_MAX).collect();
        format!("{cut}…")
    }
}

/// Fields that legitimately differ between servers, replaced by what all must agree on.
fn normalise(outcome: &Outcome<Ret>) -> Outcome<Ret> {
    let mut outcome = outcome.clone();
    if let Outcome::Ok {
        output:
            Ret::Ok(Response::LeaseTimeToLive {
                ttl_s,
                granted_ttl_s,
                ..
            }),
    } = &mut outcome
    {
        // The remaining TTL counts down on each server's own clock (wall clock in etcd,
        // simulated time in the simulator, none in the model): only "between 0 and the granted
        // TTL" is comparable. -1 (no such lease) and out-of-range values are kept as they are.
        if (0..=*granted_ttl_s).contains(ttl_s) {
            *ttl_s = 0;
        }
    }
    outcome
}

/// Compares etcd's, the simulator's and the model's answers operation by operation.
pub fn compare_answers(
    workload: &Workload,
    etcd: &[Outcome<Ret>],
    sim: &[Outcome<Ret>],
) -> Vec<Difference> {
    let mut differences = Vec::new();
    for (index, op) in workload.ops.iter().enumerate() {
        let missing = || Outcome::Unknown {
            error: "no answer recorded".to_string(),
        };
        let etcd = normalise(etcd.get(index).cloned().as_ref().unwrap_or(&missing()));
        let sim = normalise(sim.get(index).cloned().as_ref().unwrap_or(&missing()));
        let model = normalise(&Outcome::Ok {
            output: workload.model[index].clone(),
        });
        let [etcd, sim, model] = [&etcd, &sim, &model].map(|outcome| {
            serde_json::to_value(outcome).unwrap_or_else(|e| Value::String(e.to_string()))
        });
        let path = first_difference(&etcd, &sim, "")
            .map(|path| format!("{path} (sim)"))
            .or_else(|| first_difference(&etcd, &model, "").map(|path| format!("{path} (model)")));
        if let Some(path) = path {
            differences.push(Difference {
                index,
                op: serde_json::to_value(op).unwrap_or(Value::Null),
                path,
                etcd,
                sim,
                model,
            });
        }
    }
    differences
}

/// Compares the watches of etcd and the simulator (the model has no watch API: the watch
/// checker judges simulated streams against the operations instead).
pub fn compare_watches(
    probes: &[WatchProbe],
    etcd: &[WatchSeen],
    sim: &[WatchSeen],
) -> Vec<String> {
    let mut differences = Vec::new();
    for (index, probe) in probes.iter().enumerate() {
        let (etcd, sim) = (etcd.get(index), sim.get(index));
        let [etcd_value, sim_value] = [etcd, sim].map(watch_value);
        if let Some(path) = first_difference(&etcd_value, &sim_value, "") {
            differences.push(format!(
                "DIFFERENCE in watch {index} (key {:?}, range_end {:?}, from revision {}): first at {path}\n  etcd:  {}\n  sim:   {}",
                probe.key,
                probe.range_end,
                probe.start_revision,
                short(&etcd_value),
                short(&sim_value)
            ));
        }
    }
    differences
}

fn watch_value(seen: Option<&WatchSeen>) -> Value {
    match seen {
        Some(WatchSeen::Events(events)) => serde_json::json!({
            "events": events.iter().map(event_value).collect::<Vec<_>>()
        }),
        Some(WatchSeen::Compacted(revision)) => serde_json::json!({ "compacted": revision }),
        Some(WatchSeen::Error(error)) => serde_json::json!({ "error": error }),
        None => serde_json::json!({ "error": "no watch recorded" }),
    }
}

fn seen_summary(seen: Option<&WatchSeen>) -> String {
    match seen {
        Some(WatchSeen::Events(events)) => format!("{} events", events.len()),
        Some(WatchSeen::Compacted(revision)) => format!("compacted at {revision}"),
        Some(WatchSeen::Error(error)) => format!("error: {error}"),
        None => "nothing".to_string(),
    }
}

fn event_value(event: &WatchEvent) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

/// The first JSON path where `a` and `b` differ, depth first, or `None` if they are equal.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            keys.into_iter().find_map(|key| {
                let (l, r) = (
                    left.get(key).unwrap_or(&Value::Null),
                    right.get(key).unwrap_or(&Value::Null),
                );
                first_difference(l, r, &format!("{path}.{key}"))
            })
        }
        (Value::Array(left), Value::Array(right)) => {
            let shared = left
                .iter()
                .zip(right)
                .enumerate()
                .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]")));
            shared.or_else(|| {
                (left.len() != right.len())
                    .then(|| format!("{path} (length {} vs {})", left.len(), right.len()))
            })
        }
        _ => (a != b).then(|| {
            if path.is_empty() {
                ".".to_string()
            } else {
                path.to_string()
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_exercises_every_feature_and_the_model_accepts_the_script() {
        let workload = Workload::new(1, 300);
        let seen = features(
            &workload.ops,
            &workload.model,
            &workload.probes,
            workload.compacted_revision,
        );
        let missing: Vec<_> = FEATURES.iter().filter(|f| !seen.contains(*f)).collect();
        assert!(missing.is_empty(), "missing features: {missing:?}");
        assert!(workload.probes.len() >= 2);
        assert_eq!(workload.ops.len(), workload.scripted + 300);
        // Same seed, same workload; another seed, another random part.
        assert_eq!(Workload::new(1, 300).ops, workload.ops);
        assert_ne!(Workload::new(2, 300).ops, workload.ops);
    }

    #[test]
    fn a_tampered_answer_is_reported_with_its_index_and_path() {
        let workload = Workload::new(3, 50);
        let answers: Vec<Outcome<Ret>> = workload
            .model
            .iter()
            .map(|ret| Outcome::Ok {
                output: ret.clone(),
            })
            .collect();
        assert!(compare_answers(&workload, &answers, &answers).is_empty());
        let mut tampered = answers.clone();
        tamper(&mut tampered[4]);
        let differences = compare_answers(&workload, &tampered, &answers);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert_eq!(differences[0].index, 4);
        assert!(
            differences[0].path.contains("revision"),
            "{}",
            differences[0].path
        );
        // The simulator (not etcd) being wrong is reported too, and names the sim.
        let differences = compare_answers(&workload, &answers, &tampered);
        assert_eq!(differences.len(), 1);
        assert!(differences[0].path.ends_with("(sim)"));
    }

    #[test]
    fn remaining_lease_ttl_is_normalised_but_a_missing_lease_is_not() {
        let ttl = |ttl_s| Outcome::Ok {
            output: Ret::Ok(Response::LeaseTimeToLive {
                header: Default::default(),
                id: 1,
                ttl_s,
                granted_ttl_s: 60,
                keys: Vec::new(),
            }),
        };
        assert_eq!(normalise(&ttl(59)), normalise(&ttl(12)));
        assert_ne!(normalise(&ttl(-1)), normalise(&ttl(12)));
        assert_ne!(normalise(&ttl(61)), normalise(&ttl(60)));
    }

    #[test]
    fn first_difference_names_the_path() {
        let a = serde_json::json!({"x": {"y": [1, 2, 3]}, "z": 1});
        let b = serde_json::json!({"x": {"y": [1, 5, 3]}, "z": 1});
        assert_eq!(first_difference(&a, &b, "").as_deref(), Some(".x.y[1]"));
        let c = serde_json::json!({"x": {"y": [1, 2]}, "z": 1});
        assert_eq!(
            first_difference(&a, &c, "").as_deref(),
            Some(".x.y (length 3 vs 2)")
        );
        assert_eq!(first_difference(&a, &a, ""), None);
    }
}
