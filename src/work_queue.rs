//! Runs independent items (seeds, bug × seed pairs) on a fixed number of worker threads.
//!
//! Items are taken in order from one shared cursor, so the first items finish first and a
//! `Flow::Stop` (stop on first violation, time budget, an error) leaves the remaining ones
//! untaken. Results are the caller's business: `work` records them (behind a lock) itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What a worker does after an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Take no more items (items already running finish).
    Stop,
}

/// Calls `work` on every item (unless a call returns `Flow::Stop`) from `jobs` threads.
pub fn run<T: Sync>(items: &[T], jobs: usize, work: impl Fn(&T) -> Flow + Sync) {
    assert!(jobs > 0, "at least one worker");
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(items.len().max(1)) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if work(item) == Flow::Stop {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_item_runs_once() {
        let items: Vec<u64> = (0..100).collect();
        let seen = Mutex::new(Vec::new());
        run(&items, 3, |item| {
            seen.lock().unwrap().push(*item);
            Flow::Continue
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, items);
    }

    #[test]
    fn stop_leaves_later_items_untaken() {
        let items: Vec<u64> = (0..1000).collect();
        let seen = Mutex::new(Vec::new());
        run(&items, 2, |item| {
            seen.lock().unwrap().push(*item);
            if *item == 5 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        let seen = seen.into_inner().unwrap();
        assert!(seen.contains(&5));
        // At most one more item per worker after the stop.
        assert!(seen.len() <= 8, "{seen:?}");
    }
}
