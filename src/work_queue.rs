//! Runs independent items (seeds, bug × seed pairs) on a fixed number of worker threads.
//!
//! Items are taken in order, one at a time, from one shared iterator (never collected: a
//! campaign over `0..u64::MAX` costs nothing up front), so the first items finish first. A
//! `Flow::Stop` (stop on first violation, an error) or a `stop_before_next` that turns true (a
//! time budget, a signal) leaves the remaining items untaken; every item taken runs to its end.
//! The untaken rest is handed back, so the caller can say what did not run and how to resume.
//! Results are the caller's business: `work` records them (behind a lock) itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What a worker does after an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Take no more items (items already running finish).
    Stop,
}

/// Calls `work` on every item from `jobs` threads until the items run out, a call returns
/// `Flow::Stop`, or `stop_before_next()` is true when a worker is about to take an item.
/// Returns the items not taken, in order.
pub fn run<I>(
    items: I,
    jobs: usize,
    stop_before_next: impl Fn() -> bool + Sync,
    work: impl Fn(I::Item) -> Flow + Sync,
) -> I
where
    I: Iterator + Send,
{
    assert!(jobs > 0, "at least one worker");
    let items = Mutex::new(items);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let item = {
                    // Deciding to stop and taking the item under one lock: no item is taken
                    // after another worker saw the stop condition.
                    let mut items = items.lock().expect("no worker panics holding the lock");
                    if stop.load(Ordering::Relaxed) || stop_before_next() {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    match items.next() {
                        Some(item) => item,
                        None => break,
                    }
                };
                if work(item) == Flow::Stop {
                    stop.store(true, Ordering::Relaxed);
                }
            });
        }
    });
    items.into_inner().expect("workers done")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_item_runs_once() {
        let seen = Mutex::new(Vec::new());
        let mut rest = run(
            0..100u64,
            3,
            || false,
            |item| {
                seen.lock().unwrap().push(item);
                Flow::Continue
            },
        );
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert_eq!(rest.next(), None);
    }

    #[test]
    fn stop_leaves_later_items_untaken_and_hands_them_back() {
        let seen = Mutex::new(Vec::new());
        let mut rest = run(
            0..1000u64,
            2,
            || false,
            |item| {
                seen.lock().unwrap().push(item);
                if item == 5 {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            },
        );
        let mut seen = seen.into_inner().unwrap();
        assert!(seen.contains(&5));
        // At most one more item per worker after the stop.
        assert!(seen.len() <= 8, "{seen:?}");
        // Every item below the first untaken one ran: the rest is a resumable range.
        let next = rest.next().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..next).collect::<Vec<_>>());
    }

    #[test]
    fn an_endless_range_is_not_collected() {
        let taken = std::sync::atomic::AtomicU64::new(0);
        let mut rest = run(
            0..u64::MAX,
            2,
            || taken.load(Ordering::Relaxed) >= 10,
            |_| {
                taken.fetch_add(1, Ordering::Relaxed);
                Flow::Continue
            },
        );
        assert_eq!(rest.next(), Some(taken.load(Ordering::Relaxed)));
    }
}
