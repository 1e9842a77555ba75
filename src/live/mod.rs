//! Live mode: kvsim's workloads and checkers against a real etcd cluster (real tokio runtime,
//! outside any simulation).

pub mod etcd_process;
pub mod ops;
pub mod watch;
