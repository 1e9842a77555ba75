//! `kvsim bench`: speed figures for the checker ([`check`], over `kvsim_checker::bench`) and the
//! simulator ([`sim`]). Speed goals live here, not in timed tests; figures from a debug build
//! mean little ([`DEBUG_BUILD`]).

pub mod check;
pub mod sim;

/// This binary is a debug build: its figures mean little.
pub const DEBUG_BUILD: bool = cfg!(debug_assertions);
