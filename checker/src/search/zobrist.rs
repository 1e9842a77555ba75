//! Identity of a set of linearized operations as a 128-bit Zobrist hash, and the memo keyed by it.
//!
//! Every operation gets a fixed pseudo-random 128-bit key; a set's hash is the xor of its members'
//! keys, so adding or removing one operation is one xor (O(1) per search step, even with 100k
//! operations, where porcupine copies a bitset).
//!
//! Collisions: the keys come from SplitMix64, which we treat as uniform. For two different sets
//! A != B, hash(A) == hash(B) iff the xor of the keys in the symmetric difference is zero, which
//! has probability 2^-128 for a non-empty difference. With M memo entries there are < M^2/2 pairs,
//! so even M = 10^9 gives a collision probability below 2^-68. A collision could only make the
//! search skip a node it has not explored (a possible false "not linearizable", never a false
//! "linearizable"); the memo key also contains the 128-bit state fingerprint, which would have to
//! collide at the same time for states that differ.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, seedable, well-mixed generator. Deterministic, so
/// verdicts and reports do not depend on the run.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn next_u128(&mut self) -> u128 {
        let high = u128::from(self.next_u64());
        (high << 64) | u128::from(self.next_u64())
    }
}

/// One key per operation index.
pub(crate) fn keys(count: usize) -> Vec<u128> {
    let mut rng = SplitMix64::new(0x6b76_7369_6d2d_7a6f);
    (0..count).map(|_| rng.next_u128()).collect()
}

/// The memo's keys are already random 128-bit values: fold them instead of running SipHash.
/// Only membership is ever asked of the memo, never its iteration order, so this cannot make
/// anything nondeterministic.
#[derive(Default)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, value: u128) {
        let folded = (value as u64) ^ ((value >> 64) as u64);
        self.0 = (self.0.rotate_left(29) ^ folded).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Visited (linearized-set hash, state fingerprint) pairs.
pub(crate) type Memo = HashSet<(u128, u128), BuildHasherDefault<FoldHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let first = keys(1000);
        assert_eq!(first, keys(1000));
        let distinct: std::collections::BTreeSet<u128> = first.iter().copied().collect();
        assert_eq!(distinct.len(), 1000);
        assert!(first.iter().all(|key| *key != 0));
    }

    #[test]
    fn xor_identity_is_order_independent() {
        let keys = keys(4);
        assert_eq!(keys[0] ^ keys[2] ^ keys[3], keys[3] ^ keys[0] ^ keys[2]);
        assert_ne!(keys[0] ^ keys[1], keys[0] ^ keys[2]);
    }
}
