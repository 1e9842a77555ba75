//! The stores kvsim can simulate, each behind [`crate::target::Target`], and the registry that finds
//! one by name (`--target NAME`, or a scenario's `target = "NAME"`).

pub mod openraft;
pub mod raft_rs;

use crate::target::Target;

/// Every built-in target, by name, the default first.
pub fn all() -> Vec<&'static dyn Target> {
    vec![&raft_rs::RaftRs, &openraft::OpenRaft]
}

/// The default target: kvsim's own raft-rs store.
pub const DEFAULT: &str = "raft-rs";

/// The target named `name`, or an error listing the known names.
pub fn by_name(name: &str) -> Result<&'static dyn Target, String> {
    all().into_iter().find(|t| t.name() == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|t| t.name()).collect();
        format!(
            "unknown target {name:?}: expected one of {}",
            names.join(", ")
        )
    })
}
