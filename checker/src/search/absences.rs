//! Keys that answers still to place show absent (`Spec::absences`), as the search keeps them.
//!
//! What a store holds at or below its progress never changes, and every op still to place is
//! linearized at progress no lower than the search's current one. So an answer showing key k
//! absent at progress `at` is lost at a node of progress p, with k present, when p = `at`
//! (k is as it stays), or when p < `at` and no op still to place may remove k at a progress up
//! to `at` (`Spec::may_remove`): k stays present up to `at`. The check runs after each step that raises
//! progress, like the views of present keys (`Spec::views`), and catches the orders that views
//! cannot: a mass delete linearized before the puts whose keys every later read shows gone.
//!
//! An answer still to place may also show k present at a progress p above the node's
//! (`Spec::presences`: a put answered at p). Then k is present at p whatever comes first, and an
//! absence of k at `at` >= p needs a removal in (p, `at`], by an op still to place, since every
//! op still to place is linearized at progress no lower than the node's and that removal is at
//! progress above p. No such op (`Spec::may_remove` at a progress up to `at`), or `at` = p: the
//! node is lost, though k may be absent now. The check looks at each key's lowest pending
//! presence above the progress and the lowest pending absence at or above that presence.

use std::collections::{BTreeMap, BTreeSet};

use kvsim_model::{KeyAbsence, KeyPresence, PartitionKey, Spec};

/// Per op, the keys its answer shows absent; per key, the answers still to place that show it
/// absent, and how many ops still to place may remove it.
pub(super) struct Absences {
    /// Key names, by key id.
    keys: Vec<PartitionKey>,
    /// Per op, its absences: (key id, `at`).
    shown: Vec<Vec<(u32, i64)>>,
    /// Per op, the key ids it may remove (of keys some answer shows absent), each with the
    /// lowest progress of the removal.
    removes: Vec<Vec<(u32, i64)>>,
    /// Per key id, the absences of answered ops still to place: (`at`, op).
    pending: Vec<BTreeSet<(i64, u32)>>,
    /// Per key id, the ops still to place that may remove it: (lowest progress, op).
    removers: Vec<BTreeSet<(i64, u32)>>,
    /// Per op, the keys its answer shows present (of keys some answer shows absent): (key
    /// id, `at`).
    shown_present: Vec<Vec<(u32, i64)>>,
    /// Per key id, the presences of answered ops still to place: (`at`, op).
    pending_present: Vec<BTreeSet<(i64, u32)>>,
}

impl Absences {
    /// The search's ops, each with its answer (`None`: unknown outcome), indexed as the search
    /// indexes them; nothing linearized yet. Empty for models without progress: without it no
    /// state is final at any point.
    pub(super) fn new<'a, S>(ops: &[(&'a S::Op, Option<&'a S::Ret>)], with_progress: bool) -> Self
    where
        S: Spec + 'a,
        S::Op: Clone + std::fmt::Debug,
        S::Ret: Clone + std::fmt::Debug,
    {
        // Keys numbered in sorted order: `Spec::may_remove` looks ranges up in them.
        let mut buffer: Vec<KeyAbsence> = Vec::new();
        let all: Vec<Vec<KeyAbsence>> = ops
            .iter()
            .map(|&(input, ret)| {
                let Some(ret) = ret.filter(|_| with_progress) else {
                    return Vec::new();
                };
                buffer.clear();
                S::absences(input, ret, &mut buffer);
                buffer.clone()
            })
            .collect();
        let ids: BTreeMap<PartitionKey, u32> = all
            .iter()
            .flatten()
            .map(|absence| absence.key.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .enumerate()
            .map(|(id, key)| (key, id as u32))
            .collect();
        let keys: Vec<PartitionKey> = ids.keys().cloned().collect();
        let shown: Vec<Vec<(u32, i64)>> = all
            .iter()
            .map(|absences| {
                let mut shown: Vec<(u32, i64)> =
                    absences.iter().map(|a| (ids[&a.key], a.at)).collect();
                shown.sort_unstable();
                shown.dedup();
                shown
            })
            .collect();
        let removes: Vec<Vec<(u32, i64)>> = if keys.is_empty() {
            vec![Vec::new(); ops.len()]
        } else {
            ops.iter()
                .map(|&(input, ret)| {
                    let mut removes = Vec::new();
                    S::may_remove(input, ret, &keys, &mut removes);
                    assert!(
                        removes.iter().all(|&(key, _)| (key as usize) < keys.len()),
                        "absences: may_remove names a key it was given"
                    );
                    removes
                })
                .collect()
        };
        let mut presences: Vec<KeyPresence> = Vec::new();
        let shown_present: Vec<Vec<(u32, i64)>> = ops
            .iter()
            .map(|&(input, ret)| {
                let Some(ret) = ret.filter(|_| with_progress && !ids.is_empty()) else {
                    return Vec::new();
                };
                presences.clear();
                S::presences(input, ret, &mut presences);
                let mut shown: Vec<(u32, i64)> = presences
                    .iter()
                    .filter_map(|p| ids.get(&p.key).map(|&id| (id, p.at)))
                    .collect();
                shown.sort_unstable();
                shown.dedup();
                shown
            })
            .collect();
        let mut absences = Absences {
            pending: vec![BTreeSet::new(); keys.len()],
            removers: vec![BTreeSet::new(); keys.len()],
            pending_present: vec![BTreeSet::new(); keys.len()],
            keys,
            shown,
            removes,
            shown_present,
        };
        for index in 0..ops.len() as u32 {
            absences.unlift(index);
        }
        absences
    }

    /// Whether every answer still to place that shows a key absent can still be placed, as far
    /// as `state` (of progress `progress`) tells (see the module doc).
    pub(super) fn possible<S: Spec>(&self, state: &S, progress: i64) -> bool
    where
        S::Op: Clone + std::fmt::Debug,
        S::Ret: Clone + std::fmt::Debug,
    {
        for (key, pending) in self.pending.iter().enumerate() {
            // The first absence the progress has not passed: if the key is present now, it
            // must be gone by then.
            let Some(&(at, _)) = pending.range((progress, 0)..).next() else {
                continue;
            };
            if !self.removable(key, at, progress) && state.present(&self.keys[key]) {
                return false;
            }
        }
        for (key, present) in self.pending_present.iter().enumerate() {
            let Some(&(present_at, _)) = present.range((progress + 1, 0)..).next() else {
                continue;
            };
            let Some(&(at, _)) = self.pending[key].range((present_at, 0)..).next() else {
                continue;
            };
            if !self.removable(key, at, present_at) {
                return false;
            }
        }
        true
    }

    /// Whether an op still to place may remove key `key` at a progress in (`after`, `at`].
    fn removable(&self, key: usize, at: i64, after: i64) -> bool {
        self.removers[key]
            .first()
            .is_some_and(|&(from, _)| from <= at && at > after)
    }

    /// Op `index` is linearized.
    pub(super) fn lift(&mut self, index: u32) {
        for &(key, at) in &self.shown[index as usize] {
            let removed = self.pending[key as usize].remove(&(at, index));
            assert!(removed, "absences: a linearized op's absences were pending");
        }
        for &(key, from) in &self.removes[index as usize] {
            let removed = self.removers[key as usize].remove(&(from, index));
            assert!(removed, "absences: a linearized remover was pending");
        }
        for &(key, at) in &self.shown_present[index as usize] {
            let removed = self.pending_present[key as usize].remove(&(at, index));
            assert!(
                removed,
                "absences: a linearized op's presences were pending"
            );
        }
    }

    /// Op `index` is taken back.
    pub(super) fn unlift(&mut self, index: u32) {
        for &(key, at) in &self.shown[index as usize] {
            self.pending[key as usize].insert((at, index));
        }
        for &(key, from) in &self.removes[index as usize] {
            self.removers[key as usize].insert((from, index));
        }
        for &(key, at) in &self.shown_present[index as usize] {
            self.pending_present[key as usize].insert((at, index));
        }
    }
}
