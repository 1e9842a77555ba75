//! The Wing–Gong / Lowe search with memoization (porcupine's algorithm), for one (sub-)history.
//!
//! Call and return events are sorted by time into a doubly linked list. At each node the search
//! may linearize any operation whose call comes before the first remaining return (a
//! "candidate"); linearizing lifts its call and return out of the list, backtracking re-inserts
//! them (dancing links). Each visited node — the set of linearized operations and the model state —
//! is remembered; reaching it again means its subtree already failed.
//!
//! Refinements over porcupine, each argued where it is implemented:
//! - the linearized set is a Zobrist hash (`zobrist.rs`), so a memo key costs O(1);
//! - read-only operations are linearized greedily, without a choice point;
//! - unknown-outcome operations have no return event: they may be linearized at any point after
//!   their call, or never; they are tried only after every definite candidate, only when they
//!   would change the state, newest call first, and in capped rounds (`UNKNOWN_CHAIN_ROUNDS`);
//! - of pending unknown ops with the same effect (`Spec::unknown_effect_class`, a revoke and
//!   the lease's expiry), or with effects told apart only by values no operation mentions
//!   (`Spec::value_twin`, etcd's puts of one key), only the first called is tried
//!   (`earlier_twin_pending`);
//! - definite candidates are tried earliest return first (`Cursor`);
//! - a read that is waiting (a candidate the model rejects now) ends the node when it can
//!   never be answered: the model says no extending operation leads to its answer
//!   (`Spec::may_still_read`, kv: appends) and no other operation can come before it
//!   (`read_is_dead`), or when the model refutes it from here whatever comes first
//!   (`Spec::read_refuted`, etcd: it shows a key version the store has already passed);
//! - models with a monotone progress measure (`Spec::progress`, etcd's revision) let the search
//!   drop a successor as soon as an answered operation still to be placed can no longer fit
//!   (`try_step`), or as soon as a key version such an operation shows can no longer be
//!   (`Spec::views`, `views_possible`); a capped round of unknown ops runs on while progress
//!   is short of the next answered op's (`progress_gap`);
//! - likewise an answer still to place that shows a key absent at some progress, while the key
//!   is present and nothing still to place may remove it (`Spec::absences`, `absences.rs`);
//! - an op that ends a resource (`Spec::resources`, etcd: a lease's revoke or expiry) waits
//!   until no answered op still to place needs it, unless one still to place can start it
//!   again (`resources.rs`);
//! - when every operation has a partition key (`Spec::partition_key`, per key for porcupine's
//!   kv), the whole-history search exploits the independence of partitions itself (`Parts`):
//!   it branches only on the partition of the earliest remaining return, remembers failures
//!   per partition projection instead of per whole node, and backjumps over choices made in
//!   other partitions — the cost of one search over the whole history stays close to that of
//!   checking each partition on its own.
//!
//! Ties: at equal timestamps calls sort before returns, so two operations that touch at one instant
//! count as concurrent. That is the permissive reading (porcupine's too): coarse clocks can never
//! produce a false alarm. Jepsen and porcupine kv logs have no timestamps; their importers number
//! lines, so no ties arise there.

use std::collections::{BTreeMap, BTreeSet};

use kvsim_model::{Mention, PartitionKey, Spec, ValueTwin};

use super::absences::Absences;
use super::read_from::{self, Setter, TaggedRead, Writer, NO_RETURN};
use super::resources::Resources;
use super::violation::Violation;
use super::zobrist::{self, Memo};
use super::{CheckResult, Limits, Stats};
use crate::history::{OpId, Operation, Outcome};

const NONE: u32 = u32::MAX;
/// Index of the sentinel heads of both linked lists.
const HEAD: u32 = 0;
/// How many search steps between two looks at the clock.
const CLOCK_CHECK_STEPS: u64 = 1024;

struct SearchOp<'a, O, R> {
    id: OpId,
    input: &'a O,
    /// `None`: the outcome is unknown.
    ret: Option<&'a R>,
    read_only: bool,
    /// `Spec::only_extends`.
    only_extends: bool,
    /// Set while the op is linearized (on the search's stack).
    linearized: bool,
    /// Unknown ops only: the unknown op of the same `Spec::unknown_effect_class`, or of the
    /// same unmentioned `Spec::value_twin` class, called last before this one (`NONE`: none).
    twin_before: u32,
    /// Unknown ops only: `Spec::changes_only_with_progress`.
    changes_only_with_progress: bool,
    /// Unknown ops only: an unobserved unique write (`shadow_writes`), tried only where it makes
    /// a waiting read-only candidate valid (`shadow_helps`).
    shadow: bool,
    /// The op's call entry in the main list, or its node in the unknown list.
    call_node: u32,
    /// The op's return entry in the main list (`NONE` for unknown ops).
    return_node: u32,
    /// Position of the call among all events sorted by time.
    call_rank: u32,
    /// Dense partition id (`Parts`), or `NONE` when the search does not use partitions.
    part: u32,
}

/// Where the scan of a node's candidates resumes.
///
/// Definite candidates are tried in order of their returns (earliest deadline first): the op
/// whose return comes first must be linearized before anything called after that return, so it
/// is the most constrained choice. Porcupine tries candidates in call order; the order does not
/// change verdicts, only how soon a good linearization is found — on porcupine's unsplit kv logs
/// it is what makes the difference between seconds and a timeout.
#[derive(Clone, Copy)]
enum Cursor {
    /// Walking the main list from `entry` (at or after the first remaining return, whose rank is
    /// `frontier`), with `left` candidates' returns still to meet.
    /// `part`: the only partition whose candidates are tried (`NONE`: all), see `Parts`.
    ByReturn {
        entry: u32,
        frontier: u32,
        left: u32,
        part: u32,
    },
    /// At this node of the unknown list, walking back towards the head: candidates are the nodes
    /// whose call rank is below `frontier` (the rank of the first remaining return).
    Unknown { node: u32, frontier: u32, part: u32 },
}

/// The search's use of independent partitions, when every operation has a partition key and
/// there are at least two (P-compositionality inside one search).
///
/// Facts it rests on, for a node N (linearized set, state) and a partition p, writing N_p for
/// N's projection (p's linearized ops, the part of the state p sees):
/// 1. Every op linearized at N was called before every remaining op returns (it was a candidate
///    when placed), so N extends to a full linearization iff the remaining ops are linearizable
///    from N's state; by locality (Herlihy & Wing 1990, Thm. 1, which holds from any initial
///    state of independent objects) that is iff every N_p extends within p's sub-history.
/// 2. Let x be the remaining op with the earliest return, in partition K. If N extends, some
///    extension starts with a candidate of K: take the first K op y of an extension; the ops
///    before it are of other partitions, commute with y, and returned after x did, while y was
///    called before x returned (y precedes x, or is x) — so y may move to the front. And the
///    candidates of K at N are exactly those of N_K in K's sub-history (same first return).
///    So branching on K's candidates only is complete, and N_K fails iff all those children's
///    K projections fail.
/// 3. A forced read-only step (see `run`) on partition p keeps N_p's extendability (the greedy
///    argument, within p's sub-history).
///
/// So each failed node has a reason, a partition whose projection fails: a child that failed for
/// a partition other than the one its step changed makes its parent fail for the same reason
/// (the parent has the same projection: backjump, no sibling is tried), a forced child passes
/// its reason up, and a node whose K children all failed for K fails for K. Failed projections
/// are remembered (`failed`) and a child whose projection is there is not entered. No node on
/// the stack ever has a failed projection (a failure recorded below a node with the same
/// projection is passed up to it by backjumping), so checking the one projection a step
/// changes is enough.
struct Parts {
    /// The partition key of each dense id (for reports).
    names: Vec<PartitionKey>,
    /// An op index of each partition, to ask `Spec::partition_fingerprint` about it.
    representative: Vec<u32>,
    /// Zobrist hash of each partition's linearized ops.
    hash: Vec<u128>,
    /// Per-partition salt: equal sets of different partitions (the empty one) must not collide.
    salt: Vec<u128>,
    /// (hash ^ salt, `Spec::partition_fingerprint`) of every projection known to fail.
    failed: Memo,
}

struct Frame<S> {
    op: u32,
    /// The state, its fingerprint and the set hash before `op` was linearized.
    state: S,
    fingerprint: u128,
    hash: u128,
    /// Where the scan of the parent node continues if this child fails.
    resume: Cursor,
    /// Linearized without a choice point: if the child fails, so does the parent.
    forced: bool,
    /// Unknown ops linearized in a row just before this one.
    chain: u32,
}

struct Lists {
    /// Main list: entries 1.. are the call and return events of definite operations by time.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// For entry `e`: the op index, and whether it is a return.
    entry_op: Vec<u32>,
    entry_is_return: Vec<bool>,
    entry_rank: Vec<u32>,
    /// Unknown list: nodes 1.. are the calls of unknown-outcome operations by time.
    unknown_next: Vec<u32>,
    unknown_prev: Vec<u32>,
    unknown_op: Vec<u32>,
}

impl Lists {
    fn unlink(next: &mut [u32], prev: &mut [u32], node: u32) {
        let (before, after) = (prev[node as usize], next[node as usize]);
        next[before as usize] = after;
        if after != NONE {
            prev[after as usize] = before;
        }
    }

    /// Re-inserts `node` where it was; valid only in the reverse order of `unlink` calls.
    fn relink(next: &mut [u32], prev: &mut [u32], node: u32) {
        let (before, after) = (prev[node as usize], next[node as usize]);
        next[before as usize] = node;
        if after != NONE {
            prev[after as usize] = node;
        }
    }
}

/// The check of one (sub-)history, which may be run in slices of search steps: a part that
/// needs many steps can wait while other parts are tried, and continue later from where it
/// stopped instead of starting over.
pub(crate) struct PartCheck<'a, S>
where
    S: Spec,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    ops: Vec<&'a Operation<S::Op, S::Ret>>,
    init: S,
    /// Index into the `unknown_chain_max` rounds (`UNKNOWN_CHAIN_ROUNDS`) of the current search.
    round: usize,
    /// The current round's search, if it has started and was not discarded.
    search: Option<Search<'a, S>>,
    /// Whether the reads were checked for a source before the search (`read_from.rs`).
    reads_checked: bool,
}

impl<'a, S> PartCheck<'a, S>
where
    S: Spec,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    pub(crate) fn new(ops: Vec<&'a Operation<S::Op, S::Ret>>, init: S) -> Self {
        Self {
            ops,
            init,
            round: 0,
            search: None,
            reads_checked: false,
        }
    }

    /// Searches on until a verdict, or returns `None` once the current search has made
    /// `steps_max` steps in all (the caller may call again with a larger cap); budget
    /// exhaustion is `Some(Unknown)`.
    pub(crate) fn advance(
        &mut self,
        limits: &Limits,
        steps_max: Option<u64>,
        stats: &mut Stats,
    ) -> Option<CheckResult> {
        let has_unknown = self
            .ops
            .iter()
            .any(|op| matches!(op.outcome, Outcome::Unknown { .. }));
        let rounds: &[Option<u32>] = if has_unknown {
            &UNKNOWN_CHAIN_ROUNDS
        } else {
            &[None]
        };
        if !self.reads_checked {
            self.reads_checked = true;
            let mut search = match Search::new(&self.ops, self.init.clone()) {
                Ok(search) => search,
                Err(why) => return Some(CheckResult::Unknown(why)),
            };
            if let Some((read, setter)) = search.unreadable_read() {
                return Some(search.refute_unreadable(limits, read, setter, stats));
            }
            // Not refuted: the fresh search serves the first round.
            self.search = Some(search);
        }
        let mut result = None;
        while let Some(&unknown_chain_max) = rounds.get(self.round) {
            let mut search = match self.search.take() {
                Some(search) => search,
                None => match Search::new(&self.ops, self.init.clone()) {
                    Ok(search) => search,
                    Err(why) => return Some(CheckResult::Unknown(why)),
                },
            };
            let steps_before = search.steps;
            result = search.run(limits, steps_max, unknown_chain_max);
            stats.steps += search.steps - steps_before;
            stats.memo_entries_max = stats.memo_entries_max.max(search.memo_len());
            match result {
                None => {
                    self.search = Some(search);
                    return None;
                }
                Some(CheckResult::NotLinearizable(_)) if self.round + 1 < rounds.len() => {
                    self.round += 1;
                }
                Some(_) => break,
            }
        }
        // A search over independent partitions names the partition that fails; its own
        // sub-history gives the report the prefix and stuck operations of that partition alone,
        // which say more than the whole history's longest prefix. Only the report changes,
        // never the verdict.
        if let Some(CheckResult::NotLinearizable(violation)) = &result {
            if let Some(name) = &violation.partition {
                let part: Vec<&Operation<S::Op, S::Ret>> = self
                    .ops
                    .iter()
                    .filter(|op| S::partition_key(&op.input).as_ref() == Some(name))
                    .copied()
                    .collect();
                assert!(
                    part.len() < self.ops.len(),
                    "wgl: a part of several partitions"
                );
                let name = name.clone();
                match PartCheck::new(part, self.init.clone()).advance(limits, steps_max, stats) {
                    Some(CheckResult::NotLinearizable(mut precise)) => {
                        precise.partition = Some(name);
                        result = Some(CheckResult::NotLinearizable(precise));
                    }
                    Some(CheckResult::Linearizable) => {
                        panic!("wgl: partition {name:?} failed as part of the whole, passes alone");
                    }
                    // Out of budget: the whole-history report stands.
                    Some(CheckResult::Unknown(_)) | None => {}
                }
            }
        }
        result
    }

    /// Memo entries held by the paused search (0 if none).
    pub(crate) fn memo_len(&self) -> usize {
        self.search.as_ref().map_or(0, Search::memo_len)
    }

    /// Drops the paused search to free its memory: the next `advance` starts the current round
    /// over. (Earlier rounds, already finished, are not run again: their verdicts do not change.)
    pub(crate) fn discard_progress(&mut self) {
        self.search = None;
    }
}

/// Unknown-outcome ops multiply the search: each may take effect at any point or never, and a
/// dead end deep in the history is only refuted after trying every order of every pending
/// unknown op. So the search first runs with a cap on how many unknown ops it may linearize in
/// a row (between two definite ops); a linearization found that way is a real one. Only the last
/// round, without a cap, is complete, so only its "not linearizable" is believed. (Within a
/// capped round the memo may also wrongly prune, as nodes are memoized without the chain
/// length; that, too, only matters to the capped rounds' negative answers, which are dropped.)
const UNKNOWN_CHAIN_ROUNDS: [Option<u32>; 3] = [Some(1), Some(3), None];

/// Indices (into `ops`, the searched ops) of the shadow writes: unknown-outcome ops whose
/// `Spec::written_tag` no other operation of the history writes (any outcome) and no operation
/// observes (`Spec::observes_tag`; of an unknown-outcome op, with its `Spec::effect_ret`), in a
/// model whose state is its last write (`Spec::STATE_IS_LAST_WRITE`). Nothing can tell such a
/// write took effect except the read-only operations it makes valid (`Search::shadow_helps`).
/// Without this rule every pending unknown op that never took effect is tried at every node
/// the search backtracks over, which multiplies the search by their number.
fn shadow_writes<S>(
    history_ops: &[&Operation<S::Op, S::Ret>],
    ops: &[SearchOp<'_, S::Op, S::Ret>],
) -> Vec<usize>
where
    S: Spec,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    if !S::STATE_IS_LAST_WRITE {
        return Vec::new();
    }
    let mut writers: BTreeMap<u128, usize> = BTreeMap::new();
    let mut observed: BTreeSet<u128> = BTreeSet::new();
    for op in history_ops {
        if let Some(tag) = S::written_tag(&op.input) {
            *writers.entry(tag).or_default() += 1;
        }
        let observes = match &op.outcome {
            Outcome::Ok { output } => S::observes_tag(&op.input, output),
            Outcome::Unknown { .. } => {
                S::effect_ret(&op.input).and_then(|ret| S::observes_tag(&op.input, &ret))
            }
            Outcome::Fail { .. } => None,
        };
        observed.extend(observes);
    }
    ops.iter()
        .enumerate()
        .filter(|(_, op)| op.ret.is_none())
        .filter(|(_, op)| {
            S::written_tag(op.input)
                .is_some_and(|tag| writers.get(&tag) == Some(&1) && !observed.contains(&tag))
        })
        .map(|(index, _)| index)
        .collect()
}

/// Whether a value twin (`Spec::value_twin`) writes a value that no operation of the history
/// mentions (`Spec::mentions`, of any outcome: an unknown-outcome txn's compare can depend on
/// a value as much as an answered one's). Only such twins stand in for each other.
fn unmentioned_value_twins<S>(
    history_ops: &[&Operation<S::Op, S::Ret>],
) -> impl Fn(&ValueTwin) -> bool
where
    S: Spec,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    let mut mentions = Vec::new();
    for op in history_ops {
        let ret = match &op.outcome {
            Outcome::Ok { output } => Some(output),
            Outcome::Unknown { .. } | Outcome::Fail { .. } => None,
        };
        S::mentions(&op.input, ret, &mut mentions);
    }
    let mut values = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for mention in mentions {
        match mention {
            Mention::Value(value) => values.insert(value),
            Mention::AnyValueOf(key) => keys.insert(key),
        };
    }
    move |twin: &ValueTwin| !values.contains(&twin.value) && !keys.contains(&twin.key)
}

/// Search steps spent finding a prefix for the report of an unreadable read (`read_from.rs`):
/// enough to reach deep into a history (the search goes forward while it can), small next to
/// any real search.
pub(super) const REPORT_PREFIX_STEPS: u64 = 1 << 12;

struct Search<'a, S>
where
    S: Spec,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    ops: Vec<SearchOp<'a, S::Op, S::Ret>>,
    lists: Lists,
    keys: Vec<u128>,
    init: S,
    required_total: usize,
    /// Sentinel at the end of the unknown list.
    unknown_tail: u32,
    /// `Spec::progress_max` of every definite op not yet linearized that has one, by bound.
    bounds_left: BTreeSet<(i64, u32)>,
    /// Per partition (one list without `parts`), the ops that may do more than extend the state
    /// (`Spec::only_extends` false), by call rank: what can stand between a waiting read and the
    /// answer it saw (`read_is_dead`).
    non_extending: Vec<Vec<u32>>,
    /// Per read-only op with a `Spec::read_needs_tag`: an index into `tag_writers` (else `NONE`).
    needs_writers: Vec<u32>,
    /// The ops whose `Spec::written_tag` is one tag, by call rank (`read_is_dead`).
    tag_writers: Vec<Vec<u32>>,
    /// Unknown-outcome ops linearized on the current path, in order, each with
    /// `deepest_visited` as it was when the op was linearized (`dominated`).
    unknown_on_path: Vec<(u32, usize)>,
    /// Ops linearized in the current node (the stack's depth).
    depth: usize,
    /// The most ops any node visited so far held (the memo's deepest entry).
    deepest_visited: usize,
    /// Whether `dominated` applies: no partitions, and a model without `Spec::progress` (with
    /// it, every state change raises progress, so the states compared never coincide).
    unknown_dominance: bool,
    /// Per answered op, its `Spec::views`: (key id, `at`, `since`); empty without progress or
    /// with partitions.
    views: Vec<Vec<(u32, i64, i64)>>,
    /// Per key id, the views of the answered ops not yet linearized: (`at`, `since`, op,
    /// view index), oldest first (`views_possible`).
    pending_views: Vec<BTreeSet<(i64, i64, u32, u32)>>,
    /// What each op needs, ends and starts of `Spec::resources`, and what is still to place.
    resources: Resources,
    /// The keys answers still to place show absent (`Spec::absences`); empty without progress
    /// or with partitions, like `views`.
    absences: Absences,
    /// Visited nodes; unused when `parts` is set (which remembers failed projections instead).
    memo: Memo,
    parts: Option<Parts>,
    steps: u64,
    /// Where `run` stopped at its step cap; the next `run` continues from there.
    paused: Option<Paused<S>>,
}

/// The search's position between two `run`s (see `run` for each field's meaning).
struct Paused<S> {
    chain: u32,
    state: S,
    fingerprint: u128,
    hash: u128,
    remaining: usize,
    stack: Vec<Frame<S>>,
    best: Vec<u32>,
    low_water: usize,
}

impl<'a, S> Search<'a, S>
where
    S: Spec,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    fn new(history_ops: &[&'a Operation<S::Op, S::Ret>], init: S) -> Result<Self, String> {
        // Definitely-failed operations never took effect: they are not part of the search.
        let mut ops: Vec<SearchOp<'a, S::Op, S::Ret>> = Vec::with_capacity(history_ops.len());
        // (time, 0 = call / 1 = return, op index)
        let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(history_ops.len() * 2);
        for op in history_ops {
            let ret = match &op.outcome {
                Outcome::Fail { .. } => continue,
                Outcome::Ok { output } => Some(output),
                Outcome::Unknown { .. } => None,
            };
            let index = u32::try_from(ops.len()).ok().filter(|i| *i < NONE / 4);
            let Some(index) = index else {
                return Err(format!(
                    "history too large: more than {} operations",
                    NONE / 4
                ));
            };
            events.push((op.call_ns, 0, index));
            if ret.is_some() {
                // A definite op without a return time can still be linearized anywhere after its
                // call; a return before the call (a broken clock) is read as a zero-length op.
                let return_ns = op.return_ns.map_or(u64::MAX, |t| t.max(op.call_ns));
                events.push((return_ns, 1, index));
            }
            ops.push(SearchOp {
                id: op.id,
                input: &op.input,
                ret,
                read_only: ret.is_some_and(|ret| S::is_read_only(&op.input, ret)),
                only_extends: S::only_extends(&op.input),
                linearized: false,
                twin_before: NONE,
                changes_only_with_progress: ret.is_none()
                    && S::changes_only_with_progress(&op.input),
                shadow: false,
                call_node: NONE,
                return_node: NONE,
                call_rank: NONE,
                part: NONE,
            });
        }
        events.sort_unstable();
        let parts = Self::parts(history_ops, &mut ops, &init);
        if parts.is_none() {
            for index in shadow_writes::<S>(history_ops, &ops) {
                ops[index].shadow = true;
            }
        }

        let mut lists = Lists {
            next: vec![NONE],
            prev: vec![NONE],
            entry_op: vec![NONE],
            entry_is_return: vec![false],
            entry_rank: vec![NONE],
            unknown_next: vec![NONE],
            unknown_prev: vec![NONE],
            unknown_op: vec![NONE],
        };
        let mut required_total = 0;
        for (rank, &(_, kind, index)) in events.iter().enumerate() {
            let rank = rank as u32;
            let op = &mut ops[index as usize];
            if op.ret.is_none() {
                let node = lists.unknown_op.len() as u32;
                lists.unknown_prev.push(node - 1);
                lists.unknown_next.push(NONE);
                lists.unknown_next[node as usize - 1] = node;
                lists.unknown_op.push(index);
                op.call_node = node;
                op.call_rank = rank;
                continue;
            }
            let entry = lists.entry_op.len() as u32;
            lists.prev.push(entry - 1);
            lists.next.push(NONE);
            lists.next[entry as usize - 1] = entry;
            lists.entry_op.push(index);
            lists.entry_is_return.push(kind == 1);
            lists.entry_rank.push(rank);
            if kind == 0 {
                op.call_node = entry;
                op.call_rank = rank;
                required_total += 1;
            } else {
                op.return_node = entry;
            }
        }
        // The unknown list's tail sentinel: candidates are walked from the newest call back.
        let tail = lists.unknown_op.len() as u32;
        lists.unknown_prev.push(tail - 1);
        lists.unknown_next.push(NONE);
        lists.unknown_next[tail as usize - 1] = tail;
        lists.unknown_op.push(NONE);
        let unknown_tail = tail;
        let mut last_of_class: BTreeMap<(bool, u128), u32> = BTreeMap::new();
        let mut unknown_by_call: Vec<u32> = (0..ops.len() as u32)
            .filter(|&index| ops[index as usize].ret.is_none())
            .collect();
        unknown_by_call.sort_unstable_by_key(|&index| ops[index as usize].call_rank);
        let unmentioned = unmentioned_value_twins::<S>(history_ops);
        for index in unknown_by_call {
            let input = ops[index as usize].input;
            // Two kinds of twins, each chained in call order: equal effects
            // (`Spec::unknown_effect_class`), and writes told apart only by values nothing
            // mentions (`Spec::value_twin`).
            let class = S::unknown_effect_class(input)
                .map(|class| (false, class))
                .or_else(|| {
                    S::value_twin(input)
                        .filter(|twin| unmentioned(twin))
                        .map(|twin| (true, twin.class))
                });
            if let Some(class) = class {
                if let Some(before) = last_of_class.insert(class, index) {
                    ops[index as usize].twin_before = before;
                }
            }
        }
        let mut non_extending = vec![Vec::new(); parts.as_ref().map_or(1, |p| p.names.len())];
        let mut by_call: Vec<u32> = (0..ops.len() as u32).collect();
        by_call.sort_unstable_by_key(|&index| ops[index as usize].call_rank);
        for index in by_call {
            let op = &ops[index as usize];
            if !op.only_extends {
                let part = if op.part == NONE { 0 } else { op.part as usize };
                non_extending[part].push(index);
            }
        }
        let mut writers_of_tag: BTreeMap<u128, Vec<u32>> = BTreeMap::new();
        let mut writers_by_call: Vec<u32> = (0..ops.len() as u32).collect();
        writers_by_call.sort_unstable_by_key(|&index| ops[index as usize].call_rank);
        for &index in &writers_by_call {
            if let Some(tag) = S::written_tag(ops[index as usize].input) {
                writers_of_tag.entry(tag).or_default().push(index);
            }
        }
        let mut tag_list: BTreeMap<u128, u32> = BTreeMap::new();
        let mut tag_writers: Vec<Vec<u32>> = Vec::new();
        let needs_writers = ops
            .iter()
            .map(|op| {
                let Some(tag) = op
                    .ret
                    .filter(|_| op.read_only)
                    .and_then(|ret| S::read_needs_tag(op.input, ret))
                else {
                    return NONE;
                };
                *tag_list.entry(tag).or_insert_with(|| {
                    tag_writers.push(writers_of_tag.get(&tag).cloned().unwrap_or_default());
                    (tag_writers.len() - 1) as u32
                })
            })
            .collect();
        let unknown_dominance = parts.is_none() && init.progress().is_none();
        let (views, pending_views) = if parts.is_none() && init.progress().is_some() {
            Self::views_of(&ops)
        } else {
            (vec![Vec::new(); ops.len()], Vec::new())
        };
        let resources = Resources::new::<S>(ops.iter().map(|op| (op.input, op.ret)));
        let inputs: Vec<_> = ops.iter().map(|op| (op.input, op.ret)).collect();
        let absences = Absences::new::<S>(&inputs, parts.is_none() && init.progress().is_some());
        let keys = zobrist::keys(ops.len());
        let bounds_left = ops
            .iter()
            .enumerate()
            .filter_map(|(index, op)| Some((S::progress_max(op.input, op.ret?)?, index as u32)))
            .collect();
        Ok(Self {
            ops,
            lists,
            keys,
            init,
            required_total,
            unknown_tail,
            bounds_left,
            non_extending,
            needs_writers,
            tag_writers,
            unknown_on_path: Vec::new(),
            depth: 0,
            deepest_visited: 0,
            unknown_dominance,
            views,
            pending_views,
            resources,
            absences,
            memo: Memo::default(),
            parts,
            steps: 0,
            paused: None,
        })
    }

    /// Partitions for the search over independent partitions (`Parts`), with each op's `part`
    /// set; `None` (and `part` left `NONE`) unless every op has a partition key and there are
    /// at least two. Models with progress bounds (etcd's revision) couple everything and never
    /// get here: their ops have no partition key, and the bounds are checked to be absent.
    fn parts(
        history_ops: &[&'a Operation<S::Op, S::Ret>],
        ops: &mut [SearchOp<'a, S::Op, S::Ret>],
        init: &S,
    ) -> Option<Parts> {
        if init.progress().is_some() {
            return None;
        }
        let mut ids: BTreeMap<PartitionKey, u32> = BTreeMap::new();
        let mut names = Vec::new();
        let mut representative = Vec::new();
        let mut op_parts = Vec::with_capacity(ops.len());
        for op in history_ops {
            if matches!(op.outcome, Outcome::Fail { .. }) {
                continue;
            }
            let key = S::partition_key(&op.input)?;
            let id = *ids.entry(key).or_insert_with_key(|key| {
                names.push(key.clone());
                representative.push(op_parts.len() as u32);
                (names.len() - 1) as u32
            });
            op_parts.push(id);
        }
        assert_eq!(op_parts.len(), ops.len(), "wgl: one entry per searched op");
        if names.len() < 2 {
            return None;
        }
        for (op, part) in ops.iter_mut().zip(op_parts) {
            op.part = part;
        }
        let mut rng = zobrist::SplitMix64::new(0x7061_7274_6974_696f);
        Some(Parts {
            hash: vec![0; names.len()],
            salt: (0..names.len()).map(|_| rng.next_u128()).collect(),
            names,
            representative,
            failed: Memo::default(),
        })
    }

    fn memo_len(&self) -> usize {
        match &self.parts {
            Some(parts) => parts.failed.len(),
            None => self.memo.len(),
        }
    }

    /// Whether the node reached from the current one by linearizing `index` (giving `next`, with
    /// fingerprint `next_fp`, and set hash `next_hash`) is known to fail: visited before, or (with
    /// partitions) its projection on the changed partition failed before.
    fn known_failed(&self, next_hash: u128, index: u32, next: &S, next_fp: u128) -> bool {
        match &self.parts {
            None => {
                self.memo.contains(&(next_hash, next_fp))
                    || self.dominated(next_hash, index, next_fp)
            }
            Some(parts) => {
                let op = &self.ops[index as usize];
                let part = op.part as usize;
                parts.failed.contains(&(
                    parts.hash[part] ^ self.keys[index as usize] ^ parts.salt[part],
                    next.partition_fingerprint(op.input),
                ))
            }
        }
    }

    /// Whether the child reached by linearizing `index` (set hash `next_hash`, state `next_fp`)
    /// is dominated by a visited node: one whose set lacks one unknown-outcome op u of the
    /// child's, in the same state. That node failed (it is not on the stack: every ancestor's set
    /// is a subset of the current node's, and the one set that is the child's minus a single
    /// op of the path differs from the child by an unknown step, which changed the state). And
    /// any completion of the child is one of that node too, which may leave u out, u having no
    /// return to respect: so the child fails. Without this, every unknown op that took effect
    /// and was overwritten unobserved doubles the nodes after it.
    ///
    /// Only the ops on the path that such a node can exist for are looked up: the node lacks u,
    /// and every node visited since u was linearized holds it, so the node was visited before
    /// that, when no visited node held more than `deepest_visited` ops (recorded with u). It
    /// holds as many ops as the current node: a u linearized when nothing that deep had been
    /// visited cannot be left out of any visited node (without this, a history with many
    /// unknown ops paid one memo lookup per unknown op on the path at every step).
    fn dominated(&self, next_hash: u128, index: u32, next_fp: u128) -> bool {
        if !self.unknown_dominance {
            return false;
        }
        let index_unknown = self.ops[index as usize].ret.is_none();
        let dominated_by = |u: u32| {
            self.memo
                .contains(&(next_hash ^ self.keys[u as usize], next_fp))
        };
        (index_unknown && dominated_by(index))
            || self
                .unknown_on_path
                .iter()
                .rev()
                // `deepest_visited` only grows, so the path's records do too: stop at the first
                // too shallow one.
                .take_while(|&&(_, deepest_before)| deepest_before >= self.depth)
                .any(|&(u, _)| dominated_by(u))
    }

    /// Remembers that the current node's projection on `part` fails (`Parts`).
    fn record_failed(&mut self, part: u32, state: &S) {
        let Some(parts) = &mut self.parts else {
            return;
        };
        let part = part as usize;
        let representative = self.ops[parts.representative[part] as usize].input;
        parts.failed.insert((
            parts.hash[part] ^ parts.salt[part],
            state.partition_fingerprint(representative),
        ));
    }

    /// True if `index` may be tried at a node whose branching partition is `part`.
    fn in_part(&self, index: u32, part: u32) -> bool {
        part == NONE || self.ops[index as usize].part == part
    }

    /// Every answered op's `Spec::views`, keys numbered densely, all pending (nothing is
    /// linearized yet).
    #[allow(clippy::type_complexity)]
    fn views_of(
        ops: &[SearchOp<'_, S::Op, S::Ret>],
    ) -> (
        Vec<Vec<(u32, i64, i64)>>,
        Vec<BTreeSet<(i64, i64, u32, u32)>>,
    ) {
        let mut key_ids: BTreeMap<PartitionKey, u32> = BTreeMap::new();
        let mut pending: Vec<BTreeSet<(i64, i64, u32, u32)>> = Vec::new();
        let mut buffer = Vec::new();
        let views = ops
            .iter()
            .enumerate()
            .map(|(index, op)| {
                let Some(ret) = op.ret else {
                    return Vec::new();
                };
                buffer.clear();
                S::views(op.input, ret, &mut buffer);
                buffer
                    .iter()
                    .enumerate()
                    .map(|(view, shown)| {
                        let next_id = key_ids.len() as u32;
                        let key = *key_ids.entry(shown.key.clone()).or_insert(next_id);
                        if key as usize == pending.len() {
                            pending.push(BTreeSet::new());
                        }
                        pending[key as usize].insert((
                            shown.at,
                            shown.since,
                            index as u32,
                            view as u32,
                        ));
                        (key, shown.at, shown.since)
                    })
                    .collect()
            })
            .collect();
        (views, pending)
    }

    /// Whether every key's oldest pending view (`Spec::views`) is still possible from `state`
    /// (`Spec::view_possible`), and no two pending views of one key changed at different
    /// points at or below its progress (the key can be as only one of them shows it now).
    /// Every op still to place is linearized in a state reached from this one, at progress no
    /// lower, so a `false` is a sure dead end. The oldest view is the one the progress reaches
    /// first; a key whose oldest view began its life above the progress is not judged yet.
    fn views_possible(&self, state: &S) -> bool {
        let Some(progress) = state.progress() else {
            return true;
        };
        for pending in &self.pending_views {
            let Some(&(at, since, op, view)) = pending.first() else {
                continue;
            };
            if since > progress {
                continue;
            }
            if at <= progress {
                let newest = pending
                    .range(..=(progress, i64::MAX, u32::MAX, u32::MAX))
                    .next_back();
                if newest.is_some_and(|&(newest_at, ..)| newest_at != at) {
                    return false;
                }
            }
            let op = &self.ops[op as usize];
            let ret = op.ret.expect("wgl: views are of answered ops");
            if !state.view_possible(op.input, ret, view as usize) {
                return false;
            }
        }
        true
    }

    /// `Absences::possible` at `state`'s progress (`Spec::absences`).
    fn absences_possible(&self, state: &S) -> bool {
        state
            .progress()
            .is_none_or(|progress| self.absences.possible(state, progress))
    }

    fn lift(&mut self, index: u32) {
        self.ops[index as usize].linearized = true;
        self.resources.lift(index);
        self.absences.lift(index);
        for (view, &(key, at, since)) in self.views[index as usize].iter().enumerate() {
            let removed = self.pending_views[key as usize].remove(&(at, since, index, view as u32));
            assert!(removed, "wgl: a linearized op's views were pending");
        }
        if self.ops[index as usize].ret.is_none() {
            self.unknown_on_path.push((index, self.deepest_visited));
        }
        // Every lifted node was just memoized (visited).
        self.depth += 1;
        self.deepest_visited = self.deepest_visited.max(self.depth);
        let op = &self.ops[index as usize];
        if let Some(parts) = &mut self.parts {
            parts.hash[op.part as usize] ^= self.keys[index as usize];
        }
        let lists = &mut self.lists;
        if op.ret.is_some() {
            Lists::unlink(&mut lists.next, &mut lists.prev, op.call_node);
            Lists::unlink(&mut lists.next, &mut lists.prev, op.return_node);
            if let Some(bound) = op.ret.and_then(|ret| S::progress_max(op.input, ret)) {
                self.bounds_left.remove(&(bound, index));
            }
        } else {
            Lists::unlink(
                &mut lists.unknown_next,
                &mut lists.unknown_prev,
                op.call_node,
            );
        }
    }

    fn unlift(&mut self, index: u32) {
        self.ops[index as usize].linearized = false;
        self.resources.unlift(index);
        self.absences.unlift(index);
        for (view, &(key, at, since)) in self.views[index as usize].iter().enumerate() {
            self.pending_views[key as usize].insert((at, since, index, view as u32));
        }
        if self.ops[index as usize].ret.is_none() {
            let popped = self.unknown_on_path.pop().map(|(u, _)| u);
            assert_eq!(
                popped,
                Some(index),
                "wgl: lifts and unlifts are stack-ordered"
            );
        }
        self.depth -= 1;
        let op = &self.ops[index as usize];
        if let Some(parts) = &mut self.parts {
            parts.hash[op.part as usize] ^= self.keys[index as usize];
        }
        let lists = &mut self.lists;
        if op.ret.is_some() {
            Lists::relink(&mut lists.next, &mut lists.prev, op.return_node);
            Lists::relink(&mut lists.next, &mut lists.prev, op.call_node);
            if let Some(bound) = op.ret.and_then(|ret| S::progress_max(op.input, ret)) {
                self.bounds_left.insert((bound, index));
            }
        } else {
            Lists::relink(
                &mut lists.unknown_next,
                &mut lists.unknown_prev,
                op.call_node,
            );
        }
    }

    /// Whether the unknown candidate `index` is left out because E, the first called pending
    /// unknown op of its effect class (`Spec::unknown_effect_class`), was called before it and
    /// has no `Spec::unknown_effect_tag` here. Any completion of this node that starts with
    /// `index` can swap it with E: both have the same effect in every state, E was called
    /// earlier (so it is a candidate too) and an unknown op has no return to respect. E itself
    /// is never left out by this rule (no pending op of its class was called before it) nor
    /// made to wait for a touching op (it has no tag), so this node succeeds iff some child
    /// that is tried does.
    fn earlier_twin_pending(&self, state: &S, index: u32) -> bool {
        let op = &self.ops[index as usize];
        let mut first = NONE;
        let mut at = op.twin_before;
        while at != NONE {
            if !self.ops[at as usize].linearized {
                first = at;
            }
            at = self.ops[at as usize].twin_before;
        }
        first != NONE
            && self.ops[first as usize].part == op.part
            && state
                .unknown_effect_tag(self.ops[first as usize].input)
                .is_none()
    }

    /// The order unknown candidates are tried in, after every definite one. In general newest
    /// call first: an unknown op that could have been used at an earlier point and was not is
    /// likely one that never took effect (on MVCC histories the other order is 20x slower).
    /// Where the state is the last write (`Spec::STATE_IS_LAST_WRITE`, the register) oldest
    /// first, porcupine's call order: there an unknown cas can only take effect while its
    /// `from` is current, which is soonest lost for the oldest (on the mild register family,
    /// shared values, this order is 2-5x faster). The order changes no verdict.
    ///
    /// The newest pending unknown op called before `frontier` (`HEAD`: none).
    fn newest_unknown_before(&self, frontier: u32) -> u32 {
        let mut node = self.lists.unknown_prev[self.unknown_tail as usize];
        while node != HEAD
            && self.ops[self.lists.unknown_op[node as usize] as usize].call_rank > frontier
        {
            node = self.lists.unknown_prev[node as usize];
        }
        node
    }

    /// The pending unknown op called next after the one at `node` (or the oldest, from
    /// `HEAD`), if it was called before `frontier`; else `NONE`.
    fn unknown_called_after(&self, node: u32, frontier: u32) -> u32 {
        let next = self.lists.unknown_next[node as usize];
        let called_before = next != NONE
            && next != self.unknown_tail
            && self.ops[self.lists.unknown_op[next as usize] as usize].call_rank < frontier;
        if called_before {
            next
        } else {
            NONE
        }
    }

    /// Whether linearizing a shadow write (`shadow_writes`), which leads from `state` to
    /// `next`, lets a waiting read-only candidate in: one the model accepts in `next`. (It
    /// rejects them all in `state`: a node reaches its unknown candidates only when the greedy
    /// read-only step found none to take.)
    ///
    /// Why nothing else is lost: in a completion that starts with the shadow write U, the
    /// operations up to the next state change W are read-only ones valid in `next` (nothing
    /// observes U's tag, so no state-changing op but a blind one is valid there, and that one
    /// is W). If none of them is rejected in `state`, dropping U leaves a completion (W leaves
    /// the same state from `state`, `Spec::STATE_IS_LAST_WRITE`); else the ones before the
    /// first rejected one R can move before U (valid in `state`, and U has no return), which
    /// gives a completion whose node has R as a waiting candidate, where U is tried.
    fn shadow_helps(&self, state: &S, next: &S, frontier: u32) -> bool {
        let mut entry = self.lists.next[HEAD as usize];
        while entry != NONE && self.lists.entry_rank[entry as usize] < frontier {
            let op = &self.ops[self.lists.entry_op[entry as usize] as usize];
            if let (false, true, Some(ret)) = (
                self.lists.entry_is_return[entry as usize],
                op.read_only,
                op.ret,
            ) {
                if next.step(op.input, ret).is_some() {
                    // A second model step per candidate: --paranoid (and tests) only.
                    kvsim_model::paranoid_assert!(
                        state.step(op.input, ret).is_none(),
                        "wgl: the greedy step takes every read-only candidate the state accepts"
                    );
                    return true;
                }
            }
            entry = self.lists.next[entry as usize];
        }
        false
    }

    /// Whether the read-only candidate `index`, which the model rejects in `state`, can never be
    /// linearized from this node. Every op placed before it must be called before it returns
    /// (real-time order); if each such op still to be placed only extends the state
    /// (`Spec::only_extends`), and no extension can give the read its answer
    /// (`Spec::may_still_read`), then no completion of this node places it. Both facts concern
    /// the read's partition only, so with `parts` the node's projection on it fails.
    ///
    /// Third, whatever may come before it: the model refutes the read from this state
    /// (`Spec::read_refuted`, etcd: it shows a key version at or below the current revision
    /// that is not the key's version now). Every completion of this node places the read in a
    /// state reached from this one, which the model says never accepts it. Also a fact of the
    /// read's partition only.
    fn read_is_dead(&self, state: &S, index: u32) -> bool {
        self.read_is_dead_by_extension(state, index)
            || self.read_is_dead_by_tag(index)
            || self.ops[index as usize]
                .ret
                .is_some_and(|ret| state.read_refuted(self.ops[index as usize].input, ret))
    }

    /// Whether the rejected read-only candidate `index` needs a tag (`Spec::read_needs_tag`)
    /// that no op still able to come before it can write: every op that may be placed before
    /// it was called before it returns, and the state it needs can only be left by one of the
    /// ops with that `Spec::written_tag`; if all of those called before its return are
    /// linearized, none can change the state for it any more.
    fn read_is_dead_by_tag(&self, index: u32) -> bool {
        let read = &self.ops[index as usize];
        let list = self.needs_writers[index as usize];
        if list == NONE || read.ret.is_none() {
            return false;
        }
        let return_rank = self.lists.entry_rank[read.return_node as usize];
        self.tag_writers[list as usize]
            .iter()
            .map(|&other| &self.ops[other as usize])
            .take_while(|other| other.call_rank < return_rank)
            .all(|other| other.linearized)
    }

    /// The `Spec::may_still_read` rule (see `read_is_dead`).
    fn read_is_dead_by_extension(&self, state: &S, index: u32) -> bool {
        let read = &self.ops[index as usize];
        let Some(ret) = read.ret else {
            return false;
        };
        if state.may_still_read(read.input, ret) {
            return false;
        }
        let return_rank = self.lists.entry_rank[read.return_node as usize];
        let part = if read.part == NONE {
            0
        } else {
            read.part as usize
        };
        self.non_extending[part]
            .iter()
            .map(|&other| &self.ops[other as usize])
            .take_while(|other| other.call_rank < return_rank)
            .all(|other| other.linearized)
    }

    /// Whether an operation that may be linearized next — a definite op called before
    /// `frontier` (the first remaining return) or a pending unknown op called before it, other
    /// than `except` — can
    /// see effects tagged `tag`. A superset of the candidates is fine: it only skips less.
    fn pending_touches(&self, tag: u64, frontier: u32, except: u32) -> bool {
        let mut entry = self.lists.next[HEAD as usize];
        while entry != NONE && self.lists.entry_rank[entry as usize] < frontier {
            let op = &self.ops[self.lists.entry_op[entry as usize] as usize];
            if S::touches(op.input, tag) {
                return true;
            }
            entry = self.lists.next[entry as usize];
        }
        let mut node = self.lists.unknown_next[HEAD as usize];
        while node != NONE && node != self.unknown_tail {
            let index = self.lists.unknown_op[node as usize];
            let op = &self.ops[index as usize];
            if op.call_rank >= frontier {
                break;
            }
            if index != except && S::touches(op.input, tag) {
                return true;
            }
            node = self.lists.unknown_next[node as usize];
        }
        false
    }

    /// The state after `op` if it can be linearized from `state` (unknown ops: only if it would
    /// change the state — linearizing a no-op unknown op adds no possibility, it only removes one).
    ///
    /// Also refused: a successor whose `Spec::progress` exceeds the `progress_max` of an answered
    /// op still to be linearized. Progress never decreases, so that op could never be placed and
    /// the whole subtree would fail — typically only after trying every order of the pending
    /// unknown-outcome ops, which is what makes this check the difference between seconds and
    /// hours on MVCC histories with timeouts.
    ///
    /// And an op that ends a resource an answered op still to place needs (`Resources::may_end`).
    fn try_step(&self, state: &S, fingerprint: u128, index: u32) -> Option<(S, u128)> {
        let op = &self.ops[index as usize];
        if !self.resources.may_end(index) {
            return None;
        }
        if op.ret.is_none() && op.changes_only_with_progress {
            let progress = state.progress();
            let tightest = self.bounds_left.first().map(|(bound, _)| *bound);
            if progress
                .zip(tightest)
                .is_some_and(|(progress, bound)| progress >= bound)
            {
                return None;
            }
        }
        let next = match op.ret {
            Some(ret) => state.step(op.input, ret)?,
            None => state.step_unknown(op.input)?,
        };
        let next_fingerprint = next.fingerprint();
        if op.ret.is_none() && next_fingerprint == fingerprint {
            return None;
        }
        if let Some(progress) = next.progress() {
            let mut tightest = self.bounds_left.iter().filter(|(_, other)| *other != index);
            if tightest.next().is_some_and(|(bound, _)| progress > *bound) {
                return None;
            }
        }
        Some((next, next_fingerprint))
    }

    /// A read that no writer can have answered (`read_from.rs`), and the setter that overwrote
    /// its value: `(read, setter)` op indices.
    fn unreadable_read(&self) -> Option<(u32, u32)> {
        // `Spec::leaves_tag` describes the whole state of a one-object model: with independent
        // partitions a setter of another partition would not overwrite the read's value.
        if self.parts.is_some() {
            return None;
        }
        let return_rank = |op: &SearchOp<'a, S::Op, S::Ret>| {
            if op.return_node == NONE {
                NO_RETURN
            } else {
                self.lists.entry_rank[op.return_node as usize]
            }
        };
        let mut by_call: Vec<u32> = (0..self.ops.len() as u32).collect();
        by_call.sort_unstable_by_key(|&index| self.ops[index as usize].call_rank);
        let mut setters = Vec::new();
        let mut reads = Vec::new();
        let mut writers: BTreeMap<u128, Vec<Writer>> = BTreeMap::new();
        for index in by_call {
            let op = &self.ops[index as usize];
            let (call_rank, return_rank) = (op.call_rank, return_rank(op));
            if let Some(tag) = S::written_tag(op.input) {
                writers.entry(tag).or_default().push(Writer {
                    call_rank,
                    return_rank,
                    op: index,
                });
            }
            let Some(ret) = op.ret else { continue };
            if op.read_only {
                if let Some(tag) = S::read_needs_tag(op.input, ret) {
                    reads.push(TaggedRead {
                        call_rank,
                        return_rank,
                        tag,
                        op: index,
                    });
                }
            } else if let Some(tag) = S::leaves_tag(op.input, ret) {
                setters.push(Setter {
                    call_rank,
                    return_rank,
                    tag,
                    op: index,
                });
            }
        }
        read_from::first_unreadable(&reads, &setters, |tag| {
            writers.get(&tag).map_or(&[][..], Vec::as_slice)
        })
    }

    /// The verdict on a history with an unreadable `read` (overwritten by `setter`): not
    /// linearizable. The report's prefix comes from a short run of the search (it is only
    /// evidence, the verdict is already certain): the deepest prefix it reached, or its own
    /// report if it finished; either way the read and its overwriter are blamed first.
    fn refute_unreadable(
        &mut self,
        limits: &Limits,
        read: u32,
        setter: u32,
        stats: &mut Stats,
    ) -> CheckResult {
        let result = self.run(limits, Some(REPORT_PREFIX_STEPS), None);
        stats.steps += self.steps;
        let mut violation = match result {
            Some(CheckResult::NotLinearizable(violation)) => violation,
            Some(CheckResult::Linearizable) => {
                panic!("wgl: op {read} can have no source, yet the search linearized it");
            }
            Some(CheckResult::Unknown(_)) => self.violation(&[]),
            None => {
                let best = self
                    .paused
                    .take()
                    .map_or_else(Vec::new, |paused| paused.best);
                self.violation(&best)
            }
        };
        let blamed = [read, setter].map(|index| self.ops[index as usize].id);
        violation.stuck.retain(|id| !blamed.contains(id));
        violation.stuck.splice(0..0, blamed);
        CheckResult::NotLinearizable(violation)
    }

    /// The search at its root, before the first step.
    fn start(&mut self) -> Paused<S> {
        let state = self.init.clone();
        let fingerprint = state.fingerprint();
        if self.parts.is_none() {
            self.memo.insert((0, fingerprint));
        }
        Paused {
            chain: 0,
            state,
            fingerprint,
            hash: 0,
            remaining: self.required_total,
            stack: Vec::new(),
            best: Vec::new(),
            low_water: 0,
        }
    }

    /// Searches until a verdict, or returns `None` once `steps` reaches `steps_max`; the next
    /// call then continues where this one stopped (with the same `unknown_chain_max`), so a
    /// search run in slices does exactly the work of one uninterrupted run.
    fn run(
        &mut self,
        limits: &Limits,
        steps_max: Option<u64>,
        unknown_chain_max: Option<u32>,
    ) -> Option<CheckResult> {
        let position = match self.paused.take() {
            Some(paused) => paused,
            None => self.start(),
        };
        let Paused {
            // Unknown ops linearized in a row on top of the stack.
            mut chain,
            mut state,
            mut fingerprint,
            mut hash,
            mut remaining,
            mut stack,
            // The longest prefix seen, maintained incrementally: `best` agrees with the stack
            // below `low_water` (the lowest stack height since `best` was last synchronized).
            mut best,
            mut low_water,
        } = position;

        // `None` = enter a fresh node; `Some(cursor)` = resume a node's scan after a failed child.
        let mut resume: Option<Cursor> = None;
        loop {
            if resume.is_none() {
                if remaining == 0 {
                    return Some(CheckResult::Linearizable);
                }
                // Pausing only here, before a fresh node, leaves nothing but the locals to keep.
                if steps_max.is_some_and(|max| self.steps >= max) {
                    self.paused = Some(Paused {
                        chain,
                        state,
                        fingerprint,
                        hash,
                        remaining,
                        stack,
                        best,
                        low_water,
                    });
                    return None;
                }
                self.steps += 1;
                if let Some(why) = limits.exceeded(self.steps, CLOCK_CHECK_STEPS, self.memo_len()) {
                    return Some(CheckResult::Unknown(self.how_far(&why, &best)));
                }
                if stack.len() > best.len() {
                    best.truncate(low_water);
                    best.extend(stack[low_water..].iter().map(|frame| frame.op));
                    low_water = stack.len();
                }
            }

            // Pick the next child to descend into, or conclude that this node fails — with
            // partitions, because of the projection on `failed_part` (see `Parts`).
            let mut child: Option<(u32, S, u128, Cursor, bool)> = None;
            let mut node_failed = false;
            let mut failed_part = NONE;
            let mut cursor = match resume.take() {
                Some(cursor) => cursor,
                None => {
                    // Greedy read-only step. If a read-only op R is a candidate (its call precedes
                    // every remaining return) and the model accepts it in state s, then any
                    // completion σ from this node can be rewritten to start with R: R leaves s
                    // unchanged, so every op before R in σ sees the same state as before, and no
                    // remaining op has returned before R's call, so real-time order allows R first.
                    // Hence this node succeeds iff the child after R does: no choice point needed.
                    let mut entry = self.lists.next[HEAD as usize];
                    let mut candidates = 0u32;
                    while entry != NONE && !self.lists.entry_is_return[entry as usize] {
                        let index = self.lists.entry_op[entry as usize];
                        candidates += 1;
                        if self.ops[index as usize].read_only {
                            if let Some((next, next_fp)) = self.try_step(&state, fingerprint, index)
                            {
                                if self.parts.is_some()
                                    && self.known_failed(
                                        hash ^ self.keys[index as usize],
                                        index,
                                        &next,
                                        next_fp,
                                    )
                                {
                                    node_failed = true;
                                    failed_part = self.ops[index as usize].part;
                                } else {
                                    child = Some((
                                        index,
                                        next,
                                        next_fp,
                                        Cursor::Unknown {
                                            node: NONE,
                                            frontier: 0,
                                            part: NONE,
                                        },
                                        true,
                                    ));
                                }
                                break;
                            }
                            if self.read_is_dead(&state, index) {
                                node_failed = true;
                                failed_part = self.ops[index as usize].part;
                                break;
                            }
                        }
                        entry = self.lists.next[entry as usize];
                    }
                    let frontier = if entry == NONE {
                        NONE
                    } else {
                        self.lists.entry_rank[entry as usize]
                    };
                    // With partitions, only the partition of the earliest remaining return.
                    let part = if self.parts.is_some() && entry != NONE {
                        self.ops[self.lists.entry_op[entry as usize] as usize].part
                    } else {
                        NONE
                    };
                    Cursor::ByReturn {
                        entry,
                        frontier,
                        left: candidates,
                        part,
                    }
                }
            };

            if child.is_none() && !node_failed {
                loop {
                    match cursor {
                        Cursor::ByReturn {
                            entry,
                            frontier,
                            left,
                            part,
                        } => {
                            if left == 0 || entry == NONE {
                                if unknown_chain_max.is_some_and(|max| chain >= max)
                                    && self.progress_gap(&state) == 0
                                {
                                    node_failed = true;
                                    failed_part = part;
                                    break;
                                }
                                let node = if S::STATE_IS_LAST_WRITE {
                                    self.unknown_called_after(HEAD, frontier)
                                } else {
                                    self.newest_unknown_before(frontier)
                                };
                                cursor = Cursor::Unknown {
                                    node,
                                    frontier,
                                    part,
                                };
                                continue;
                            }
                            let index = self.lists.entry_op[entry as usize];
                            let op = &self.ops[index as usize];
                            let is_candidate = self.lists.entry_is_return[entry as usize]
                                && op.call_rank < frontier;
                            let left = left - u32::from(is_candidate);
                            let next_cursor = Cursor::ByReturn {
                                entry: self.lists.next[entry as usize],
                                frontier,
                                left,
                                part,
                            };
                            // Read-only candidates were all tried in this state on entry.
                            if is_candidate && !op.read_only && self.in_part(index, part) {
                                if let Some((next, next_fp)) =
                                    self.try_step(&state, fingerprint, index)
                                {
                                    let next_hash = hash ^ self.keys[index as usize];
                                    if !self.known_failed(next_hash, index, &next, next_fp) {
                                        child = Some((index, next, next_fp, next_cursor, false));
                                        break;
                                    }
                                }
                            }
                            cursor = next_cursor;
                        }
                        Cursor::Unknown {
                            node,
                            frontier,
                            part,
                        } => {
                            if node == HEAD || node == NONE {
                                node_failed = true;
                                failed_part = part;
                                break;
                            }
                            let index = self.lists.unknown_op[node as usize];
                            assert!(
                                self.ops[index as usize].call_rank < frontier,
                                "wgl: an unknown op on the list was called before the frontier"
                            );
                            let next_cursor = Cursor::Unknown {
                                node: if S::STATE_IS_LAST_WRITE {
                                    self.unknown_called_after(node, frontier)
                                } else {
                                    self.lists.unknown_prev[node as usize]
                                },
                                frontier,
                                part,
                            };
                            if !self.in_part(index, part)
                                || self.earlier_twin_pending(&state, index)
                            {
                                cursor = next_cursor;
                                continue;
                            }
                            // An unknown op whose effect only some operations can see waits
                            // until one of them is pending (`Spec::unknown_effect_tag`).
                            if let Some(tag) =
                                state.unknown_effect_tag(self.ops[index as usize].input)
                            {
                                if !self.pending_touches(tag, frontier, index) {
                                    cursor = next_cursor;
                                    continue;
                                }
                            }
                            if let Some((next, next_fp)) = self.try_step(&state, fingerprint, index)
                            {
                                let next_hash = hash ^ self.keys[index as usize];
                                // Past the cap, only steps that close the progress gap.
                                let over_cap = unknown_chain_max.is_some_and(|max| chain >= max);
                                let useful = (!self.ops[index as usize].shadow
                                    || self.shadow_helps(&state, &next, frontier))
                                    && (!over_cap || next.progress() > state.progress());
                                if useful && !self.known_failed(next_hash, index, &next, next_fp) {
                                    child = Some((index, next, next_fp, next_cursor, false));
                                    break;
                                }
                            }
                            cursor = next_cursor;
                        }
                    }
                }
            }

            if let Some((index, next, next_fp, resume_cursor, forced)) = child {
                let next_hash = hash ^ self.keys[index as usize];
                // A forced child already in the memo failed before, and with it this node.
                // (With partitions, forced children were checked against `failed` above.)
                if self.parts.is_some() || self.memo.insert((next_hash, next_fp)) {
                    self.lift(index);
                    // A step that raised progress may have made a pending view impossible
                    // (`Spec::views`): the child is dead, its siblings are next. (Read-only
                    // steps never raise progress, so a forced child never ends here.)
                    if next.progress() > state.progress()
                        && !(self.views_possible(&next) && self.absences_possible(&next))
                    {
                        self.unlift(index);
                        assert!(!forced, "wgl: a forced step raised progress");
                        resume = Some(resume_cursor);
                        continue;
                    }
                    if self.ops[index as usize].ret.is_some() {
                        remaining -= 1;
                    }
                    let previous = std::mem::replace(&mut state, next);
                    stack.push(Frame {
                        op: index,
                        state: previous,
                        fingerprint,
                        hash,
                        resume: resume_cursor,
                        forced,
                        chain,
                    });
                    chain = if self.ops[index as usize].ret.is_some() {
                        0
                    } else {
                        chain + 1
                    };
                    fingerprint = next_fp;
                    hash = next_hash;
                    continue;
                }
                assert!(
                    forced,
                    "wgl: non-forced children are checked against the memo first"
                );
                node_failed = true;
            }

            assert!(node_failed, "wgl: the node is exhausted when it backtracks");
            assert_eq!(
                self.parts.is_some(),
                failed_part != NONE,
                "wgl: with partitions, every failure has a partition"
            );
            // Backtrack to the nearest node with a choice left; with partitions, to the nearest
            // whose branching partition is the one that failed (`Parts`).
            loop {
                if failed_part != NONE {
                    self.record_failed(failed_part, &state);
                }
                let Some(frame) = stack.pop() else {
                    let mut violation = self.violation(&best);
                    if let Some(parts) = &self.parts {
                        violation.partition = Some(parts.names[failed_part as usize].clone());
                    }
                    return Some(CheckResult::NotLinearizable(violation));
                };
                self.unlift(frame.op);
                if self.ops[frame.op as usize].ret.is_some() {
                    remaining += 1;
                }
                state = frame.state;
                fingerprint = frame.fingerprint;
                hash = frame.hash;
                chain = frame.chain;
                low_water = low_water.min(stack.len());
                if failed_part != NONE && self.ops[frame.op as usize].part != failed_part {
                    // The step changed another partition: the parent has the same failed
                    // projection, and fails too without trying its other children.
                    continue;
                }
                if !frame.forced {
                    resume = Some(frame.resume);
                    break;
                }
            }
        }
    }

    /// How far `state`'s progress is below the tightest `Spec::progress_max` of the answered
    /// operations still to place (0 without progress, or with no gap). An answered op bounded
    /// by `b` is typically valid only at progress `b` (etcd: a write answered at revision `h`
    /// goes exactly where the store is at `h - 1`), so a gap of `g` usually means `g` more
    /// unknown-outcome writes in a row before any answered op fits: a capped round
    /// (`UNKNOWN_CHAIN_ROUNDS`) lets the chain run on past its cap while the gap is open, by
    /// steps that raise progress only. Otherwise a run of revisions that only unknown writes
    /// can fill, longer than the cap, makes the capped round try every earlier choice before
    /// giving up on it. Capped rounds only ever prove linearizable, so this changes no verdict.
    fn progress_gap(&self, state: &S) -> i64 {
        let tightest = self.bounds_left.first().map(|(bound, _)| *bound);
        state
            .progress()
            .zip(tightest)
            .map_or(0, |(progress, bound)| (bound - progress).max(0))
    }

    /// The `Unknown` text of a search that a budget stopped: the budget's own words (which
    /// begin with what ran out, `Limits::exceeded`), then how far the longest linearizable
    /// prefix seen got, counted in answered operations (unknown-outcome ones need not be placed).
    fn how_far(&self, why: &str, best: &[u32]) -> String {
        let placed = best
            .iter()
            .filter(|&&index| self.ops[index as usize].ret.is_some())
            .count();
        assert!(
            placed <= self.required_total,
            "wgl: a prefix of the searched ops"
        );
        format!(
            "{why}; the longest linearizable prefix found holds {placed} of {} answered \
             operations, {} left",
            self.required_total,
            self.required_total - placed
        )
    }

    /// Builds the report from the longest prefix: replays it to get the state there, and names
    /// the operations to blame after it (see [`Violation::stuck`]): the candidates — definite
    /// operations that could come next in real-time order — that the model refuses there, and
    /// the answered operations that could never be placed once an accepted candidate took
    /// effect (their `Spec::progress_max` is below the state's progress then: the search's
    /// bound pruning refused the candidate because of them). Only if there is neither (every
    /// candidate was accepted and failed deeper) are all the candidates named.
    fn violation(&self, best: &[u32]) -> Violation {
        let mut state = self.init.clone();
        let mut in_prefix = vec![false; self.ops.len()];
        for &index in best {
            let op = &self.ops[index as usize];
            in_prefix[index as usize] = true;
            let next = match op.ret {
                Some(ret) => state.step(op.input, ret),
                None => state.step_unknown(op.input),
            };
            assert!(
                next.is_some(),
                "wgl: the prefix was accepted step by step during the search"
            );
            if let Some(next) = next {
                state = next;
            }
        }
        let first_return_rank = self
            .ops
            .iter()
            .enumerate()
            .filter(|(index, op)| op.ret.is_some() && !in_prefix[*index])
            .map(|(_, op)| self.lists.entry_rank[op.return_node as usize])
            .min()
            .unwrap_or(NONE);
        let mut candidates: Vec<(u32, u32)> = self
            .ops
            .iter()
            .enumerate()
            .filter(|(index, op)| {
                op.ret.is_some() && !in_prefix[*index] && op.call_rank < first_return_rank
            })
            .map(|(index, op)| (op.call_rank, index as u32))
            .collect();
        candidates.sort_unstable();
        let mut refused: Vec<OpId> = Vec::new();
        // (bound, op id) of operations stranded by an accepted candidate.
        let mut stranded: BTreeSet<(i64, OpId)> = BTreeSet::new();
        let bounds = self.bounds_left_after(&in_prefix);
        for &(_, index) in &candidates {
            let op = &self.ops[index as usize];
            let Some(ret) = op.ret else { continue };
            let Some(next) = state.step(op.input, ret) else {
                refused.push(op.id);
                continue;
            };
            let Some(progress) = next.progress() else {
                continue;
            };
            for &(bound, other) in &bounds {
                if bound >= progress {
                    break;
                }
                if other != index {
                    stranded.insert((bound, self.ops[other as usize].id));
                }
            }
        }
        let mut stuck = refused;
        for (_, id) in stranded {
            if !stuck.contains(&id) {
                stuck.push(id);
            }
        }
        if stuck.is_empty() {
            stuck = candidates
                .iter()
                .map(|&(_, index)| self.ops[index as usize].id)
                .collect();
        }
        Violation {
            partition: None,
            longest_prefix: best
                .iter()
                .map(|&index| self.ops[index as usize].id)
                .collect(),
            stuck,
            state_debug: format!("{state:?}"),
        }
    }

    /// (`Spec::progress_max`, op index) of the answered operations outside `in_prefix` that
    /// have a bound, lowest first.
    fn bounds_left_after(&self, in_prefix: &[bool]) -> Vec<(i64, u32)> {
        let mut bounds: Vec<(i64, u32)> = self
            .ops
            .iter()
            .enumerate()
            .filter(|(index, _)| !in_prefix[*index])
            .filter_map(|(index, op)| Some((S::progress_max(op.input, op.ret?)?, index as u32)))
            .collect();
        bounds.sort_unstable();
        bounds
    }
}
