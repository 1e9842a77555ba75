//! The process-wide switch for expensive invariant checks (`--paranoid`).
//!
//! Cheap invariants (O(1), or O(n) off the hot paths) are plain `assert!`s, on in release like
//! every other check, in TigerBeetle's spirit. The expensive ones (O(n) scans of the store or the
//! model on every step) are [`paranoid_assert!`](crate::paranoid_assert)s: checked only once
//! [`enable`] has been called, so a fuzz campaign pays a relaxed load and a branch for them.
//! The checks only read, so the switch never changes a schedule or a history.
//!
//! It lives in the lowest crate so that the model, the checker, the harness and the targets can
//! all reach it; it holds no model logic, so a target that uses it (through
//! `kvsim_sim::target::paranoid_assert`) shares nothing with the model it is judged against.

use std::sync::atomic::{AtomicBool, Ordering};

/// On from the start in debug builds (the tests), as the `debug_assert!`s these checks were;
/// off in release until `--paranoid` calls [`enable`].
static ENABLED: AtomicBool = AtomicBool::new(cfg!(debug_assertions));

/// True once [`enable`] has been called (from the start in debug builds).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Switches on the expensive invariant checks for the rest of the process.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Switches them off again (the test that proves a check is silent when off).
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}

/// `assert!(cond, msg...)` evaluated only when [`enabled`]: for O(n) invariant scans on hot
/// paths. The condition is not evaluated at all when the switch is off.
#[macro_export]
macro_rules! paranoid_assert {
    ($cond:expr, $($arg:tt)+) => {
        if $crate::paranoid::enabled() {
            assert!($cond, $($arg)+);
        }
    };
}
