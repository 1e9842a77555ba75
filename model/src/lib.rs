//! Sequential specifications that kvsim's checkers judge histories against.
//!
//! Each model is a [`stateright::semantics::SequentialSpec`]: the spec value *is* the state, `invoke`
//! applies one operation, `is_valid_step` says whether an observed return value is possible.
//! [`Spec`] adds what a porcupine-class linearizability search needs on top of that: a cheap
//! fingerprint for memoization, a step that may reject early without cloning, the read-only hint
//! that lets the search linearize reads greedily, and the partition key for P-compositionality.
//!
//! Architecture invariant: nothing in this crate is shared with the simulated server (`sim/`).
//! The server has its own MVCC store; a bug common to both would be invisible to the checker.

pub mod fingerprint;
pub mod kv;
pub mod mvcc;
pub mod paranoid;
pub mod register;

pub use fingerprint::fingerprint_of;
pub use stateright::semantics::SequentialSpec;

use std::fmt::Debug;

/// Which independent sub-history an operation belongs to (P-compositionality, Herlihy & Wing §3.3):
/// a history is linearizable iff each sub-history is, when operations on different keys commute.
pub type PartitionKey = String;

/// A value an operation can tell apart from other values (see [`Spec::value_twin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mention {
    /// This one written value (a [`ValueTwin::value`]): a read returned it, a compare for
    /// equality names it.
    Value(u128),
    /// Every value stored under this [`ValueTwin::key`]: an ordered comparison of values.
    AnyValueOf(u128),
}

/// An unknown-outcome write as it looks without the value it writes (see [`Spec::value_twin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueTwin {
    /// Writes of one class leave, from any state, states equal but for `value`.
    pub class: u128,
    /// Where the value is stored (for [`Mention::AnyValueOf`]).
    pub key: u128,
    /// The value written, as [`Mention::Value`] names it.
    pub value: u128,
}

/// One key as an answered operation shows it, at the operation's own linearization point or
/// later (see [`Spec::views`]): the key's current life began at progress `since` and its last
/// change before the view was at progress `at` (etcd: `create_revision`, `mod_revision`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyView {
    pub key: PartitionKey,
    pub since: i64,
    pub at: i64,
}

/// A key an answered operation shows absent at progress `at` (see [`Spec::absences`]; etcd: a
/// range of the key at revision `at` found nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAbsence {
    pub key: PartitionKey,
    pub at: i64,
}

/// A key an answered operation shows present at progress `at` (see [`Spec::presences`]; etcd:
/// a put answered at revision `at`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPresence {
    pub key: PartitionKey,
    pub at: i64,
}

/// What an operation does to a resource whose existence answers prove (see
/// [`Spec::resources`]; etcd: a lease).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceUse {
    /// The op's answer is valid only while the resource exists, at the op's linearization
    /// point (etcd: a put under the lease answered ok, a keep-alive answered ok).
    Needs(u128),
    /// Whenever the op changes the state, the resource does not exist after it (etcd: a revoke,
    /// the lessor's expiry).
    Ends(u128),
    /// The op may create the resource (etcd: a grant of this id, or a grant answered with it).
    Starts(u128),
}

/// A sequential specification as the linearizability search uses it.
pub trait Spec: SequentialSpec + Clone + Debug
where
    Self::Op: Clone + Debug,
    Self::Ret: Clone + Debug,
{
    /// Stable name used on the command line and in history headers (`mvcc`, `cas-register`, `kv`).
    const NAME: &'static str;

    /// True if the state is what the last operation to change it left, whatever came before:
    /// every answered or unknown-outcome operation that changes the state leaves a state that
    /// depends only on the operation (and its answer), of tag [`Spec::written_tag`]; one whose
    /// validity or effect depends on the state before it (other than a read-only one) has a
    /// [`Spec::observes_tag`] and is valid, or changes the state, only in states of that tag; and
    /// every unknown-outcome operation that can change the state has a [`Spec::effect_ret`]
    /// (register: a write of v and a cas to v leave v, a cas changes only a state holding its
    /// `from`). Then an unknown-outcome write whose tag nothing else writes and nothing
    /// observes matters only to the read-only operations it makes valid, and the search tries it
    /// only where one of them is waiting. Default `false`.
    const STATE_IS_LAST_WRITE: bool = false;

    /// A 128-bit fingerprint of the state. The search memoizes visited (linearized set, state) pairs
    /// by fingerprint, so two states with equal fingerprints must behave identically. 128 bits make
    /// an accidental collision (which could only turn a linearizable verdict into a violation)
    /// astronomically unlikely, like TLC's state fingerprints. Must be O(1) or close to it: it is
    /// called once per search step.
    fn fingerprint(&self) -> u128;

    /// The successor state if `op` may be linearized now with the observed `ret`, else `None`.
    /// Implementations should reject cheaply before cloning (e.g. the MVCC model compares
    /// revisions first); the default clones and calls `is_valid_step`.
    fn step(&self, op: &Self::Op, ret: &Self::Ret) -> Option<Self> {
        let mut next = self.clone();
        next.is_valid_step(op, ret).then_some(next)
    }

    /// The successor state if `op`, whose outcome is unknown, takes effect now. `None` if it cannot
    /// take effect from this state at all (it may still take effect later, or never).
    fn step_unknown(&self, op: &Self::Op) -> Option<Self> {
        let mut next = self.clone();
        next.invoke(op);
        Some(next)
    }

    /// True if `op` with return `ret` never changes the state when it is a valid step. The search
    /// linearizes such operations as soon as they are enabled and valid, without a choice point:
    /// moving a state-preserving operation earlier inside its real-time window never invalidates
    /// any other operation.
    fn is_read_only(_op: &Self::Op, _ret: &Self::Ret) -> bool {
        false
    }

    /// True if every state change `op` can make, answered or not, only *extends* the state in the
    /// sense of [`Spec::may_still_read`] (kv: an append, or a get, which changes nothing).
    /// Default `false`.
    fn only_extends(_op: &Self::Op) -> bool {
        false
    }

    /// For a read-only `op` (see [`Spec::is_read_only`]) answered `ret` that is not valid in this
    /// state: `false` if no sequence of operations that only extend ([`Spec::only_extends`])
    /// leads from here to a state where it is valid (kv: the key's value is not a prefix of what
    /// the get returned). The search then gives up a node as soon as such a read is waiting and
    /// nothing else can happen before it. Must depend only on the part of the state that `op`'s
    /// partition sees, and must be a sure `false`: a wrong one turns a linearizable history into
    /// a false violation. The default, `true`, never prunes.
    fn may_still_read(&self, _op: &Self::Op, _ret: &Self::Ret) -> bool {
        true
    }

    /// For a read-only `op` (see [`Spec::is_read_only`]) answered `ret` that is not valid in this
    /// state: `true` if no sequence of operations whatever leads from here to a state where it is
    /// valid (etcd: the read shows a key version at or below the current revision that is not
    /// that key's version now, and what the store held at or below its current revision never
    /// changes). The search then gives up a node as soon as such a read is waiting: every
    /// completion must place it in a state reachable from here. Must depend only on the part of
    /// the state that `op`'s partition sees, and must be a sure `true`: a wrong one turns a
    /// linearizable history into a false violation. The default, `false`, never prunes.
    fn read_refuted(&self, _op: &Self::Op, _ret: &Self::Ret) -> bool {
        false
    }

    /// A measure of progress that no step ever decreases (etcd: the store's revision), or `None`
    /// (the default) when the model has none. Used with [`Spec::progress_max`] to prune.
    fn progress(&self) -> Option<i64> {
        None
    }

    /// An upper bound on [`Spec::progress`] of any state in which `op`, answered `ret`, can be
    /// linearized (etcd: the revision just before a write that answered revision `h` is `h - 1`),
    /// or `None` (the default) for no bound. The search abandons a node as soon as its state's
    /// progress exceeds the bound of an answered operation not yet linearized: since progress
    /// never decreases, that operation could never be placed. Must be a true bound: a bound that
    /// is too low turns a linearizable history into a false violation.
    fn progress_max(_op: &Self::Op, _ret: &Self::Ret) -> Option<i64> {
        None
    }

    /// True if every state change `op` can make as an unknown-outcome operation also raises
    /// [`Spec::progress`] (etcd: puts, deletes, txns). Where the answered operations leave no
    /// room for progress, the search then skips such an operation without stepping it.
    /// Default `false` (always step).
    fn changes_only_with_progress(_op: &Self::Op) -> bool {
        false
    }

    /// For an unknown-outcome `op` about to be linearized in this state: `Some(tag)` if its effect
    /// from here is invisible to, and commutes with, every operation `other` for which
    /// `Self::touches(other, tag)` is false (etcd: the expiry of a lease with no keys only matters
    /// to operations naming that lease). The search then leaves `op` for later unless a pending
    /// operation touches `tag`: any linearization that places `op` now stays valid with `op`
    /// moved just before the first operation that touches `tag` (or dropped, having no return),
    /// so nothing is lost, and the search stops trying every subset of irrelevant unknown
    /// operations. Default `None`: always tried.
    fn unknown_effect_tag(&self, _op: &Self::Op) -> Option<u64> {
        None
    }

    /// Operations of one effect class have, as unknown-outcome operations, the same effect in
    /// every state: equal [`Spec::step_unknown`] results (etcd: a revoke of lease L and L's
    /// expiry). Of several pending ones the search then tries only the first called, when it
    /// has no [`Spec::unknown_effect_tag`]: any linearization placing a later one can place
    /// that one instead. Default `None`: in no class.
    fn unknown_effect_class(_op: &Self::Op) -> Option<u128> {
        None
    }

    /// For an unknown-outcome `op`: `Some(twin)` if every state change it can make, from any
    /// state, is the one every other op of `twin.class` makes, except that it stores
    /// `twin.value` under `twin.key` where the other stores its own value (etcd: a plain put
    /// of key k under lease l). Two such writes whose values no operation of the history
    /// mentions ([`Spec::mentions`]) leave states no operation can tell apart, so the search
    /// tries only the first called of the pending ones: any linearization that places a later
    /// one can place that one instead (it was called earlier and has no return). This is what
    /// keeps a run of revisions that only unknown-outcome puts can fill from becoming a choice
    /// of which k of dozens of never-read puts filled it. Default `None`.
    fn value_twin(_op: &Self::Op) -> Option<ValueTwin> {
        None
    }

    /// Every value `op` can tell apart from others, with its answer `ret` if it has one: the
    /// values it returns, those its compares name, the keys whose values it compares by
    /// order. Must be complete for models with a [`Spec::value_twin`]: a missed mention lets
    /// the search swap two writes whose values made a difference, which can turn a
    /// linearizable history into a false violation. Default: none.
    fn mentions(_op: &Self::Op, _ret: Option<&Self::Ret>, _out: &mut Vec<Mention>) {}

    /// For an answered `op`: the keys its answer shows as they stand where it is linearized,
    /// or later, never earlier (etcd: the key-values of a linearizable range at the current
    /// revision, of a txn's ranges, the previous values of puts and deletes; not serializable
    /// or historic ranges). Every remaining answered op is linearized in a state reached from
    /// the search's current one, at [`Spec::progress`] no lower, so each of its views must stay
    /// possible from there ([`Spec::view_possible`]); the search checks the oldest pending view
    /// of each key after every step that raises progress, and gives up the node when one is
    /// not. Default: none.
    fn views(_op: &Self::Op, _ret: &Self::Ret, _out: &mut Vec<KeyView>) {}

    /// `false` if no sequence of operations leads from this state to one where the `view`-th
    /// of [`Spec::views`]`(op, ret)` holds (etcd: a view whose last change is at or below the
    /// current revision must be the key's version now; one whose life began at or below it
    /// needs that life now, at a version the revisions left can still reach). Must be a sure
    /// `false`: a wrong one turns a linearizable history into a false violation. Default `true`.
    fn view_possible(&self, _op: &Self::Op, _ret: &Self::Ret, _view: usize) -> bool {
        true
    }

    /// For an answered `op`: the keys its answer shows absent, each at the one progress its
    /// answer fixes, wherever it is linearized (etcd: a linearizable or historic range of one
    /// key that found nothing, at its revision; a put asked for its previous value that had
    /// none, at the revision before its own; a delete of one key that deleted nothing; the
    /// revision before the one a shown key's life began). The search gives up a node whose
    /// progress is below `at` while the key is [`Spec::present`], when no op still to place
    /// [`Spec::may_remove`] it at a progress up to `at`, and one whose progress is `at` while
    /// the key is present: what a
    /// store holds at or below its progress never changes. Must be sure facts: a wrong one
    /// turns a linearizable history into a false violation. Default: none.
    fn absences(_op: &Self::Op, _ret: &Self::Ret, _out: &mut Vec<KeyAbsence>) {}

    /// For an answered `op`: the keys its answer shows present, each at the one progress its
    /// answer fixes, wherever it is linearized (etcd: a put at its revision, the puts of a
    /// txn's taken branch at the txn's revision, the keys a linearizable range returned at
    /// its revision). A key present at p that an answer still to place shows absent at
    /// a >= p must be removed in between: the search gives up a node where no op still to
    /// place [`Spec::may_remove`] it at a progress up to a, however far below p the node's
    /// progress is. This catches early what the absences of present keys catch only at p: a
    /// mass delete linearized too soon, below an answered put that a later read shows
    /// deleted. Must be sure facts, like absences. Default: none.
    fn presences(_op: &Self::Op, _ret: &Self::Ret, _out: &mut Vec<KeyPresence>) {}

    /// Whether `key` exists in this state (see [`Spec::absences`]). Must be exact for models
    /// with absences. Default `true`.
    fn present(&self, _key: &PartitionKey) -> bool {
        true
    }

    /// The indices of the `keys` (sorted, distinct) that `op` (answered `ret`, or of unknown
    /// outcome) may remove wherever it is linearized (see [`Spec::absences`]), each once, in
    /// any order, each with the lowest progress the removal can be at (`i64::MIN`: any). Must
    /// include every key in doubt, at a progress no higher than the real one. Default: all of
    /// them, at any progress.
    fn may_remove(
        _op: &Self::Op,
        _ret: Option<&Self::Ret>,
        keys: &[PartitionKey],
        out: &mut Vec<(u32, i64)>,
    ) {
        out.extend((0..keys.len() as u32).map(|key| (key, i64::MIN)));
    }

    /// What `op` (answered `ret`, or of unknown outcome) does to resources whose existence
    /// answers prove: see [`ResourceUse`]. The search refuses to linearize an op that ends a
    /// resource while an answered op that needs it is still to be placed and no op still to be
    /// placed may create it again: that op would then come after the end, where its answer is
    /// invalid. This keeps a lease's expiry, an unknown-outcome op free to go anywhere after
    /// its bound, from being placed seconds before a put that the lease still served. Must be
    /// sure facts: a wrong `Needs` or `Ends`, or a missed `Starts`, turns a linearizable
    /// history into a false violation. Default: none.
    fn resources(_op: &Self::Op, _ret: Option<&Self::Ret>, _out: &mut Vec<ResourceUse>) {}

    /// Whether `op` can observe or interact with the effects tagged `tag` (see
    /// [`Spec::unknown_effect_tag`]). Must be conservative: when in doubt, `true`.
    fn touches(_op: &Self::Op, _tag: u64) -> bool {
        true
    }

    /// For a read-only `op` answered `ret`: `Some(tag)` if it is valid only in a state that an
    /// operation with [`Spec::written_tag`] `Some(tag)` left behind, as the last operation to
    /// change the state (register: a read of v is valid only once a write of v or a cas to v
    /// took effect; a read of nil needs a tag no operation writes). The search then gives up a
    /// node where such a read is waiting, rejected, and every operation with that tag that may
    /// still come before it is linearized. Must be a sure fact, with `written_tag`: wrong, it
    /// turns a linearizable history into a false violation. Default `None`.
    fn read_needs_tag(_op: &Self::Op, _ret: &Self::Ret) -> Option<u128> {
        None
    }

    /// The tag of every state `op` can leave behind when it changes the state (see
    /// [`Spec::read_needs_tag`]; register: the value written). Operations that never change the
    /// state may return anything. Default `None`.
    fn written_tag(_op: &Self::Op) -> Option<u128> {
        None
    }

    /// For an answered `op` that is not read-only: `Some(tag)` if, wherever it is linearized,
    /// the state right after it is one an operation with [`Spec::written_tag`] `Some(tag)` left
    /// behind (register: a write of v or a successful cas to v leaves v). A read needing another
    /// tag ([`Spec::read_needs_tag`]) is then invalid until a writer of its tag changes the state,
    /// which lets the search refute a stale read before it starts. Only for models whose whole
    /// state is one object (no [`Spec::partition_key`]); must be a sure fact, like
    /// `read_needs_tag`. Default `None`.
    fn leaves_tag(_op: &Self::Op, _ret: &Self::Ret) -> Option<u128> {
        None
    }

    /// For an answered `op`: `Some(tag)` if it is valid only in a state that an operation with
    /// [`Spec::written_tag`] `Some(tag)` left behind as the last to change the state, or in the
    /// initial state (register: a read of v, a successful cas from v). Then a unique writer of
    /// `tag` with an unknown outcome is proven to have taken effect before `op` returned, when
    /// `op` is not valid in the initial state, and the search treats it as answered. Must be a
    /// sure fact. Default `None`.
    fn observes_tag(_op: &Self::Op, _ret: &Self::Ret) -> Option<u128> {
        None
    }

    /// The answer `op` gives whenever it takes effect and changes the state, if that answer is
    /// always the same (register: a write's ok, a cas's swap); `None` (the default) if it
    /// depends on the state or is not known. Used with [`Spec::observes_tag`].
    fn effect_ret(_op: &Self::Op) -> Option<Self::Ret> {
        None
    }

    /// The independent sub-history `op` belongs to; `None` for models whose operations all
    /// interact (the MVCC model: every write bumps the one global revision).
    fn partition_key(_op: &Self::Op) -> Option<PartitionKey> {
        None
    }

    /// A 128-bit fingerprint of the part of the state that the operations of `op`'s partition
    /// (see [`Spec::partition_key`]) can observe and change. The whole-history search, when
    /// every operation has a partition key, remembers failed sub-searches per partition by this
    /// fingerprint, so two states whose `op` partitions behave identically should have equal
    /// values (and unequal otherwise, up to 2^-128). The default, the whole state's
    /// [`Spec::fingerprint`], is always correct, only less effective.
    fn partition_fingerprint(&self, _op: &Self::Op) -> u128 {
        self.fingerprint()
    }
}
