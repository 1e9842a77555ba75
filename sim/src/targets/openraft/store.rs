//! openraft 0.9's storage v2 (`RaftLogStorage` + `RaftStateMachine`, feature `storage-v2`) over the
//! member's [`Disk`].
//!
//! - Log, vote, committed marker and snapshots are disk records. An append returns at once and its
//!   `LogFlushed` callback fires only after the syncer task has synced it (`fsync_latency_ms` after
//!   the sync started); a vote waits for its sync before `save_vote` returns (openraft requires it).
//! - The state machine lives in memory (it is lost with the incarnation). A boot starts it from the
//!   last durable snapshot, if any, and openraft itself re-applies the log from there up to the
//!   durable committed marker (`read_committed`), so a restarted member serves what it applied
//!   before, minus whatever its disk lost.

use super::disk::{Disk, Record};
use super::mvcc::Mvcc;
use super::types::{Entry, Log, Membership, Meta, Snapshot, SnapshotImage, TypeConfig, Vote};
use super::MemberState;
use crate::target::{lock, DiskStall, Invariants};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftLogReader, RaftSnapshotBuilder, StorageError};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// The log as this incarnation sees it (durable and unsynced records alike).
#[derive(Debug, Default)]
pub struct LogMem {
    pub vote: Option<Vote>,
    pub entries: BTreeMap<u64, Entry>,
    pub purged: Option<Log>,
    pub committed: Option<Log>,
}

enum Waiter {
    Flushed(LogFlushed<TypeConfig>),
    Synced(oneshot::Sender<()>),
}

/// Writes waiting for a sync, by the disk position that makes them durable.
#[derive(Default)]
struct SyncQueue {
    waiting: Vec<(u64, Waiter)>,
}

/// The sync machinery of one incarnation.
#[derive(Clone)]
pub struct Syncer {
    disk: Disk,
    queue: Arc<Mutex<SyncQueue>>,
    dirty: Arc<Notify>,
}

impl Syncer {
    pub fn new(disk: Disk) -> Syncer {
        Syncer {
            disk,
            queue: Arc::default(),
            dirty: Arc::new(Notify::new()),
        }
    }

    fn wait_for(&self, position: u64, waiter: Waiter) {
        lock(&self.queue).waiting.push((position, waiter));
        self.dirty.notify_one();
    }

    /// The syncer task: each round syncs what was written when it started, once `stall` lets it
    /// and `latency` later, then completes the writes it covered.
    pub async fn run(self, latency: Duration, stall: DiskStall) {
        loop {
            self.dirty.notified().await;
            let upto = self.disk.written();
            stall.passed().await;
            madsim::time::sleep(latency).await;
            self.disk.sync(upto);
            let done: Vec<Waiter> = {
                let mut queue = lock(&self.queue);
                let (done, rest): (Vec<_>, Vec<_>) =
                    queue.waiting.drain(..).partition(|(p, _)| *p <= upto);
                queue.waiting = rest;
                done.into_iter().map(|(_, w)| w).collect()
            };
            let more = !lock(&self.queue).waiting.is_empty();
            for waiter in done {
                match waiter {
                    Waiter::Flushed(callback) => callback.log_io_completed(Ok(())),
                    Waiter::Synced(tx) => {
                        let _ = tx.send(());
                    }
                }
            }
            if more {
                self.dirty.notify_one();
            }
        }
    }
}

/// `RaftLogStorage` (and its reader: clones share the log).
#[derive(Clone)]
pub struct LogStore {
    pub mem: Arc<Mutex<LogMem>>,
    pub disk: Disk,
    pub syncer: Syncer,
    pub state: Arc<Mutex<MemberState>>,
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        let mem = lock(&self.mem);
        Ok(mem.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let mem = lock(&self.mem);
        let last = mem
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(mem.purged);
        Ok(LogState {
            last_purged_log_id: mem.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError<u64>> {
        lock(&self.mem).vote = Some(*vote);
        let position = self.disk.write(Record::Vote(*vote));
        let (tx, rx) = oneshot::channel();
        self.syncer.wait_for(position, Waiter::Synced(tx));
        // The syncer lives as long as the incarnation: a dropped sender is a dying node.
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError<u64>> {
        Ok(lock(&self.mem).vote)
    }

    async fn save_committed(&mut self, committed: Option<Log>) -> Result<(), StorageError<u64>> {
        lock(&self.mem).committed = committed;
        self.disk.write(Record::Committed(committed));
        lock(&self.state).status.commit_index = committed.map_or(0, |c| c.index);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<Log>, StorageError<u64>> {
        Ok(lock(&self.mem).committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            let mut mem = lock(&self.mem);
            for e in &entries {
                mem.entries.insert(e.log_id.index, e.clone());
            }
        }
        let position = self.disk.write(Record::Append(entries));
        self.syncer.wait_for(position, Waiter::Flushed(callback));
        Ok(())
    }

    async fn truncate(&mut self, log_id: Log) -> Result<(), StorageError<u64>> {
        lock(&self.mem).entries.split_off(&log_id.index);
        self.disk.write(Record::Truncate(log_id.index));
        Ok(())
    }

    /// openraft 0.9 purges a follower's log for an incoming snapshot without waiting for the state
    /// machine to install it (`following_handler::install_full_snapshot`: the purge runs in the
    /// core, the install later in the state machine worker). A crash in between would leave a
    /// disk whose log is purged past its last snapshot, which openraft cannot start from
    /// (docs/facts.md, "openraft 0.9"). So the purge reaches the disk only once a snapshot
    /// covering it is written there; until then only the in-memory log is purged (at boot,
    /// openraft itself purges entries a newer snapshot covers).
    async fn purge(&mut self, log_id: Log) -> Result<(), StorageError<u64>> {
        {
            let mut mem = lock(&self.mem);
            mem.entries = mem.entries.split_off(&(log_id.index + 1));
            mem.purged = Some(log_id);
        }
        let covered = lock(&self.state)
            .machine
            .snapshot
            .as_ref()
            .and_then(|(meta, _)| meta.last_log_id)
            .is_some_and(|s| s.index >= log_id.index);
        if covered {
            self.disk.write(Record::Purge(log_id));
        }
        Ok(())
    }
}

/// The state machine an incarnation applies to, shared with the client service.
#[derive(Debug, Default)]
pub struct Machine {
    pub mvcc: Mvcc,
    pub last_applied: Option<Log>,
    pub membership: Membership,
    pub snapshot: Option<(Meta, SnapshotImage)>,
}

/// `RaftStateMachine` over the member's [`Machine`].
#[derive(Clone)]
pub struct StateMachine {
    pub id: u64,
    pub state: Arc<Mutex<MemberState>>,
    pub disk: Disk,
    pub invariants: Invariants,
    /// Notified after every applied batch (linearizable reads and watches wait on it).
    pub applied: Arc<Notify>,
}

/// Identifies an entry's payload for the State Machine Safety check.
pub fn payload_hash(payload: &EntryPayload<TypeConfig>) -> u64 {
    match payload {
        EntryPayload::Blank => 0,
        EntryPayload::Membership(m) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            format!("{m:?}").hash(&mut h);
            h.finish()
        }
        EntryPayload::Normal(request) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bincode::serialize(request)
                .expect("requests serialize")
                .hash(&mut h);
            h.finish()
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<Log>, Membership), StorageError<u64>> {
        let state = lock(&self.state);
        Ok((state.machine.last_applied, state.machine.membership.clone()))
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<Option<crate::target::proto::Response>>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let mut state = lock(&self.state);
        for entry in entries {
            let hash = payload_hash(&entry.payload);
            let reply = match &entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Membership(m) => {
                    state.machine.membership = Membership::new(Some(entry.log_id), m.clone());
                    None
                }
                EntryPayload::Normal(request) => Some(state.machine.mvcc.apply(request)),
            };
            state.machine.last_applied = Some(entry.log_id);
            self.invariants.entry_applied(
                self.id,
                entry.log_id.index,
                entry.log_id.leader_id.term,
                hash,
            );
            replies.push(reply);
        }
        state.publish_machine();
        drop(state);
        self.applied.notify_waiters();
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let state = lock(&self.state);
        SnapshotBuilder {
            last_applied: state.machine.last_applied,
            membership: state.machine.membership.clone(),
            image: SnapshotImage {
                mvcc: state.machine.mvcc.clone(),
            },
            disk: self.disk.clone(),
            state: self.state.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotImage>, StorageError<u64>> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotImage>,
    ) -> Result<(), StorageError<u64>> {
        self.disk
            .write(Record::Snapshot(meta.clone(), (*snapshot).clone()));
        let mut state = lock(&self.state);
        state.machine.mvcc = snapshot.mvcc.clone();
        state.machine.last_applied = meta.last_log_id;
        state.machine.membership = meta.last_membership.clone();
        state.machine.snapshot = Some((meta.clone(), *snapshot));
        state.publish_machine();
        drop(state);
        self.applied.notify_waiters();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError<u64>> {
        let state = lock(&self.state);
        Ok(state
            .machine
            .snapshot
            .as_ref()
            .map(|(meta, image)| Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(image.clone()),
            }))
    }
}

/// Builds a snapshot from the state machine as it was when openraft asked for the builder.
pub struct SnapshotBuilder {
    last_applied: Option<Log>,
    membership: Membership,
    image: SnapshotImage,
    disk: Disk,
    state: Arc<Mutex<MemberState>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError<u64>> {
        let index = self.last_applied.map_or(0, |l| l.index);
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{index}"),
        };
        // Written before openraft purges the log it covers, so the disk's order keeps it safe.
        self.disk
            .write(Record::Snapshot(meta.clone(), self.image.clone()));
        let mut state = lock(&self.state);
        state.machine.snapshot = Some((meta.clone(), self.image.clone()));
        state.status.snapshot_index = index;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(self.image.clone()),
        })
    }
}
