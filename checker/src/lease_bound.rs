//! Lease lifetimes judged by direct observation, both ends:
//! - `lease.expired_late`: a lease nobody renews must be gone soon after its TTL;
//! - `lease.expired_early`: a lease must not be gone before its TTL has run from its last renewal,
//!   unless someone revoked it (see [`check_early_expiries`]).
//!
//! The linearizability search bounds lease expiry from below only (`lease_expiry`: an expiry is
//! never placed before the last renewal plus TTL), and an expiry that never happens is legal for
//! any single history. This checker bounds it from above, by direct observation: once a lease's
//! deadline has long passed in a stretch where the cluster was whole, no successful operation
//! may still see the lease alive.
//!
//! For a lease `L`, an observation `O` that shows `L` alive (an Ok linearizable range whose kvs
//! carry lease `L`, an Ok put attached to `L`, an Ok keep-alive or time-to-live answer for `L`) is a
//! violation when, with `base` the latest return of an Ok grant or keep-alive of `L` that could
//! have been processed before `O` (called before `O` returned):
//!
//! `O.call_ns > max(base, W + settle + election timeout) + TTL + slack + clock_error`, where the
//! cluster was whole (no crash, pause, partition or packet loss in force) from `W` (the start of
//! that whole stretch: the run's start or the last heal) until `O`'s call, and `base ≥ W`.
//!
//! Why each term makes the rule sound (a legal history is never flagged):
//! - etcd sets a lease's deadline when the leader processes a grant or keep-alive, at or before
//!   the request's return: `base + TTL` is no earlier than the real deadline.
//! - `slack`: the lessor notices a passed deadline on its next check, proposes the revoke through
//!   Raft and retries a lost proposal (kvsim's simulated lessor after one second; etcd's every
//!   500 ms): [`DurabilityOptions::lease_expiry_slack_ns`].
//! - `W + settle + election timeout`: a new leader extends every lease (`Promote`: now + TTL +
//!   one election timeout). Leaders change only under faults, and after a heal (or the run's
//!   start) the cluster elects within the liveness bound (`settle`): no promotion inside a whole
//!   stretch comes later than `W + settle`, nor extends past one election timeout after that.
//! - `clock_error`: a leader whose lessor clock jumps back expires late in real time by as much;
//!   only the jumps between the renewal (or the window's start, for a promotion) and `O.call`
//!   count ([`crate::lease_expiry::ClockJumps::error_within_ns`]; a steady offset measures the
//!   TTL exactly).
//! - A lease granted more than once (an id reused), or with a grant or keep-alive whose outcome is
//!   unknown (processed at a time nobody knows), is not judged.
//! - Serializable and historic ranges are not observations: they may show a past state.
//!
//! A time-to-live answer is judged on its own as well: the time left it reports must not exceed
//! the granted TTL + one election timeout (+ the lessor clock's jumps back), the furthest ahead any
//! grant, keep-alive or promotion sets a deadline ([`remaining_beyond_bound`]). That needs no
//! whole stretch, and it sees a late lessor at the first time-to-live after a renewal, not only
//! once the deadline has long passed.
//!
//! Leases attached to no key and never asked about are invisible, so a lessor that never expires
//! anything is caught only where clients look (the `leases` and `recipes` scenarios read, renew and
//! ask time-to-live of their leases).

use std::collections::BTreeMap;

use kvsim_model::mvcc::{EtcdError, LeaseId, Op, Response, Ret};

use crate::durability::{whole_windows, DurabilityOptions};
use crate::history::{History, OpId, Operation, Outcome};
use crate::lease_expiry::ClockJumps;
use crate::property::{Property, PropertyViolation};

const NS_PER_S: u64 = 1_000_000_000;

/// What the history says about one lease id.
#[derive(Debug, Default)]
struct Lease {
    grants: usize,
    /// An Ok grant or keep-alive: (call_ns, return_ns, op id).
    renewals: Vec<(u64, u64, OpId)>,
    /// A grant or keep-alive with an unknown outcome: the lease is not judged.
    renewal_unknown: bool,
    /// The largest TTL any request or answer names (the upper bound needs the longest one).
    ttl_s_max: i64,
    /// Ok operations that show the lease alive: (call_ns, return_ns, op id).
    alive: Vec<(u64, u64, OpId)>,
    /// The smallest TTL etcd reported granting or renewing with (the lower bound needs the
    /// shortest one); 0 until one is reported.
    ttl_s_min: i64,
    /// Answers that the lease does not exist (a time-to-live with granted TTL 0, or `LeaseNotFound` from a
    /// keep-alive, a put attached to it or a time-to-live): (call_ns, return_ns, op id, what).
    gone: Vec<(u64, u64, OpId, &'static str)>,
    /// `call_ns` of every revoke of the lease, whatever its outcome.
    revoke_calls_ns: Vec<u64>,
    /// Ok time-to-live answers for a live lease: (call_ns, return_ns, op id, remaining ttl_s,
    /// granted_ttl_s).
    remaining: Vec<(u64, u64, OpId, i64, i64)>,
    /// The earliest call of a grant of this id, whatever its outcome: no deadline is set before.
    first_grant_call_ns: Option<u64>,
}

impl Lease {
    fn note_grant_call(&mut self, call_ns: u64) {
        self.first_grant_call_ns =
            Some(self.first_grant_call_ns.map_or(call_ns, |t| t.min(call_ns)));
    }

    fn report_ttl(&mut self, ttl_s: i64) {
        if ttl_s > 0 {
            self.ttl_s_min = if self.ttl_s_min == 0 {
                ttl_s
            } else {
                self.ttl_s_min.min(ttl_s)
            };
        }
    }
}

/// Every `lease.expired_early` violation in `history` (at most one per lease: the first).
///
/// An answer `O` that lease `L` does not exist is a violation when an Ok grant or keep-alive `R`
/// of `L` returned before `O` was called, no revoke of `L` was called before `O` returned, and
/// `O` returned before `R.call + TTL - clock_error`.
///
/// Sound (a legal history is never flagged): etcd sets the deadline when the leader processes
/// `R`, at or after `R.call`, to that time plus the TTL; a new leader only extends deadlines
/// (`Promote`: now + TTL + one election timeout); a lessor clock that jumps by a total of `e`
/// between `R.call` and `R.call + TTL` expires up to `e` early in real time
/// ([`ClockJumps::error_within_ns`]; a steady offset measures the TTL exactly). So without a
/// revoke, `L` exists until at least
/// `R.call + TTL - e`, and `O`, which began after `R` ended, saw it gone before. A lease granted
/// more than once (an id reused) is not judged. The linearizability search bounds expiry the
/// same way (`lease_expiry`), so every finding here is also a linearizability violation; this
/// checker names it. Real etcd before 3.4.31 / 3.5.13 does it after a leader pause (etcd#15247:
/// the resumed leader's lessor revokes leases its successor renewed).
pub fn check_early_expiries(history: &History<Op, Ret>) -> Vec<PropertyViolation> {
    let leases = collect(&history.ops);
    let jumps = ClockJumps::of(&history.faults);
    let mut out = Vec::new();
    for (id, lease) in leases {
        if lease.grants != 1 || lease.ttl_s_min <= 0 {
            continue;
        }
        let ttl_ns = u64::try_from(lease.ttl_s_min).unwrap_or(0) * NS_PER_S;
        for &(call_ns, return_ns, op, what) in &lease.gone {
            if lease
                .revoke_calls_ns
                .iter()
                .any(|&revoke| revoke < return_ns)
            {
                continue;
            }
            let Some(&(renewal_call_ns, renewal_return_ns, renewal)) = lease
                .renewals
                .iter()
                .filter(|&&(_, renewal_return_ns, _)| renewal_return_ns < call_ns)
                .max_by_key(|&&(renewal_call_ns, _, _)| renewal_call_ns)
            else {
                continue;
            };
            let clock_error = jumps.error_within_ns(renewal_call_ns, renewal_call_ns + ttl_ns);
            let earliest_ns = (renewal_call_ns + ttl_ns).saturating_sub(clock_error);
            if return_ns >= earliest_ns {
                continue;
            }
            let message = format!(
                "lease {id} (TTL {} s) was renewed by op {renewal} (called at {:.3} s, returned at \
                 {:.3} s), so it exists until at least {:.3} s{}, and nobody revoked it; but op {op} \
                 ({what}, called at {:.3} s) answered by {:.3} s that it does not exist",
                lease.ttl_s_min,
                renewal_call_ns as f64 / 1e9,
                renewal_return_ns as f64 / 1e9,
                earliest_ns as f64 / 1e9,
                clock_error_note(" (TTL - ", clock_error, ")"),
                call_ns as f64 / 1e9,
                return_ns as f64 / 1e9,
            );
            out.push(
                PropertyViolation::new(Property::LeaseExpiredEarly, message)
                    .with_ops([renewal, op])
                    .with_time(return_ns),
            );
            break;
        }
    }
    out
}

/// Every `lease.expired_late` violation in `history` (at most one per lease: a time-to-live
/// answer beyond [`remaining_beyond_bound`], else the first late observation).
pub fn check_lease_bounds(
    history: &History<Op, Ret>,
    opts: &DurabilityOptions,
) -> Vec<PropertyViolation> {
    let leases = collect(&history.ops);
    let windows = whole_windows(&history.faults);
    let jumps = ClockJumps::of(&history.faults);
    let slack = opts.lease_expiry_slack_ns();
    let settle = opts.liveness_bound_ns;
    let election_timeout = opts.election_timeout_ns();
    let mut out = Vec::new();
    // etcd spreads the expiries of a new leader's leases when it holds at least
    // `leaseRevokeRate` (1,000) of them (`Promote` then refreshes some by more than one election
    // timeout); below that, every deadline is at most TTL + one election timeout ahead.
    let spread_possible = leases.len() >= ETCD_LEASE_REVOKE_RATE;
    for (id, lease) in leases {
        let remaining = (!spread_possible)
            .then(|| remaining_beyond_bound(id, &lease, &jumps, election_timeout))
            .flatten();
        if let Some(violation) = remaining {
            out.push(violation);
            continue;
        }
        if lease.grants != 1 || lease.renewal_unknown || lease.ttl_s_max <= 0 {
            continue;
        }
        let ttl_ns = u64::try_from(lease.ttl_s_max).unwrap_or(0) * NS_PER_S;
        for &(call_ns, return_ns, op) in &lease.alive {
            let Some(&(renewal_call_ns, base_ns, renewal)) = lease
                .renewals
                .iter()
                .filter(|&&(renewal_call_ns, _, renewal)| {
                    renewal_call_ns < return_ns && renewal != op
                })
                .max_by_key(|&&(_, renewal_return_ns, _)| renewal_return_ns)
            else {
                continue;
            };
            // The whole stretch `base` lies in; a promotion inside it can only come from the
            // election that follows its start (within `settle`), and extends to one election
            // timeout past that.
            let Some(window) = windows.iter().find(|window| {
                window.from_ns <= base_ns && window.until_ns.is_none_or(|until| until > call_ns)
            }) else {
                continue;
            };
            // Only the clock jumps between the deadline's setting (the renewal, or a promotion
            // inside the window) and the observation can make the lessor late.
            let clock_error = jumps.error_within_ns(renewal_call_ns.min(window.from_ns), call_ns);
            let promoted_by_ns = window
                .from_ns
                .saturating_add(settle)
                .saturating_add(election_timeout);
            let deadline_ns = base_ns
                .max(promoted_by_ns)
                .saturating_add(ttl_ns)
                .saturating_add(slack)
                .saturating_add(clock_error);
            if call_ns <= deadline_ns {
                continue;
            }
            let message = format!(
                "lease {id} (TTL {} s) was last renewed by op {renewal} (returned at {:.3} s); \
                 with the cluster whole since {:.3} s (settled by {:.3} s) it should have expired \
                 by {:.3} s (TTL + {:.1} s slack{}), but op {op} called at {:.3} s still saw it alive",
                lease.ttl_s_max,
                base_ns as f64 / 1e9,
                window.from_ns as f64 / 1e9,
                promoted_by_ns as f64 / 1e9,
                deadline_ns as f64 / 1e9,
                slack as f64 / 1e9,
                clock_error_note(" + ", clock_error, ""),
                call_ns as f64 / 1e9,
            );
            out.push(
                PropertyViolation::new(Property::LeaseExpiredLate, message)
                    .with_ops([renewal, op])
                    .with_time(deadline_ns),
            );
            break;
        }
    }
    out
}

/// `{before}{clock error} s clock error{after}` in a message, or nothing without a clock error.
fn clock_error_note(before: &str, clock_error_ns: u64, after: &str) -> String {
    if clock_error_ns == 0 {
        return String::new();
    }
    format!(
        "{before}{:.3} s clock error{after}",
        clock_error_ns as f64 / 1e9
    )
}

/// etcd's `leaseRevokeRate`: the number of leases from which a promotion spreads their expiries.
const ETCD_LEASE_REVOKE_RATE: usize = 1_000;

/// The first time-to-live answer of `lease` that reports more time left than any deadline etcd
/// sets: a lessor sets a deadline at most TTL + one election timeout ahead of its own clock (a
/// grant or keep-alive: now + TTL; a promotion: now + TTL + one election timeout), and the time
/// left only shrinks from then on, except by the lessor clock's jumps back between the setting
/// (no earlier than the lease's first grant call) and the answer (no later than its return). So `remaining ≤ granted TTL + election timeout + clock error`,
/// whatever the faults, the renewals of unknown outcome or the ids granted twice. etcd truncates
/// the time left to whole seconds, which only lowers it. A lessor whose deadlines lie too far
/// ahead expires late: this catches it as soon as someone asks, with no whole stretch needed.
fn remaining_beyond_bound(
    id: LeaseId,
    lease: &Lease,
    jumps: &ClockJumps,
    election_timeout_ns: u64,
) -> Option<PropertyViolation> {
    let from_ns = lease.first_grant_call_ns.unwrap_or(0);
    lease
        .remaining
        .iter()
        .find_map(|&(call_ns, return_ns, op, remaining_s, granted_ttl_s)| {
            let remaining_ns = u64::try_from(remaining_s).ok()?.saturating_mul(NS_PER_S);
            let clock_error = jumps.error_within_ns(from_ns, return_ns);
            let bound_ns = u64::try_from(granted_ttl_s)
                .ok()?
                .saturating_mul(NS_PER_S)
                .saturating_add(election_timeout_ns)
                .saturating_add(clock_error);
            (remaining_ns > bound_ns).then(|| {
                let message = format!(
                    "lease {id} (TTL {granted_ttl_s} s): op {op}, a time-to-live called at {:.3} s, \
                     answered {remaining_s} s left, but no grant, keep-alive or promotion sets a \
                     deadline more than TTL + one election timeout ({:.1} s){} ahead: the lessor \
                     would expire it late",
                    call_ns as f64 / 1e9,
                    election_timeout_ns as f64 / 1e9,
                    clock_error_note(" + ", clock_error, ""),
                );
                PropertyViolation::new(Property::LeaseExpiredLate, message)
                    .with_ops([op])
                    .with_time(call_ns)
            })
        })
}

fn collect(ops: &[Operation<Op, Ret>]) -> BTreeMap<LeaseId, Lease> {
    let mut leases: BTreeMap<LeaseId, Lease> = BTreeMap::new();
    for op in ops {
        if let Op::LeaseGrant { id, .. } = &op.input {
            // An id-0 grant names its lease only in its answer (recorded below).
            if *id != 0 {
                leases.entry(*id).or_default().note_grant_call(op.call_ns);
            }
        }
        if let Op::LeaseRevoke { id } = &op.input {
            leases
                .entry(*id)
                .or_default()
                .revoke_calls_ns
                .push(op.call_ns);
        }
        let response = match &op.outcome {
            Outcome::Ok {
                output: Ret::Ok(response),
            } => Some(response),
            Outcome::Ok {
                output: Ret::Err(EtcdError::LeaseNotFound),
            } => {
                let named = match &op.input {
                    Op::LeaseKeepAlive { id } => Some((*id, "a keep-alive")),
                    Op::LeaseTimeToLive { id, .. } => Some((*id, "a time-to-live")),
                    Op::Put(put) if put.lease != 0 => Some((put.lease, "a put attached to it")),
                    _ => None,
                };
                if let (Some((id, what)), Some(return_ns)) = (named, op.return_ns) {
                    let gone = (op.call_ns, return_ns, op.id, what);
                    leases.entry(id).or_default().gone.push(gone);
                }
                continue;
            }
            Outcome::Ok {
                output: Ret::Err(_),
            }
            | Outcome::Fail { .. } => continue,
            Outcome::Unknown { .. } => None,
        };
        let Some(return_ns) = op.return_ns.filter(|_| response.is_some()) else {
            // Unknown outcome: only grants and keep-alives matter (they may renew).
            match &op.input {
                Op::LeaseGrant { id, .. } if *id != 0 => {
                    let lease = leases.entry(*id).or_default();
                    lease.grants += 1;
                    lease.renewal_unknown = true;
                }
                Op::LeaseKeepAlive { id } => leases.entry(*id).or_default().renewal_unknown = true,
                _ => {}
            }
            continue;
        };
        let timing = (op.call_ns, return_ns, op.id);
        match (&op.input, response) {
            (
                Op::LeaseGrant { ttl_s, .. },
                Some(Response::LeaseGrant {
                    id, ttl_s: granted, ..
                }),
            ) => {
                let lease = leases.entry(*id).or_default();
                lease.note_grant_call(op.call_ns);
                lease.grants += 1;
                lease.renewals.push(timing);
                lease.ttl_s_max = lease.ttl_s_max.max(*ttl_s).max(*granted);
                lease.report_ttl(*granted);
            }
            (Op::LeaseKeepAlive { id }, Some(Response::LeaseKeepAlive { ttl_s, .. })) => {
                let lease = leases.entry(*id).or_default();
                lease.renewals.push(timing);
                lease.alive.push(timing);
                lease.ttl_s_max = lease.ttl_s_max.max(*ttl_s);
                lease.report_ttl(*ttl_s);
            }
            (
                Op::LeaseTimeToLive { id, .. },
                Some(Response::LeaseTimeToLive {
                    ttl_s,
                    granted_ttl_s,
                    ..
                }),
            ) => {
                let lease = leases.entry(*id).or_default();
                if *ttl_s >= 0 {
                    lease.alive.push(timing);
                    if *granted_ttl_s > 0 {
                        lease.remaining.push((
                            op.call_ns,
                            return_ns,
                            op.id,
                            *ttl_s,
                            *granted_ttl_s,
                        ));
                    }
                }
                // etcd answers a missing lease with TTL -1 and granted TTL 0; an existing lease
                // past its deadline (revoke not applied yet) may also report -1, with its TTL.
                if *granted_ttl_s == 0 {
                    lease
                        .gone
                        .push((op.call_ns, return_ns, op.id, "a time-to-live"));
                } else {
                    lease.report_ttl(*granted_ttl_s);
                }
            }
            (Op::Put(put), Some(Response::Put(_))) if put.lease != 0 => {
                leases.entry(put.lease).or_default().alive.push(timing);
            }
            (Op::Range(range), Some(Response::Range(answer)))
                if !range.serializable && range.revision == 0 =>
            {
                for kv in answer.kvs.iter().filter(|kv| kv.lease != 0) {
                    leases.entry(kv.lease).or_default().alive.push(timing);
                }
            }
            _ => {}
        }
    }
    for lease in leases.values_mut() {
        lease.alive.sort_unstable();
        lease.alive.dedup();
    }
    leases
}
