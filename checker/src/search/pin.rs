//! Unknown-outcome writes that a later answer proves took effect, made answered before the
//! search (the register's counterpart of `observed_puts.rs`, through `Spec` tags).
//!
//! An unknown-outcome op may take effect at any point after its call, or never; the search
//! tries it last, so an unknown cas whose effect a later read shows is found only after every
//! order of the definite operations in between failed — on the hard register families, millions
//! of nodes. But when the value it writes is written by no other operation, an answered
//! operation that shows that value proves it took effect, and before that observer returned.
//!
//! Soundness (the rewritten history H' is linearizable iff H is): let U be an unknown-outcome op
//! with `Spec::written_tag` t, no other op of H (any outcome) have written tag t, and R be an
//! answered op with `Spec::observes_tag` t that is not valid in the initial state, with a return
//! time. H' makes U answered with `Spec::effect_ret(U)`, returning at the earliest return of
//! such an R.
//! - H ⇒ H': in a linearization L of H, R is valid where it stands, and not in the initial
//!   state, so the last op before R to change the state is a writer of t (`observes_tag`): U,
//!   which therefore took effect, changed the state and answered `effect_ret(U)`. L places U
//!   before R, and R before every op called after R returned, which is all the real-time order
//!   of H' adds.
//! - H' ⇒ H: H' only narrows what U may do; every linearization of H' is one of H.
//!
//! Checked against stateright's `LinearizabilityTester` in `tests/oracle.rs`.

use std::collections::BTreeMap;
use std::fmt::Debug;

use kvsim_model::Spec;

use crate::history::{Operation, Outcome};

/// The ops with every provably applied unknown-outcome write answered (see the module doc), or
/// `None` when there is none. Ids, clients and call times are kept, so reports still name the
/// recorded operations.
pub(super) fn pin_observed_writes<S>(
    ops: &[&Operation<S::Op, S::Ret>],
    init: &S,
) -> Option<Vec<Operation<S::Op, S::Ret>>>
where
    S: Spec,
    S::Op: Clone + Debug,
    S::Ret: Clone + Debug,
{
    let mut writers: BTreeMap<u128, usize> = BTreeMap::new();
    for op in ops {
        if let Some(tag) = S::written_tag(&op.input) {
            *writers.entry(tag).or_default() += 1;
        }
    }
    // Per tag: the earliest return of an answered op that observes it and is not valid in the
    // initial state (with its op id, so a writer never counts as its own observer).
    let mut observed_by: BTreeMap<u128, Vec<(u64, u64)>> = BTreeMap::new();
    for op in ops {
        let (Outcome::Ok { output }, Some(return_ns)) = (&op.outcome, op.return_ns) else {
            continue;
        };
        let Some(tag) = S::observes_tag(&op.input, output) else {
            continue;
        };
        if writers.get(&tag) == Some(&1) && init.step(&op.input, output).is_none() {
            observed_by.entry(tag).or_default().push((return_ns, op.id));
        }
    }
    let mut pinned: Option<Vec<Operation<S::Op, S::Ret>>> = None;
    for (index, op) in ops.iter().enumerate() {
        let Some(return_ns) = pin_time::<S>(op, &writers, &observed_by) else {
            continue;
        };
        let Some(output) = S::effect_ret(&op.input) else {
            continue;
        };
        let rewritten = pinned.get_or_insert_with(|| ops.iter().map(|op| (*op).clone()).collect());
        rewritten[index].outcome = Outcome::Ok { output };
        rewritten[index].return_ns = Some(return_ns);
    }
    pinned
}

/// The return time `op` gets if it is an unknown-outcome unique writer that some answer
/// observed: the earliest such answer's return, at or after `op`'s call (an observer that
/// returned before the call cannot follow it in any order: the verdict is "not linearizable"
/// either way, and the pin is left to the later observers).
fn pin_time<S>(
    op: &Operation<S::Op, S::Ret>,
    writers: &BTreeMap<u128, usize>,
    observed_by: &BTreeMap<u128, Vec<(u64, u64)>>,
) -> Option<u64>
where
    S: Spec,
    S::Op: Clone + Debug,
    S::Ret: Clone + Debug,
{
    if !matches!(op.outcome, Outcome::Unknown { .. }) {
        return None;
    }
    let tag = S::written_tag(&op.input)?;
    assert!(
        writers.get(&tag).is_some_and(|count| *count >= 1),
        "pin: an unknown write is counted among its tag's writers"
    );
    observed_by
        .get(&tag)?
        .iter()
        .filter(|(return_ns, id)| *id != op.id && *return_ns >= op.call_ns)
        .map(|(return_ns, _)| *return_ns)
        .min()
}
