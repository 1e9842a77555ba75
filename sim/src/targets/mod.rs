//! The stores kvsim can simulate (see `crate::target`).

pub mod openraft;
