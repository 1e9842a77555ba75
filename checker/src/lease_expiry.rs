//! Lease expiry as history operations.
//!
//! etcd's lessor may expire a lease (deleting its keys at one revision, exactly like a revoke)
//! at any moment from its TTL after the last renewal the leader processed, or later, or never
//! before the history ends. [`add_lease_expiries`] models that by appending, per lease, one
//! synthetic [`Op::LeaseExpire`] with an unknown outcome whose call time is a safe lower bound
//! of the earliest legal expiry: the search may then place the expiry anywhere after that bound
//! (or nowhere). Reasoning and soundness argument: docs/lease-expiry.md.

use std::collections::BTreeMap;

use kvsim_model::mvcc::{LeaseId, Op, Response, Ret};

use crate::history::{FaultEvent, History, Operation, Outcome};

/// The error string of synthetic expiry operations (reports show it).
pub const EXPIRY_NOTE: &str = "synthetic lease expiry";

const NS_PER_S: u64 = 1_000_000_000;

/// What the history tells about one lease id.
#[derive(Debug, Default)]
struct LeaseFacts {
    /// `call_ns` of each grant that may have created the lease (Ok, or unknown outcome).
    grant_calls_ns: Vec<u64>,
    /// Latest `call_ns` of a grant or keep-alive that returned Ok.
    renewed_call_ns_max: Option<u64>,
    /// Smallest TTL etcd reported granting (grant, keep-alive or time-to-live answers).
    granted_ttl_s: Option<i64>,
    /// Smallest TTL a grant asked for (used when no answer reports the granted one).
    requested_ttl_s: Option<i64>,
    already_has_expiry: bool,
}

/// Appends one synthetic `LeaseExpire` per lease that may exist (see the module doc), each on a
/// fresh client with a fresh op id (above all existing ones), outcome unknown, in lease id order.
/// Idempotent: leases that already have an expiry operation get no second one.
///
/// Bound used (all safe, i.e. never later than the earliest legal expiry):
/// - a lease granted once: `max(call_ns of Ok grants and Ok keep-alives) + TTL`, or the unknown
///   grant's `call_ns + TTL` when no grant returned Ok and no keep-alive succeeded;
/// - an id granted several times (reused after a revoke): one expiry per grant at that grant's
///   `call_ns + TTL`, ignoring keep-alives, which could belong to either incarnation;
/// - TTL: the smallest granted TTL any answer reports, else the smallest requested one (etcd
///   only ever raises a TTL, to its minimum).
///
/// Grants with id 0 whose outcome is unknown are skipped: etcd picked an id nobody learned, so
/// no later operation can refer to that lease, and its keys are only those of unknown puts.
pub fn add_lease_expiries(history: &mut History<Op, Ret>) {
    add_lease_expiries_with_clock_error(history, 0);
}

/// [`add_lease_expiries`] for a cluster whose lessor clocks may be off by up to
/// `clock_error_ns` from the history's time at any moment. etcd's lease safety assumes bounded
/// clock error: a leader whose clock jumped forward by `e` expires leases `e` early in real time,
/// which is etcd working as designed, not a bug. Each bound moves `clock_error_ns` earlier.
/// [`add_lease_expiries_under_faults`] is tighter where the history records its clock jumps.
pub fn add_lease_expiries_with_clock_error(history: &mut History<Op, Ret>, clock_error_ns: u64) {
    add_expiries(history, |_, _| clock_error_ns);
}

/// [`add_lease_expiries`] allowing, for each bound, only the clock jumps the history's fault
/// records show during that lease's life ([`ClockJumps::error_within_ns`]). What the verdict
/// uses: a bound moved by every jump of the run would leave most leases' expiries free to go
/// anywhere once one clock fault happened, which the search cannot afford and which hides
/// early expiries from the check.
pub fn add_lease_expiries_under_faults(history: &mut History<Op, Ret>) {
    let jumps = ClockJumps::of(&history.faults);
    add_expiries(history, |from_ns, until_ns| {
        jumps.error_within_ns(from_ns, until_ns)
    });
}

/// Appends the expiries; `clock_error_ns(from, until)` is the error to allow for a bound of
/// `until` set by a renewal at or after `from`.
fn add_expiries(history: &mut History<Op, Ret>, clock_error_ns: impl Fn(u64, u64) -> u64) {
    let leases = collect(&history.ops);
    let mut next_id = history.ops.iter().map(|op| op.id + 1).max().unwrap_or(0);
    let mut next_client = history
        .ops
        .iter()
        .map(|op| op.client + 1)
        .max()
        .unwrap_or(0);
    for (id, facts) in leases {
        if facts.already_has_expiry {
            continue;
        }
        for (from_ns, until_ns) in expiry_bounds_ns(&facts) {
            history.ops.push(Operation {
                id: next_id,
                client: next_client,
                call_ns: until_ns.saturating_sub(clock_error_ns(from_ns, until_ns)),
                return_ns: None,
                input: Op::LeaseExpire { id },
                outcome: Outcome::Unknown {
                    error: EXPIRY_NOTE.to_string(),
                },
            });
            next_id += 1;
            next_client += 1;
        }
    }
}

/// The largest clock error the history's fault records imply for any one node over the whole
/// run: the total variation of its skew (every jump counts, a jump back to 0 included), because a
/// lease deadline set under one clock reading may be compared under another. Records carry the
/// new offset as `detail.skew_ms`; a `heal_all` sets every skewed node back to 0.
pub fn clock_error_ns(faults: &[FaultEvent]) -> u64 {
    ClockJumps::of(faults).error_within_ns(0, u64::MAX)
}

/// Every jump of a node's lessor clock the history's fault records show, in record order: what
/// a lease's expiry bound must allow for. Only jumps *during* a lease's life can make its
/// lessor expire it early in real time; a clock that is off but steady from the renewal to the
/// expiry measures the TTL exactly (`error_within_ns`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClockJumps {
    /// (record time, node, size of the jump) — every entry's size is above 0.
    jumps: Vec<(u64, String, u64)>,
}

impl ClockJumps {
    /// Reads `clock_skew` records (`detail.skew_ms` is the node's new offset) and `heal_all`
    /// records (every node whose offset is not 0 goes back to 0).
    pub fn of(faults: &[FaultEvent]) -> Self {
        let mut offset_ms: BTreeMap<&str, i64> = BTreeMap::new();
        let mut jumps = Vec::new();
        for fault in faults {
            match fault.kind.as_str() {
                "clock_skew" => {
                    let Some(skew_ms) = fault
                        .detail
                        .get("skew_ms")
                        .and_then(serde_json::Value::as_i64)
                    else {
                        continue;
                    };
                    for node in &fault.nodes {
                        let current_ms = offset_ms.entry(node.as_str()).or_insert(0);
                        let jump_ms = current_ms.abs_diff(skew_ms);
                        *current_ms = skew_ms;
                        if jump_ms > 0 {
                            jumps.push((fault.t_ns, node.clone(), jump_ms * NS_PER_MS));
                        }
                    }
                }
                "heal_all" => {
                    for (node, current_ms) in &mut offset_ms {
                        if *current_ms != 0 {
                            let jump_ms = current_ms.unsigned_abs();
                            *current_ms = 0;
                            jumps.push((fault.t_ns, (*node).to_string(), jump_ms * NS_PER_MS));
                        }
                    }
                }
                _ => {}
            }
        }
        Self { jumps }
    }

    /// The largest total of one node's clock jumps recorded in `[from_ns - JUMP_RECORD_SLACK_NS,
    /// until_ns]`: how much earlier in real time than `until_ns` a lease can expire whose
    /// deadline was set (by a leader's lessor processing a renewal) at or after `from_ns` and
    /// that would expire at `until_ns` under a steady clock.
    ///
    /// Why only that window: a lessor whose clock reads `t + off(t)` sets the deadline
    /// `r + off(r) + TTL` when it processes the renewal at `r`, and expires the lease at the first
    /// `e` with `e + off(e) >= r + off(r) + TTL`, i.e. `e >= r + TTL - (off(e) - off(r))`. For
    /// `e < until_ns = from_ns + TTL`, with `r >= from_ns`, only the jumps of `off` between `r`
    /// and `e` count, all inside the window. A new leader only extends deadlines (etcd's
    /// `Promote` sets now + TTL + one election timeout on its own clock), which the same
    /// argument bounds from its promotion on.
    pub fn error_within_ns(&self, from_ns: u64, until_ns: u64) -> u64 {
        let from_ns = from_ns.saturating_sub(JUMP_RECORD_SLACK_NS);
        let mut per_node: BTreeMap<&str, u64> = BTreeMap::new();
        for (t_ns, node, jump_ns) in &self.jumps {
            if (from_ns..=until_ns).contains(t_ns) {
                *per_node.entry(node.as_str()).or_insert(0) += jump_ns;
            }
        }
        per_node.into_values().max().unwrap_or(0)
    }
}

/// The nemesis records a clock jump at the virtual instant it applies it; a millisecond of margin
/// keeps the window safe should a recorder ever stamp the record a little after the jump.
const JUMP_RECORD_SLACK_NS: u64 = 1_000_000;
const NS_PER_MS: u64 = 1_000_000;

fn collect(ops: &[Operation<Op, Ret>]) -> BTreeMap<LeaseId, LeaseFacts> {
    let mut leases: BTreeMap<LeaseId, LeaseFacts> = BTreeMap::new();
    for op in ops {
        let answer = match &op.outcome {
            Outcome::Ok {
                output: Ret::Ok(response),
            } => Some(response),
            Outcome::Ok {
                output: Ret::Err(_),
            }
            | Outcome::Fail { .. } => continue,
            Outcome::Unknown { .. } => None,
        };
        match (&op.input, answer) {
            (Op::LeaseGrant { id, ttl_s }, answer) => {
                let id = match answer {
                    Some(Response::LeaseGrant { id: granted_id, .. }) if *id == 0 => *granted_id,
                    _ => *id,
                };
                if id == 0 {
                    continue;
                }
                let facts = leases.entry(id).or_default();
                facts.grant_calls_ns.push(op.call_ns);
                facts.requested_ttl_s =
                    Some(facts.requested_ttl_s.map_or(*ttl_s, |t| t.min(*ttl_s)));
                if let Some(Response::LeaseGrant { ttl_s: granted, .. }) = answer {
                    facts.note_granted(*granted);
                    facts.note_renewal(op.call_ns);
                }
            }
            (Op::LeaseKeepAlive { id }, Some(Response::LeaseKeepAlive { ttl_s, .. })) => {
                let facts = leases.entry(*id).or_default();
                facts.note_granted(*ttl_s);
                facts.note_renewal(op.call_ns);
            }
            (
                Op::LeaseTimeToLive { id, .. },
                Some(Response::LeaseTimeToLive { granted_ttl_s, .. }),
            ) if *granted_ttl_s > 0 => {
                leases.entry(*id).or_default().note_granted(*granted_ttl_s);
            }
            (Op::LeaseExpire { id }, _) => leases.entry(*id).or_default().already_has_expiry = true,
            _ => {}
        }
    }
    leases
}

impl LeaseFacts {
    fn note_granted(&mut self, ttl_s: i64) {
        self.granted_ttl_s = Some(self.granted_ttl_s.map_or(ttl_s, |t| t.min(ttl_s)));
    }

    fn note_renewal(&mut self, call_ns: u64) {
        self.renewed_call_ns_max =
            Some(self.renewed_call_ns_max.map_or(call_ns, |t| t.max(call_ns)));
    }
}

/// The expiry operations for one lease (none if it was never granted): for each, the call time of
/// the renewal (or grant) it counts from and the bound under a steady clock, that time + TTL.
fn expiry_bounds_ns(facts: &LeaseFacts) -> Vec<(u64, u64)> {
    let Some(ttl_s) = facts.granted_ttl_s.or(facts.requested_ttl_s) else {
        return Vec::new();
    };
    // A non-positive TTL is raised by etcd; 0 is the safe bound for it.
    let ttl_ns = u64::try_from(ttl_s).unwrap_or(0).saturating_mul(NS_PER_S);
    match facts.grant_calls_ns.as_slice() {
        [] => Vec::new(),
        [grant_call_ns] => {
            let from_ns = facts
                .renewed_call_ns_max
                .unwrap_or(*grant_call_ns)
                .max(*grant_call_ns);
            vec![(from_ns, from_ns.saturating_add(ttl_ns))]
        }
        several => several
            .iter()
            .map(|&call_ns| (call_ns, call_ns.saturating_add(ttl_ns)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvsim_model::mvcc::{EtcdError, PutRequest, ResponseHeader};

    fn op(
        id: u64,
        client: u64,
        call_ns: u64,
        return_ns: Option<u64>,
        input: Op,
        outcome: Outcome<Ret>,
    ) -> Operation<Op, Ret> {
        Operation {
            id,
            client,
            call_ns,
            return_ns,
            input,
            outcome,
        }
    }
    fn ok(response: Response) -> Outcome<Ret> {
        Outcome::Ok {
            output: Ret::Ok(response),
        }
    }
    fn unknown() -> Outcome<Ret> {
        Outcome::Unknown {
            error: "timeout".into(),
        }
    }
    fn granted(id: LeaseId, ttl_s: i64) -> Response {
        Response::LeaseGrant {
            header: ResponseHeader { revision: 1 },
            id,
            ttl_s,
        }
    }
    fn kept(id: LeaseId, ttl_s: i64) -> Response {
        Response::LeaseKeepAlive {
            header: ResponseHeader { revision: 1 },
            id,
            ttl_s,
        }
    }
    fn expiries(history: &History<Op, Ret>) -> Vec<(LeaseId, u64, u64, u64)> {
        history
            .ops
            .iter()
            .filter_map(|o| match o.input {
                Op::LeaseExpire { id } => Some((id, o.call_ns, o.id, o.client)),
                _ => None,
            })
            .collect()
    }
    const S: u64 = NS_PER_S;

    #[test]
    fn bound_is_last_ok_renewal_call_plus_granted_ttl() {
        let mut h = History::default();
        // Asked 1 s, etcd granted its minimum 2 s: the answer's TTL is the one used.
        h.ops.push(op(
            0,
            0,
            10,
            Some(20),
            Op::LeaseGrant { id: 5, ttl_s: 1 },
            ok(granted(5, 2)),
        ));
        h.ops.push(op(
            1,
            0,
            3 * S,
            Some(3 * S + 5),
            Op::LeaseKeepAlive { id: 5 },
            ok(kept(5, 2)),
        ));
        // An unknown keep-alive does not move the bound (the open-ended expiry covers it), nor
        // does a failed one.
        h.ops.push(op(
            2,
            1,
            4 * S,
            None,
            Op::LeaseKeepAlive { id: 5 },
            unknown(),
        ));
        h.ops.push(op(
            3,
            2,
            5 * S,
            Some(6 * S),
            Op::LeaseKeepAlive { id: 5 },
            Outcome::Ok {
                output: Ret::Err(EtcdError::LeaseNotFound),
            },
        ));
        add_lease_expiries(&mut h);
        assert_eq!(expiries(&h), vec![(5, 5 * S, 4, 3)]);
        let synthetic = h.ops.last().unwrap();
        assert_eq!(synthetic.return_ns, None);
        assert!(matches!(&synthetic.outcome, Outcome::Unknown { error } if error == EXPIRY_NOTE));
    }

    #[test]
    fn unknown_grants_use_their_call_and_the_requested_ttl() {
        let mut h = History::default();
        h.ops.push(op(
            7,
            3,
            100,
            None,
            Op::LeaseGrant { id: 9, ttl_s: 4 },
            unknown(),
        ));
        add_lease_expiries(&mut h);
        assert_eq!(expiries(&h), vec![(9, 100 + 4 * S, 8, 4)]);
    }

    #[test]
    fn failed_grants_and_id_zero_unknowns_add_nothing_and_it_is_idempotent() {
        let mut h = History::default();
        h.ops.push(op(
            0,
            0,
            0,
            Some(1),
            Op::LeaseGrant { id: 1, ttl_s: 4 },
            Outcome::Fail {
                error: "refused".into(),
            },
        ));
        h.ops.push(op(
            1,
            1,
            0,
            Some(1),
            Op::LeaseGrant { id: 2, ttl_s: 4 },
            Outcome::Ok {
                output: Ret::Err(EtcdError::LeaseExists),
            },
        ));
        h.ops.push(op(
            2,
            2,
            0,
            None,
            Op::LeaseGrant { id: 0, ttl_s: 4 },
            unknown(),
        ));
        h.ops.push(op(
            3,
            3,
            0,
            Some(1),
            Op::LeaseGrant { id: 0, ttl_s: 4 },
            ok(granted(77, 4)),
        ));
        h.ops.push(op(
            4,
            4,
            2,
            Some(3),
            Op::Put(PutRequest {
                key: "k".into(),
                value: "v".into(),
                lease: 77,
                ..Default::default()
            }),
            unknown(),
        ));
        add_lease_expiries(&mut h);
        assert_eq!(expiries(&h), vec![(77, 4 * S, 5, 5)]);
        let len = h.ops.len();
        add_lease_expiries(&mut h);
        assert_eq!(h.ops.len(), len);
    }

    #[test]
    fn a_reused_id_gets_one_expiry_per_grant() {
        let mut h = History::default();
        h.ops.push(op(
            0,
            0,
            0,
            Some(1),
            Op::LeaseGrant { id: 3, ttl_s: 2 },
            ok(granted(3, 2)),
        ));
        h.ops.push(op(
            1,
            0,
            5 * S,
            Some(5 * S + 1),
            Op::LeaseKeepAlive { id: 3 },
            ok(kept(3, 2)),
        ));
        h.ops.push(op(
            2,
            0,
            6 * S,
            Some(6 * S + 1),
            Op::LeaseRevoke { id: 3 },
            ok(Response::LeaseRevoke {
                header: ResponseHeader { revision: 1 },
            }),
        ));
        h.ops.push(op(
            3,
            0,
            7 * S,
            Some(7 * S + 1),
            Op::LeaseGrant { id: 3, ttl_s: 2 },
            ok(granted(3, 2)),
        ));
        add_lease_expiries(&mut h);
        assert_eq!(expiries(&h), vec![(3, 2 * S, 4, 1), (3, 9 * S, 5, 2)]);
    }
}

#[cfg(test)]
mod clock_error_tests {
    use super::*;

    const S: u64 = NS_PER_S;

    fn skew(node: &str, skew_ms: i64) -> FaultEvent {
        FaultEvent {
            t_ns: 0,
            kind: "clock_skew".into(),
            nodes: vec![node.into()],
            detail: serde_json::json!({ "skew_ms": skew_ms }),
        }
    }

    #[test]
    fn the_error_within_a_window_counts_only_that_windows_jumps() {
        let mut faults = vec![skew("n1", 500), skew("n1", 0), skew("n2", 300)];
        faults[0].t_ns = 10 * S;
        faults[1].t_ns = 12 * S;
        faults[2].t_ns = 30 * S;
        let jumps = ClockJumps::of(&faults);
        // Before, between and after: nothing, one jump, the other node.
        assert_eq!(jumps.error_within_ns(0, 9 * S), 0);
        assert_eq!(jumps.error_within_ns(11 * S, 13 * S), 500_000_000);
        assert_eq!(jumps.error_within_ns(9 * S, 13 * S), 1_000_000_000);
        assert_eq!(jumps.error_within_ns(13 * S, 29 * S), 0);
        assert_eq!(jumps.error_within_ns(13 * S, 31 * S), 300_000_000);
        // A jump recorded at the window's start counts (and one a hair before it).
        assert_eq!(jumps.error_within_ns(10 * S, 11 * S), 500_000_000);
        assert_eq!(jumps.error_within_ns(10 * S + 1, 11 * S), 500_000_000);
    }

    #[test]
    fn heal_all_puts_every_skewed_clock_back_and_that_is_a_jump() {
        let mut faults = vec![
            skew("n1", -700),
            FaultEvent {
                t_ns: 30 * S,
                kind: "heal_all".into(),
                nodes: vec!["n1".into(), "n2".into(), "n3".into()],
                detail: serde_json::Value::Null,
            },
        ];
        faults[0].t_ns = 29 * S;
        let jumps = ClockJumps::of(&faults);
        assert_eq!(
            jumps.error_within_ns(29 * S + 500_000_000, 31 * S),
            700_000_000
        );
        assert_eq!(clock_error_ns(&faults), 1_400_000_000);
    }

    #[test]
    fn each_expiry_bound_allows_only_its_own_lifes_jumps() {
        use kvsim_model::mvcc::{Response, ResponseHeader};
        let grant = |id, call_ns| Operation {
            id: id as u64,
            client: id as u64,
            call_ns,
            return_ns: Some(call_ns + 1),
            input: Op::LeaseGrant { id, ttl_s: 2 },
            outcome: Outcome::Ok {
                output: Ret::Ok(Response::LeaseGrant {
                    header: ResponseHeader { revision: 1 },
                    id,
                    ttl_s: 2,
                }),
            },
        };
        let mut h = History {
            ops: vec![grant(1, 0), grant(2, 10 * S)],
            ..History::default()
        };
        let mut jump = skew("n3", 400);
        jump.t_ns = S;
        h.faults = vec![jump];
        add_lease_expiries_under_faults(&mut h);
        let calls: Vec<(Op, u64)> = h
            .ops
            .iter()
            .filter(|op| matches!(op.input, Op::LeaseExpire { .. }))
            .map(|op| (op.input.clone(), op.call_ns))
            .collect();
        assert_eq!(
            calls,
            vec![
                (Op::LeaseExpire { id: 1 }, 2 * S - 400_000_000),
                (Op::LeaseExpire { id: 2 }, 12 * S),
            ]
        );
    }

    #[test]
    fn clock_error_is_the_largest_total_variation_of_one_node() {
        assert_eq!(clock_error_ns(&[]), 0);
        // n1: 0 → -239 → 0 is two jumps of 239 ms; n2 jumps once by 300 ms.
        let faults = [skew("n1", -239), skew("n2", 300), skew("n1", 0)];
        assert_eq!(clock_error_ns(&faults), 478_000_000);
    }
}
