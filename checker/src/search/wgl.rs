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
//! - definite candidates are tried earliest return first (`Cursor`);
//! - models with a monotone progress measure (`Spec::progress`, etcd's revision) let the search
//!   drop a successor as soon as an answered operation still to be placed can no longer fit
//!   (`try_step`).
//!
//! Ties: at equal timestamps calls sort before returns, so two operations that touch at one instant
//! count as concurrent. That is the permissive reading (porcupine's too): coarse clocks can never
//! produce a false alarm. Jepsen and porcupine kv logs have no timestamps; their importers number
//! lines, so no ties arise there.

use std::collections::BTreeSet;

use kvsim_model::Spec;

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
    /// Unknown ops only: `Spec::changes_only_with_progress`.
    changes_only_with_progress: bool,
    /// The op's call entry in the main list, or its node in the unknown list.
    call_node: u32,
    /// The op's return entry in the main list (`NONE` for unknown ops).
    return_node: u32,
    /// Position of the call among all events sorted by time.
    call_rank: u32,
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
    ByReturn {
        entry: u32,
        frontier: u32,
        left: u32,
    },
    /// At this node of the unknown list, walking back towards the head: candidates are the nodes
    /// whose call rank is below `frontier` (the rank of the first remaining return).
    Unknown { node: u32, frontier: u32 },
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

/// Checks one (sub-)history. With `steps_max`, gives up after that many search steps and
/// returns `None` (the caller may retry with more); budget exhaustion is `Some(Unknown)`.
pub(crate) fn check_part<S>(
    ops: &[&Operation<S::Op, S::Ret>],
    init: S,
    limits: &Limits,
    steps_max: Option<u64>,
    stats: &mut Stats,
) -> Option<CheckResult>
where
    S: Spec,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    let has_unknown = ops
        .iter()
        .any(|op| matches!(op.outcome, Outcome::Unknown { .. }));
    let rounds: &[Option<u32>] = if has_unknown {
        &UNKNOWN_CHAIN_ROUNDS
    } else {
        &[None]
    };
    let mut result = None;
    for &unknown_chain_max in rounds {
        let mut search = match Search::new(ops, init.clone()) {
            Ok(search) => search,
            Err(why) => return Some(CheckResult::Unknown(why)),
        };
        result = search.run(limits, steps_max, unknown_chain_max);
        stats.steps += search.steps;
        stats.memo_entries_max = stats.memo_entries_max.max(search.memo.len());
        if !matches!(result, Some(CheckResult::NotLinearizable(_))) {
            break;
        }
    }
    result
}

/// Unknown-outcome ops multiply the search: each may take effect at any point or never, and a
/// dead end deep in the history is only refuted after trying every order of every pending
/// unknown op. So the search first runs with a cap on how many unknown ops it may linearize in
/// a row (between two definite ops); a linearization found that way is a real one. Only the last
/// round, without a cap, is complete, so only its "not linearizable" is believed. (Within a
/// capped round the memo may also wrongly prune, as nodes are memoized without the chain
/// length; that, too, only matters to the capped rounds' negative answers, which are dropped.)
const UNKNOWN_CHAIN_ROUNDS: [Option<u32>; 3] = [Some(1), Some(3), None];

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
    memo: Memo,
    steps: u64,
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
                changes_only_with_progress: ret.is_none()
                    && S::changes_only_with_progress(&op.input),
                call_node: NONE,
                return_node: NONE,
                call_rank: NONE,
            });
        }
        events.sort_unstable();

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
            memo: Memo::default(),
            steps: 0,
        })
    }

    fn lift(&mut self, index: u32) {
        let op = &self.ops[index as usize];
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
        let op = &self.ops[index as usize];
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
    fn try_step(&self, state: &S, fingerprint: u128, index: u32) -> Option<(S, u128)> {
        let op = &self.ops[index as usize];
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

    fn run(
        &mut self,
        limits: &Limits,
        steps_max: Option<u64>,
        unknown_chain_max: Option<u32>,
    ) -> Option<CheckResult> {
        // Unknown ops linearized in a row on top of the stack.
        let mut chain = 0u32;
        let mut state = self.init.clone();
        let mut fingerprint = state.fingerprint();
        let mut hash: u128 = 0;
        let mut remaining = self.required_total;
        let mut stack: Vec<Frame<S>> = Vec::new();
        // The longest prefix seen, maintained incrementally: `best` agrees with the stack below
        // `low_water` (the lowest stack height since `best` was last synchronized).
        let mut best: Vec<u32> = Vec::new();
        let mut low_water = 0usize;
        self.memo.insert((hash, fingerprint));

        // `None` = enter a fresh node; `Some(cursor)` = resume a node's scan after a failed child.
        let mut resume: Option<Cursor> = None;
        loop {
            if resume.is_none() {
                if remaining == 0 {
                    return Some(CheckResult::Linearizable);
                }
                self.steps += 1;
                if let Some(why) = limits.exceeded(self.steps, CLOCK_CHECK_STEPS, self.memo.len()) {
                    return Some(CheckResult::Unknown(why));
                }
                if steps_max.is_some_and(|max| self.steps > max) {
                    return None;
                }
                if stack.len() > best.len() {
                    best.truncate(low_water);
                    best.extend(stack[low_water..].iter().map(|frame| frame.op));
                    low_water = stack.len();
                }
            }

            // Pick the next child to descend into, or conclude that this node fails.
            let mut child: Option<(u32, S, u128, Cursor, bool)> = None;
            let mut node_failed = false;
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
                                child = Some((
                                    index,
                                    next,
                                    next_fp,
                                    Cursor::Unknown {
                                        node: NONE,
                                        frontier: 0,
                                    },
                                    true,
                                ));
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
                    Cursor::ByReturn {
                        entry,
                        frontier,
                        left: candidates,
                    }
                }
            };

            if child.is_none() {
                loop {
                    match cursor {
                        Cursor::ByReturn {
                            entry,
                            frontier,
                            left,
                        } => {
                            if left == 0 || entry == NONE {
                                if unknown_chain_max.is_some_and(|max| chain >= max) {
                                    node_failed = true;
                                    break;
                                }
                                // Newest call first: an unknown op that could have been used at an
                                // earlier point and was not is likely one that never took effect.
                                let mut node = self.lists.unknown_prev[self.unknown_tail as usize];
                                while node != HEAD
                                    && self.ops[self.lists.unknown_op[node as usize] as usize]
                                        .call_rank
                                        > frontier
                                {
                                    node = self.lists.unknown_prev[node as usize];
                                }
                                cursor = Cursor::Unknown { node, frontier };
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
                            };
                            // Read-only candidates were all tried in this state on entry.
                            if is_candidate && !op.read_only {
                                if let Some((next, next_fp)) =
                                    self.try_step(&state, fingerprint, index)
                                {
                                    if !self
                                        .memo
                                        .contains(&(hash ^ self.keys[index as usize], next_fp))
                                    {
                                        child = Some((index, next, next_fp, next_cursor, false));
                                        break;
                                    }
                                }
                            }
                            cursor = next_cursor;
                        }
                        Cursor::Unknown { node, frontier } => {
                            if node == HEAD || node == NONE {
                                node_failed = true;
                                break;
                            }
                            let index = self.lists.unknown_op[node as usize];
                            debug_assert!(self.ops[index as usize].call_rank < frontier);
                            let next_cursor = Cursor::Unknown {
                                node: self.lists.unknown_prev[node as usize],
                                frontier,
                            };
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
                                if !self
                                    .memo
                                    .contains(&(hash ^ self.keys[index as usize], next_fp))
                                {
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
                if self.memo.insert((next_hash, next_fp)) {
                    self.lift(index);
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
                debug_assert!(
                    forced,
                    "non-forced children are checked against the memo first"
                );
                node_failed = true;
            }

            debug_assert!(node_failed);
            // Backtrack to the nearest node with a choice left.
            loop {
                let Some(frame) = stack.pop() else {
                    return Some(CheckResult::NotLinearizable(self.violation(&best)));
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
                if !frame.forced {
                    resume = Some(frame.resume);
                    break;
                }
            }
        }
    }

    /// Builds the report from the longest prefix: replays it to get the state there, and lists
    /// the definite operations that were candidates after it.
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
            debug_assert!(
                next.is_some(),
                "the prefix was accepted step by step during the search"
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
        let mut stuck: Vec<(u32, OpId)> = self
            .ops
            .iter()
            .enumerate()
            .filter(|(index, op)| {
                op.ret.is_some() && !in_prefix[*index] && op.call_rank < first_return_rank
            })
            .map(|(_, op)| (op.call_rank, op.id))
            .collect();
        stuck.sort_unstable();
        Violation {
            partition: None,
            longest_prefix: best
                .iter()
                .map(|&index| self.ops[index as usize].id)
                .collect(),
            stuck: stuck.into_iter().map(|(_, id)| id).collect(),
            state_debug: format!("{state:?}"),
        }
    }
}
