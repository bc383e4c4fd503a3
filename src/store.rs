//! The idempotency store: where the layer records which events are being
//! processed and which are done.
//!
//! A store answers four calls, each atomic on its own:
//!
//! * [`IdempotencyStore::claim`]: take the key for a lease if nobody holds it
//!   and it is not done ([`Claim::New`]), or say why not ([`Claim::Done`],
//!   [`Claim::InFlight`]);
//! * [`IdempotencyStore::renew_claim`]: the inner service is still running,
//!   so extend the lease, only if this claim still holds the key;
//! * [`IdempotencyStore::complete`]: the inner service answered 2xx, so mark
//!   the key done for a TTL, only if this claim still holds it;
//! * [`IdempotencyStore::release`]: the inner service failed, so forget the
//!   key, only if this claim still holds it, so the sender's retry runs.
//!
//! "Only if this claim still holds it" is what the [`IdempotencyStore::Lease`]
//! carries: a claim whose lease expired must never overwrite or delete a
//! newer claim of the same key.

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;
use std::time::Duration;

mod delivery;
pub mod memory;
pub mod queue;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use memory::{MemoryQueue, MemoryStore};

#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use self::sqlite::{SqliteStore, SqliteStoreBuilder, Synchronous};

/// A store key: the scheme's name, the tenant if the layer has
/// [per-tenant secrets](crate::tenant), and the event's id.
///
/// Its text is `<scheme>:<event id>`, or `<scheme>/<tenant>:<event id>`
/// with a tenant, so equal ids from two providers, or from two tenants,
/// never collide: scheme names hold no `/` and no `:` (`a-z`, `0-9`, `-`,
/// `_`) and tenant ids hold neither either, so the first `:` ends the
/// namespace, and the namespace holds a `/` exactly when there is a tenant,
/// which the `/` then ends. The event id, whatever it holds, is all that
/// follows. Keys without a tenant keep the text they always had. Building a
/// key copies nothing (the id is shared, usually a view
/// into the body); the text is only put together, once, when a store asks
/// for it ([`IdempotencyKey::as_str`]; Redis and SQLite do, the memory store
/// keys on a digest of the parts instead).
#[derive(Clone)]
pub struct IdempotencyKey {
    scheme: &'static str,
    tenant: Option<crate::Tenant>,
    id: crate::EventId,
    text: OnceLock<Box<str>>,
}

impl IdempotencyKey {
    /// The key of event `id` of `scheme` (the id is shared, not copied).
    pub fn new(scheme: &'static str, id: &crate::EventId) -> Self {
        Self {
            scheme,
            tenant: None,
            id: id.clone(),
            text: OnceLock::new(),
        }
    }

    /// The same key within `tenant`'s namespace.
    #[must_use]
    pub fn with_tenant(self, tenant: crate::Tenant) -> Self {
        Self {
            tenant: Some(tenant),
            text: OnceLock::new(),
            ..self
        }
    }

    /// The tenant whose event this is, with per-tenant secrets.
    pub fn tenant(&self) -> Option<&crate::Tenant> {
        self.tenant.as_ref()
    }

    /// The scheme's name: the key's namespace.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The event's id within the scheme.
    pub fn id(&self) -> &crate::EventId {
        &self.id
    }

    /// The key as text, `<scheme>:<event id>` or
    /// `<scheme>/<tenant>:<event id>`; built on the first call (one
    /// allocation), kept for later ones.
    pub fn as_str(&self) -> &str {
        self.text.get_or_init(|| {
            let id = self.id.as_str();
            let tenant = self.tenant.as_ref().map_or("", crate::Tenant::as_str);
            let mut key = String::with_capacity(self.scheme.len() + 2 + tenant.len() + id.len());
            key.push_str(self.scheme);
            if self.tenant.is_some() {
                key.push('/');
                key.push_str(tenant);
            }
            key.push(':');
            key.push_str(id);
            key.into_boxed_str()
        })
    }
}

impl PartialEq for IdempotencyKey {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme && self.tenant == other.tenant && self.id == other.id
    }
}

impl Eq for IdempotencyKey {}

impl Hash for IdempotencyKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.scheme, &self.tenant, self.id.as_str()).hash(state);
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(tenant) => write!(f, "{}/{tenant}:{}", self.scheme, self.id),
            None => write!(f, "{}:{}", self.scheme, self.id),
        }
    }
}

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

/// The store could not answer; the layer fails closed (503, inner service
/// not called) unless the store decides otherwise.
#[derive(Debug)]
pub struct StoreError {
    message: Box<str>,
}

impl StoreError {
    /// A store failure described in one sentence.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into().into_boxed_str(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "idempotency store unavailable: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

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
    fn release_abandoned(&self, lease: Self::Lease);
}
