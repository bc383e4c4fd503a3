//! Making sure the claims released by requests cut off at the end of the
//! grace period reach the store before the process exits.
//!
//! A dropped inline request releases its claim from its guard's `Drop`
//! (`IdempotencyStore::release_abandoned`): the memory store releases it
//! there and then; the SQLite store queues the release for its writer
//! thread, which handles commands in order, so any later command's answer
//! means it is committed; the Redis store spawns the release on the runtime,
//! so a later command usually, not surely, comes after it (when it does
//! not, the claim frees itself when its lease runs out, and a retry before
//! then gets 409 with `Retry-After`). [`Flush`] is that later command: a
//! claim and release of a key of its own.

use std::time::Duration;

use tower_webhook::{Claim, EventId, IdempotencyKey, IdempotencyStore};

use super::Waiting;
use crate::wiring::{Inline, Queued};

/// A store round trip behind every release started before it.
pub trait Flush {
    /// A future that, once polled to its end, has seen the store answer a
    /// command sent after every release started before it was polled.
    fn flushed(&self) -> Waiting;
}

impl<St: IdempotencyStore> Flush for Inline<St> {
    fn flushed(&self) -> Waiting {
        let store = self.0.clone();
        Box::pin(async move {
            // Lets the releases a store spawned (Redis) start first.
            tokio::task::yield_now().await;
            let id = EventId::new("flush-on-shutdown").expect("a valid id");
            let key = IdempotencyKey::new("receiver", &id);
            if let Ok(Claim::New(lease)) = store.claim(&key, Duration::from_secs(60)).await {
                let _ = store.release(lease).await;
            }
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
