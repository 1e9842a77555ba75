//! The key space: every key's versions since the last compaction, with an incremental
//! fingerprint over all of them.
//!
//! Each key keeps a newest-first persistent list of [`Record`]s, so cloning the store (the search
//! clones once per step) is O(1) and a write copies only the B-tree path of one key. Historic
//! reads walk a key's list back to the newest record at or below the requested revision, like
//! etcd's `keyIndex.get(atRev)`.

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use im::OrdMap;

use crate::fingerprint_of;
use crate::mvcc::types::{KeyValue, LeaseId, Revision, FROM_KEY};

/// A key's state from one revision on: a live version or a deletion (etcd's tombstone).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Record {
    Live(Live),
    Tombstone { mod_revision: Revision },
}

impl Record {
    pub(crate) fn mod_revision(&self) -> Revision {
        match self {
            Record::Live(live) => live.mod_revision,
            Record::Tombstone { mod_revision } => *mod_revision,
        }
    }

    pub(crate) fn live(&self) -> Option<&Live> {
        match self {
            Record::Live(live) => Some(live),
            Record::Tombstone { .. } => None,
        }
    }
}

/// One version of a key, with etcd's `mvccpb.KeyValue` fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Live {
    /// Shared: a put with `ignore_value` and every clone of the store reuse the same bytes.
    pub value: Arc<str>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub lease: LeaseId,
}

impl Live {
    pub(crate) fn to_key_value(&self, key: &str, keys_only: bool) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: if keys_only {
                String::new()
            } else {
                self.value.to_string()
            },
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
        }
    }

    /// Field-by-field comparison with a returned `KeyValue`, without allocating.
    pub(crate) fn matches(&self, key: &str, keys_only: bool, kv: &KeyValue) -> bool {
        let value_ok = if keys_only {
            kv.value.is_empty()
        } else {
            *self.value == *kv.value
        };
        kv.key == key
            && value_ok
            && kv.create_revision == self.create_revision
            && kv.mod_revision == self.mod_revision
            && kv.version == self.version
            && kv.lease == self.lease
    }
}

/// Newest-first persistent list of one key's records; never empty.
struct Node {
    record: Record,
    older: Option<Arc<Node>>,
}

#[derive(Clone)]
struct Versions(Arc<Node>);

impl Versions {
    fn latest(&self) -> &Record {
        &self.0.record
    }

    /// The newest record at or below `revision`, if any survived compaction.
    fn at(&self, revision: Revision) -> Option<&Record> {
        let mut node = Some(&self.0);
        while let Some(current) = node {
            if current.record.mod_revision() <= revision {
                return Some(&current.record);
            }
            node = current.older.as_ref();
        }
        None
    }

    fn iter(&self) -> impl Iterator<Item = &Record> {
        let mut node = Some(&self.0);
        std::iter::from_fn(move || {
            let current = node?;
            node = current.older.as_ref();
            Some(&current.record)
        })
    }
}

/// Tags keep facts of different kinds from colliding in the fingerprint sum.
const FACT_RECORD: u8 = 1;

fn record_fact(key: &str, record: &Record) -> u128 {
    fingerprint_of(&(FACT_RECORD, key, record))
}

#[derive(Clone, Default)]
pub(crate) struct Store {
    keys: OrdMap<Arc<str>, Versions>,
    /// Wrapping sum of `record_fact` over every stored (key, record).
    fingerprint: u128,
}

/// The keys a `(key, range_end)` pair selects, as etcd's `mkGteRange` + `treeIndex` read them.
pub(crate) fn range_bounds<'a>(
    key: &'a str,
    range_end: &'a str,
) -> Option<(Bound<&'a str>, Bound<&'a str>)> {
    if range_end.is_empty() {
        Some((Bound::Included(key), Bound::Included(key)))
    } else if range_end == FROM_KEY {
        Some((Bound::Included(key), Bound::Unbounded))
    } else if range_end > key {
        Some((Bound::Included(key), Bound::Excluded(range_end)))
    } else {
        // etcd returns nothing for an inverted or empty interval; im's range would panic.
        None
    }
}

impl Store {
    pub(crate) fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    pub(crate) fn latest(&self, key: &str) -> Option<&Record> {
        self.keys.get(key).map(Versions::latest)
    }

    /// The key's current version, if it exists.
    pub(crate) fn live(&self, key: &str) -> Option<&Live> {
        self.latest(key).and_then(Record::live)
    }

    /// Visits, in key order, every key in the range that exists at `revision`.
    pub(crate) fn visit_range<'s>(
        &'s self,
        key: &str,
        range_end: &str,
        revision: Revision,
        mut visit: impl FnMut(&'s Arc<str>, &'s Live),
    ) {
        let Some(bounds) = range_bounds(key, range_end) else {
            return;
        };
        for (k, versions) in self.keys.range::<_, str>(bounds) {
            if let Some(Record::Live(live)) = versions.at(revision) {
                visit(k, live);
            }
        }
    }

    /// Writes `record` as the key's newest record. A record at the same revision as the current
    /// newest one replaces it: inside one transaction etcd gives later writes of a key higher
    /// sub-revisions, and every read at that main revision sees only the last one.
    /// Returns the stored key, for the lessor's attachment set.
    pub(crate) fn write(&mut self, key: &str, record: Record) -> Arc<str> {
        let (key_arc, older) = match self.keys.get_key_value(key) {
            Some((existing_key, versions)) => {
                let latest = versions.latest();
                assert!(
                    latest.mod_revision() <= record.mod_revision(),
                    "revisions only grow"
                );
                if latest.mod_revision() == record.mod_revision() {
                    self.fingerprint = self.fingerprint.wrapping_sub(record_fact(key, latest));
                    (existing_key.clone(), versions.0.older.clone())
                } else {
                    (existing_key.clone(), Some(versions.0.clone()))
                }
            }
            None => (Arc::from(key), None),
        };
        self.fingerprint = self.fingerprint.wrapping_add(record_fact(key, &record));
        self.keys
            .insert(key_arc.clone(), Versions(Arc::new(Node { record, older })));
        key_arc
    }

    /// Drops what etcd's compaction at `revision` drops: for each key, every record older than the
    /// one visible at `revision`, and that one too if it is a tombstone. Reads at or above
    /// `revision` see exactly what they saw before; reads below it are refused by the caller.
    pub(crate) fn compact(&mut self, revision: Revision) {
        let mut rewrites: Vec<(Arc<str>, Option<Versions>)> = Vec::new();
        for (key, versions) in self.keys.iter() {
            let records: Vec<&Record> = versions.iter().collect();
            let newer = records
                .iter()
                .take_while(|r| r.mod_revision() > revision)
                .count();
            let keep_visible = matches!(records.get(newer), Some(Record::Live(_)));
            let kept = newer + usize::from(keep_visible);
            if kept == records.len() {
                continue;
            }
            for dropped in &records[kept..] {
                self.fingerprint = self.fingerprint.wrapping_sub(record_fact(key, dropped));
            }
            let rebuilt = records[..kept].iter().rev().fold(None, |older, record| {
                Some(Arc::new(Node {
                    record: (*record).clone(),
                    older,
                }))
            });
            rewrites.push((key.clone(), rebuilt.map(Versions)));
        }
        for (key, versions) in rewrites {
            match versions {
                Some(versions) => {
                    self.keys.insert(key, versions);
                }
                None => {
                    self.keys.remove(&key);
                }
            }
        }
    }

    /// Every key's current version, in key order (for debugging and invariant checks).
    pub(crate) fn current(&self) -> impl Iterator<Item = (&Arc<str>, &Live)> {
        self.keys
            .iter()
            .filter_map(|(k, v)| v.latest().live().map(|live| (k, live)))
    }

    /// Recomputes the fingerprint from scratch (tests and debug assertions).
    pub(crate) fn fingerprint_recomputed(&self) -> u128 {
        let mut sum = 0u128;
        for (key, versions) in self.keys.iter() {
            for record in versions.iter() {
                sum = sum.wrapping_add(record_fact(key, record));
            }
        }
        sum
    }

    /// Number of stored records over all keys (tests: compaction must shrink it).
    #[cfg(test)]
    pub(crate) fn records_len(&self) -> usize {
        self.keys.values().map(|v| v.iter().count()).sum()
    }
}

impl fmt::Debug for Store {
    /// Only the current versions: a state dump in a violation report must stay readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, live) in self.current() {
            map.entry(
                key,
                &format_args!(
                    "{:?} (create {}, mod {}, version {}, lease {})",
                    live.value, live.create_revision, live.mod_revision, live.version, live.lease
                ),
            );
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(value: &str, create: Revision, modr: Revision, version: i64) -> Record {
        Record::Live(Live {
            value: Arc::from(value),
            create_revision: create,
            mod_revision: modr,
            version,
            lease: 0,
        })
    }

    fn keys_at(store: &Store, revision: Revision) -> Vec<String> {
        let mut out = Vec::new();
        store.visit_range("\0", FROM_KEY, revision, |k, l| {
            out.push(format!("{k}={}", l.value))
        });
        out
    }

    #[test]
    fn historic_reads_see_the_newest_record_at_or_below() {
        let mut store = Store::default();
        store.write("a", live("1", 2, 2, 1));
        store.write("a", live("2", 2, 3, 2));
        store.write("a", Record::Tombstone { mod_revision: 4 });
        store.write("b", live("x", 5, 5, 1));
        assert_eq!(keys_at(&store, 1), Vec::<String>::new());
        assert_eq!(keys_at(&store, 2), vec!["a=1"]);
        assert_eq!(keys_at(&store, 3), vec!["a=2"]);
        assert_eq!(keys_at(&store, 4), Vec::<String>::new());
        assert_eq!(keys_at(&store, 5), vec!["b=x"]);
        assert_eq!(store.fingerprint(), store.fingerprint_recomputed());
    }

    #[test]
    fn same_revision_write_replaces() {
        let mut store = Store::default();
        store.write("a", live("1", 2, 2, 1));
        store.write("a", Record::Tombstone { mod_revision: 3 });
        store.write("a", live("2", 3, 3, 1));
        assert_eq!(keys_at(&store, 3), vec!["a=2"]);
        assert_eq!(keys_at(&store, 2), vec!["a=1"]);
        assert_eq!(store.records_len(), 2);
        assert_eq!(store.fingerprint(), store.fingerprint_recomputed());
    }

    #[test]
    fn compaction_keeps_reads_at_and_above_and_canonicalizes() {
        let mut store = Store::default();
        store.write("a", live("1", 2, 2, 1));
        store.write("a", live("2", 2, 3, 2));
        store.write("b", live("x", 4, 4, 1));
        store.write("b", Record::Tombstone { mod_revision: 5 });
        store.write("a", live("3", 2, 6, 3));
        let before: Vec<_> = (3..=6).map(|r| keys_at(&store, r)).collect();
        store.compact(5);
        let after: Vec<_> = (3..=6).map(|r| keys_at(&store, r)).collect();
        // Reads at 5 and 6 are unchanged; below 5 the model refuses reads (Compacted) anyway.
        assert_eq!(before[2..], after[2..]);
        // a keeps rev 3 (visible at 5) and rev 6; b's tombstone at 5 goes with everything under it.
        assert_eq!(store.records_len(), 2);
        assert_eq!(store.fingerprint(), store.fingerprint_recomputed());

        // The same current state reached without the dropped history has the same fingerprint.
        let mut direct = Store::default();
        direct.write("a", live("2", 2, 3, 2));
        direct.write("a", live("3", 2, 6, 3));
        assert_eq!(direct.fingerprint(), store.fingerprint());
    }

    #[test]
    fn inverted_and_single_key_ranges() {
        let mut store = Store::default();
        store.write("a", live("1", 2, 2, 1));
        store.write("b", live("2", 3, 3, 1));
        let mut seen = Vec::new();
        store.visit_range("b", "a", 3, |k, _| seen.push(k.to_string()));
        assert!(seen.is_empty());
        store.visit_range("a", "", 3, |k, _| seen.push(k.to_string()));
        assert_eq!(seen, vec!["a"]);
        seen.clear();
        store.visit_range("a", "b", 3, |k, _| seen.push(k.to_string()));
        assert_eq!(seen, vec!["a"]);
    }
}
