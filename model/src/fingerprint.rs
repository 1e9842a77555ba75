//! Deterministic 128-bit fingerprints for model states.

use std::hash::Hash;

use xxhash_rust::xxh3::Xxh3;

/// XXH3-128 of `value` with a fixed seed: stable across runs and processes (determinism), unlike
/// `RandomState`, and one fast pass where the earlier two salted SipHash-64 passes hashed the
/// input twice (models fingerprint keys and values on their write paths).
pub fn fingerprint_of<T: Hash + ?Sized>(value: &T) -> u128 {
    let mut hasher = Xxh3::with_seed(0x6b76_7369_6d5f_6670);
    value.hash(&mut hasher);
    hasher.digest128()
}
