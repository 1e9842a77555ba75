//! Recipe checker: the lease-based lock and leader election built on etcd's create-if-absent
//! transaction (`compare create_revision(key) == 0 → put(key, holder, lease)`, as etcd's
//! `concurrency.Election` and the classic txn lock do).
//!
//! Which keys are locks, elections and protected keys comes from the `recipe` records
//! (`{"type":"recipe","recipe":"lock"|"election","key":..,"protected_key":..}`); who held what,
//! and when, is judged from the operations only, in revision order, never from the clients'
//! claims.
//!
//! A tenure is one instance of a lock or election key, named by its `create_revision` `c`: the key
//! exists in every store state (revision) from `c` until it is deleted (release, revoke or lease
//! expiry), and in no other. The checker under-approximates each tenure by `[c, last]`, where
//! `last` is the latest state in which an operation proves the instance still existed:
//! - a range (or a range inside a txn) that returned the key with create_revision `c`, at the
//!   state it read (its `revision`, or the header's);
//! - a successful txn comparing `create_revision(key) == c`: the instance existed just before the
//!   txn, in state `header - 1` or later;
//! - a `prev_kv` of the instance returned by a put or delete at `header`: state `header - 1`.
//!
//! Under-approximating makes every report certain (no false positives):
//! - `lock.mutual_exclusion` / `election.two_leaders`: instances `a < b` of one key with
//!   `last(a) >= b`, i.e. the key had two owners at once — only a broken server does that;
//! - `lock.unfenced_write`: a put on a protected key without any compare on its lock key, by a
//!   holder other than the owner of an instance that provably existed in the state the write was
//!   applied to (`c <= W - 1 <= last`). Fenced writes cannot land there on a correct server.
//!
//! Holder names are the values the acquiring put stores; protected writes store
//! `<holder>#<n>`, so the writer of a protected value is the text before `#`.

use std::collections::{BTreeMap, BTreeSet};

use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, KeyValue, Op, RangeRequest, RequestOp, Response,
    ResponseOp, Ret, Revision,
};

use crate::history::{History, OpId, Operation, Outcome};
use crate::property::{Property, PropertyViolation};

/// The separator between the holder's name and a counter in protected values.
pub const HOLDER_SEPARATOR: char = '#';

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recipe {
    Lock,
    Election,
}

/// One instance of a lock or election key.
#[derive(Clone, Debug)]
struct Tenure {
    holder: String,
    /// The acquire operation, when one is known to have created it (else it was only observed).
    acquire_op: Option<OpId>,
    /// The latest state proven to contain the instance, and the operation proving it.
    last: Revision,
    last_op: Option<OpId>,
}

/// A put on a protected key that took effect.
struct ProtectedWrite {
    op: OpId,
    key: String,
    holder: String,
    revision: Revision,
    fenced: bool,
    t_ns: u64,
}

/// What the recipe records declare.
#[derive(Default)]
struct Declared {
    recipes: BTreeMap<String, Recipe>,
    /// Protected key → its lock key.
    protected: BTreeMap<String, String>,
}

fn declared(history: &History<Op, Ret>) -> Declared {
    let mut declared = Declared::default();
    for record in &history.other {
        if record["type"] != "recipe" {
            continue;
        }
        let Some(key) = record["key"].as_str() else {
            continue;
        };
        let recipe = match record["recipe"].as_str() {
            Some("lock") | Some("mutex") => Recipe::Lock,
            Some("election") => Recipe::Election,
            _ => continue,
        };
        // A key declared both ways is judged as a lock (the stricter reading of its writes).
        let entry = declared.recipes.entry(key.to_string()).or_insert(recipe);
        if recipe == Recipe::Lock {
            *entry = Recipe::Lock;
        }
        if let Some(protected) = record["protected_key"].as_str() {
            declared
                .protected
                .insert(protected.to_string(), key.to_string());
        }
    }
    declared
}

/// Every violation of the lock and election properties the history proves (see the module doc).
pub fn check_recipes(history: &History<Op, Ret>) -> Vec<PropertyViolation> {
    let declared = declared(history);
    if declared.recipes.is_empty() {
        return Vec::new();
    }
    // key → create_revision → tenure.
    let mut tenures: BTreeMap<String, BTreeMap<Revision, Tenure>> = BTreeMap::new();
    let mut writes = Vec::new();
    for (op, response) in history.answered() {
        observe(op, response, &declared, &mut tenures, &mut writes);
    }

    let mut violations = Vec::new();
    for (key, instances) in &tenures {
        let property = match declared.recipes.get(key) {
            Some(Recipe::Election) => Property::ElectionTwoLeaders,
            _ => Property::LockMutualExclusion,
        };
        let ordered: Vec<(&Revision, &Tenure)> = instances.iter().collect();
        for (index, (created, tenure)) in ordered.iter().enumerate() {
            for (later_created, later) in &ordered[index + 1..] {
                if tenure.last < **later_created {
                    // Instances are sorted by creation: no later one overlaps either.
                    break;
                }
                violations.push(
                    PropertyViolation::new(
                        property,
                        format!(
                            "{key}: {} (created at revision {created}) still held it at \
                             revision {} while {} (created at revision {later_created}) held it too",
                            tenure.holder, tenure.last, later.holder
                        ),
                    )
                    .with_ops(
                        [tenure.acquire_op, tenure.last_op, later.acquire_op]
                            .into_iter()
                            .flatten(),
                    ),
                );
            }
        }
    }

    for write in &writes {
        if write.fenced {
            continue;
        }
        let Some(lock_key) = declared.protected.get(&write.key) else {
            continue;
        };
        let Some(instances) = tenures.get(lock_key) else {
            continue;
        };
        // The state the put was applied to is `W - 1`.
        let applied_to = write.revision - 1;
        for (created, tenure) in instances.range(..=applied_to) {
            if tenure.last < applied_to || tenure.holder == write.holder {
                continue;
            }
            violations.push(
                PropertyViolation::new(
                    Property::LockUnfencedWrite,
                    format!(
                        "{}: unfenced write by {} landed at revision {} while {} held {lock_key} \
                         (created at revision {created}, still held at revision {})",
                        write.key, write.holder, write.revision, tenure.holder, tenure.last
                    ),
                )
                .with_ops(
                    [Some(write.op), tenure.acquire_op, tenure.last_op]
                        .into_iter()
                        .flatten(),
                )
                .with_time(write.t_ns),
            );
        }
    }
    violations
}

fn observe(
    op: &Operation<Op, Ret>,
    response: &Response,
    declared: &Declared,
    tenures: &mut BTreeMap<String, BTreeMap<Revision, Tenure>>,
    writes: &mut Vec<ProtectedWrite>,
) {
    let t_ns = op.return_ns.unwrap_or(op.call_ns);
    let mut seen = |key: &str, created: Revision, holder: &str, state: Revision, acquire: bool| {
        if !declared.recipes.contains_key(key) || created <= 0 || state < created {
            return;
        }
        let tenure = tenures
            .entry(key.to_string())
            .or_default()
            .entry(created)
            .or_insert_with(|| Tenure {
                holder: holder.to_string(),
                acquire_op: None,
                last: created,
                last_op: None,
            });
        if acquire {
            tenure.acquire_op = Some(op.id);
            tenure.holder = holder.to_string();
        }
        if state > tenure.last {
            tenure.last = state;
            tenure.last_op = Some(op.id);
        }
    };
    match (&op.input, response) {
        (Op::Range(request), Response::Range(range)) => {
            let state = read_state(request, range.header.revision);
            for kv in &range.kvs {
                seen(&kv.key, kv.create_revision, &kv.value, state, false);
            }
        }
        (Op::Put(put), Response::Put(reply)) => {
            if let Some(prev) = &reply.prev_kv {
                seen(
                    &prev.key,
                    prev.create_revision,
                    &prev.value,
                    reply.header.revision - 1,
                    false,
                );
            }
            if declared.protected.contains_key(&put.key) {
                writes.push(ProtectedWrite {
                    op: op.id,
                    key: put.key.clone(),
                    holder: holder_of(&put.value).to_string(),
                    revision: reply.header.revision,
                    fenced: false,
                    t_ns,
                });
            }
        }
        (Op::DeleteRange(_), Response::DeleteRange(reply)) => {
            for prev in &reply.prev_kvs {
                seen(
                    &prev.key,
                    prev.create_revision,
                    &prev.value,
                    reply.header.revision - 1,
                    false,
                );
            }
        }
        (Op::Txn(txn), Response::Txn(reply)) => {
            let revision = reply.header.revision;
            if reply.succeeded {
                for compare in &txn.compare {
                    if let Some(created) = create_revision_equal(compare) {
                        // Holder unknown from a compare alone; an acquire or read names it.
                        seen(&compare.key, created, "", revision - 1, false);
                    }
                }
                if let Some((key, holder)) = acquire_of(&txn.compare, &txn.success) {
                    seen(key, revision, holder, revision, true);
                }
                for request in &txn.success {
                    if let RequestOp::Put(put) = request {
                        if let Some(lock_key) = declared.protected.get(&put.key) {
                            writes.push(ProtectedWrite {
                                op: op.id,
                                key: put.key.clone(),
                                holder: holder_of(&put.value).to_string(),
                                revision,
                                fenced: txn.compare.iter().any(|c| &c.key == lock_key),
                                t_ns,
                            });
                        }
                    }
                }
            }
            let branch = if reply.succeeded {
                &txn.success
            } else {
                &txn.failure
            };
            walk_branch(branch, &reply.responses, &mut |kv, state| {
                seen(&kv.key, kv.create_revision, &kv.value, state, false)
            });
        }
        _ => {}
    }
}

/// The state a range read: its own revision, or the header's for a read of the current state.
fn read_state(request: &RangeRequest, header_revision: Revision) -> Revision {
    if request.revision > 0 {
        request.revision
    } else {
        header_revision
    }
}

/// Calls `seen(kv, state)` for every key-value a branch's responses prove existed in `state`.
fn walk_branch(
    requests: &[RequestOp],
    responses: &[ResponseOp],
    seen: &mut impl FnMut(&KeyValue, Revision),
) {
    for (request, response) in requests.iter().zip(responses) {
        match (request, response) {
            // A nested txn reports header revision 0: nothing can be placed in time then.
            (RequestOp::Range(range_request), ResponseOp::Range(range))
                if range.header.revision > 0 =>
            {
                let state = read_state(range_request, range.header.revision);
                for kv in &range.kvs {
                    seen(kv, state);
                }
            }
            (RequestOp::Put(_), ResponseOp::Put(put)) if put.header.revision > 0 => {
                if let Some(prev) = &put.prev_kv {
                    seen(prev, put.header.revision - 1);
                }
            }
            (RequestOp::DeleteRange(_), ResponseOp::DeleteRange(delete))
                if delete.header.revision > 0 =>
            {
                for prev in &delete.prev_kvs {
                    seen(prev, delete.header.revision - 1);
                }
            }
            (RequestOp::Txn(txn), ResponseOp::Txn(reply)) => {
                let branch = if reply.succeeded {
                    &txn.success
                } else {
                    &txn.failure
                };
                walk_branch(branch, &reply.responses, seen);
            }
            _ => {}
        }
    }
}

/// `Some(c)` for `create_revision(key) == c` with `c > 0`.
fn create_revision_equal(compare: &Compare) -> Option<Revision> {
    match (&compare.result, &compare.target) {
        (CompareResult::Equal, CompareTarget::CreateRevision(created)) if *created > 0 => {
            Some(*created)
        }
        _ => None,
    }
}

/// The `(key, holder)` of a create-if-absent txn: `create_revision(key) == 0 → put(key, holder)`.
fn acquire_of<'a>(compare: &'a [Compare], success: &'a [RequestOp]) -> Option<(&'a str, &'a str)> {
    compare.iter().find_map(|c| {
        let absent =
            c.result == CompareResult::Equal && c.target == CompareTarget::CreateRevision(0);
        if !absent {
            return None;
        }
        success.iter().find_map(|request| match request {
            RequestOp::Put(put) if put.key == c.key => Some((c.key.as_str(), put.value.as_str())),
            _ => None,
        })
    })
}

/// The holder that wrote a protected value `<holder>#<n>` (the whole value without a `#`).
pub fn holder_of(value: &str) -> &str {
    value
        .split_once(HOLDER_SEPARATOR)
        .map_or(value, |(holder, _)| holder)
}

/// Distinct holders that ever acquired `key`, in name order (for reports and tests).
pub fn holders(history: &History<Op, Ret>, key: &str) -> BTreeSet<String> {
    let mut holders = BTreeSet::new();
    for op in &history.ops {
        if let (
            Op::Txn(txn),
            Outcome::Ok {
                output: Ret::Ok(Response::Txn(reply)),
            },
        ) = (&op.input, &op.outcome)
        {
            if reply.succeeded {
                if let Some((acquired, holder)) = acquire_of(&txn.compare, &txn.success) {
                    if acquired == key {
                        holders.insert(holder.to_string());
                    }
                }
            }
        }
    }
    holders
}
