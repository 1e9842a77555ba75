//! One simulated etcd-like server: a raft-rs `RawNode` over the node's simulated disk, the MVCC store as its
//! state machine, a lessor, and the client RPC service.
//!
//! Tasks of one node (all on the node's madsim executor, so a `kill` drops them all at once):
//! - the Raft loop ([`raft_loop`]) owns the `RawNode`; everything that changes Raft state goes through its
//!   input channel (ticks, peer messages, client requests);
//! - a ticker; Raft messages go out through the cluster's peer network ([`transport`]), which delivers
//!   them straight into the destination's Raft loop input;
//! - the client RPC handlers ([`server`], [`watch`]), which read the store directly for serializable reads,
//!   keepalives and watches, and hand everything else to the Raft loop.

pub mod lessor;
mod payload;
pub(crate) mod raft_loop;
mod server;
mod watch;

use super::disk::Disk;
use super::store::Store;
use crate::target::{Bugs, Clock, Invariants, NodeStatus, PeerNet};
use raft_loop::Input;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use crate::target::lock;

/// Static configuration of one node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: u64,
    /// Every member's id, this node's included.
    pub members: Vec<u64>,
    pub tick_ms: u64,
    /// Base election timeout in ticks; each boot draws its own timeout in [et, 2 et) (etcd's randomization).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Take a snapshot (and compact the log) every this many applied entries.
    pub snapshot_entries: u64,
    pub bugs: Bugs,
}

/// What the harness shares with a node; it outlives the node's incarnations.
#[derive(Debug)]
pub struct NodeShared {
    pub status: NodeStatus,
    /// The state machine. Replaced on every boot and snapshot install.
    pub store: Store,
    /// This node's wall clock (only the lessor reads it); the nemesis skews it.
    pub clock: Clock,
}

impl NodeShared {
    pub fn new(id: u64, clock: Clock) -> NodeShared {
        NodeShared {
            status: NodeStatus {
                id,
                ..NodeStatus::default()
            },
            store: Store::new(),
            clock,
        }
    }

    /// This node's clock in ms (simulated time since the simulation started, plus the skew).
    pub fn clock_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Everything a node incarnation starts from.
#[derive(Clone)]
pub struct NodeContext {
    pub config: NodeConfig,
    pub disk: Disk,
    /// The members' Raft network (shared by the cluster; outlives incarnations).
    pub(crate) net: PeerNet<Input>,
    pub shared: Arc<Mutex<NodeShared>>,
    pub invariants: Invariants,
}

impl NodeContext {
    pub(crate) fn shared(&self) -> MutexGuard<'_, NodeShared> {
        lock(&self.shared)
    }

    pub(crate) fn invariants(&self) -> &Invariants {
        &self.invariants
    }
}

/// The body of a madsim node's `init`: boots from disk and runs until killed.
pub async fn run(ctx: NodeContext) {
    raft_loop::boot_and_run(ctx).await;
}
