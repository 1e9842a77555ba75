//! The in-memory key index (etcd's mvcc/index.go treeIndex): key -> keyIndex, ordered by key so that
//! range results come out sorted without a separate sort.

use super::key_index::{Found, KeyIndex};
use super::key_range::KeyRange;
use super::revision::Revision;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<KeyIndex>", into = "Vec<KeyIndex>")]
pub struct TreeIndex {
    keys: BTreeMap<Vec<u8>, KeyIndex>,
}

impl From<Vec<KeyIndex>> for TreeIndex {
    fn from(list: Vec<KeyIndex>) -> Self {
        TreeIndex {
            keys: list.into_iter().map(|ki| (ki.key.clone(), ki)).collect(),
        }
    }
}

impl From<TreeIndex> for Vec<KeyIndex> {
    fn from(index: TreeIndex) -> Self {
        index.keys.into_values().collect()
    }
}

impl TreeIndex {
    pub fn get(&self, key: &[u8], at_rev: i64) -> Option<Found> {
        self.keys.get(key)?.get(at_rev)
    }

    /// Keys live at `at_rev` within `range`, sorted, with what the lookup found.
    pub fn range(&self, range: &KeyRange, at_rev: i64) -> Vec<(Vec<u8>, Found)> {
        let Some(bounds) = range.bounds() else {
            return Vec::new();
        };
        self.keys
            .range(bounds)
            .filter_map(|(key, ki)| ki.get(at_rev).map(|found| (key.clone(), found)))
            .collect()
    }

    pub fn put(&mut self, key: &[u8], rev: Revision) {
        self.keys
            .entry(key.to_vec())
            .or_insert_with(|| KeyIndex::new(key.to_vec()))
            .put(rev);
    }

    pub fn tombstone(&mut self, key: &[u8], rev: Revision) {
        self.keys
            .get_mut(key)
            .expect("tombstone of an unindexed key")
            .tombstone(rev);
    }

    /// etcd's treeIndex.Compact: compacts every keyIndex, drops the ones left empty, and returns the
    /// revisions at or below `at_rev` that the backend must keep.
    pub fn compact(&mut self, at_rev: i64) -> BTreeSet<Revision> {
        let mut available = BTreeSet::new();
        self.keys.retain(|_, ki| {
            ki.compact(at_rev, &mut available);
            !ki.is_empty()
        });
        available
    }

    pub fn key_indexes(&self) -> impl Iterator<Item = &KeyIndex> {
        self.keys.values()
    }

    pub fn check(&self) -> Result<(), String> {
        for (key, ki) in &self.keys {
            if *key != ki.key {
                return Err(format!(
                    "index entry {key:?} holds keyIndex of {:?}",
                    ki.key
                ));
            }
            if ki.is_empty() {
                return Err(format!("index holds empty keyIndex {key:?}"));
            }
            ki.check()?;
        }
        Ok(())
    }
}
