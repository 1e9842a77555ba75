//! kvsim's own store: an etcd-like server on raft-rs (`raft` 0.7, a port of etcd's raft), with an MVCC
//! store modelled on etcd's `mvcc` package, a lessor, and watches. It implements every feature and
//! planted bug kvsim has.
//!
//! - [`node`]: one member: the Raft loop over a `RawNode`, the client RPC service, the lessor, watches.
//! - [`store`]: the MVCC state machine (revisions, key index, compaction, txn, HashKV).
//! - [`disk`]: the member's Raft log, hard state and snapshot on a simulated disk that loses unsynced
//!   writes on power loss.

pub mod disk;
pub mod node;
pub mod store;

use crate::target::{
    lock, Capabilities, ClusterEnv, Member, NodeStatus, PeerNet, StoreState, Target,
};
use disk::{Disk, DiskConfig};
use node::{NodeConfig, NodeContext, NodeShared};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// The raft-rs target.
pub struct RaftRs;

impl Target for RaftRs {
    fn name(&self) -> &'static str {
        "raft-rs"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ETCD
    }

    fn planted_bugs(&self) -> Vec<crate::target::Bug> {
        crate::target::Bug::ALL.to_vec()
    }

    fn members(&self, env: &ClusterEnv) -> Vec<Arc<dyn Member>> {
        let net = PeerNet::new(&env.links);
        env.members
            .iter()
            .map(|&id| {
                let disk = Disk::new(
                    DiskConfig {
                        fsync_latency_ms: env.fsync_latency_ms,
                        lost_fsync: env.bugs.lost_fsync,
                        stall: env.disk_stall(id),
                    },
                    env.members.clone(),
                );
                let ctx = NodeContext {
                    config: NodeConfig {
                        id,
                        members: env.members.clone(),
                        tick_ms: env.timing.tick_ms,
                        election_tick: env.timing.election_tick,
                        heartbeat_tick: env.timing.heartbeat_tick,
                        snapshot_entries: env.snapshot_entries,
                        bugs: env.bugs,
                    },
                    disk,
                    net: net.clone(),
                    shared: Arc::new(Mutex::new(NodeShared::new(id, env.clock(id)))),
                    invariants: env.invariants.clone(),
                };
                Arc::new(RaftRsMember { ctx }) as Arc<dyn Member>
            })
            .collect()
    }
}

struct RaftRsMember {
    ctx: NodeContext,
}

impl Member for RaftRsMember {
    fn id(&self) -> u64 {
        self.ctx.config.id
    }

    fn boot(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(node::run(self.ctx.clone()))
    }

    fn power_loss(&self, torn: bool, rng: &mut dyn madsim::rand::RngCore) {
        self.ctx.disk.crash(torn, rng);
    }

    fn status(&self) -> NodeStatus {
        lock(&self.ctx.shared).status.clone()
    }

    fn store_state(&self) -> StoreState {
        let shared = lock(&self.ctx.shared);
        StoreState {
            revision: shared.store.revision(),
            compact_revision: shared.store.compact_revision(),
            kvs: shared.store.dump(),
        }
    }

    fn hash_kv(&self, revision: i64) -> Option<u64> {
        lock(&self.ctx.shared).store.hash_kv(revision).ok()
    }

    fn unsynced_writes(&self) -> usize {
        self.ctx.disk.unsynced_writes()
    }
}
