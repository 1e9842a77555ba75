//! Generated histories, linearizable (or not) by construction, for benchmarks and tests:
//! - [`mvcc`]: MVCC histories of any size against the sequential MVCC model;
//! - [`register`]: hard cas-register histories in Jepsen's log format, half of them with one
//!   planted stale read.
pub mod mvcc;
pub mod register;

pub use mvcc::generate_mvcc_history;
