//! Deterministic 128-bit fingerprints for model states.

use std::hash::Hash;

use xxhash_rust::xxh3::Xxh3;

/// XXH3-128 of `value` with a fixed seed: stable across runs and processes (determinism), unlike
/// `RandomState`, and one pass where two salted SipHash-64 passes cost about a sixth of a kv
/// search (the kv model fingerprints every value it writes, and appended values grow long).
pub fn fingerprint_of<T: Hash + ?Sized>(value: &T) -> u128 {
    let mut hasher = Xxh3::with_seed(0x6b76_7369_6d5f_6670);
    value.hash(&mut hasher);
    hasher.digest128()
}
