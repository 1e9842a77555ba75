//! Shrinking a failing run (`kvsim shrink`): delta debugging over an explicit fault timeline and
//! the scenario's workload, for as long as the same property still fails.

pub mod ddmin;
pub mod output;
pub mod search;
pub mod size;
pub mod timeline;
