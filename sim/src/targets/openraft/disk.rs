//! The openraft target's simulated disk: an append-only list of records that outlives the member's
//! incarnations. A write lands in an unsynced tail; a sync moves the tail to the durable part; a power
//! loss drops the unsynced tail (a torn one keeps a random prefix of it). Records are replayed in
//! order at boot ([`Recovered`]).

use super::types::{Entry, Log, Meta, SnapshotImage, Vote};
use crate::target::lock;
use madsim::rand::Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub enum Record {
    Vote(Vote),
    Append(Vec<Entry>),
    /// Drop every entry at this index and above.
    Truncate(u64),
    /// Drop every entry up to and including this log id.
    Purge(Log),
    Committed(Option<Log>),
    Snapshot(Meta, SnapshotImage),
}

#[derive(Default)]
struct Inner {
    durable: Vec<Record>,
    unsynced: Vec<Record>,
    /// Planted bug `lost_fsync`: a sync reports success and moves nothing.
    lost_fsync: bool,
}

/// A member's disk; clones share it.
#[derive(Clone, Default)]
pub struct Disk {
    inner: Arc<Mutex<Inner>>,
}

/// What a boot finds on the disk.
#[derive(Debug, Default)]
pub struct Recovered {
    pub vote: Option<Vote>,
    pub entries: BTreeMap<u64, Entry>,
    pub purged: Option<Log>,
    pub committed: Option<Log>,
    pub snapshot: Option<(Meta, SnapshotImage)>,
}

impl Disk {
    pub fn new(lost_fsync: bool) -> Disk {
        Disk {
            inner: Arc::new(Mutex::new(Inner {
                lost_fsync,
                ..Inner::default()
            })),
        }
    }

    /// Appends `record` to the unsynced tail; returns its position (1-based) for [`Disk::sync`].
    pub fn write(&self, record: Record) -> u64 {
        let mut inner = lock(&self.inner);
        inner.unsynced.push(record);
        (inner.durable.len() + inner.unsynced.len()) as u64
    }

    /// Everything written so far (the position a sync started now covers).
    pub fn written(&self) -> u64 {
        let inner = lock(&self.inner);
        (inner.durable.len() + inner.unsynced.len()) as u64
    }

    /// Makes every record up to position `upto` durable (the end of an fsync that started when
    /// `upto` records were written).
    pub fn sync(&self, upto: u64) {
        let mut inner = lock(&self.inner);
        if inner.lost_fsync {
            return;
        }
        let durable = inner.durable.len() as u64;
        let n = upto
            .saturating_sub(durable)
            .min(inner.unsynced.len() as u64) as usize;
        let moved: Vec<Record> = inner.unsynced.drain(..n).collect();
        inner.durable.extend(moved);
    }

    /// Power loss: the unsynced tail is lost; `torn` keeps a random prefix of it.
    pub fn power_loss(&self, torn: bool, rng: &mut dyn madsim::rand::RngCore) {
        let mut inner = lock(&self.inner);
        let keep = if torn && !inner.unsynced.is_empty() {
            rng.gen_range(0..=inner.unsynced.len())
        } else {
            0
        };
        let kept: Vec<Record> = inner.unsynced.drain(..keep).collect();
        inner.durable.extend(kept);
        inner.unsynced.clear();
    }

    pub fn unsynced(&self) -> usize {
        lock(&self.inner).unsynced.len()
    }

    /// Replays every record (durable, then unsynced: a process crash without power loss keeps the
    /// OS's page cache).
    pub fn recover(&self) -> Recovered {
        let inner = lock(&self.inner);
        let mut r = Recovered::default();
        for record in inner.durable.iter().chain(&inner.unsynced) {
            match record {
                Record::Vote(v) => r.vote = Some(*v),
                Record::Append(entries) => {
                    for e in entries {
                        r.entries.insert(e.log_id.index, e.clone());
                    }
                }
                Record::Truncate(index) => {
                    r.entries.split_off(index);
                }
                Record::Purge(log) => {
                    r.entries = r.entries.split_off(&(log.index + 1));
                    r.purged = Some(*log);
                }
                Record::Committed(c) => r.committed = *c,
                Record::Snapshot(meta, image) => r.snapshot = Some((meta.clone(), image.clone())),
            }
        }
        // Entries a snapshot covers are redundant; drop them so that the log starts right after
        // it. (Purges of a follower's log wait for the snapshot to be written, see
        // `LogStore::purge`, so older entries may still be here, below a gap.)
        if let Some(snapshot) = r.snapshot.as_ref().and_then(|(meta, _)| meta.last_log_id) {
            r.entries = r.entries.split_off(&(snapshot.index + 1));
            if r.purged.is_none_or(|p| p.index < snapshot.index) {
                r.purged = Some(snapshot);
            }
        }
        // The committed marker is a hint (openraft re-applies up to it at boot): never past what
        // the log or the snapshot still holds. (A follower installing a snapshot may record the
        // snapshot's index as committed before the snapshot itself is written.)
        let last_entry = r.entries.values().next_back().map(|e| e.log_id);
        let last_snapshot = r.snapshot.as_ref().and_then(|(meta, _)| meta.last_log_id);
        let available = last_entry.max(last_snapshot);
        if r.committed.map(|c| c.index) > available.map(|a| a.index) {
            r.committed = available;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    /// A tiny deterministic generator for tests outside a simulation.
    struct TestRng(u64);

    impl madsim::rand::RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u64() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), madsim::rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    #[test]
    fn power_loss_drops_exactly_the_unsynced_tail_unless_fsync_is_lost() {
        let mut rng = TestRng(0x9e37_79b9_7f4a_7c15);
        for lost_fsync in [false, true] {
            let disk = Disk::new(lost_fsync);
            disk.write(Record::Append(vec![entry(1)]));
            let upto = disk.write(Record::Append(vec![entry(2)]));
            disk.sync(upto);
            disk.write(Record::Append(vec![entry(3)]));
            assert_eq!(
                disk.recover().entries.len(),
                3,
                "a crash alone loses nothing"
            );
            disk.power_loss(false, &mut rng);
            let kept = disk.recover().entries.len();
            assert_eq!(kept, if lost_fsync { 0 } else { 2 });
        }
    }

    #[test]
    fn torn_power_loss_keeps_a_prefix() {
        let mut rng = TestRng(0x2545_f491_4f6c_dd1d);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let disk = Disk::new(false);
            for i in 1..=4 {
                disk.write(Record::Append(vec![entry(i)]));
            }
            disk.power_loss(true, &mut rng);
            let indexes: Vec<u64> = disk.recover().entries.keys().copied().collect();
            assert_eq!(indexes, (1..=indexes.len() as u64).collect::<Vec<_>>());
            seen.insert(indexes.len());
        }
        assert!(seen.len() > 2, "prefix lengths vary: {seen:?}");
    }
}
