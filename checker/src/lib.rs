//! Histories and the checkers that judge them.
//!
//! - [`history`]: operations, outcomes, faults (the in-memory form every checker reads);
//! - [`format`]: kvsim's JSON Lines history files and importers for Jepsen / porcupine logs;
//! - [`search`]: the linearizability search ([`check`]);
//! - [`generate`], [`bench`]: generated MVCC histories and the checker benchmark.
pub mod bench;
pub mod durability;
pub mod format;
pub mod generate;
pub mod history;
pub mod lease_bound;
pub mod lease_expiry;
pub mod observed_puts;
pub mod property;
pub mod recipes;
pub mod search;
pub mod watch;

pub use search::{check, check_with_stats, Budget, CheckOptions, CheckResult, Stats, Violation};
