//! [`Backlog`]: the worker's count of pending jobs per scheme, which a
//! queued layer reads for each delivery to refuse one (503 `queue_full`)
//! from its headers alone when the bound is reached.
//!
//! The count is kept, not queried: this worker adds what it accepts and
//! what it hands back for a retry, subtracts what it takes, and, on a
//! queue with [`QueueAdmin`](super::QueueAdmin) counts, sets it from the
//! backend's count (every replica's jobs) about once a second. A layer's
//! check is one read lock and one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{PoisonError, RwLock};

/// Pending jobs per scheme, and the bound on them.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    /// `None`: unbounded, and nothing is counted.
    max: Option<u64>,
    pending: RwLock<HashMap<Box<str>, AtomicI64>>,
}

impl Backlog {
    pub(super) fn new(max: Option<u64>) -> Self {
        Self {
            max,
            pending: RwLock::default(),
        }
    }

    /// Whether the bound is set (and the counts are kept).
    pub(super) fn is_bounded(&self) -> bool {
        self.max.is_some()
    }

    /// Whether `scheme` has reached the bound.
    pub(super) fn is_full(&self, scheme: &str) -> bool {
        let Some(max) = self.max else {
            return false;
        };
        let pending = self.pending.read().unwrap_or_else(PoisonError::into_inner);
        pending
            .get(scheme)
            .is_some_and(|n| n.load(Ordering::Relaxed) >= i64::try_from(max).unwrap_or(i64::MAX))
    }

    /// Adds `delta` to `scheme`'s count.
    pub(super) fn add(&self, scheme: &str, delta: i64) {
        if self.max.is_none() || delta == 0 {
            return;
        }
        self.with(scheme, |n| {
            n.fetch_add(delta, Ordering::Relaxed);
        });
    }

    /// Sets the counts to the backend's, for every scheme it named.
    pub(super) fn set(&self, counts: impl IntoIterator<Item = (String, u64)>) {
        for (scheme, pending) in counts {
            let pending = i64::try_from(pending).unwrap_or(i64::MAX);
            self.with(&scheme, |n| n.store(pending, Ordering::Relaxed));
        }
    }

    fn with(&self, scheme: &str, apply: impl FnOnce(&AtomicI64)) {
        {
            let pending = self.pending.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = pending.get(scheme) {
                apply(n);
                return;
            }
        }
        let mut pending = self.pending.write().unwrap_or_else(PoisonError::into_inner);
        apply(pending.entry(scheme.into()).or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_at_the_bound_per_scheme_and_never_when_unbounded() {
        let backlog = Backlog::new(Some(2));
        backlog.add("numero", 2);
        assert!(backlog.is_full("numero"));
        assert!(!backlog.is_full("numberotp"));
        backlog.add("numero", -1);
        assert!(!backlog.is_full("numero"));
        backlog.set([("numero".to_owned(), 5)]);
        assert!(backlog.is_full("numero"));
        let unbounded = Backlog::new(None);
        unbounded.add("numero", 100);
        assert!(!unbounded.is_full("numero"));
    }
}
