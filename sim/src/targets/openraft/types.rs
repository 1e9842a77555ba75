//! The openraft type configuration of this target and the payloads Raft carries.

use super::mvcc::Mvcc;
use super::runtime::MadsimRuntime;
use crate::target::proto;
use openraft::{EmptyNode, LogId, SnapshotMeta, StoredMembership};

openraft::declare_raft_types!(
    /// The openraft target's types: entries carry a client write (`proto::Request`), apply yields
    /// the etcd response (`None` for blank and membership entries).
    pub TypeConfig:
        D = proto::Request,
        R = Option<proto::Response>,
        NodeId = u64,
        Node = EmptyNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotImage,
        AsyncRuntime = MadsimRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Vote = openraft::Vote<u64>;
pub type Log = LogId<u64>;
pub type Membership = StoredMembership<u64, EmptyNode>;
pub type Meta = SnapshotMeta<u64, EmptyNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;

/// A snapshot's data: the whole state machine (snapshots never leave the simulation, so it is
/// passed as a value, never serialized; openraft's `generic-snapshot-data` feature).
#[derive(Clone, Debug, Default)]
pub struct SnapshotImage {
    pub mvcc: Mvcc,
}
