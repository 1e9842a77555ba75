//! Reads that no write can have answered, found before the search (a necessary condition on
//! where each read's value came from, in O(n log n)).
//!
//! A read R answered v is valid only right after an operation with `Spec::written_tag` v changed
//! the state, as the last to change it (`Spec::read_needs_tag`), or in the initial state. Some
//! answered operations Y always leave a state of a known tag t' (`Spec::leaves_tag`; register: a
//! write or a successful cas). If such a Y with t' ≠ v returned before R was called, Y comes
//! before R in every linearization, so some writer X of v must come after Y and before R: X was
//! called before R returned and did not return before Y was called. When no X qualifies for the
//! latest-called such Y, no linearization places R: the history is not linearizable.
//!
//! This is the stale read the search proves only by exhausting every order of the operations
//! before R — what makes porcupine and a plain WGL search time out on a 2,000-operation register
//! history with one planted stale read. The rule never decides "linearizable", and it refutes
//! only what the search would refute too, so it changes no verdict, only how soon it comes.

/// Rank, in the search's sorted event list, of the return of an op with no return event.
pub(super) const NO_RETURN: u32 = u32::MAX;

/// An answered operation that always leaves a state of tag `tag` (`Spec::leaves_tag`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Setter {
    pub(super) call_rank: u32,
    pub(super) return_rank: u32,
    pub(super) tag: u128,
    pub(super) op: u32,
}

/// An answered read-only operation valid only after a writer of `tag` (`Spec::read_needs_tag`).
#[derive(Clone, Copy, Debug)]
pub(super) struct TaggedRead {
    pub(super) call_rank: u32,
    pub(super) return_rank: u32,
    pub(super) tag: u128,
    pub(super) op: u32,
}

/// A possible writer of a tag (`Spec::written_tag`), answered or not (`NO_RETURN`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Writer {
    pub(super) call_rank: u32,
    pub(super) return_rank: u32,
    pub(super) op: u32,
}

/// Over a prefix of the setters by return rank: the latest-called setter, and the latest-called
/// one whose tag differs from that one's (so the latest-called of any tag other than a given
/// one is one of the two).
#[derive(Clone, Copy, Default)]
struct LatestTwo {
    first: Option<Setter>,
    other_tag: Option<Setter>,
}

impl LatestTwo {
    fn add(mut self, setter: Setter) -> Self {
        match self.first {
            None => self.first = Some(setter),
            Some(first) if setter.call_rank > first.call_rank => {
                if setter.tag != first.tag {
                    self.other_tag = Some(first);
                }
                self.first = Some(setter);
            }
            Some(first) => {
                let later = self
                    .other_tag
                    .is_none_or(|other| setter.call_rank > other.call_rank);
                if setter.tag != first.tag && later {
                    self.other_tag = Some(setter);
                }
            }
        }
        self
    }

    /// The latest-called setter whose tag is not `tag`.
    fn latest_not(&self, tag: u128) -> Option<Setter> {
        match self.first {
            Some(first) if first.tag != tag => Some(first),
            _ => self.other_tag,
        }
    }
}

/// The first read (in `reads` order) that no writer can have answered, with the setter that
/// overwrote its value: `(read op, setter op)`. `writers(tag)` lists the possible writers of a
/// tag by call rank. Ranks are positions in one sorted event list (all distinct).
pub(super) fn first_unreadable<'w>(
    reads: &[TaggedRead],
    setters: &[Setter],
    writers: impl Fn(u128) -> &'w [Writer],
) -> Option<(u32, u32)> {
    let mut by_return = setters.to_vec();
    by_return.sort_unstable_by_key(|setter| setter.return_rank);
    // latest[k]: over the k setters that return first.
    let mut latest = Vec::with_capacity(by_return.len() + 1);
    latest.push(LatestTwo::default());
    for setter in &by_return {
        let next = latest[latest.len() - 1].add(*setter);
        latest.push(next);
    }
    reads.iter().find_map(|read| {
        assert!(
            read.call_rank < read.return_rank,
            "read-from: a call precedes its return"
        );
        // The setters that must precede the read: returned before it was called.
        let before = by_return.partition_point(|setter| setter.return_rank < read.call_rank);
        let blocker = latest[before].latest_not(read.tag)?;
        // A writer after the blocker and before the read, newest call first: in a linearizable
        // history the latest writer called before the read returns is the usual source.
        let candidates = writers(read.tag);
        let called_before = candidates.partition_point(|w| w.call_rank < read.return_rank);
        let sourced = candidates[..called_before]
            .iter()
            .rev()
            .any(|writer| writer.op != read.op && writer.return_rank > blocker.call_rank);
        (!sourced).then_some((read.op, blocker.op))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setter(op: u32, call_rank: u32, return_rank: u32, tag: u128) -> Setter {
        Setter {
            call_rank,
            return_rank,
            tag,
            op,
        }
    }

    fn read(op: u32, call_rank: u32, return_rank: u32, tag: u128) -> TaggedRead {
        TaggedRead {
            call_rank,
            return_rank,
            tag,
            op,
        }
    }

    fn writer(op: u32, call_rank: u32, return_rank: u32) -> Writer {
        Writer {
            call_rank,
            return_rank,
            op,
        }
    }

    #[test]
    fn a_read_of_an_overwritten_value_is_unreadable() {
        // w(1) [0,1], w(2) [2,3], r -> 1 [4,5]: w(2) must come between w(1) and the read.
        let setters = [setter(0, 0, 1, 1), setter(1, 2, 3, 2)];
        let writers_of_1 = [writer(0, 0, 1)];
        let reads = [read(2, 4, 5, 1)];
        let writers = |tag: u128| -> &[Writer] {
            if tag == 1 {
                &writers_of_1
            } else {
                &[]
            }
        };
        assert_eq!(first_unreadable(&reads, &setters, writers), Some((2, 1)));
    }

    #[test]
    fn an_overlapping_or_unknown_writer_can_answer() {
        let setters = [setter(0, 0, 1, 1), setter(1, 2, 3, 2)];
        let reads = [read(2, 4, 6, 1)];
        // w(1) [0,5] overlaps w(2): it may come after it.
        let overlapping = [writer(0, 0, 5)];
        assert_eq!(first_unreadable(&reads, &setters, |_| &overlapping), None);
        // An unknown-outcome w(1) called before the read returned may take effect late.
        let unknown = [writer(0, 0, 1), writer(3, 5, NO_RETURN)];
        assert_eq!(first_unreadable(&reads, &setters, |_| &unknown), None);
        // ... but not one called after the read returned.
        let late = [writer(0, 0, 1), writer(3, 7, NO_RETURN)];
        assert_eq!(first_unreadable(&reads, &setters, |_| &late), Some((2, 1)));
    }

    #[test]
    fn only_setters_of_another_tag_that_returned_before_the_call_block() {
        // w(2) [2,5] overlaps the read [4,6]: the read may come before it, right after w(1).
        let writers_of_1 = [writer(0, 0, 1)];
        let reads = [read(2, 4, 6, 1)];
        let overlapping = [setter(0, 0, 1, 1), setter(1, 2, 5, 2)];
        assert_eq!(
            first_unreadable(&reads, &overlapping, |_| &writers_of_1),
            None
        );
        // A second write of 1 [2,3] leaves the read's own tag: no block.
        let same_tag = [setter(0, 0, 1, 1), setter(1, 2, 3, 1)];
        assert_eq!(first_unreadable(&reads, &same_tag, |_| &writers_of_1), None);
    }

    #[test]
    fn the_latest_called_blocker_of_another_tag_decides() {
        // Setters of tag 1 [0,1] and tag 2 [2,3], then tag 1 again [5,7]: for a read of 2
        // [8,9] the blocker is the second write of 1 (called at 5), after which no 2 is written.
        let setters = [setter(0, 0, 1, 1), setter(1, 2, 3, 2), setter(3, 5, 7, 1)];
        let writers_of_2 = [writer(1, 2, 3)];
        let reads = [read(4, 8, 9, 2)];
        assert_eq!(
            first_unreadable(&reads, &setters, |_| &writers_of_2),
            Some((4, 3))
        );
        // With the latest setter of the read's own tag, the one before it decides.
        let latest_own = [setter(0, 0, 1, 1), setter(1, 2, 3, 2), setter(3, 5, 7, 2)];
        let writers_of_1 = [writer(0, 0, 1)];
        let read_of_1 = [read(4, 8, 9, 1)];
        assert_eq!(
            first_unreadable(&read_of_1, &latest_own, |_| &writers_of_1),
            Some((4, 3))
        );
    }
}
