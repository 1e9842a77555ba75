//! Live mode: kvsim's workloads and checkers against a real etcd cluster (real tokio runtime,
//! outside any simulation).

pub mod client;
pub mod etcd_process;
pub mod final_state;
pub mod nemesis;
pub mod netns;
pub mod ops;
pub mod recipes;
pub mod run;
pub mod watch;

/// After a heal, real members need a process start, WAL replay and an election (1 s timeout by
/// default) before they serve again: ten seconds, where the simulator allows five election
/// timeouts.
pub const LIVENESS_BOUND_NS: u64 = 10_000_000_000;
