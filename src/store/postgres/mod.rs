//! [`PostgresStore`]: claims, done marks and the job queue in Postgres,
//! shared by every replica, with **exactly-once effects**: a handler's own
//! writes commit in one transaction with the event's done mark (feature
//! `postgres`).
//!
//! One store serves both modes, on the same keys: inline claims and done
//! marks ([`IdempotencyStore`]), and queued jobs ([`JobQueue`],
//! [`QueueAdmin`]) with the states and lease checks of
//! [`MemoryQueue`](crate::queue::MemoryQueue). It runs on the pool you
//! hand it (your service's own [`PgPool`]), in a schema of its own
//! (`tower_webhook` unless [`PostgresStoreBuilder::schema`] says
//! otherwise), created and upgraded by embedded, versioned migrations
//! that several replicas may run at the same moment (each runs under a
//! transaction-scoped advisory lock; the second finds the work done).
//!
//! # Exactly-once effects
//!
//! A handler, inline or queued, may take the delivery's transaction with
//! the [`DeliveryTransaction`] extractor and write its effect in it:
//!
//! * it answers 2xx: the store writes the done mark **in that
//!   transaction** and commits it; the effect and the mark are one
//!   commit, and every later copy of the event is a duplicate;
//! * it answers anything else, returns an error, panics, or its process
//!   dies: the transaction rolls back (Postgres rolls back a transaction
//!   whose connection closed), the mark is not written, and the event runs
//!   again (the sender's retry inline; the worker's retry queued);
//! * the commit itself fails (the handler's statement failed and aborted
//!   the transaction, the connection was lost, the claim was lost to
//!   another replica): nothing of it is recorded, so the layer answers
//!   503 with `Retry-After` instead of the handler's 2xx (inline), or the
//!   worker schedules a retry (queued). A commit whose answer was lost
//!   may have landed; the retry then finds the event done.
//!
//! A handler that does not take the transaction keeps the semantics of
//! every other backend: at-least-once to the handler, exactly-once
//! acceptance.
//!
//! **Isolation**: the transaction is Postgres's default, `READ COMMITTED`.
//! A handler that needs more runs `SET TRANSACTION ISOLATION LEVEL …` as
//! its first statement; under `SERIALIZABLE` a serialization failure at
//! the done mark or the commit is a rollback like any other, and the event
//! runs again.
//!
//! **Locking**: while the handler runs, the transaction holds only the
//! locks of the handler's own statements; the store takes none in it
//! until the handler has answered. Then it updates the event's one key row
//! (checking the lease's generation) and commits at once. The claim itself
//! and every renewal of its lease are separate, autocommitted statements
//! on other connections of the pool, and each locks that one key row for
//! one statement only. So:
//!
//! * a lease renewal never waits for the handler (the row is not locked
//!   while it runs) and the done mark waits at most for one renewal
//!   statement: no cycle;
//! * a second replica never waits for the handler either: while the lease
//!   is renewed its claim answers in-flight (409), or its take skips the
//!   job; if the lease ran out and it took the key over, it wrote a new
//!   generation, so the first handler's done mark matches no row and its
//!   transaction rolls back: one of the two commits, never both. Each
//!   transaction locks one key row, last, just before its commit, so two
//!   of them cannot wait on each other through the store's rows. (Two
//!   handlers whose own writes lock rows in opposite orders can deadlock,
//!   as any two transactions can; Postgres then aborts one, which is a
//!   rollback, and its event runs again.)
//! * each handler holding a transaction holds one pooled connection until
//!   it answers; claims, renewals and the worker need others, so size the
//!   pool above the number of handlers running at once (the worker's
//!   concurrency plus inline requests). An exhausted pool makes claims
//!   wait up to the pool's acquire timeout, then 503: it does not
//!   deadlock, since no handler waits for a renewal.
//!
//! # Clock, durability, wake-up, expiry
//!
//! Every lease end, due time and expiry is Postgres's `now()`, so replicas
//! whose clocks disagree agree on every lease. Acknowledgements (a 202, a
//! done mark) are sent after their commit returned, so they are as durable
//! as the server's `synchronous_commit` makes a commit (`on`, the default:
//! flushed to its WAL). Accepts are written in batches, one statement and
//! one commit per batch, so under load many deliveries share one flush.
//! Every accept and replay sends a `NOTIFY` on the schema's channel; an
//! idle worker `LISTEN`s on one connection of its own, and polls as well
//! (the worker's idle poll) for what no notification announces. A
//! background task deletes rows that ran out (done keys past their TTL,
//! dead letters past their retention, abandoned inline claims), a batch
//! at a time, every [`sweep_interval`](PostgresStoreBuilder::sweep_interval);
//! until then such a row counts as absent.
//!
//! # Example
//!
//! (The README's example, kept identical to it.)
//!
//! ```no_run
//! use axum::{Router, http::StatusCode, routing::post};
//! use tower_webhook::numero::{Numero, NumeroEvent};
//! use tower_webhook::{DeliveryTransaction, PostgresStore, VerifiedEvent, WebhookLayer};
//!
//! async fn on_payout(
//!     VerifiedEvent(event): VerifiedEvent<NumeroEvent>,
//!     mut tx: DeliveryTransaction,
//! ) -> StatusCode {
//!     // Commits together with the event's done mark, only if this answers 2xx.
//!     let credited = sqlx::query("UPDATE accounts SET paid_out = true WHERE payout = $1")
//!         .bind(event.id.as_str())
//!         .execute(&mut *tx)
//!         .await;
//!     match credited {
//!         Ok(_) => StatusCode::OK,
//!         Err(_) => StatusCode::INTERNAL_SERVER_ERROR, // rolled back; the sender retries
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Your service's own pool; the store keeps its tables in its own schema.
//! let pool = sqlx::PgPool::connect("postgres://app@127.0.0.1/app").await?;
//! let store = PostgresStore::builder(pool).schema("webhooks").open().await?;
//! let layer = WebhookLayer::builder(Numero)
//!     .secret("whsec_abcdefghijklmnopqrstuvwxyz123456789")
//!     .store(store)
//!     .build()?;
//! let app: Router = Router::new().route("/webhooks/numero", post(on_payout).route_layer(layer));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use sqlx::{PgPool, Row};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::{Claim, IdempotencyKey, IdempotencyStore, JobKey, StoreError};
use crate::store::queue::{
    Accept, DeadLetter, Delivery, JobOutcome, JobQueue, QueueAdmin, QueueCounts, QueueFuture,
    TakeRequest, Taken,
};

mod inspect;
mod intake;
mod migrations;
mod ops;
mod sql;
mod transaction;
mod wake;

#[cfg(feature = "axum")]
pub use transaction::TakeTransactionRejection;
pub use transaction::{DeliveryTransaction, PostgresLease, TakeTransactionError};

use sql::{Sql, millis};
use transaction::Lent;

/// The schema the store uses unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "tower_webhook";

/// Default time between two sweeps of rows that ran out: 10 seconds.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// A future answering a [`PostgresStore`] call.
pub type PostgresFuture<T> = QueueFuture<T>;

/// Configures a [`PostgresStore`]; [`PostgresStoreBuilder::open`] migrates
/// the schema and starts it.
#[derive(Debug, Clone)]
pub struct PostgresStoreBuilder {
    pool: PgPool,
    schema: String,
    sweep_interval: Duration,
}

impl PostgresStoreBuilder {
    /// The schema to keep the store's tables in (created if missing): a
    /// plain lower-case identifier. Default [`DEFAULT_SCHEMA`].
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// How often rows that ran out are deleted. Default
    /// [`DEFAULT_SWEEP_INTERVAL`].
    #[must_use]
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Brings the schema up to date (safe while other replicas do the
    /// same) and starts the store's tasks on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the schema name is not a plain identifier,
    /// Postgres cannot be reached, refuses the migration, or holds a newer
    /// schema than this build knows.
    pub async fn open(self) -> Result<PostgresStore, StoreError> {
        let sql = Arc::new(Sql::new(&self.schema)?);
        migrations::migrate(&self.pool, &sql).await?;
        let (accepts, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..intake::WRITERS {
            tokio::spawn(intake::write_batches(
                self.pool.clone(),
                Arc::clone(&sql),
                Arc::clone(&queue),
            ));
        }
        tokio::spawn(ops::sweep(
            self.pool.clone(),
            Arc::downgrade(&sql),
            self.sweep_interval,
        ));
        Ok(PostgresStore {
            shared: Arc::new(Shared {
                pool: self.pool,
                sql,
                accepts,
                wake: Arc::new(Notify::new()),
                listening: OnceLock::new(),
                releases: Arc::new(tokio::sync::RwLock::new(())),
            }),
        })
    }
}

/// Claims, done marks and the job queue in Postgres, shared by every
/// replica on the same database and schema; clones share one set of
/// tasks. See the [module docs](self) for exactly-once effects, locking
/// and an example.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: PgPool,
    sql: Arc<Sql>,
    accepts: mpsc::UnboundedSender<intake::Pending>,
    wake: wake::Wake,
    /// Set once the `LISTEN` task is started (by the first wait).
    listening: OnceLock<()>,
    /// Each spawned abandoned release holds a read guard until it is done;
    /// `abandoned_released` takes the write lock, so it waits for them.
    releases: Arc<tokio::sync::RwLock<()>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.sql.schema_name())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Starts a builder on `pool` with the defaults: schema
    /// [`DEFAULT_SCHEMA`], [`DEFAULT_SWEEP_INTERVAL`].
    pub fn builder(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            pool,
            schema: DEFAULT_SCHEMA.to_owned(),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }

    /// Opens the store on `pool` with the defaults; see
    /// [`PostgresStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`PostgresStoreBuilder::open`].
    pub async fn open(pool: PgPool) -> Result<Self, StoreError> {
        Self::builder(pool).open().await
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        self.shared.sql.schema_name()
    }

    fn lend(&self, lease: &PostgresLease, extensions: &mut http::Extensions) {
        extensions.insert(Lent {
            lease: lease.clone(),
            pool: self.shared.pool.clone(),
        });
    }
}

impl IdempotencyStore for PostgresStore {
    type Lease = PostgresLease;
    type ClaimFuture = PostgresFuture<Claim<PostgresLease>>;
    type FinishFuture = PostgresFuture<()>;
    type RenewFuture = PostgresFuture<bool>;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> Self::ClaimFuture {
        let shared = Arc::clone(&self.shared);
        let key = key.as_str().to_owned();
        Box::pin(async move {
            let pool = &shared.pool;
            let claimed = sqlx::query(&shared.sql.claim)
                .bind(&key)
                .bind(millis(lease))
                .fetch_optional(pool)
                .await
                .map_err(|e| ops::failed("claim a key", e))?;
            if let Some(row) = claimed {
                let generation: i64 = row.try_get(0).map_err(|e| ops::failed("claim", e))?;
                return Ok(Claim::New(PostgresLease::new(key, generation)));
            }
            let state: Option<String> = sqlx::query_scalar(&shared.sql.state_of)
                .bind(&key)
                .fetch_optional(pool)
                .await
                .map_err(|e| ops::failed("read a key", e))?;
            Ok(match state.as_deref() {
                Some("done" | "dead") => Claim::Done,
                _ => Claim::InFlight,
            })
        })
    }

    fn renew_claim(&self, lease: &PostgresLease, lease_for: Duration) -> Self::RenewFuture {
        let (shared, lease) = (Arc::clone(&self.shared), lease.clone());
        Box::pin(async move {
            let update = &shared.sql.renew_claim;
            let ms = millis(lease_for);
            ops::on_lease(&shared.pool, update, &lease, ms, None, "renew a claim").await
        })
    }

    fn complete(&self, lease: PostgresLease, ttl: Duration) -> Self::FinishFuture {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let sql = &shared.sql;
            ops::mark_done(&shared.pool, &sql.complete, Some(&sql.release), &lease, ttl)
                .await
                .map(|_| ())
        })
    }

    fn release(&self, lease: PostgresLease) -> Self::FinishFuture {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            ops::roll_back(&lease).await;
            let release = &shared.sql.release;
            ops::on_lease(&shared.pool, release, &lease, 0, None, "release a claim")
                .await
                .map(|_| ())
        })
    }

    fn release_abandoned(&self, lease: PostgresLease) {
        if tokio::runtime::Handle::try_current().is_ok() {
            // The handler's transaction, if any, rolls back as it drops.
            let release = self.release(lease);
            let held = Arc::clone(&self.shared.releases).try_read_owned().ok();
            tokio::spawn(async move {
                let _ = release.await;
                drop(held);
            });
        }
    }

    fn abandoned_released(&self) -> impl Future<Output = ()> + Send + 'static {
        let releases = Arc::clone(&self.shared.releases);
        async move {
            drop(releases.write().await);
        }
    }

    fn lend_to_handler(&self, lease: &PostgresLease, extensions: &mut http::Extensions) {
        self.lend(lease, extensions);
    }
}

impl JobQueue for PostgresStore {
    type JobLease = PostgresLease;

    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept> {
        let (reply, answer) = oneshot::channel();
        let sent = self.shared.accepts.send(intake::Pending::new(
            key.as_str().to_owned(),
            &delivery,
            reply,
        ));
        Box::pin(async move {
            if sent.is_err() {
                return Err(StoreError::unavailable(
                    "the Postgres store's writers stopped",
                ));
            }
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::unavailable(
                    "the Postgres store's writers stopped",
                ))
            })
        })
    }

    fn take(&self, request: TakeRequest) -> QueueFuture<Taken<PostgresLease>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { ops::take(&shared.pool, &shared.sql, &request).await })
    }

    fn renew(&self, lease: &PostgresLease, lease_for: Duration) -> QueueFuture<bool> {
        let (shared, lease) = (Arc::clone(&self.shared), lease.clone());
        Box::pin(async move {
            let ms = millis(lease_for);
            ops::on_lease(
                &shared.pool,
                &shared.sql.renew,
                &lease,
                ms,
                None,
                "renew a lease",
            )
            .await
        })
    }

    fn finish(&self, lease: PostgresLease, outcome: JobOutcome) -> QueueFuture<bool> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let (pool, sql) = (&shared.pool, &shared.sql);
            match outcome {
                JobOutcome::Done { ttl } => {
                    ops::mark_done(pool, &sql.complete, None, &lease, ttl).await
                }
                JobOutcome::Retry { due, error } => {
                    ops::roll_back(&lease).await;
                    let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
                    let ms = millis(wait);
                    ops::on_lease(pool, &sql.retry, &lease, ms, Some(&error), "retry a job").await
                }
                JobOutcome::Dead { error, retain } => {
                    ops::roll_back(&lease).await;
                    let ms = millis(retain);
                    ops::on_lease(pool, &sql.dead, &lease, ms, Some(&error), "bury a job").await
                }
            }
        })
    }

    fn wait_for_work(&self, max_wait: Duration) -> QueueFuture<()> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let notified = shared.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            shared.listening.get_or_init(|| {
                tokio::spawn(wake::listen(
                    shared.pool.clone(),
                    shared.sql.channel.clone(),
                    Arc::downgrade(&shared.wake),
                ));
            });
            let _ = tokio::time::timeout(max_wait, notified).await;
            Ok(())
        })
    }

    fn lend_job_to_handler(&self, lease: &PostgresLease, extensions: &mut http::Extensions) {
        self.lend(lease, extensions);
    }
}

impl QueueAdmin for PostgresStore {
    fn counts(&self) -> QueueFuture<QueueCounts> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let by_scheme = ops::counts_by_scheme(&shared.pool, &shared.sql).await?;
            Ok(by_scheme
                .into_iter()
                .fold(QueueCounts::default(), |sum, (_, c)| QueueCounts {
                    pending: sum.pending + c.pending,
                    running: sum.running + c.running,
                    dead: sum.dead + c.dead,
                }))
        })
    }

    fn counts_by_scheme(&self) -> QueueFuture<Vec<(String, QueueCounts)>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { ops::counts_by_scheme(&shared.pool, &shared.sql).await })
    }

    fn dead_letters(&self, limit: usize) -> QueueFuture<Vec<DeadLetter>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { ops::dead_letters(&shared.pool, &shared.sql, limit).await })
    }

    fn replay(&self, key: &JobKey) -> QueueFuture<bool> {
        let (shared, key) = (Arc::clone(&self.shared), key.clone());
        Box::pin(async move {
            let replayed = sqlx::query(&shared.sql.replay)
                .bind(key.as_str())
                .bind(&shared.sql.channel)
                .fetch_optional(&shared.pool)
                .await
                .map_err(|e| ops::failed("replay a dead letter", e))?;
            Ok(replayed.is_some())
        })
    }
}
