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
    /// `entry_fingerprint(key, value)`, computed once per write: it is also the partition
    /// fingerprint of `key` (`Spec::partition_fingerprint`), asked at every search step.
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

    fn set(&mut self, key: &str, value: String) {
        let found = self.find(key);
        let entries = Arc::make_mut(&mut self.entries);
        if let Ok(at) = found {
            self.fingerprint = self.fingerprint.wrapping_sub(entries[at].fingerprint);
        }
        let fingerprint = if value.is_empty() {
            0
        } else {
            entry_fingerprint(key, &value)
        };
        self.fingerprint = self.fingerprint.wrapping_add(fingerprint);
        match (found, value.is_empty()) {
            (Ok(at), true) => {
                entries.remove(at);
            }
            (Ok(at), false) => {
                entries[at].value = value.into();
                entries[at].fingerprint = fingerprint;
            }
            (Err(_), true) => {}
            (Err(at), false) => entries.insert(
                at,
                Entry {
                    key: key.into(),
                    value: value.into(),
                    fingerprint,
                },
            ),
        }
        debug_assert!(entries.windows(2).all(|pair| pair[0].key < pair[1].key));
    }
}

fn entry_fingerprint(key: &str, value: &str) -> u128 {
    fingerprint_of(&(key, value))
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
                self.set(key, value.clone());
                KvRet::Put
            }
            KvOp::Append { key, value } => {
                let joined = format!("{}{}", self.get(key), value);
                self.set(key, joined);
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
