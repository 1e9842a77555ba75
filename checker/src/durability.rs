//! Durability, quorum, convergence and liveness: what a run's end state and its clients' answers
//! must show however the nemesis treated the cluster.
//!
//! Properties (the `property` of each [`PropertyViolation`]):
//! - `durability.lost_write`: two writes were acknowledged at the same revision (one of them is
//!   not in the store as acknowledged), or an acknowledged write is neither in the final state nor superseded:
//!   the final revision is below its revision, its key ends with an older `mod_revision`, or its
//!   key is gone although nothing after it could have deleted it (no delete of that key proven,
//!   none attempted with an unknown outcome, no lease attached to it). Conservative by design: a
//!   key that may have been deleted is never reported (etcd #14370 class);
//! - `quorum.revision_regress`: a linearizable operation (put, delete, txn, non-serializable
//!   range) that started after another returned reports a smaller header revision — per client
//!   and across clients (etcd #17780, #20418 class);
//! - `replicas.converge`: the up members of `final_state` differ in revision, HashKV or contents;
//! - `liveness`: after a heal left the cluster whole (for at least the bound), clients asked for a
//!   write (or a linearizable read) in time and none was answered successfully within
//!   [`DurabilityOptions::liveness_bound_ns`];
//! - `durability.record`: a `final_state` record without the expected shape.
//!
//! The `final_state` record is written by `kvsim_sim::runner` after the final heal and settle.

use std::collections::{BTreeMap, BTreeSet};

use kvsim_model::mvcc::{KeyValue, Op, RequestOp, Response, Ret, Revision, TxnRequest};
use serde::Deserialize;

use crate::history::{FaultEvent, History, OpId, Operation, Outcome};
use crate::property::{Property, PropertyViolation};
use crate::watch::changes::{write_effect, ChangeLog};
use crate::watch::records::{self, contains, EventKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurabilityOptions {
    /// After a heal leaves the cluster whole, a successful write and a linearizable read must
    /// both be answered within this long (election timeout, client retries and backoff
    /// included).
    pub liveness_bound_ns: u64,
}

impl DurabilityOptions {
    /// How long past a lease's deadline its expiry may take in a whole cluster before
    /// `lease.expired_late` fires (`crate::lease_bound`): two election timeouts, i.e. 2 s in the
    /// simulator (its lessor checks deadlines every tick, 100 ms, the revoke commits in a few
    /// round trips, and a lost revoke proposal is retried after 1 s) and 4 s live (etcd checks
    /// expiries every 500 ms and rate-limits revokes).
    pub fn lease_expiry_slack_ns(&self) -> u64 {
        2 * self.election_timeout_ns()
    }

    /// The election timeout the liveness bound stands for: a fifth of it (the simulator's bound
    /// is five election timeouts; live, 10 s stands for etcd's 1 s timeout with room to spare).
    pub fn election_timeout_ns(&self) -> u64 {
        self.liveness_bound_ns / 5
    }
}

impl Default for DurabilityOptions {
    fn default() -> Self {
        // Five election timeouts of the default scenario (10 ticks × 100 ms): room for pre-vote,
        // a split vote and the clients' retry backoff.
        Self {
            liveness_bound_ns: 5_000_000_000,
        }
    }
}

/// Every durability, quorum, convergence and liveness property the history breaks.
pub fn check_durability(
    history: &History<Op, Ret>,
    opts: &DurabilityOptions,
) -> Vec<PropertyViolation> {
    let mut out = Vec::new();
    let final_state = final_state(&history.other, &mut out);
    if let Some(nodes) = &final_state {
        let (watch_records, _) = records::parse(&history.other);
        let log = ChangeLog::from_history(history, &watch_records);
        lost_writes(history, &log, nodes, &mut out);
        converge(nodes, &mut out);
    }
    revisions_written_twice(history, &mut out);
    revision_regress(history, &mut out);
    liveness(history, opts, &mut out);
    out
}

/// One member's state after the final heal and settle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NodeState {
    pub node: String,
    pub up: bool,
    pub revision: Revision,
    #[serde(default)]
    pub compact_revision: Revision,
    pub hash_kv: u64,
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct FinalStateRecord {
    nodes: Vec<NodeState>,
}

/// The last `final_state` record's nodes, or `None` if there is none (or it is malformed, which
/// is reported).
fn final_state(
    other: &[serde_json::Value],
    out: &mut Vec<PropertyViolation>,
) -> Option<Vec<NodeState>> {
    let (index, value) = other
        .iter()
        .enumerate()
        .rfind(|(_, value)| value.get("type").and_then(|t| t.as_str()) == Some("final_state"))?;
    match serde_json::from_value::<FinalStateRecord>(value.clone()) {
        Ok(record) => Some(record.nodes),
        Err(error) => {
            let message = format!(
                "other record #{index}: expected {{\"type\":\"final_state\",\"nodes\":[{{\"node\",\"up\",\"revision\",\"hash_kv\",\"kvs\"}}..]}} ({error})"
            );
            out.push(PropertyViolation::new(Property::DurabilityRecord, message));
            None
        }
    }
}

/// Which operations could have removed a key after a given revision, for the lost-write check.
struct Deleters<'a> {
    history: &'a History<Op, Ret>,
    /// Keys some put that may have taken effect attached a lease to: lease expiry or revocation
    /// may have deleted them at any time.
    leased_keys: BTreeSet<&'a str>,
}

impl<'a> Deleters<'a> {
    fn new(history: &'a History<Op, Ret>) -> Self {
        let mut leased_keys = BTreeSet::new();
        for op in history
            .ops
            .iter()
            .filter(|op| !matches!(op.outcome, Outcome::Fail { .. }))
        {
            match &op.input {
                Op::Put(put) if put.lease != 0 || put.ignore_lease => {
                    leased_keys.insert(put.key.as_str());
                }
                Op::Txn(txn) => txn_leased_keys(txn, &mut leased_keys),
                _ => {}
            }
        }
        Deleters {
            history,
            leased_keys,
        }
    }

    /// An operation that may have deleted `key` at a revision above `revision`, if any.
    fn after(&self, key: &str, revision: Revision) -> Option<String> {
        if self.leased_keys.contains(key) {
            return Some("a lease was attached to the key".to_string());
        }
        for op in &self.history.ops {
            if !deletes_key(&op.input, key) {
                continue;
            }
            match &op.outcome {
                Outcome::Fail { .. } => {}
                Outcome::Unknown { .. } => {
                    return Some(format!(
                        "op {} may have deleted it (unknown outcome)",
                        op.id
                    ))
                }
                Outcome::Ok {
                    output: Ret::Ok(response),
                } => {
                    if write_effect(&op.input, response, op.id)
                        .is_some_and(|effect| effect.revision > revision)
                    {
                        return Some(format!("op {} may have deleted it", op.id));
                    }
                }
                Outcome::Ok {
                    output: Ret::Err(_),
                } => {}
            }
        }
        None
    }
}

fn txn_leased_keys<'a>(txn: &'a TxnRequest, keys: &mut BTreeSet<&'a str>) {
    for request in txn.success.iter().chain(&txn.failure) {
        match request {
            RequestOp::Put(put) if put.lease != 0 || put.ignore_lease => {
                keys.insert(put.key.as_str());
            }
            RequestOp::Txn(inner) => txn_leased_keys(inner, keys),
            _ => {}
        }
    }
}

/// Whether `op` contains a delete whose range holds `key` (in any transaction branch).
fn deletes_key(op: &Op, key: &str) -> bool {
    fn in_requests(requests: &[RequestOp], key: &str) -> bool {
        requests.iter().any(|request| match request {
            RequestOp::DeleteRange(delete) => contains(&delete.key, &delete.range_end, key),
            RequestOp::Txn(inner) => {
                in_requests(&inner.success, key) || in_requests(&inner.failure, key)
            }
            _ => false,
        })
    }
    match op {
        Op::DeleteRange(delete) => contains(&delete.key, &delete.range_end, key),
        Op::Txn(txn) => in_requests(&txn.success, key) || in_requests(&txn.failure, key),
        _ => false,
    }
}

/// `durability.lost_write` without the final state: two writes acknowledged at one revision.
/// etcd gives every write its own main revision, so when two are acknowledged as the write at
/// the same revision, one of them is not in the store as acknowledged (answered before commit,
/// or a committed entry lost and its index reused). The final state cannot always show it: a
/// later write of the same key hides it.
fn revisions_written_twice(history: &History<Op, Ret>, out: &mut Vec<PropertyViolation>) {
    let mut writer_of: BTreeMap<Revision, OpId> = BTreeMap::new();
    for (op, response) in history.answered() {
        let Some(effect) = write_effect(&op.input, response, op.id) else {
            continue;
        };
        let revision = effect.revision;
        match writer_of.get(&revision) {
            None => {
                writer_of.insert(revision, op.id);
            }
            Some(&first) => out.push(
                PropertyViolation::new(
                    Property::DurabilityLostWrite,
                    format!(
                        "ops {first} and {} were both acknowledged as the write at revision \
                         {revision}: every revision holds one write, so at least one of them is lost",
                        op.id
                    ),
                )
                .with_ops([first, op.id])
                .with_time(op.call_ns),
            ),
        }
    }
}

fn lost_writes(
    history: &History<Op, Ret>,
    log: &ChangeLog,
    nodes: &[NodeState],
    out: &mut Vec<PropertyViolation>,
) {
    let Some(final_revision) = nodes.iter().filter(|n| n.up).map(|n| n.revision).max() else {
        return;
    };
    // Members still behind are convergence failures; the most advanced ones hold the outcome.
    let reference: Vec<(&NodeState, BTreeMap<&str, &KeyValue>)> = nodes
        .iter()
        .filter(|n| n.up && n.revision == final_revision)
        .map(|n| (n, n.kvs.iter().map(|kv| (kv.key.as_str(), kv)).collect()))
        .collect();
    let deleters = Deleters::new(history);
    for (op, response) in history.answered() {
        let Some(effect) = write_effect(&op.input, response, op.id) else {
            continue;
        };
        let revision = effect.revision;
        let report = |message: String| {
            PropertyViolation::new(Property::DurabilityLostWrite, message)
                .with_ops([op.id])
                .with_time(op.call_ns)
        };
        if revision > final_revision {
            out.push(report(format!(
                "op {} was acknowledged at revision {revision}, but the cluster ends at revision {final_revision}",
                op.id
            )));
            continue;
        }
        'keys: for (key, change) in &effect.changes {
            for (node, kvs) in &reference {
                let problem = match (kvs.get(key.as_str()), change.kind) {
                    (Some(kv), _) if kv.mod_revision < revision => Some(format!(
                        "{} ends with {key:?} at mod_revision {}",
                        node.node, kv.mod_revision
                    )),
                    (Some(kv), EventKind::Delete) if kv.mod_revision == revision => Some(format!(
                        "{} ends with {key:?} alive at the delete's revision",
                        node.node
                    )),
                    (Some(kv), EventKind::Put)
                        if kv.mod_revision == revision
                            && change.value.as_ref().is_some_and(|v| *v != kv.value) =>
                    {
                        Some(format!(
                            "{} ends with {key:?} = {:?} at that revision",
                            node.node, kv.value
                        ))
                    }
                    (Some(_), _) | (None, EventKind::Delete) => None,
                    (None, EventKind::Put) => {
                        let proven = log.by_key.get(key).is_some_and(|changes| {
                            changes
                                .range(revision + 1..)
                                .any(|(_, c)| c.kind == EventKind::Delete)
                        });
                        if proven || deleters.after(key, revision).is_some() {
                            None
                        } else {
                            Some(format!(
                                "{} ends without {key:?} and nothing after could have deleted it",
                                node.node
                            ))
                        }
                    }
                };
                if let Some(problem) = problem {
                    out.push(report(format!(
                        "the {:?} of {key:?} by op {} acknowledged at revision {revision} is lost: {problem}",
                        change.kind, op.id
                    )));
                    continue 'keys;
                }
            }
        }
    }
}

fn converge(nodes: &[NodeState], out: &mut Vec<PropertyViolation>) {
    let up: Vec<&NodeState> = nodes.iter().filter(|n| n.up).collect();
    let Some(first) = up.first() else { return };
    for node in &up[1..] {
        let mut differences = Vec::new();
        if node.revision != first.revision {
            differences.push(format!("revision {} vs {}", node.revision, first.revision));
        }
        if node.hash_kv != first.hash_kv {
            differences.push(format!("hash_kv {} vs {}", node.hash_kv, first.hash_kv));
        }
        if node.kvs != first.kvs {
            let theirs: BTreeMap<&str, &KeyValue> =
                node.kvs.iter().map(|kv| (kv.key.as_str(), kv)).collect();
            let ours: BTreeMap<&str, &KeyValue> =
                first.kvs.iter().map(|kv| (kv.key.as_str(), kv)).collect();
            let keys: BTreeSet<&str> = theirs.keys().chain(ours.keys()).copied().collect();
            let differing: Vec<&str> = keys
                .into_iter()
                .filter(|key| theirs.get(key) != ours.get(key))
                .collect();
            differences.push(format!(
                "{} differing keys, first {:?}",
                differing.len(),
                differing.first().unwrap_or(&"")
            ));
        }
        if !differences.is_empty() {
            let message = format!(
                "{} and {} diverge: {}",
                node.node,
                first.node,
                differences.join(", ")
            );
            out.push(PropertyViolation::new(Property::ReplicasConverge, message));
        }
    }
}

/// The header revision of a linearizable operation's successful answer.
fn linearizable_revision(op: &Operation<Op, Ret>) -> Option<Revision> {
    let Outcome::Ok {
        output: Ret::Ok(response),
    } = &op.outcome
    else {
        return None;
    };
    match (&op.input, response) {
        (Op::Put(_), Response::Put(reply)) => Some(reply.header.revision),
        (Op::DeleteRange(_), Response::DeleteRange(reply)) => Some(reply.header.revision),
        (Op::Txn(_), Response::Txn(reply)) => Some(reply.header.revision),
        (Op::Range(range), Response::Range(reply)) if !range.serializable => {
            Some(reply.header.revision)
        }
        _ => None,
    }
}

/// A linearizable operation is served between its call and its return, and a member's revision
/// only grows along the Raft log: one that starts after another returned sees at least its revision.
fn revision_regress(history: &History<Op, Ret>, out: &mut Vec<PropertyViolation>) {
    let ops: Vec<(u64, u64, Revision, OpId)> = history
        .ops
        .iter()
        .filter_map(|op| Some((op.call_ns, op.return_ns?, linearizable_revision(op)?, op.id)))
        .collect();
    let mut by_return = ops.clone();
    by_return.sort_by_key(|&(call_ns, return_ns, _, id)| (return_ns, call_ns, id));
    let mut by_call = ops;
    by_call.sort_by_key(|&(call_ns, return_ns, _, id)| (call_ns, return_ns, id));
    let mut earlier = by_return.iter().peekable();
    let mut highest: Option<(Revision, OpId, u64)> = None;
    for &(call_ns, _, revision, id) in &by_call {
        while let Some(&(_, return_ns, seen, seen_id)) =
            earlier.next_if(|candidate| candidate.1 <= call_ns)
        {
            if highest.is_none_or(|(max, _, _)| seen > max) {
                highest = Some((seen, seen_id, return_ns));
            }
        }
        if let Some((max, max_id, max_return_ns)) = highest {
            if revision < max {
                let message = format!(
                    "op {id} started at t_ns {call_ns} and saw revision {revision}, but op {max_id} had already returned revision {max} (at t_ns {max_return_ns})"
                );
                out.push(
                    PropertyViolation::new(Property::QuorumRevisionRegress, message)
                        .with_ops([id, max_id])
                        .with_time(call_ns),
                );
            }
        }
    }
}

/// A stretch of time during which no fault was in force: from `from_ns` (the heal that made the
/// cluster whole) until the next disrupting fault, or to the end of the history (`until_ns` None).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealedWindow {
    pub from_ns: u64,
    pub until_ns: Option<u64>,
}

/// Every window after a heal made the cluster whole again (every crashed node restarted, every
/// paused one resumed, every stalled disk released, the network healed, packet loss off). Latency and clock skew do not stop
/// progress and are ignored.
pub fn healed_windows(faults: &[FaultEvent]) -> Vec<HealedWindow> {
    let mut windows = whole_windows(faults);
    windows.remove(0);
    windows
}

/// Every stretch in which the cluster was whole: the first from the start of the run until the
/// first fault that stops progress (a cluster starts whole), then every [`healed_windows`] one.
pub fn whole_windows(faults: &[FaultEvent]) -> Vec<HealedWindow> {
    let mut ordered: Vec<&FaultEvent> = faults.iter().collect();
    ordered.sort_by_key(|fault| fault.t_ns);
    let (mut crashed, mut paused, mut stalled) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let (mut network, mut loss) = (false, false);
    let mut windows: Vec<HealedWindow> = vec![HealedWindow {
        from_ns: 0,
        until_ns: None,
    }];
    for fault in ordered {
        let disrupted_before =
            network || loss || !crashed.is_empty() || !paused.is_empty() || !stalled.is_empty();
        match fault.kind.as_str() {
            "crash" => crashed.extend(fault.nodes.iter().cloned()),
            "restart" => fault.nodes.iter().for_each(|node| {
                crashed.remove(node);
            }),
            "pause" => paused.extend(fault.nodes.iter().cloned()),
            "resume" => fault.nodes.iter().for_each(|node| {
                paused.remove(node);
            }),
            "disk_stall" => stalled.extend(fault.nodes.iter().cloned()),
            "disk_release" => fault.nodes.iter().for_each(|node| {
                stalled.remove(node);
            }),
            "partition" | "partition_one_way" => network = true,
            "heal" => network = false,
            "packet_loss" => {
                loss = fault
                    .detail
                    .get("rate")
                    .and_then(|rate| rate.as_f64())
                    .unwrap_or(1.0)
                    > 0.0
            }
            "heal_all" => {
                crashed.clear();
                paused.clear();
                stalled.clear();
                network = false;
                loss = false;
            }
            _ => {}
        }
        let disrupted =
            network || loss || !crashed.is_empty() || !paused.is_empty() || !stalled.is_empty();
        match (disrupted_before, disrupted) {
            (true, false) => windows.push(HealedWindow {
                from_ns: fault.t_ns,
                until_ns: None,
            }),
            (false, true) => {
                if let Some(open) = windows
                    .last_mut()
                    .filter(|window| window.until_ns.is_none())
                {
                    open.until_ns = Some(fault.t_ns);
                }
            }
            _ => {}
        }
    }
    windows
}

/// When the cluster was last made whole again, or `None` if it never was disrupted or the
/// history ends disrupted.
pub fn healed_at_ns(faults: &[FaultEvent]) -> Option<u64> {
    healed_windows(faults)
        .last()
        .filter(|window| window.until_ns.is_none())
        .map(|window| window.from_ns)
}

/// The healed windows liveness judges: the cluster stayed whole for the bound, and the clients
/// kept working past it.
fn judged_windows(history: &History<Op, Ret>, opts: &DurabilityOptions) -> Vec<HealedWindow> {
    let last_call_ns = history.ops.iter().map(|op| op.call_ns).max();
    healed_windows(&history.faults)
        .into_iter()
        .filter(|window| {
            let deadline_ns = window.from_ns.saturating_add(opts.liveness_bound_ns);
            let whole_for_the_bound = window
                .until_ns
                .is_none_or(|until_ns| until_ns >= deadline_ns);
            let clients_kept_working = last_call_ns.is_some_and(|last| last >= deadline_ns);
            whole_for_the_bound && clients_kept_working
        })
        .collect()
}

/// How many healed windows the liveness check judges in `history` (0: liveness checked
/// nothing, which a verdict must say rather than read as a pass).
pub fn liveness_windows_judged(history: &History<Op, Ret>, opts: &DurabilityOptions) -> usize {
    judged_windows(history, opts).len()
}

/// What liveness asks the cluster to serve after a heal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Write,
    LinearizableRead,
}

impl Service {
    fn of(op: &Op) -> Option<Service> {
        match op {
            Op::Put(_) | Op::DeleteRange(_) | Op::Txn(_) => Some(Service::Write),
            Op::Range(range) if !range.serializable => Some(Service::LinearizableRead),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Write => "successful write",
            Service::LinearizableRead => "successful linearizable read",
        }
    }
}

/// After every heal that left the cluster whole for at least the bound, a write and a
/// linearizable read must succeed within the bound. An answer received in the window counts even
/// if its request was sent earlier (clients retry one request for several seconds), which can
/// only hide a violation, never invent one.
///
/// Each kind is judged only if a client asked for it when the cluster should have recovered: a
/// request of that kind was pending at the window's midpoint or called between the midpoint and
/// the end of its third quarter (leaving a quarter of the bound, more than an election timeout,
/// to answer it). Asked only early, it says nothing about the service after recovery:
/// - recipes seed 518 had its workload clients finish before the last heal, then only lock and
///   election tasks ran (txns and lease calls, never a linearizable range), and judging the read
///   side anyway reported a liveness violation that no client could have seen;
/// - openraft txn.toml seed 91: two reads right after the heal were refused during the new
///   election (a client gives up after its attempts, half a second), and the clients, busy with
///   txns, asked for no other linearizable read for four seconds.
fn liveness(
    history: &History<Op, Ret>,
    opts: &DurabilityOptions,
    out: &mut Vec<PropertyViolation>,
) {
    for window in judged_windows(history, opts) {
        let deadline_ns = window.from_ns.saturating_add(opts.liveness_bound_ns);
        let asked_by_ns = window
            .from_ns
            .saturating_add(opts.liveness_bound_ns / 4 * 3);
        let midpoint_ns = window.from_ns.saturating_add(opts.liveness_bound_ns / 2);
        for service in [Service::Write, Service::LinearizableRead] {
            let mut asked = false;
            let mut served = false;
            for op in &history.ops {
                if Service::of(&op.input) != Some(service) {
                    continue;
                }
                let pending_at_midpoint = op.call_ns >= window.from_ns
                    && op.call_ns <= midpoint_ns
                    && op.return_ns.is_none_or(|t| t >= midpoint_ns);
                let called_late = op.call_ns >= midpoint_ns && op.call_ns <= asked_by_ns;
                asked |= pending_at_midpoint || called_late;
                served |= matches!(&op.outcome, Outcome::Ok { output: Ret::Ok(_) })
                    && op
                        .return_ns
                        .is_some_and(|t| t >= window.from_ns && t <= deadline_ns);
            }
            if asked && !served {
                let message = format!(
                    "no {} was answered within {:.1} s after every fault was healed at {:.3} s",
                    service.name(),
                    opts.liveness_bound_ns as f64 / 1e9,
                    window.from_ns as f64 / 1e9
                );
                out.push(
                    PropertyViolation::new(Property::Liveness, message).with_time(window.from_ns),
                );
            }
        }
    }
}
