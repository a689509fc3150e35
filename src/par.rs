//! Splitting work over threads without changing a single output byte.
//!
//! Work is cut into contiguous ranges, one per thread; each range's results are joined
//! in range order and the first error in range order wins, so the result is identical
//! to a sequential run whatever the thread count.

/// Threads to use: `POLARS_MAX_THREADS` when set (so one setting governs the whole run),
/// else the machine's cores.
pub fn threads() -> usize {
    std::env::var("POLARS_MAX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Boundaries `b[0] = 0 < … < b[k] = n` cutting items `0..n` into at most `parts` ranges
/// of about equal weight, where `offsets` (length n + 1, non-decreasing) holds the
/// cumulative weight before each item.
pub fn split_weighted(offsets: &[u32], parts: usize) -> Vec<usize> {
    let n = offsets.len().saturating_sub(1);
    let total = u64::from(*offsets.last().unwrap_or(&0));
    let mut bounds = vec![0];
    for p in 1..parts.max(1) {
        let target = total * p as u64 / parts as u64;
        let cut = offsets.partition_point(|&o| u64::from(o) < target).min(n);
        if cut > *bounds.last().unwrap_or(&0) && cut < n {
            bounds.push(cut);
        }
    }
    bounds.push(n);
    bounds
}

/// Builds a vector of `n` items in parallel: `f` fills the items of one contiguous range
/// (given the range and its slice of the output). The first error in range order is
/// returned. The output is allocated once, so no thread holds a second copy.
pub fn fill_ranges<T, E, F>(n: usize, f: F) -> Result<Vec<T>, E>
where
    T: Send + Clone + Default,
    E: Send,
    F: Fn(std::ops::Range<usize>, &mut [T]) -> Result<(), E> + Sync,
{
    fill_ranges_of(n, 4096, f)
}

/// [`fill_ranges`] with ranges of at least `min_len` items (1 for items that are each
/// a large piece of work, such as a whole audit).
pub fn fill_ranges_of<T, E, F>(n: usize, min_len: usize, f: F) -> Result<Vec<T>, E>
where
    T: Send + Clone + Default,
    E: Send,
    F: Fn(std::ops::Range<usize>, &mut [T]) -> Result<(), E> + Sync,
{
    let mut out = vec![T::default(); n];
    let parts = threads().min(n / min_len.max(1)).max(1);
    if parts == 1 {
        f(0..n, &mut out)?;
        return Ok(out);
    }
    let f = &f;
    let results: Vec<std::thread::Result<Result<(), E>>> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(parts);
        let mut rest: &mut [T] = &mut out;
        for p in 0..parts {
            let range = n * p / parts..n * (p + 1) / parts;
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
            rest = tail;
            handles.push(scope.spawn(move || f(range, mine)));
        }
        handles.into_iter().map(|h| h.join()).collect()
    });
    for r in results {
        match r {
            Ok(part) => part?,
            // A worker panicked: re-raise it here rather than lose it.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    Ok(out)
}

/// `f` of every item, on [`threads`] threads that each take the next item not yet
/// taken, costliest first (by `cost`); the results are returned in item order, so they
/// do not depend on the number of threads or on which thread ran what. For a few large
/// pieces of work of unequal size, such as the files of a bundle.
pub fn map_costliest_first<T, R, F>(items: &[T], cost: impl Fn(&T) -> u64, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Each cost taken once (it may read the file system, which may change meanwhile).
    order.sort_by_cached_key(|&i| std::cmp::Reverse(cost(&items[i])));
    let next = AtomicUsize::new(0);
    let workers = threads().min(items.len()).max(1);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        mine.push((i, f(&items[i])));
                    }
                    mine
                })
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(mine) => all.extend(mine),
                // A worker panicked: re-raise it here rather than lose it.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costliest_first_returns_every_result_in_item_order() {
        let items: Vec<u64> = (0..50).map(|i| (i * 37) % 11).collect();
        let out = map_costliest_first(&items, |&c| c, |&c| c * 2 + 1);
        assert_eq!(out, items.iter().map(|c| c * 2 + 1).collect::<Vec<_>>());
        let none: Vec<u64> = map_costliest_first(&[] as &[u64], |&c| c, |&c| c);
        assert!(none.is_empty());
    }

    #[test]
    fn weighted_split_covers_every_item_once_in_order() {
        let offsets = [0, 5, 5, 6, 20, 21, 30];
        for parts in 1..8 {
            let b = split_weighted(&offsets, parts);
            assert_eq!(b[0], 0);
            assert_eq!(*b.last().unwrap(), 6);
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
            assert!(b.len() - 1 <= parts);
        }
        assert_eq!(split_weighted(&offsets, 2), vec![0, 4, 6]);
        assert_eq!(split_weighted(&[0], 2), vec![0, 0]);
    }
}
