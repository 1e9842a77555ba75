//! Transaction compares, as etcd's `applyCompare` / `compareKV` evaluate them.

use std::cmp::Ordering;

use crate::mvcc::store::Live;
use crate::mvcc::types::{Compare, CompareResult, CompareTarget};

/// `current` is the key's version in the state the compare reads (the state before the
/// transaction), `None` if the key does not exist.
///
/// etcd facts (verified on 3.4.23): on a missing key, a `Value` compare is false whatever the
/// operator ("nil == empty string in grpc; no way to represent missing value"); every other
/// target compares against the zero `KeyValue` (version 0, create/mod revision 0, lease 0).
/// Values compare as bytes (`bytes.Compare`), which is Rust's `str` order.
pub(crate) fn compare_holds(compare: &Compare, current: Option<&Live>) -> bool {
    let ordering = match (&compare.target, current) {
        (CompareTarget::Value(_), None) => return false,
        (CompareTarget::Value(target), Some(live)) => (*live.value).cmp(target.as_str()),
        (CompareTarget::Version(target), live) => live.map_or(0, |l| l.version).cmp(target),
        (CompareTarget::CreateRevision(target), live) => {
            live.map_or(0, |l| l.create_revision).cmp(target)
        }
        (CompareTarget::ModRevision(target), live) => {
            live.map_or(0, |l| l.mod_revision).cmp(target)
        }
        (CompareTarget::Lease(target), live) => live.map_or(0, |l| l.lease).cmp(target),
    };
    match compare.result {
        CompareResult::Equal => ordering == Ordering::Equal,
        CompareResult::NotEqual => ordering != Ordering::Equal,
        CompareResult::Less => ordering == Ordering::Less,
        CompareResult::Greater => ordering == Ordering::Greater,
    }
}

/// What a compare whose outcome is known (`holds`) says about whether its key exists: `Some(true)`
/// present, `Some(false)` absent, `None` either. A missing key compares as 0 (or, on its value,
/// always false, `compare_holds`); a present key's version, create and mod revision are at least
/// 1, its lease any id. So the outcome shows the key present when a missing key could not give
/// it, and absent when no number from 1 up could.
pub(crate) fn compare_shows_present(compare: &Compare, holds: bool) -> Option<bool> {
    let target = match &compare.target {
        CompareTarget::Value(_) => return holds.then_some(true),
        CompareTarget::Lease(_) => None,
        CompareTarget::Version(target)
        | CompareTarget::CreateRevision(target)
        | CompareTarget::ModRevision(target) => Some(*target),
    };
    if compare_holds(compare, None) != holds {
        return Some(true);
    }
    let target = target?;
    // Whether some field value f >= 1 gives the outcome `holds`.
    let present_can = match (compare.result, holds) {
        (CompareResult::Equal, true) | (CompareResult::NotEqual, false) => target >= 1,
        (CompareResult::Less, true) => target >= 2,
        (CompareResult::Greater, false) => target >= 1,
        (CompareResult::Equal, false)
        | (CompareResult::NotEqual, true)
        | (CompareResult::Less, false)
        | (CompareResult::Greater, true) => true,
    };
    (!present_can).then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn cmp(target: CompareTarget, result: CompareResult) -> Compare {
        Compare {
            key: "k".into(),
            result,
            target,
        }
    }

    /// A present key whose version, create and mod revision are all `f`.
    fn live_at(f: i64) -> Live {
        Live {
            value: Arc::from("v"),
            create_revision: f,
            mod_revision: f,
            version: f,
            lease: 0,
        }
    }

    /// `compare_shows_present` against `compare_holds` over small numbers: a key it calls
    /// present must be one a missing key cannot give the outcome for; one it calls absent, one
    /// no present key (fields 1..=6) can; and where it says nothing, both can.
    #[test]
    fn compare_outcomes_show_presence_exactly() {
        let results = [
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Less,
            CompareResult::Greater,
        ];
        for result in results {
            for target_value in -1..=5 {
                for target in [
                    CompareTarget::Version(target_value),
                    CompareTarget::CreateRevision(target_value),
                    CompareTarget::ModRevision(target_value),
                ] {
                    let c = cmp(target, result);
                    for holds in [true, false] {
                        let missing_can = compare_holds(&c, None) == holds;
                        let present_can = (1..=6).any(|f| {
                            let live = live_at(f);
                            compare_holds(&c, Some(&live)) == holds
                        });
                        let expected = match (missing_can, present_can) {
                            (false, _) => Some(true),
                            (true, false) => Some(false),
                            (true, true) => None,
                        };
                        assert_eq!(
                            compare_shows_present(&c, holds),
                            expected,
                            "{c:?} holds={holds}"
                        );
                    }
                }
            }
        }
        let value = cmp(CompareTarget::Value("x".into()), CompareResult::Equal);
        assert_eq!(compare_shows_present(&value, true), Some(true));
        assert_eq!(compare_shows_present(&value, false), None);
        let lease = cmp(CompareTarget::Lease(0), CompareResult::Equal);
        assert_eq!(compare_shows_present(&lease, false), Some(true));
        assert_eq!(compare_shows_present(&lease, true), None);
    }

    #[test]
    fn value_compare_on_missing_key_is_always_false() {
        // etcd 3.4.23: all four operators against "" and "x" on a missing key took the failure branch.
        for result in [
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Less,
            CompareResult::Greater,
        ] {
            for value in ["", "x"] {
                assert!(!compare_holds(
                    &cmp(CompareTarget::Value(value.into()), result),
                    None
                ));
            }
        }
    }

    #[test]
    fn other_targets_compare_missing_key_as_zero() {
        // etcd 3.4.23: version/create/mod/lease `= 0` and `< 1` on a missing key succeed.
        for target in [
            CompareTarget::Version(0),
            CompareTarget::CreateRevision(0),
            CompareTarget::ModRevision(0),
            CompareTarget::Lease(0),
        ] {
            assert!(compare_holds(&cmp(target, CompareResult::Equal), None));
        }
        assert!(compare_holds(
            &cmp(CompareTarget::Version(1), CompareResult::Less),
            None
        ));
        assert!(!compare_holds(
            &cmp(CompareTarget::ModRevision(0), CompareResult::Greater),
            None
        ));
    }

    #[test]
    fn values_compare_as_bytes() {
        let live = Live {
            value: Arc::from("2"),
            create_revision: 7,
            mod_revision: 9,
            version: 3,
            lease: 0,
        };
        // etcd 3.4.23: value "2" > "1" and "2" < "10" is false (byte order, not numeric).
        assert!(compare_holds(
            &cmp(CompareTarget::Value("1".into()), CompareResult::Greater),
            Some(&live)
        ));
        assert!(!compare_holds(
            &cmp(CompareTarget::Value("10".into()), CompareResult::Less),
            Some(&live)
        ));
        assert!(compare_holds(
            &cmp(CompareTarget::ModRevision(9), CompareResult::Equal),
            Some(&live)
        ));
        assert!(compare_holds(
            &cmp(CompareTarget::CreateRevision(7), CompareResult::Equal),
            Some(&live)
        ));
        assert!(compare_holds(
            &cmp(CompareTarget::Version(2), CompareResult::Greater),
            Some(&live)
        ));
        assert!(compare_holds(
            &cmp(CompareTarget::Lease(5), CompareResult::NotEqual),
            Some(&live)
        ));
    }
}
