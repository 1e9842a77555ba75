//! Delta debugging: Zeller and Hildebrandt's `ddmin` ("Simplifying and Isolating Failure-Inducing
//! Input", IEEE TSE 2002), which reduces a failing list of items to a 1-minimal failing subset —
//! removing any single remaining item makes the failure go away (when the search completes).
//!
//! Two departures from the paper, both because one probe here is a whole simulation:
//! - the empty list is probed first (a failure that needs none of the items is common: a watch bug
//!   needs no fault at all), and every subset is probed at most once (a memo by index set);
//! - the probe may answer [`Probe::Stop`] (the time budget ran out): the search then returns the
//!   smallest failing subset found so far, marked incomplete.
//!
//! No dependency on the rest of kvsim, so tests/shrink.rs includes this file directly.

use std::collections::BTreeSet;

/// What probing one subset found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The failure still happens with this subset: keep it.
    Fails,
    /// It does not (or the subset is not a valid input): discard it.
    Passes,
    /// Out of budget: stop searching.
    Stop,
}

/// The outcome of [`ddmin`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduced<T> {
    /// The smallest failing subset found, in the input's order.
    pub kept: Vec<T>,
    /// Subsets probed (cache hits excluded).
    pub probes: usize,
    /// False when a probe answered `Stop` before `kept` was shown 1-minimal.
    pub complete: bool,
}

/// Reduces `items`, which must fail as a whole (not probed again), to a 1-minimal failing subset.
/// `probe` sees subsets in the input's order.
pub fn ddmin<T: Clone>(items: &[T], mut probe: impl FnMut(&[T]) -> Probe) -> Reduced<T> {
    let mut current: Vec<usize> = (0..items.len()).collect();
    let mut tested: BTreeSet<Vec<usize>> = BTreeSet::from([current.clone()]);
    let mut probes = 0usize;
    // Ok(true) = fails, Ok(false) = passes or already tested, Err(()) = stop.
    let mut check = |subset: &[usize]| -> Result<bool, ()> {
        if !tested.insert(subset.to_vec()) {
            // A subset probed before either failed (and became the current list, which is never
            // probed again) or passed: either way it cannot reduce further now.
            return Ok(false);
        }
        probes += 1;
        let chosen: Vec<T> = subset.iter().map(|&index| items[index].clone()).collect();
        match probe(&chosen) {
            Probe::Fails => Ok(true),
            Probe::Passes => Ok(false),
            Probe::Stop => Err(()),
        }
    };
    let complete = 'search: {
        if current.is_empty() {
            break 'search true;
        }
        match check(&[]) {
            Ok(true) => {
                current.clear();
                break 'search true;
            }
            Ok(false) => {}
            Err(()) => break 'search false,
        }
        let mut granularity = 2usize;
        while current.len() >= 2 {
            let chunks = split(&current, granularity);
            debug_assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), current.len());
            let mut reduced = false;
            // Reduce to a subset: one chunk alone still fails.
            for chunk in &chunks {
                match check(chunk) {
                    Ok(true) => {
                        current = chunk.clone();
                        granularity = 2;
                        reduced = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(()) => break 'search false,
                }
            }
            // Reduce to a complement: everything but one chunk still fails. With two chunks the
            // complements are the chunks themselves, already probed.
            if !reduced && chunks.len() > 2 {
                for skip in 0..chunks.len() {
                    let complement: Vec<usize> = chunks
                        .iter()
                        .enumerate()
                        .filter(|(index, _)| *index != skip)
                        .flat_map(|(_, chunk)| chunk.iter().copied())
                        .collect();
                    match check(&complement) {
                        Ok(true) => {
                            current = complement;
                            granularity = (granularity - 1).max(2);
                            reduced = true;
                            break;
                        }
                        Ok(false) => {}
                        Err(()) => break 'search false,
                    }
                }
            }
            if !reduced {
                if granularity >= current.len() {
                    break;
                }
                granularity = (granularity * 2).min(current.len());
            }
        }
        true
    };
    Reduced {
        kept: current.iter().map(|&index| items[index].clone()).collect(),
        probes,
        complete,
    }
}

/// `items` cut into `parts` contiguous chunks of near-equal size (the first ones one longer).
fn split(items: &[usize], parts: usize) -> Vec<Vec<usize>> {
    assert!(parts >= 1 && parts <= items.len(), "1 <= parts <= len");
    let (base, extra) = (items.len() / parts, items.len() % parts);
    let mut chunks = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 0..parts {
        let len = base + usize::from(part < extra);
        chunks.push(items[start..start + len].to_vec());
        start += len;
    }
    debug_assert_eq!(start, items.len());
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_everything_in_order() {
        let items: Vec<usize> = (0..7).collect();
        assert_eq!(
            split(&items, 3),
            vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]
        );
        assert_eq!(split(&items, 7).len(), 7);
        assert_eq!(split(&items, 1), vec![items.clone()]);
    }

    #[test]
    fn finds_the_two_items_a_failure_needs() {
        let items: Vec<u32> = (0..40).collect();
        let reduced = ddmin(&items, |subset| {
            if subset.contains(&7) && subset.contains(&31) {
                Probe::Fails
            } else {
                Probe::Passes
            }
        });
        assert_eq!(reduced.kept, vec![7, 31]);
        assert!(reduced.complete);
        assert!(reduced.probes < 60, "{} probes", reduced.probes);
    }

    #[test]
    fn empty_subset_first_and_stop_keeps_the_best_so_far() {
        let items = vec!['a', 'b', 'c'];
        let reduced = ddmin(&items, |_| Probe::Fails);
        assert_eq!((reduced.kept.len(), reduced.probes), (0, 1));

        let mut calls = 0;
        let items: Vec<u32> = (0..16).collect();
        let reduced = ddmin(&items, |subset| {
            calls += 1;
            if calls > 3 {
                Probe::Stop
            } else if subset.contains(&3) {
                Probe::Fails
            } else {
                Probe::Passes
            }
        });
        assert!(!reduced.complete);
        assert!(reduced.kept.contains(&3) && reduced.kept.len() < 16);
    }
}
