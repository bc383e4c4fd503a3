//! Making sure the claims released by requests cut off at the end of the
//! grace period reach the store before the process exits.
//!
//! A dropped inline request releases its claim from its guard's `Drop`
//! (`IdempotencyStore::release_abandoned`); the store's
//! `abandoned_released` resolves once every such release has reached it.

use tower_webhook::IdempotencyStore;

use super::Waiting;
use crate::wiring::{Inline, Queued};

/// Waits for the releases of abandoned claims.
pub trait Flush {
    /// A future that resolves once every release of an abandoned claim
    /// started before it was made has reached the store.
    fn flushed(&self) -> Waiting;
}

impl<St: IdempotencyStore> Flush for Inline<St> {
    fn flushed(&self) -> Waiting {
        let store = self.0.clone();
        Box::pin(async move {
            // Lets the requests the grace period cut off drop first.
            tokio::task::yield_now().await;
            store.abandoned_released().await;
        })
    }
}

impl<Q: tower_webhook::queue::QueueInspect> Flush for Queued<Q> {
    /// Queued requests hold no claim while they wait: a job is accepted in
    /// one transaction, and the worker's own shutdown handles running jobs.
    fn flushed(&self) -> Waiting {
        Box::pin(async {})
    }
}
