//! The etcd key-range encoding of a request: an empty `range_end` names one key, `range_end == "\0"`
//! every key >= `key` (etcdserver's mkGteRange), anything else the half-open interval `[key, range_end)`.

use std::ops::Bound;

/// Start and end bounds over byte-string keys.
pub type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    Single(Vec<u8>),
    /// `[start, end)`; `end == None` means unbounded. An `end <= start` selects nothing.
    Interval {
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    },
}

impl KeyRange {
    pub fn parse(key: &[u8], range_end: &[u8]) -> KeyRange {
        if range_end.is_empty() {
            KeyRange::Single(key.to_vec())
        } else if range_end == [0] {
            KeyRange::Interval {
                start: key.to_vec(),
                end: None,
            }
        } else {
            KeyRange::Interval {
                start: key.to_vec(),
                end: Some(range_end.to_vec()),
            }
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Single(single) => single.as_slice() == key,
            KeyRange::Interval { start, end } => {
                start.as_slice() <= key && end.as_ref().is_none_or(|end| key < end.as_slice())
            }
        }
    }

    /// Bounds for a `BTreeMap<Vec<u8>, _>::range`; `None` when the interval is empty (BTreeMap panics
    /// on a start greater than its end).
    pub fn bounds(&self) -> Option<KeyBounds> {
        match self {
            KeyRange::Single(key) => {
                Some((Bound::Included(key.clone()), Bound::Included(key.clone())))
            }
            KeyRange::Interval { start, end: None } => {
                Some((Bound::Included(start.clone()), Bound::Unbounded))
            }
            KeyRange::Interval {
                start,
                end: Some(end),
            } => (start < end)
                .then(|| (Bound::Included(start.clone()), Bound::Excluded(end.clone()))),
        }
    }
}
