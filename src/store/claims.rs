//! The claim contract: what every store implements, inline mode's whole
//! need ([`IdempotencyStore`]), and its answer ([`Claim`]).

use std::future::Future;
use std::time::Duration;

use super::{IdempotencyKey, StoreError};

/// The answer to a claim.
#[derive(Debug)]
pub enum Claim<L> {
    /// Nobody held the key: it is now held by this lease until completed,
    /// released, or the lease runs out.
    New(L),
    /// The event was processed before, within the done TTL.
    Done,
    /// Another claim holds the key and its lease has not run out.
    InFlight,
}

/// Where claims live. Cloning must share the same underlying store.
///
/// The futures are associated types so that a store answering synchronously
/// (the in-memory one) costs no allocation; a network store returns a boxed
/// future.
///
/// # Leases
///
/// A claim holds its key for the lease given to `claim`. While the inner
/// service runs, the layer renews it every third of the lease
/// ([`renew_claim`](IdempotencyStore::renew_claim)), so a handler slower than
/// the lease keeps its key; the lease bounds how long a claim whose process
/// died (and so stopped renewing) blocks its event.
pub trait IdempotencyStore: Clone + Send + Sync + 'static {
    /// Proof of one claim: what `renew_claim`, `complete` and `release`
    /// check against.
    type Lease: Send + Sync + 'static;
    /// The future of [`IdempotencyStore::claim`].
    type ClaimFuture: Future<Output = Result<Claim<Self::Lease>, StoreError>>
        + Send
        + Unpin
        + 'static;
    /// The future of [`IdempotencyStore::complete`] and
    /// [`IdempotencyStore::release`].
    type FinishFuture: Future<Output = Result<(), StoreError>> + Send + Unpin + 'static;
    /// The future of [`IdempotencyStore::renew_claim`].
    type RenewFuture: Future<Output = Result<bool, StoreError>> + Send + Unpin + 'static;

    /// Atomically claims `key` for `lease`, unless it is done or held.
    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture;

    /// Extends the claim to `lease_for` from now, if the lease still holds
    /// its key. `Ok(false)` when it does not: another claim took the key
    /// since, or the claim was completed or released. A claim whose lease
    /// ran out but whose key nobody took since may still be renewed, as it
    /// may still be completed: the store decides, as for `complete` (the
    /// memory and SQLite stores renew it, on Redis the key has expired).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer; the layer tries again at
    /// the next third of the lease.
    fn renew_claim(&self, lease: &Self::Lease, lease_for: Duration) -> Self::RenewFuture;

    /// Marks the claimed key done for `ttl`, if the lease still holds it.
    fn complete(&self, lease: Self::Lease, ttl: Duration) -> Self::FinishFuture;

    /// Forgets the claimed key, if the lease still holds it.
    fn release(&self, lease: Self::Lease) -> Self::FinishFuture;

    /// Releases a claim whose request was abandoned: its response future was
    /// dropped (the client went away) or a panic unwound through it. Nobody
    /// can wait for this, so a store must start the release now (run it, or
    /// spawn it); if it cannot, the lease running out frees the key.
    ///
    /// The ordering promise: a call of
    /// [`abandoned_released`](Self::abandoned_released) made after this one
    /// returns (on this handle or a clone) resolves only once this release
    /// has reached the store, or has failed.
    fn release_abandoned(&self, lease: Self::Lease);

    /// Resolves once every [`release_abandoned`](Self::release_abandoned)
    /// started before this call has reached the store (or failed): what a
    /// server awaits before it exits, so that the claims of the requests its
    /// shutdown cut off are free for the senders' retries.
    ///
    /// The default resolves at once, which is right for a store whose
    /// `release_abandoned` applies the release before it returns (the
    /// memory store); a store that queues or spawns it overrides this.
    fn abandoned_released(&self) -> impl Future<Output = ()> + Send + 'static {
        std::future::ready(())
    }
}
