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
mod raft_loop;
mod server;
pub mod status;
mod transport;
mod watch;

pub use transport::{PeerNet, PeerNetStats};

use crate::bugs::Bugs;
use crate::disk::Disk;
use crate::store::Store;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

pub use status::{InvariantLog, InvariantViolation, NodeStatus, Role};

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
    /// Added to simulated time to get this node's clock (only the lessor reads the clock).
    pub clock_skew_ms: i64,
}

impl NodeShared {
    pub fn new(id: u64) -> NodeShared {
        NodeShared {
            status: NodeStatus {
                id,
                ..NodeStatus::default()
            },
            store: Store::new(),
            clock_skew_ms: 0,
        }
    }

    /// This node's clock in ms (simulated time since the simulation started, plus the skew).
    pub fn clock_ms(&self) -> i64 {
        let elapsed_ms = madsim::time::TimeHandle::current().elapsed().as_millis();
        i64::try_from(elapsed_ms).unwrap_or(i64::MAX) + self.clock_skew_ms
    }
}

/// Everything a node incarnation starts from.
#[derive(Clone)]
pub struct NodeContext {
    pub config: NodeConfig,
    pub disk: Disk,
    /// The members' Raft network (shared by the cluster; outlives incarnations).
    pub net: PeerNet,
    pub shared: Arc<Mutex<NodeShared>>,
    pub invariants: Arc<Mutex<InvariantLog>>,
}

impl NodeContext {
    pub(crate) fn shared(&self) -> MutexGuard<'_, NodeShared> {
        lock(&self.shared)
    }

    pub(crate) fn invariants(&self) -> MutexGuard<'_, InvariantLog> {
        lock(&self.invariants)
    }
}

/// Locks a mutex shared inside the simulation. Poisoning only follows a panic, which already ends the run.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Node `id` lives at 10.0.0.{id}.
pub fn node_ip(id: u64) -> IpAddr {
    assert!((1..=254).contains(&id), "node id {id} out of range 1..=254");
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8))
}

pub fn client_addr(id: u64) -> SocketAddr {
    SocketAddr::new(node_ip(id), crate::rpc::NODE_CLIENT_PORT)
}

/// The body of a madsim node's `init`: boots from disk and runs until killed.
pub async fn run(ctx: NodeContext) {
    raft_loop::boot_and_run(ctx).await;
}
