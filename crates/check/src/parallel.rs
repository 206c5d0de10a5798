//! Work over many files on a few threads.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `work` on each of `items`, `threads` at a time, results in the items' order. Each
/// thread takes the next item when it is done with one, so a few big files do not keep
/// one thread busy while the others wait.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, work(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("the work never panics"))
            .collect()
    });
    let mut ordered: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (i, result) in done.into_iter().flatten() {
        ordered[i] = Some(result);
    }
    ordered
        .into_iter()
        .map(|result| result.expect("every item was done"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u64> = (0..100).collect();
        let squares = super::map(&items, 3, |n| n * n);
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert_eq!(super::map(&[] as &[u64], 4, |n| *n), Vec::<u64>::new());
    }
}
