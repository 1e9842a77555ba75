//! The revision-ordered record store (etcd's "key" bucket in bbolt): revision -> key-value record,
//! with a tombstone mark for deletions. Reads at a revision go index -> revision -> record here.

use super::revision::Revision;
use crate::proto::Kv;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// For a tombstone only `key` and `mod_revision` are set (etcd stores just the key).
    pub kv: Kv,
    pub tombstone: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(Revision, Record)>", into = "Vec<(Revision, Record)>")]
pub struct Backend {
    records: BTreeMap<Revision, Record>,
}

impl From<Vec<(Revision, Record)>> for Backend {
    fn from(list: Vec<(Revision, Record)>) -> Self {
        Backend {
            records: list.into_iter().collect(),
        }
    }
}

impl From<Backend> for Vec<(Revision, Record)> {
    fn from(backend: Backend) -> Self {
        backend.records.into_iter().collect()
    }
}

impl Backend {
    /// Appends a record; writes only ever go to a revision above every stored one.
    pub fn append(&mut self, rev: Revision, record: Record) {
        if let Some((last, _)) = self.records.last_key_value() {
            assert!(rev > *last, "backend append {rev:?} not after {last:?}");
        }
        assert_eq!(record.kv.mod_revision, rev.main);
        self.records.insert(rev, record);
    }

    pub fn get(&self, rev: Revision) -> Option<&Record> {
        self.records.get(&rev)
    }

    /// Records with main revision >= `start_main`, in revision order.
    pub fn since(&self, start_main: i64) -> impl Iterator<Item = (&Revision, &Record)> {
        self.records.range(Revision::new(start_main, 0)..)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Revision, &Record)> {
        self.records.iter()
    }

    /// etcd's scheduleCompaction: deletes every record at or below `at_rev` not in `keep`.
    pub fn compact(&mut self, at_rev: i64, keep: &BTreeSet<Revision>) {
        self.records
            .retain(|rev, _| rev.main > at_rev || keep.contains(rev));
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}
