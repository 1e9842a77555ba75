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
