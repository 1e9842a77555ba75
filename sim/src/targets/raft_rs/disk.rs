//! A simulated disk per node that lives outside the node, so it survives `kill` / `restart`.
//!
//! madsim never loses unsynced writes (its `power_fail` is empty), so durability is modelled here: every
//! write lands in the page cache (`current`, what reads see) and is queued as unsynced; `sync()` replays the
//! queue onto the durable layer after a simulated fsync latency; `crash()` throws the page cache away and
//! keeps the durable layer, plus (torn) a random prefix of the unsynced writes, like a WAL with a torn tail.
//!
//! The layout follows what etcd persists: the Raft log (entries after a compaction point), the hard state,
//! the conf state and the latest snapshot (the state machine image at some applied index).

use crate::target::DiskStall;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct DiskConfig {
    pub fsync_latency_ms: u64,
    /// Planted bug `lost_fsync`: `sync()` waits but never makes anything durable.
    pub lost_fsync: bool,
    /// The nemesis's switch: while stalled, `sync()` does not complete.
    pub stall: DiskStall,
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub syncs: u64,
    pub crashes: u64,
    /// Unsynced writes dropped by crashes (entries count one each).
    pub writes_lost: u64,
    pub snapshots_saved: u64,
}

/// The persisted Raft state. Invariant: `entries[i].index == compacted_index + 1 + i`.
#[derive(Clone, Debug, Default)]
struct LogState {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// The last index dropped from the log (its term is still known, as Raft's log matching needs it).
    compacted_index: u64,
    compacted_term: u64,
    entries: Vec<Entry>,
}

/// One write as the WAL would record it.
#[derive(Clone, Debug)]
enum DiskWrite {
    Entry(Entry),
    HardState(HardState),
    /// A snapshot received from the leader: replaces the whole log.
    InstallSnapshot(Snapshot),
    /// A snapshot taken locally at an applied index; the log is compacted up to `compact_to`.
    SaveSnapshot {
        snapshot: Snapshot,
        compact_to: u64,
    },
}

impl LogState {
    fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.compacted_index, |e| e.index)
    }

    fn first_index(&self) -> u64 {
        self.compacted_index + 1
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        if index == self.compacted_index {
            return Ok(self.compacted_term);
        }
        if index < self.compacted_index {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        Ok(self.entries[(index - self.first_index()) as usize].term)
    }

    fn apply(&mut self, write: &DiskWrite) {
        match write {
            DiskWrite::Entry(entry) => self.append_one(entry),
            DiskWrite::HardState(hs) => self.hard_state = hs.clone(),
            DiskWrite::InstallSnapshot(snapshot) => {
                let meta = snapshot.get_metadata();
                self.compacted_index = meta.index;
                self.compacted_term = meta.term;
                self.entries.clear();
                self.conf_state = meta.get_conf_state().clone();
                self.hard_state.commit = self.hard_state.commit.max(meta.index);
                self.hard_state.term = self.hard_state.term.max(meta.term);
                self.snapshot = snapshot.clone();
            }
            DiskWrite::SaveSnapshot {
                snapshot,
                compact_to,
            } => {
                self.snapshot = snapshot.clone();
                // Only applied (so committed) entries are snapshotted: the durable commit index must not
                // lag behind the snapshot, or a rebooting raft-rs rejects the hard state.
                let index = snapshot.get_metadata().index;
                self.hard_state.commit = self.hard_state.commit.max(index);
                self.compact(*compact_to);
            }
        }
        self.check();
    }

    /// Appends one entry, truncating any conflicting suffix first (Raft paper §5.3).
    fn append_one(&mut self, entry: &Entry) {
        if entry.index <= self.compacted_index {
            // Already covered by a snapshot; committed entries never change.
            return;
        }
        assert!(
            entry.index <= self.last_index() + 1,
            "disk: gap in the raft log: last index {}, appending {}",
            self.last_index(),
            entry.index
        );
        let keep = (entry.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.push(entry.clone());
    }

    fn compact(&mut self, compact_to: u64) {
        if compact_to <= self.compacted_index {
            return;
        }
        let compact_to = compact_to.min(self.last_index());
        let term = self
            .term(compact_to)
            .expect("disk: compaction point must be in the log");
        let drop = (compact_to - self.compacted_index) as usize;
        self.entries.drain(..drop);
        self.compacted_index = compact_to;
        self.compacted_term = term;
    }

    /// The index scan is O(entries) on every change: under `--paranoid` (and in tests) only, as
    /// in release fuzzing it would cost more than the rest of the append. The snapshot bound is
    /// O(1) and always on.
    fn check(&self) {
        crate::target::paranoid_assert!(
            self.entries
                .iter()
                .enumerate()
                .all(|(i, e)| e.index == self.compacted_index + 1 + i as u64),
            "disk: the log's entries are contiguous from the compaction point"
        );
        assert!(
            self.snapshot.get_metadata().index <= self.last_index().max(self.compacted_index),
            "disk: the snapshot is no newer than the log"
        );
    }
}

struct DiskInner {
    config: DiskConfig,
    durable: LogState,
    /// What reads see: the durable layer plus every unsynced write.
    current: LogState,
    unsynced: Vec<DiskWrite>,
    stats: DiskStats,
}

/// A handle to one node's disk; clones share the same disk.
#[derive(Clone)]
pub struct Disk {
    inner: Arc<Mutex<DiskInner>>,
}

/// What a booting node reads from its disk.
#[derive(Clone, Debug)]
pub struct BootState {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    pub snapshot: Snapshot,
    /// Committed entries after the snapshot, `(snapshot index, hard_state.commit]`, to replay.
    pub committed_after_snapshot: Vec<Entry>,
}

impl Disk {
    /// A fresh disk bootstrapped with the initial membership, like etcd's `--initial-cluster`.
    pub fn new(config: DiskConfig, voters: Vec<u64>) -> Disk {
        assert!(!voters.is_empty(), "disk: a cluster needs voters");
        let mut state = LogState::default();
        state.conf_state.voters = voters;
        state
            .snapshot
            .mut_metadata()
            .set_conf_state(state.conf_state.clone());
        Disk {
            inner: Arc::new(Mutex::new(DiskInner {
                config,
                durable: state.clone(),
                current: state,
                unsynced: Vec::new(),
                stats: DiskStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DiskInner> {
        // A poisoned lock means a node panicked mid-write; the simulation is over anyway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, write: DiskWrite) {
        let mut inner = self.lock();
        inner.current.apply(&write);
        inner.unsynced.push(write);
    }

    pub fn append(&self, entries: &[Entry]) {
        for entry in entries {
            self.write(DiskWrite::Entry(entry.clone()));
        }
    }

    pub fn set_hard_state(&self, hs: &HardState) {
        self.write(DiskWrite::HardState(hs.clone()));
    }

    /// Installs a snapshot received from the leader (replaces the log).
    pub fn install_snapshot(&self, snapshot: &Snapshot) {
        self.write(DiskWrite::InstallSnapshot(snapshot.clone()));
    }

    /// Saves a local snapshot of the state machine at `index` (which must be in the log) and drops the
    /// log up to `compact_to` (<= index).
    pub fn save_snapshot(&self, index: u64, data: Vec<u8>, compact_to: u64) {
        assert!(compact_to <= index, "disk: compacting past the snapshot");
        let mut snapshot = Snapshot::default();
        {
            let inner = self.lock();
            let term = inner
                .current
                .term(index)
                .expect("disk: snapshot index must be in the log");
            let meta = snapshot.mut_metadata();
            meta.index = index;
            meta.term = term;
            meta.set_conf_state(inner.current.conf_state.clone());
        }
        snapshot.data = data.into();
        self.write(DiskWrite::SaveSnapshot {
            snapshot,
            compact_to,
        });
        self.lock().stats.snapshots_saved += 1;
    }

    /// fsync: once the disk is not stalled and after the simulated latency, every write made before
    /// the call is durable. A crash during the wait (the node's task is dropped) leaves them
    /// unsynced.
    pub async fn sync(&self) {
        let (pending, latency_ms, stall) = {
            let inner = self.lock();
            (
                inner.unsynced.len(),
                inner.config.fsync_latency_ms,
                inner.config.stall.clone(),
            )
        };
        stall.passed().await;
        if latency_ms > 0 {
            madsim::time::sleep(Duration::from_millis(latency_ms)).await;
        }
        let mut inner = self.lock();
        inner.stats.syncs += 1;
        if inner.config.lost_fsync {
            return;
        }
        let pending = pending.min(inner.unsynced.len());
        let writes: Vec<DiskWrite> = inner.unsynced.drain(..pending).collect();
        for write in &writes {
            inner.durable.apply(write);
        }
    }

    /// Power loss: unsynced writes are lost; with `torn`, a random prefix of them survives.
    pub fn crash<R: madsim::rand::Rng + ?Sized>(&self, torn: bool, rng: &mut R) {
        let mut inner = self.lock();
        let unsynced = std::mem::take(&mut inner.unsynced);
        let kept = if torn && !unsynced.is_empty() {
            rng.gen_range(0..=unsynced.len())
        } else {
            0
        };
        for write in &unsynced[..kept] {
            inner.durable.apply(write);
        }
        inner.stats.crashes += 1;
        inner.stats.writes_lost += (unsynced.len() - kept) as u64;
        inner.current = inner.durable.clone();
    }

    pub fn unsynced_writes(&self) -> usize {
        self.lock().unsynced.len()
    }

    pub fn stats(&self) -> DiskStats {
        self.lock().stats
    }

    /// The durable-and-cached state a node boots from (call after a crash: then it is the durable state).
    pub fn boot_state(&self) -> BootState {
        let inner = self.lock();
        let state = &inner.current;
        let snapshot_index = state.snapshot.get_metadata().index;
        let commit = state.hard_state.commit.min(state.last_index());
        let committed_after_snapshot = state
            .entries
            .iter()
            .filter(|e| e.index > snapshot_index && e.index <= commit)
            .cloned()
            .collect();
        BootState {
            hard_state: state.hard_state.clone(),
            conf_state: state.conf_state.clone(),
            snapshot: state.snapshot.clone(),
            committed_after_snapshot,
        }
    }

    /// A raft-rs `Storage` view of this disk.
    pub fn storage(&self) -> DiskStorage {
        DiskStorage { disk: self.clone() }
    }

    pub fn last_index(&self) -> u64 {
        self.lock().current.last_index()
    }

    pub fn term(&self, index: u64) -> Option<u64> {
        self.lock().current.term(index).ok()
    }
}

/// raft-rs reads its log through this; it sees the page cache (what was written, synced or not), as a
/// process reading its own files would.
pub struct DiskStorage {
    disk: Disk,
}

impl raft::Storage for DiskStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let inner = self.disk.lock();
        Ok(RaftState::new(
            inner.current.hard_state.clone(),
            inner.current.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let inner = self.disk.lock();
        let log = &inner.current;
        if low < log.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > log.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let lo = (low - log.first_index()) as usize;
        let hi = (high - log.first_index()) as usize;
        let mut entries = log.entries[lo..hi].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.disk
            .lock()
            .current
            .term(idx)
            .map_err(raft::Error::Store)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.disk.lock().current.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.disk.lock().current.last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let inner = self.disk.lock();
        let snapshot = &inner.current.snapshot;
        if snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use madsim::rand::SeedableRng;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8].into(),
            ..Entry::default()
        }
    }

    fn rng() -> rand_pcg_like::Lcg {
        rand_pcg_like::Lcg::seed_from_u64(7)
    }

    /// A tiny seeded RNG for tests outside a madsim runtime (madsim's global RNG needs one).
    mod rand_pcg_like {
        use madsim::rand::{RngCore, SeedableRng};
        pub struct Lcg(u64);
        impl RngCore for Lcg {
            fn next_u32(&mut self) -> u32 {
                (self.next_u64() >> 32) as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                self.0
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                for b in dest {
                    *b = self.next_u32() as u8;
                }
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), madsim::rand::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
        impl SeedableRng for Lcg {
            type Seed = [u8; 8];
            fn from_seed(seed: [u8; 8]) -> Self {
                Lcg(u64::from_le_bytes(seed))
            }
        }
    }

    fn disk() -> Disk {
        Disk::new(DiskConfig::default(), vec![1, 2, 3])
    }

    fn sync_now(disk: &Disk) {
        // fsync_latency_ms is 0, so the future completes on its first poll without a runtime.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(disk.sync());
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }

    use std::future::Future;

    #[test]
    fn crash_drops_unsynced_writes_and_keeps_synced_ones() {
        let d = disk();
        d.append(&[entry(1, 1), entry(2, 1)]);
        sync_now(&d);
        d.append(&[entry(3, 1)]);
        assert_eq!(d.last_index(), 3);
        d.crash(false, &mut rng());
        assert_eq!(d.last_index(), 2);
        assert_eq!(d.stats().writes_lost, 1);
        assert_eq!(
            d.storage().initial_state().unwrap().conf_state.voters,
            vec![1, 2, 3]
        );
    }

    #[test]
    fn torn_crash_keeps_a_prefix_of_unsynced_writes() {
        let mut kept_counts = std::collections::BTreeSet::new();
        let mut r = rng();
        for _ in 0..50 {
            let d = disk();
            d.append(&[entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)]);
            d.crash(true, &mut r);
            let last = d.last_index();
            // A prefix: every entry up to `last` is there, in order.
            let got = d
                .storage()
                .entries(1, last + 1, None, GetEntriesContext::empty(false));
            assert_eq!(got.unwrap().len() as u64, last);
            kept_counts.insert(last);
        }
        assert!(
            kept_counts.len() > 2,
            "torn crashes should keep varied prefixes: {kept_counts:?}"
        );
    }

    #[test]
    fn lost_fsync_loses_everything_on_crash() {
        let d = Disk::new(
            DiskConfig {
                fsync_latency_ms: 0,
                lost_fsync: true,
                ..DiskConfig::default()
            },
            vec![1],
        );
        d.append(&[entry(1, 1)]);
        sync_now(&d);
        d.crash(false, &mut rng());
        assert_eq!(d.last_index(), 0);
    }

    #[test]
    fn conflicting_append_truncates_the_suffix() {
        let d = disk();
        d.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        d.append(&[entry(2, 2)]);
        assert_eq!(d.last_index(), 2);
        assert_eq!(d.term(2), Some(2));
    }

    #[test]
    fn save_snapshot_compacts_and_storage_reports_compaction() {
        let d = disk();
        d.append(&[entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
        d.save_snapshot(3, b"state".to_vec(), 2);
        let s = d.storage();
        assert_eq!(s.first_index().unwrap(), 3);
        assert_eq!(s.term(2).unwrap(), 1);
        assert!(matches!(
            s.entries(1, 3, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        let snap = s.snapshot(0, 2).unwrap();
        assert_eq!(
            (snap.get_metadata().index, snap.get_metadata().term),
            (3, 2)
        );
        assert_eq!(&snap.data[..], b"state");
    }

    #[test]
    fn install_snapshot_replaces_the_log_and_boot_replays_only_committed_entries() {
        let d = disk();
        d.append(&[entry(1, 1)]);
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 10;
        snap.mut_metadata().term = 3;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        d.install_snapshot(&snap);
        d.append(&[entry(11, 3), entry(12, 3)]);
        let hs = HardState {
            term: 3,
            commit: 11,
            ..HardState::default()
        };
        d.set_hard_state(&hs);
        let boot = d.boot_state();
        assert_eq!(boot.snapshot.get_metadata().index, 10);
        let replay: Vec<u64> = boot
            .committed_after_snapshot
            .iter()
            .map(|e| e.index)
            .collect();
        assert_eq!(replay, vec![11]);
    }
}
