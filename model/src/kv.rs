//! Porcupine's kv model: get / put / append on string values, independent per key.
//!
//! `get(key)` returns the value (`""` if absent), `put(key, v)` replaces it, `append(key, v)`
//! concatenates. Operations on different keys commute, so [`Spec::partition_key`] is the key and
//! the search may check every key's sub-history on its own (P-compositionality).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{fingerprint_of, PartitionKey, SequentialSpec, Spec};

/// One kv operation, as histories record it: `{"f":"append","key":"0","value":"x 0 0 y"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum KvOp {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

impl KvOp {
    pub fn key(&self) -> &str {
        match self {
            KvOp::Get { key } | KvOp::Put { key, .. } | KvOp::Append { key, .. } => key,
        }
    }
}

/// What a kv operation returned: `{"f":"get","value":"x 0 0 y"}`, `{"f":"put"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum KvRet {
    Get { value: String },
    Put,
    Append,
}

/// The store. An empty value is not stored: it behaves exactly like an absent key (`get` returns
/// `""`, `append` starts from `""`), so leaving it out makes equal behaviour equal state.
///
/// The search clones the state at every step and most steps are reads, so the entries sit behind
/// an `Arc` (a read's clone is a reference count) in a sorted `Vec` (a write copies one small
/// allocation of pointers, where a `BTreeMap` clone allocates and frees node by node).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KvStore {
    /// Sorted by key, keys unique, values non-empty.
    entries: Arc<Vec<Entry>>,
    /// Wrapping sum of the entries' fingerprints, kept up to date on every write so that
    /// `fingerprint()` is O(1). A sum of independent 128-bit hashes of distinct (key, value)
    /// facts collides for two different maps with probability ~2^-128.
    fingerprint: u128,
}

#[derive(Clone, PartialEq, Eq)]
struct Entry {
    key: Arc<str>,
    value: Arc<str>,
    /// `content_hash(value)`: an append extends it by the appended bytes alone, where hashing
    /// the whole value again would cost O(length) per step — and porcupine's kv logs append
    /// to the same keys hundreds of times, so values grow to kilobytes.
    value_hash: u128,
    /// `fingerprint_of(key)`, computed once when the key is inserted.
    key_hash: u128,
    /// `entry_fingerprint(key_hash, value_hash)`, computed once per write: it is also the
    /// partition fingerprint of `key` (`Spec::partition_fingerprint`), asked at every search step.
    fingerprint: u128,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|entry| (&entry.key, &entry.value)))
            .finish()
    }
}

impl KvStore {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|entry| (*entry.key).cmp(key))
    }

    pub fn get(&self, key: &str) -> &str {
        match self.find(key) {
            Ok(at) => &self.entries[at].value,
            Err(_) => "",
        }
    }

    /// Sets `key` to `value`, whose `content_hash` is `value_hash`.
    fn set(&mut self, key: &str, value: Arc<str>, value_hash: u128) {
        let found = self.find(key);
        let entries = Arc::make_mut(&mut self.entries);
        if let Ok(at) = found {
            self.fingerprint = self.fingerprint.wrapping_sub(entries[at].fingerprint);
        }
        let key_hash = match found {
            Ok(at) => entries[at].key_hash,
            Err(_) => fingerprint_of(key),
        };
        let fingerprint = if value.is_empty() {
            0
        } else {
            entry_fingerprint(key_hash, value_hash)
        };
        self.fingerprint = self.fingerprint.wrapping_add(fingerprint);
        match (found, value.is_empty()) {
            (Ok(at), true) => {
                entries.remove(at);
            }
            (Ok(at), false) => {
                let entry = &mut entries[at];
                entry.value = value;
                entry.value_hash = value_hash;
                entry.fingerprint = fingerprint;
            }
            (Err(_), true) => {}
            (Err(at), false) => entries.insert(
                at,
                Entry {
                    key: key.into(),
                    value,
                    value_hash,
                    key_hash,
                    fingerprint,
                },
            ),
        }
        // O(entries) on the search's hot path: --paranoid (and tests) only.
        crate::paranoid_assert!(
            entries.windows(2).all(|pair| pair[0].key < pair[1].key),
            "kv store: entries sorted by key, keys unique"
        );
    }

    fn append(&mut self, key: &str, suffix: &str) {
        let (value, value_hash) = match self.find(key) {
            Ok(at) => (&*self.entries[at].value, self.entries[at].value_hash),
            Err(_) => ("", 0),
        };
        let mut joined = String::with_capacity(value.len() + suffix.len());
        joined.push_str(value);
        joined.push_str(suffix);
        let joined_hash = extend_content_hash(value_hash, suffix);
        self.set(key, joined.into(), joined_hash);
    }
}

/// The Mersenne prime 2^127 - 1, modulus of `content_hash`.
const HASH_MODULUS: u128 = (1 << 127) - 1;
/// The evaluation point of `content_hash`: a fixed pseudo-random residue (fixed, so fingerprints
/// are the same in every run).
const HASH_BASE: u128 = 0x2f3c_94b1_6a5d_e807_c1d2_7e49_b53a_61f5 % HASH_MODULUS;

/// A polynomial hash of `text`'s bytes: sum of (byte + 1) * BASE^(n - 1 - i) mod 2^127 - 1, so
/// that `content_hash(a + b)` follows from `content_hash(a)` and `b` alone
/// (`extend_content_hash`). Bytes count from 1, so texts of different lengths are different
/// polynomials too. Two different texts of at most L bytes collide iff BASE is a root of their
/// non-zero difference polynomial of degree <= L: at most L of the 2^127 residues, so for a base
/// unrelated to the data ~L * 2^-127 (2^-116 for 2 KB values). `entry_fingerprint` then mixes
/// it with the key's hash, so that the store's sum over entries is not linear in the bytes.
fn content_hash(text: &str) -> u128 {
    extend_content_hash(0, text)
}

fn extend_content_hash(hash: u128, suffix: &str) -> u128 {
    suffix.bytes().fold(hash, |hash, byte| {
        add_mod(mul_mod(hash, HASH_BASE), u128::from(byte) + 1)
    })
}

/// `(a + b) mod 2^127 - 1` for `a, b < 2^127`.
fn add_mod(a: u128, b: u128) -> u128 {
    reduce_once(a + b)
}

/// `x mod 2^127 - 1` for `x < 2^128 - 1` whose result may need one more subtraction: folds bit
/// 127 back in (2^127 = 1 mod p).
fn reduce_once(x: u128) -> u128 {
    let folded = (x & HASH_MODULUS) + (x >> 127);
    if folded >= HASH_MODULUS {
        folded - HASH_MODULUS
    } else {
        folded
    }
}

/// `(a * b) mod 2^127 - 1` for `a, b < 2^127`, from four 64 x 64 -> 128-bit products.
fn mul_mod(a: u128, b: u128) -> u128 {
    let (a_low, a_high) = (a as u64 as u128, a >> 64);
    let (b_low, b_high) = (b as u64 as u128, b >> 64);
    // a_high, b_high < 2^63, so each cross product is < 2^127 and their sum fits.
    let cross = a_low * b_high + a_high * b_low;
    let (low, carry) = (a_low * b_low).overflowing_add(cross << 64);
    // The product is high * 2^128 + low with high < 2^126; 2^128 = 2 mod p.
    let high = a_high * b_high + (cross >> 64) + u128::from(carry);
    let low = reduce_once(low);
    add_mod(low, reduce_once(high << 1))
}

/// The fingerprint of one (key, value) fact: the key's `fingerprint_of` xor the value's
/// `content_hash`, through a bijective 128-bit mixer (xor-shifts and odd multipliers, in the
/// style of SplitMix).
/// Bijective, so one key's different values never collide beyond `content_hash` itself; the
/// mixing makes the fingerprints of different facts look independent, as the store's sum needs.
/// (`fingerprint_of` the pair cost ~700 instructions with SipHash; this ~20, once per write.)
fn entry_fingerprint(key_hash: u128, value_hash: u128) -> u128 {
    let mut mixed = key_hash ^ value_hash;
    mixed ^= mixed >> 64;
    mixed = mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    mixed ^= mixed >> 61;
    mixed = mixed.wrapping_mul(0xbf58_476d_1ce4_e5b9_94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 64)
}

impl SequentialSpec for KvStore {
    type Op = KvOp;
    type Ret = KvRet;

    fn invoke(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Get { key } => KvRet::Get {
                value: self.get(key).to_string(),
            },
            KvOp::Put { key, value } => {
                self.set(key, value.as_str().into(), content_hash(value));
                KvRet::Put
            }
            KvOp::Append { key, value } => {
                self.append(key, value);
                KvRet::Append
            }
        }
    }
}

impl Spec for KvStore {
    const NAME: &'static str = "kv";

    fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    fn step(&self, op: &KvOp, ret: &KvRet) -> Option<Self> {
        match (op, ret) {
            (KvOp::Get { key }, KvRet::Get { value }) => {
                (self.get(key) == value).then(|| self.clone())
            }
            (KvOp::Put { .. }, KvRet::Put) | (KvOp::Append { .. }, KvRet::Append) => {
                let mut next = self.clone();
                next.invoke(op);
                Some(next)
            }
            _ => None,
        }
    }

    fn is_read_only(op: &KvOp, _ret: &KvRet) -> bool {
        matches!(op, KvOp::Get { .. })
    }

    fn only_extends(op: &KvOp) -> bool {
        matches!(op, KvOp::Get { .. } | KvOp::Append { .. })
    }

    /// Appends only ever add to the end of a value, so a get that returned `value` can still be
    /// answered by appends alone iff the key's current value is a prefix of it.
    fn may_still_read(&self, op: &KvOp, ret: &KvRet) -> bool {
        match (op, ret) {
            (KvOp::Get { key }, KvRet::Get { value }) => value.starts_with(self.get(key)),
            _ => false,
        }
    }

    fn partition_key(op: &KvOp) -> Option<PartitionKey> {
        Some(op.key().to_string())
    }

    /// The fingerprint of `op`'s key alone: 0 when absent (or empty), else the entry's.
    fn partition_fingerprint(&self, op: &KvOp) -> u128 {
        match self.find(op.key()) {
            Ok(at) => self.entries[at].fingerprint,
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sortedness scan is a paranoid check: silent when the switch is off, a panic when on.
    /// (The only test that flips the switch, so no other test races it into a wrong verdict.)
    #[test]
    #[should_panic(expected = "kv store: entries sorted by key, keys unique")]
    fn paranoid_sortedness_check_fires_only_when_enabled() {
        let entry = |key: &str| Entry {
            key: key.into(),
            value: "v".into(),
            value_hash: content_hash("v"),
            key_hash: fingerprint_of(key),
            fingerprint: 0,
        };
        let unsorted = KvStore {
            entries: Arc::new(vec![entry("b"), entry("a")]),
            fingerprint: 0,
        };
        crate::paranoid::disable();
        unsorted.clone().set("c", "w".into(), content_hash("w"));
        crate::paranoid::enable();
        unsorted.clone().set("c", "w".into(), content_hash("w"));
    }

    fn put(key: &str, value: &str) -> KvOp {
        KvOp::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    fn append(key: &str, value: &str) -> KvOp {
        KvOp::Append {
            key: key.into(),
            value: value.into(),
        }
    }
    fn get(key: &str) -> KvOp {
        KvOp::Get { key: key.into() }
    }

    #[test]
    fn get_put_append() {
        let mut store = KvStore::default();
        assert_eq!(
            store.invoke(&get("a")),
            KvRet::Get {
                value: String::new()
            }
        );
        store.invoke(&append("a", "x"));
        store.invoke(&append("a", "y"));
        assert_eq!(store.invoke(&get("a")), KvRet::Get { value: "xy".into() });
        store.invoke(&put("a", "z"));
        assert_eq!(store.invoke(&get("a")), KvRet::Get { value: "z".into() });
        assert_eq!(
            store.invoke(&get("b")),
            KvRet::Get {
                value: String::new()
            }
        );
    }

    #[test]
    fn fingerprint_follows_content_not_path() {
        let mut one = KvStore::default();
        one.invoke(&append("a", "x"));
        one.invoke(&append("a", "y"));
        one.invoke(&put("b", "1"));
        let mut two = KvStore::default();
        two.invoke(&put("b", "1"));
        two.invoke(&put("a", "xy"));
        assert_eq!(one, two);
        assert_eq!(one.fingerprint(), two.fingerprint());
        two.invoke(&put("b", ""));
        assert_ne!(one.fingerprint(), two.fingerprint());
        let mut empty = KvStore::default();
        assert_eq!(empty.fingerprint(), 0);
        empty.invoke(&put("a", ""));
        assert_eq!(
            empty,
            KvStore::default(),
            "an empty value is the same state as an absent key"
        );
    }

    /// `(a * b) mod 2^127 - 1` by doubling and adding, one bit of `b` at a time.
    fn mul_mod_slowly(a: u128, b: u128) -> u128 {
        (0..127).rev().fold(0, |product, bit| {
            let doubled = add_mod(product, product);
            if (b >> bit) & 1 == 1 {
                add_mod(doubled, a)
            } else {
                doubled
            }
        })
    }

    #[test]
    fn mul_mod_matches_the_definition() {
        let p = HASH_MODULUS;
        let samples = [
            0,
            1,
            2,
            3,
            p - 1,
            p - 2,
            1 << 64,
            (1 << 64) - 1,
            1 << 126,
            HASH_BASE,
        ];
        for a in samples {
            for b in samples {
                assert_eq!(mul_mod(a, b), mul_mod_slowly(a, b), "{a} * {b}");
            }
        }
        assert_eq!(mul_mod(p - 1, p - 1), 1, "(-1)^2");
        assert_eq!(add_mod(p - 1, 1), 0);
    }

    #[test]
    fn content_hash_extends_by_the_suffix_alone() {
        let texts = ["", "x", "x 0 0 y", "x 0 0 yx 1 0 y", "\0", "\0\0", "é"];
        for a in texts {
            for b in texts {
                let joined = format!("{a}{b}");
                assert_eq!(
                    extend_content_hash(content_hash(a), b),
                    content_hash(&joined),
                    "{a:?} + {b:?}"
                );
                if a != b {
                    assert_ne!(content_hash(a), content_hash(b), "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn partition_fingerprint_sees_only_the_key() {
        let mut one = KvStore::default();
        assert_eq!(one.partition_fingerprint(&get("a")), 0);
        one.invoke(&append("a", "x"));
        let a = one.partition_fingerprint(&get("a"));
        assert_ne!(a, 0);
        one.invoke(&put("b", "1"));
        assert_eq!(
            one.partition_fingerprint(&get("a")),
            a,
            "b's write is not a's"
        );
        assert_ne!(one.partition_fingerprint(&get("b")), 0);
        let mut two = KvStore::default();
        two.invoke(&put("a", "x"));
        assert_eq!(
            two.partition_fingerprint(&append("a", "")),
            a,
            "same value, same part"
        );
        two.invoke(&append("a", "y"));
        assert_ne!(two.partition_fingerprint(&get("a")), a);
        two.invoke(&put("a", ""));
        assert_eq!(two.partition_fingerprint(&get("a")), 0, "empty is absent");
    }

    #[test]
    fn step_checks_gets_and_mismatched_shapes() {
        let mut store = KvStore::default();
        store.invoke(&put("k", "v"));
        assert!(store
            .step(&get("k"), &KvRet::Get { value: "v".into() })
            .is_some());
        assert!(store
            .step(
                &get("k"),
                &KvRet::Get {
                    value: String::new()
                }
            )
            .is_none());
        assert!(store.step(&put("k", "w"), &KvRet::Append).is_none());
        assert_eq!(
            KvStore::partition_key(&append("q", "1")),
            Some("q".to_string())
        );
        assert!(KvStore::is_read_only(
            &get("k"),
            &KvRet::Get {
                value: String::new()
            }
        ));
        assert!(!KvStore::is_read_only(&append("k", ""), &KvRet::Append));
    }

    #[test]
    fn serde_shapes() {
        let op = serde_json::to_string(&append("0", "x")).unwrap();
        assert_eq!(op, r#"{"f":"append","key":"0","value":"x"}"#);
        let back: KvRet = serde_json::from_str(r#"{"f":"get","value":""}"#).unwrap();
        assert_eq!(
            back,
            KvRet::Get {
                value: String::new()
            }
        );
    }
}
