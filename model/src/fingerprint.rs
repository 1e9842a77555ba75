//! Deterministic 128-bit fingerprints for model states.

use std::hash::{DefaultHasher, Hash, Hasher};

/// Hashes `value` twice with differently-salted SipHash instances. `DefaultHasher::new()` uses
/// fixed keys, so fingerprints are stable across runs and processes (determinism), unlike
/// `RandomState`.
pub fn fingerprint_of<T: Hash + ?Sized>(value: &T) -> u128 {
    let mut low = DefaultHasher::new();
    0x6b76_7369_6d5f_6c6fu64.hash(&mut low);
    value.hash(&mut low);
    let mut high = DefaultHasher::new();
    0x6b76_7369_6d5f_6869u64.hash(&mut high);
    value.hash(&mut high);
    (u128::from(high.finish()) << 64) | u128::from(low.finish())
}
