//! The delivery's transaction: lent to the handler through the request's
//! extensions ([`DeliveryTransaction`]), given back when the handler drops
//! it, and committed by the store together with the done mark.
//!
//! A claim (or a job's lease) owns one [`Handoff`]. The handler may take
//! the transaction once; it begins on first take, so a handler that never
//! takes it costs no connection. [`PostgresStore`](super::PostgresStore)'s
//! `complete` (inline) or `finish` (queued) then finds it in one of three
//! states: never taken (the done mark is its own statement, as on any
//! backend), given back (the done mark is written in it and it commits:
//! both or neither), or still out (the handler kept it past its answer:
//! what it wrote cannot be committed with the done mark, so both are
//! rolled back and the event runs again).

use std::fmt;
use std::mem;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::store::StoreError;

/// Proof of an inline claim, or of a worker's lease on a job, in a
/// [`PostgresStore`](super::PostgresStore): the key, the generation the
/// claim or the take wrote, and the delivery's transaction if the handler
/// took one. Cloning shares it.
#[derive(Clone)]
pub struct PostgresLease {
    pub(super) handoff: Arc<Handoff>,
}

impl fmt::Debug for PostgresLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLease")
            .field("key", &self.handoff.key)
            .field("generation", &self.handoff.generation)
            .finish_non_exhaustive()
    }
}

impl PostgresLease {
    pub(super) fn new(key: String, generation: i64) -> Self {
        Self {
            handoff: Arc::new(Handoff {
                key,
                generation,
                slot: Mutex::new(Slot::Untaken),
            }),
        }
    }

    pub(super) fn key(&self) -> &str {
        &self.handoff.key
    }

    pub(super) fn generation(&self) -> i64 {
        self.handoff.generation
    }

    /// Takes the transaction out for the done mark: the store's side.
    pub(super) fn settle(&self) -> Settle {
        match self.handoff.replace(Slot::Settled) {
            // Settled before: a later call on the same lease (a second
            // finish) writes on its own, and its lease check decides.
            Slot::Untaken | Slot::Settled => Settle::Untaken,
            Slot::Returned(tx) => Settle::Commit(tx),
            Slot::Lent => Settle::Unusable,
        }
    }
}

/// What a lease's claim shares with the handler's [`DeliveryTransaction`].
pub(super) struct Handoff {
    key: String,
    generation: i64,
    slot: Mutex<Slot>,
}

impl Handoff {
    fn replace(&self, slot: Slot) -> Slot {
        mem::replace(
            &mut self.slot.lock().unwrap_or_else(PoisonError::into_inner),
            slot,
        )
    }
}

/// Where the delivery's transaction is.
enum Slot {
    /// The handler has not taken it (it does not exist yet).
    Untaken,
    /// The handler holds it.
    Lent,
    /// The handler gave it back (dropped its [`DeliveryTransaction`]).
    Returned(Transaction<'static, Postgres>),
    /// The store took it to commit or roll back; no later take.
    Settled,
}

/// What the store found when it came to write the done mark.
pub(super) enum Settle {
    /// The handler never took the transaction (or it was settled by an
    /// earlier call).
    Untaken,
    /// The handler wrote in it and gave it back: commit it with the mark.
    Commit(Transaction<'static, Postgres>),
    /// The handler still holds it: nothing it wrote can be committed.
    Unusable,
}

/// What the store puts in the request's extensions for the handler: the
/// lease's handoff and the pool to begin the transaction on.
#[derive(Clone)]
pub(super) struct Lent {
    pub(super) lease: PostgresLease,
    pub(super) pool: PgPool,
}

/// The delivery's transaction, lent to the handler: its writes commit with
/// the event's done mark, in one Postgres transaction, only if the handler
/// answers 2xx; any other answer, an error, a panic or a dead process rolls
/// both back, and the event is delivered again.
///
/// It derefs to a [`PgConnection`], so queries run on it as on any
/// executor: `sqlx::query("…").execute(&mut *tx).await`. Dropping it gives
/// it back to the store; it must be dropped before the handler answers
/// (an axum handler's arguments are), or its writes are rolled back.
///
/// Take it with the axum extractor (features `axum` and `postgres`) or
/// [`DeliveryTransaction::take`]. See the
/// [module docs](super#exactly-once-effects) for what it locks and its
/// isolation level.
pub struct DeliveryTransaction {
    tx: Option<Transaction<'static, Postgres>>,
    handoff: Arc<Handoff>,
}

impl fmt::Debug for DeliveryTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryTransaction")
            .field("key", &self.handoff.key)
            .finish_non_exhaustive()
    }
}

/// Why [`DeliveryTransaction::take`] gave no transaction.
#[derive(Debug)]
pub enum TakeTransactionError {
    /// The request did not come through a layer on a
    /// [`PostgresStore`](super::PostgresStore) (or a layer on Postgres did
    /// not claim it): there is no delivery whose done mark it could carry.
    NotLent,
    /// The handler took it already.
    AlreadyTaken,
    /// Postgres could not begin the transaction.
    Begin(StoreError),
}

impl fmt::Display for TakeTransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLent => f.write_str(
                "no delivery transaction: the request did not come through a webhook layer \
                 on a Postgres store",
            ),
            Self::AlreadyTaken => f.write_str("the delivery's transaction was taken already"),
            Self::Begin(error) => write!(f, "the delivery's transaction could not begin: {error}"),
        }
    }
}

impl std::error::Error for TakeTransactionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Begin(error) => Some(error),
            Self::NotLent | Self::AlreadyTaken => None,
        }
    }
}

impl DeliveryTransaction {
    /// Takes the delivery's transaction lent in `extensions` (a request's
    /// that a webhook layer on a [`PostgresStore`](super::PostgresStore)
    /// handed on, inline or queued), beginning it on Postgres.
    ///
    /// # Errors
    ///
    /// [`TakeTransactionError`]: nothing was lent, it was taken already, or
    /// Postgres could not begin it.
    pub async fn take(extensions: &http::Extensions) -> Result<Self, TakeTransactionError> {
        let lent = extensions
            .get::<Lent>()
            .ok_or(TakeTransactionError::NotLent)?;
        let handoff = Arc::clone(&lent.lease.handoff);
        match handoff.replace(Slot::Lent) {
            Slot::Untaken => {}
            other => {
                handoff.replace(other);
                return Err(TakeTransactionError::AlreadyTaken);
            }
        }
        match lent.pool.begin().await {
            Ok(tx) => Ok(Self {
                tx: Some(tx),
                handoff,
            }),
            Err(error) => {
                handoff.replace(Slot::Untaken);
                Err(TakeTransactionError::Begin(
                    StoreError::unavailable(format!(
                        "Postgres could not begin the delivery's transaction: {error}"
                    ))
                    .with_source(error),
                ))
            }
        }
    }
}

impl AsMut<PgConnection> for DeliveryTransaction {
    /// The connection the transaction runs on, as an executor.
    fn as_mut(&mut self) -> &mut PgConnection {
        self
    }
}

impl Deref for DeliveryTransaction {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.tx.as_ref().expect("present until dropped")
    }
}

impl DerefMut for DeliveryTransaction {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.tx.as_mut().expect("present until dropped")
    }
}

impl Drop for DeliveryTransaction {
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        let mut slot = self
            .handoff
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Settled already (the handler kept it past its answer): dropping
        // it here rolls it back.
        if matches!(*slot, Slot::Lent) {
            *slot = Slot::Returned(tx);
        }
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for DeliveryTransaction {
    type Rejection = TakeTransactionRejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Self::take(&parts.extensions)
            .await
            .map_err(TakeTransactionRejection)
    }
}

/// The axum rejection of [`DeliveryTransaction`]: 503 with `Retry-After`
/// when Postgres could not begin it (the sender retries), 500 when none was
/// lent or it was taken twice (a mistake in the service).
#[cfg(feature = "axum")]
#[derive(Debug)]
pub struct TakeTransactionRejection(pub TakeTransactionError);

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for TakeTransactionRejection {
    fn into_response(self) -> axum_core::response::Response {
        let status = match self.0 {
            TakeTransactionError::Begin(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            TakeTransactionError::NotLent | TakeTransactionError::AlreadyTaken => {
                http::StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut response = (status, self.0.to_string()).into_response();
        if status == http::StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
