//! Live mode: kvsim's workloads and checkers against a real etcd cluster (real tokio runtime,
//! outside any simulation).

pub mod claim;
pub mod cleanup;
pub mod client;
pub mod etcd_process;
pub mod final_state;
pub mod host;
pub mod journal;
pub mod keyspace;
pub mod nemesis;
pub mod netns;
pub mod ops;
pub mod recipes;
pub mod run;
pub mod session;
pub mod trust;
pub mod watch;

/// After a heal, real members need a process start, WAL replay and an election (1 s timeout by
/// default) before they serve again: ten seconds, where the simulator allows five election
/// timeouts.
pub const LIVENESS_BOUND_NS: u64 = 10_000_000_000;

/// The fault-free stretch a live run with faults ends with, after its scheduled faults: the
/// liveness bound plus room for the clients to ask and be answered after it, so the liveness
/// check judges at least one whole-cluster window in every run that injected a fault (issue 13:
/// faults every ~3 s up to the very end left no window, and liveness silently checked nothing).
pub const QUIET_WINDOW_MS: u64 = LIVENESS_BOUND_NS / 1_000_000 + 3_000;
