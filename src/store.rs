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
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

pub mod admin;
mod claims;
mod delivery;
mod job_key;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod queue;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use admin::{QueueAdmin, QueueInspect};
pub use claims::{Claim, IdempotencyStore};
pub use job_key::{JobKey, JobKeyError};
pub use memory::{MemoryQueue, MemoryStore};
pub use queue::JobQueue;

#[cfg(feature = "postgres")]
pub use self::postgres::{DeliveryTransaction, PostgresStore, PostgresStoreBuilder};
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
///
/// What a backend reads back, and what the operator's calls take, is the
/// owned, parsed form of the same text: a [`JobKey`].
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

/// What kind of failure a [`StoreError`] is, so a caller can tell a store
/// that is away from one whose data it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached or refused the call (connection lost,
    /// file unopenable, writer thread stopped); a later call may succeed.
    Unavailable,
    /// The store is at its bound and can hold no new key (the memory
    /// store with every key of a shard in flight).
    Full,
    /// The store did not answer in time.
    TimedOut,
    /// The store answered with data this crate did not write or cannot
    /// read (a foreign or damaged record, an unexpected reply).
    Corrupt,
    /// Completing undid the handler's own writes: they were made in a
    /// transaction the backend lent it, and that transaction rolled back
    /// with the done mark. The event was not processed and must run again.
    RolledBack,
}

/// The store could not answer; the layer fails closed (503, inner service
/// not called) unless the store decides otherwise. It carries its
/// [`kind`](StoreError::kind) and, when a library reported the failure,
/// that error as its [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: Box<str>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// A failure of `kind`, described in one sentence.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into().into_boxed_str(),
            source: None,
        }
    }

    /// [`StoreErrorKind::Unavailable`], described in one sentence.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Unavailable, message)
    }

    /// [`StoreErrorKind::Full`], described in one sentence.
    pub fn full(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Full, message)
    }

    /// [`StoreErrorKind::TimedOut`], described in one sentence.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::TimedOut, message)
    }

    /// [`StoreErrorKind::Corrupt`], described in one sentence.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Corrupt, message)
    }

    /// [`StoreErrorKind::RolledBack`], described in one sentence.
    pub fn rolled_back(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::RolledBack, message)
    }

    /// The same failure, caused by `source` (what
    /// [`source`](std::error::Error::source) answers).
    #[must_use]
    pub fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            source: Some(Box::new(source)),
            ..self
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "idempotency store unavailable: {}", self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
