//! One key's revision history, organized as etcd's mvcc/key_index.go: a list of generations, each
//! running from a creation to a tombstone (the last generation is open and may be empty). Lookups at
//! an old revision and compaction work on this structure, not on the backend.

use super::revision::Revision;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One life of a key: its revisions from creation to (for a closed generation) the tombstone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Number of puts in this life (etcd's `ver`; the tombstone also counts, as in etcd).
    pub ver: i64,
    pub created: Revision,
    pub revs: Vec<Revision>,
}

impl Generation {
    fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }
}

/// What a lookup at some revision finds: the revision that wrote the live value, the key's creation
/// revision in that life, and its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub modified: Revision,
    pub created: Revision,
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIndex {
    pub key: Vec<u8>,
    pub modified: Revision,
    pub generations: Vec<Generation>,
}

impl KeyIndex {
    pub fn new(key: Vec<u8>) -> Self {
        KeyIndex {
            key,
            modified: Revision::default(),
            generations: vec![Generation::default()],
        }
    }

    pub fn put(&mut self, rev: Revision) {
        assert!(
            rev > self.modified,
            "keyIndex put {rev:?} not after {:?}",
            self.modified
        );
        let generation = self
            .generations
            .last_mut()
            .expect("a keyIndex always has a generation");
        if generation.is_empty() {
            generation.created = rev;
        }
        generation.revs.push(rev);
        generation.ver += 1;
        self.modified = rev;
    }

    /// Closes the current generation at `rev`. The caller only tombstones live keys (etcd returns
    /// ErrRevisionNotFound otherwise, which its callers treat as a panic).
    pub fn tombstone(&mut self, rev: Revision) {
        let live = self.generations.last().is_some_and(|g| !g.is_empty());
        assert!(live, "tombstone of a key that is not live: {:?}", self.key);
        self.put(rev);
        self.generations.push(Generation::default());
    }

    /// True when the key has no history left (only the empty open generation).
    pub fn is_empty(&self) -> bool {
        self.generations.len() == 1 && self.generations[0].is_empty()
    }

    /// The live value at main revision `at_rev`, as etcd's keyIndex.get.
    pub fn get(&self, at_rev: i64) -> Option<Found> {
        let generation = self.find_generation(at_rev)?;
        let newer = generation
            .revs
            .iter()
            .rev()
            .take_while(|rev| rev.main > at_rev)
            .count();
        let index = generation.revs.len().checked_sub(newer + 1)?;
        Some(Found {
            modified: generation.revs[index],
            created: generation.created,
            version: generation.ver - newer as i64,
        })
    }

    /// etcd's findGeneration: the generation holding `at_rev`, or None when the key was not live at
    /// `at_rev` (not yet created, or its generation's tombstone is at or before `at_rev`).
    fn find_generation(&self, at_rev: i64) -> Option<&Generation> {
        let last = self.generations.len() - 1;
        for (index, generation) in self.generations.iter().enumerate().rev() {
            let (Some(first), Some(tomb)) = (generation.revs.first(), generation.revs.last())
            else {
                continue;
            };
            if index != last && tomb.main <= at_rev {
                return None;
            }
            if first.main <= at_rev {
                return Some(generation);
            }
        }
        None
    }

    /// etcd's keyIndex.compact: drops history before `at_rev` but keeps, per key, the newest revision
    /// at or before `at_rev` unless it is a tombstone. Revisions that must stay in the backend are
    /// added to `available`.
    pub fn compact(&mut self, at_rev: i64, available: &mut BTreeSet<Revision>) {
        let last = self.generations.len() - 1;
        // First generation that holds `at_rev` or was created after it (doCompact).
        let mut generation_index = 0;
        while generation_index < last {
            let tomb = self.generations[generation_index]
                .revs
                .last()
                .expect("closed generations are not empty");
            if tomb.main > at_rev {
                break;
            }
            generation_index += 1;
        }
        let generation = &mut self.generations[generation_index];
        // generation.walk: newest revision <= at_rev.
        let rev_index = generation.revs.iter().rposition(|rev| rev.main <= at_rev);
        if let Some(rev_index) = rev_index {
            available.insert(generation.revs[rev_index]);
        }
        if !generation.is_empty() {
            if let Some(rev_index) = rev_index {
                generation.revs.drain(..rev_index);
            }
            // A closed generation reduced to its tombstone carries nothing to keep.
            if generation.revs.len() == 1 && generation_index != last {
                available.remove(&generation.revs[0]);
                generation_index += 1;
            }
        }
        self.generations.drain(..generation_index);
        assert!(self.check().is_ok(), "{:?}", self.check());
    }

    /// Structural invariants: revisions strictly increasing across generations, every closed
    /// generation non-empty, only the last generation may be empty, `modified` is the newest revision.
    pub fn check(&self) -> Result<(), String> {
        let Some((open, closed)) = self.generations.split_last() else {
            return Err(format!("key {:?}: no generation", self.key));
        };
        let mut previous: Option<Revision> = None;
        for generation in closed.iter().chain(std::iter::once(open)) {
            // Compaction may drop a generation's first revisions but keeps its creation revision.
            if let Some(first) = generation.revs.first() {
                if generation.created > *first {
                    return Err(format!(
                        "key {:?}: generation created {:?} after {:?}",
                        self.key, generation.created, first
                    ));
                }
            }
            for rev in &generation.revs {
                if previous.is_some_and(|previous| *rev <= previous) {
                    return Err(format!(
                        "key {:?}: revisions not increasing at {rev:?}",
                        self.key
                    ));
                }
                previous = Some(*rev);
            }
            if generation.ver < generation.revs.len() as i64 {
                return Err(format!(
                    "key {:?}: ver {} below {} revisions",
                    self.key,
                    generation.ver,
                    generation.revs.len()
                ));
            }
        }
        if closed.iter().any(Generation::is_empty) {
            return Err(format!("key {:?}: empty closed generation", self.key));
        }
        if let Some(previous) = previous {
            if previous != self.modified {
                return Err(format!(
                    "key {:?}: modified {:?} != newest {previous:?}",
                    self.key, self.modified
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// put 2, put 4, delete 6, put 8, put 10, delete 12, put 14, put 16 (the layout of etcd's
    /// key_index_test.go): three generations, the last one open.
    fn sample() -> KeyIndex {
        let mut ki = KeyIndex::new(b"k".to_vec());
        for main in [2, 4] {
            ki.put(rev(main));
        }
        ki.tombstone(rev(6));
        for main in [8, 10] {
            ki.put(rev(main));
        }
        ki.tombstone(rev(12));
        for main in [14, 16] {
            ki.put(rev(main));
        }
        ki
    }

    #[test]
    fn get_walks_generations() {
        let ki = sample();
        let found = |at| {
            ki.get(at)
                .map(|f| (f.modified.main, f.created.main, f.version))
        };
        assert_eq!(found(1), None);
        assert_eq!(found(2), Some((2, 2, 1)));
        assert_eq!(found(5), Some((4, 2, 2)));
        // At and after a tombstone the key is absent until re-created.
        assert_eq!(found(6), None);
        assert_eq!(found(7), None);
        assert_eq!(found(9), Some((8, 8, 1)));
        assert_eq!(found(12), None);
        assert_eq!(found(100), Some((16, 14, 2)));
        ki.check().unwrap();
    }

    #[test]
    fn compact_keeps_the_newest_revision_at_or_below() {
        // (compact at, revisions kept in the backend, revisions left in the index)
        let cases: [(i64, &[i64], &[i64]); 9] = [
            (1, &[], &[2, 4, 6, 8, 10, 12, 14, 16]),
            (2, &[2], &[2, 4, 6, 8, 10, 12, 14, 16]),
            (5, &[4], &[4, 6, 8, 10, 12, 14, 16]),
            // The tombstone at 6 closes the first generation: all of it goes.
            (6, &[], &[8, 10, 12, 14, 16]),
            (7, &[], &[8, 10, 12, 14, 16]),
            (11, &[10], &[10, 12, 14, 16]),
            (12, &[], &[14, 16]),
            (15, &[14], &[14, 16]),
            (16, &[16], &[16]),
        ];
        for (at, kept, left) in cases {
            let mut ki = sample();
            let before: Vec<_> = (at..=17).map(|r| ki.get(r)).collect();
            let mut available = BTreeSet::new();
            ki.compact(at, &mut available);
            assert_eq!(
                available.iter().map(|r| r.main).collect::<Vec<_>>(),
                kept,
                "compact {at}"
            );
            let revs: Vec<i64> = ki
                .generations
                .iter()
                .flat_map(|g| g.revs.iter().map(|r| r.main))
                .collect();
            assert_eq!(revs, left, "compact {at}");
            // Reads at or above the compact revision are unchanged (versions included).
            let after: Vec<_> = (at..=17).map(|r| ki.get(r)).collect();
            assert_eq!(before, after, "compact {at}");
            ki.check().unwrap();
        }
    }

    #[test]
    fn compact_after_final_tombstone_empties_the_index() {
        let mut ki = KeyIndex::new(b"k".to_vec());
        ki.put(rev(2));
        ki.tombstone(rev(3));
        let mut available = BTreeSet::new();
        ki.compact(3, &mut available);
        assert!(ki.is_empty() && available.is_empty());
    }
}
