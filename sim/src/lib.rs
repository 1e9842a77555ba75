//! kvsim-sim: a deterministic madsim simulation of an etcd-like Raft key-value cluster.

pub mod bugs;
pub mod client;
pub mod cluster;
pub mod fit;
pub mod nemesis;
pub mod net;
pub mod node_status;
pub mod proto;
pub mod recipes;
pub mod rpc;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod sequential;
pub mod target;
pub mod targets;
pub mod workload;
