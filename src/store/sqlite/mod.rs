//! [`SqliteStore`]: a durable idempotency store and job queue in one SQLite
//! file, for one machine (feature `sqlite`).
//!
//! One store serves both modes, on the same keys: inline claims and done
//! marks ([`IdempotencyStore`]), and queued jobs ([`JobQueue`]) with the
//! states and lease checks of [`MemoryQueue`](crate::queue::MemoryQueue).
//! Claims, done marks, jobs and dead letters survive a restart and a
//! `kill -9`: a job that was running when its process died is taken again
//! once its lease runs out.
//!
//! # How it writes
//!
//! The connection belongs to one dedicated thread, never to the async
//! runtime's workers. Each call is a command sent to that thread; the
//! caller awaits the answer. The thread takes every command waiting in its
//! channel, runs them in **one** transaction (each under its own savepoint,
//! so one failing command rolls back alone), commits once, then answers
//! each: under load, many requests share one commit and one `fsync`
//! (group commit). Nothing is answered before its commit: a `202 accepted`
//! or a done mark is on disk when the caller hears of it. If the commit
//! fails, every command of the group gets the error.
//!
//! The file is in WAL mode. A second thread, on its own connection, copies
//! the WAL back into the database file (a checkpoint) at most four times a
//! second, so a commit never waits for one; it keeps the WAL file to about
//! 64 MiB under sustained writes. Several processes (or stores) may open
//! one file: writes take SQLite's write lock in turn (waiting up to 5 s for
//! it). Each `take` is one transaction, so order keys and the per-scheme
//! cap on running jobs hold across the processes on one file too; a
//! process sees another's new work at its idle poll (there is no
//! cross-process wake-up).
//!
//! A `take` commits without waiting for the `fsync` (the next durable
//! commit carries it): the attempt it counts is in the file before the
//! handler runs, which is what a handler that kills its process needs; a
//! power cut can lose that count (the job then runs once more than the
//! limit).
//!
//! # Clock
//!
//! Lease ends, due times and expiries are Unix milliseconds, so they mean
//! the same after a restart; but they are read from a clock that cannot
//! step while the store is open: the wall clock as it read at open,
//! advanced by the monotonic clock since. So a wall-clock step while the
//! store runs (NTP correcting a large drift, `date -s`, a VM resumed) expires
//! no running lease early (no job runs twice at once), shortens no done TTL
//! and delays no retry. What a step can still do: one made while no process
//! had the file open moves every stored time by the step once the next
//! process opens it (forward: running leases of the crashed process run out
//! sooner, done keys are forgotten sooner; backward: both last longer); and
//! two processes sharing one file disagree by any step between their opens,
//! so the later one may see the other's leases run out early by that much.
//! Even then a stolen lease is void: every renew, complete and finish
//! checks the lease's generation, so the first holder's late finish changes
//! nothing, and the job's effect is recorded once.
//!
//! The clock does not count time the machine spends suspended (a lease then
//! lasts longer in wall time, never shorter). Dead-letter and acceptance
//! times are reported in this process's wall clock.
//!
//! # Durability
//!
//! [`Synchronous`] chooses what a commit waits for
//! ([`SqliteStoreBuilder::synchronous`]):
//!
//! | setting | process crash (`kill -9`) | power loss, OS crash | cost of a commit |
//! |---|---|---|---|
//! | [`Synchronous::Full`] (default) | loses nothing acknowledged | loses nothing acknowledged | one `fsync` of the WAL |
//! | [`Synchronous::Normal`] | loses nothing acknowledged | may lose the last transactions: a delivery answered 202, a done mark | no `fsync` (only at checkpoints) |
//!
//! Under `Full`, a group holding only inline claims or their renewals, a
//! worker's lease changes (taking jobs, renewing a lease) and reads commits
//! without waiting for its `fsync`; the next durable commit flushes it along. A power cut
//! can lose such a change, and that only frees its key or makes its job due
//! again, which at-least-once already allows (a job's attempt count may
//! then be one short). It spares an inline request one of its two flushes,
//! and a queued job the flush between its 202 and its handler.
//!
//! # Expiry
//!
//! A done key is kept for its TTL, a dead letter for its retention, an
//! inline claim for its lease; none is forgotten earlier (no eviction).
//! Once one has run out, its key is free: a claim or an accept treats the
//! row as absent at once, and a background sweep on the writer thread
//! deletes such rows, at most 1000 per pass through an index on their
//! expiry, when the thread is idle and at least once per
//! [`sweep_interval`](SqliteStoreBuilder::sweep_interval) under load.
//!
//! # Size cap and failures
//!
//! [`SqliteStoreBuilder::max_size_bytes`] bounds the database file (the WAL
//! beside it adds up to about 64 MiB, see above). At the cap, or on a
//! full disk, writes fail with `SQLITE_FULL` and the call is a
//! [`StoreError`]: the layer answers 503 with `Retry-After` and does not run
//! the handler, so nothing is acknowledged that is not on disk. Space comes
//! back as keys expire and are swept. Any other I/O error is a
//! [`StoreError`] the same way.
//!
//! A store whose file is deleted or replaced while it runs (the database,
//! its `-wal` or its `-shm`: unlinked, or another file moved over the path)
//! fails closed. SQLite would go on committing into the open, unlinked
//! file, which no restart opens again; so after each commit, before
//! answering, the writer compares each path's device and inode with those
//! it opened (three `stat`s per group commit, not per call). From the first
//! mismatch on, every call is a [`StoreError`] (503), until the process
//! restarts and opens the path afresh.
//!
//! Opening checks the file at once: a missing directory, a read-only file,
//! or a file that is not a SQLite database is an error naming the path,
//! before any request arrives.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use axum::{Router, http::StatusCode, routing::post};
//! use tower_webhook::numberotp::{NumberOtp, NumberOtpEvent};
//! use tower_webhook::numero::{Numero, NumeroEvent};
//! use tower_webhook::queue::Worker;
//! use tower_webhook::store::{SqliteStore, Synchronous};
//! use tower_webhook::{VerifiedEvent, WebhookLayer};
//!
//! async fn on_numero(VerifiedEvent(event): VerifiedEvent<NumeroEvent>) -> StatusCode {
//!     println!("numero {}", event.id); // inline: inside the request
//!     StatusCode::OK
//! }
//!
//! async fn on_numberotp(VerifiedEvent(event): VerifiedEvent<NumberOtpEvent>) -> StatusCode {
//!     println!("numberotp {}", event.id); // queued: after the sender got its 202
//!     StatusCode::OK
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::builder()
//!     .synchronous(Synchronous::Full)
//!     .max_size_bytes(1 << 30)
//!     .open("/var/lib/receiver/webhooks.db")?;
//!
//! // Inline: claims and done marks survive restarts.
//! let inline = WebhookLayer::builder(Numero)
//!     .secret("whsec_abcdefghijklmnopqrstuvwxyz123456789")
//!     .store(store.clone())
//!     .build()?;
//!
//! // Queued: 202 once the delivery is on disk; the worker runs the handler.
//! let worker = Worker::builder(store).start();
//! let queued = WebhookLayer::builder(NumberOtp)
//!     .secret("notp_whk_5f2b9c0e7a")
//!     .queued(&worker)
//!     .build()?;
//! worker.handle(queued.job_handler(post(on_numberotp)));
//!
//! let app: Router = Router::new()
//!     .route("/webhooks/numero", post(on_numero).route_layer(inline))
//!     .route("/webhooks/numberotp", post(on_numberotp).route_layer(queued));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app).await?;
//! worker.shutdown(Duration::from_secs(30)).await;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Claim, IdempotencyKey, IdempotencyStore, JobKey, StoreError};
use crate::store::admin::{DeadLetterDetail, JobState, JobSummary, QueueInspect};
use crate::store::queue::{
    Accept, DeadLetter, Delivery, JobOutcome, JobQueue, QueueAdmin, QueueCounts, QueueFuture,
    TakeRequest, Taken,
};

mod builder;
mod checkpoint;
mod future;
mod identity;
mod open;
mod ops;
mod writer;

pub use builder::SqliteStoreBuilder;
pub use future::{SqliteClaimFuture, SqliteFuture};

use ops::{NewJob, Tx};
use writer::{Call, Command, Flush};

/// Default time between two sweeps of expired keys while the store is
/// busy (an idle store sweeps after this much idleness): 1 second.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What a commit waits for: SQLite's `PRAGMA synchronous`, in WAL mode.
/// See the [module docs](self#durability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is `fsync`ed: a power loss loses nothing acknowledged.
    /// The default.
    #[default]
    Full,
    /// Commits reach the OS but are `fsync`ed only at checkpoints: a
    /// process crash loses nothing, a power loss or OS crash may lose the
    /// last transactions.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// What a [`SqliteStore`] holds under a key, from
/// [`SqliteStore::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// An inline claim: the handler is running inside a request.
    Claimed,
    /// Processed; a copy is a duplicate until the done TTL ends.
    Done,
    /// A queued job waiting to run (due now or after a backoff).
    Pending,
    /// A queued job leased to a worker.
    Running,
    /// A dead letter, kept for replay.
    Dead,
}

impl KeyState {
    fn from_sql(state: &str) -> Option<Self> {
        Some(match state {
            "claimed" => Self::Claimed,
            "done" => Self::Done,
            "pending" => Self::Pending,
            "running" => Self::Running,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A durable idempotency store and job queue in one SQLite file. Clones
/// share its two threads (writer and checkpointer), which stop once every
/// clone is dropped.
///
/// Built with [`SqliteStore::open`] or [`SqliteStore::builder`]; see the
/// [module docs](self) for the design, durability and an example.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    commands: mpsc::Sender<Box<dyn Command>>,
    path: PathBuf,
    settings: SqliteStoreBuilder,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("settings", &self.shared.settings)
            .finish()
    }
}

/// Proof of an inline claim, or of a worker's lease on a job, in a
/// [`SqliteStore`]: the key and the generation the claim or lease wrote.
#[derive(Debug, Clone)]
pub struct SqliteLease {
    key: Arc<str>,
    generation: i64,
}

impl SqliteStore {
    /// Opens the store at `path` with the defaults; see
    /// [`SqliteStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().open(path)
    }

    /// Starts a builder with the defaults: [`Synchronous::Full`], no size
    /// bound, [`DEFAULT_SWEEP_INTERVAL`].
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder::default()
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// What the store holds under `key` now; `None` when nothing, or when
    /// what it held has run out. For tests and diagnostics.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn status(&self, key: &IdempotencyKey) -> Result<Option<KeyState>, StoreError> {
        let key = key.as_str().to_owned();
        self.call_lazy(move |tx| tx.status(&key)).await
    }

    /// How many keys the file holds, those that ran out but are not swept
    /// yet included. For tests and diagnostics.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn key_count(&self) -> Result<u64, StoreError> {
        self.call_lazy(|tx| tx.len()).await
    }

    /// Sends `op` to the writer thread; the future answers after the commit
    /// of its group, once that is on disk.
    fn call<T, F>(&self, op: F) -> SqliteFuture<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.call_or_else(op, Flush::Disk, |_| None)
    }

    /// As [`Self::call`], for a read or a lease change: answered after the
    /// commit without waiting for the disk ([`Flush::Lazy`]).
    fn call_lazy<T, F>(&self, op: F) -> SqliteFuture<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.call_or_else(op, Flush::Lazy, |_| None)
    }

    /// As [`Self::call`], with what the commit waits for and what the
    /// writer does with an answer whose caller went away.
    fn call_or_else<T, F>(
        &self,
        op: F,
        flush: Flush,
        orphaned: fn(T) -> Option<Box<dyn Command>>,
    ) -> SqliteFuture<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        // Fails only when the writer thread is gone: the dropped reply then
        // makes the future answer with a `StoreError`.
        let _ = self
            .shared
            .commands
            .send(Box::new(Call::new(op, flush, reply, orphaned)));
        SqliteFuture::new(answer)
    }
}

/// The release of a claim nobody waits for. Lazy: if a power cut loses it,
/// the claim's lease running out frees the key all the same.
fn release_command(lease: SqliteLease) -> Box<dyn Command> {
    let (reply, _) = oneshot::channel();
    let release = move |tx: &mut Tx<'_>| tx.release(&lease);
    Box::new(Call::new(release, Flush::Lazy, reply, |()| None))
}

/// A claim answered to a caller that went away: release it at once rather
/// than hold the key until its lease runs out.
fn release_orphaned_claim(claim: Claim<SqliteLease>) -> Option<Box<dyn Command>> {
    match claim {
        Claim::New(lease) => Some(release_command(lease)),
        Claim::Done | Claim::InFlight => None,
    }
}

impl IdempotencyStore for SqliteStore {
    type Lease = SqliteLease;
    type ClaimFuture = SqliteClaimFuture;
    type FinishFuture = SqliteFuture<()>;
    type RenewFuture = SqliteFuture<bool>;

    fn claim(&self, key: &IdempotencyKey, lease: Duration) -> SqliteClaimFuture {
        let key = key.as_str().to_owned();
        let claim = move |tx: &mut Tx<'_>| tx.claim(&key, lease);
        let answer = self.call_or_else(claim, Flush::Lazy, release_orphaned_claim);
        SqliteClaimFuture::new(answer, self.clone())
    }

    fn renew_claim(&self, lease: &SqliteLease, lease_for: Duration) -> SqliteFuture<bool> {
        let lease = lease.clone();
        self.call_lazy(move |tx| tx.renew_claim(&lease, lease_for))
    }

    fn complete(&self, lease: SqliteLease, ttl: Duration) -> SqliteFuture<()> {
        self.call(move |tx| tx.complete(&lease, ttl))
    }

    fn release(&self, lease: SqliteLease) -> SqliteFuture<()> {
        self.call(move |tx| tx.release(&lease))
    }

    fn release_abandoned(&self, lease: SqliteLease) {
        // Queued for the writer thread; nobody waits for the answer.
        let _ = self.shared.commands.send(release_command(lease));
    }

    /// The writer thread runs its commands in order and answers each after
    /// its group committed: a command sent now is answered after every
    /// release queued before it.
    fn abandoned_released(&self) -> impl Future<Output = ()> + Send + 'static {
        let answer = self.call(|_| Ok(()));
        async move {
            let _ = answer.await;
        }
    }
}

impl JobQueue for SqliteStore {
    type JobLease = SqliteLease;

    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept> {
        let key = key.as_str().to_owned();
        let job = NewJob::new(&delivery);
        Box::pin(self.call(move |tx| tx.accept(&key, &job)))
    }

    fn take(&self, request: TakeRequest) -> QueueFuture<Taken<SqliteLease>> {
        Box::pin(self.call_lazy(move |tx| tx.take(&request)))
    }

    fn renew(&self, lease: &SqliteLease, lease_for: Duration) -> QueueFuture<bool> {
        let lease = lease.clone();
        Box::pin(self.call_lazy(move |tx| tx.renew(&lease, lease_for)))
    }

    fn finish(&self, lease: SqliteLease, outcome: JobOutcome) -> QueueFuture<bool> {
        Box::pin(self.call(move |tx| tx.finish(&lease, &outcome)))
    }
}

impl QueueAdmin for SqliteStore {
    fn counts(&self) -> QueueFuture<QueueCounts> {
        Box::pin(self.call_lazy(|tx| tx.counts()))
    }

    fn counts_by_scheme(&self) -> QueueFuture<Vec<(String, QueueCounts)>> {
        Box::pin(self.call_lazy(|tx| tx.counts_by_scheme()))
    }

    fn dead_letters(&self, limit: usize) -> QueueFuture<Vec<DeadLetter>> {
        Box::pin(self.call_lazy(move |tx| tx.dead_letters(limit)))
    }

    fn replay(&self, key: &JobKey) -> QueueFuture<bool> {
        let key = key.clone();
        Box::pin(self.call(move |tx| tx.replay(key.as_str())))
    }
}

impl QueueInspect for SqliteStore {
    fn jobs(&self, state: JobState, limit: usize) -> QueueFuture<Vec<JobSummary>> {
        Box::pin(self.call_lazy(move |tx| tx.jobs(state, limit)))
    }

    fn dead_letter(&self, key: &JobKey) -> QueueFuture<Option<DeadLetterDetail>> {
        let key = key.clone();
        let row = self.call_lazy(move |tx| tx.dead_letter(key.as_str()));
        Box::pin(async move {
            let Some(row) = row.await? else {
                return Ok(None);
            };
            let summary = row.summary;
            let delivery = Delivery::decode(
                summary.scheme.clone(),
                summary.id.clone(),
                &row.head,
                row.body.into(),
            )?;
            Ok(Some(DeadLetterDetail { summary, delivery }))
        })
    }

    fn discard(&self, key: &JobKey) -> QueueFuture<bool> {
        let key = key.clone();
        Box::pin(self.call(move |tx| tx.discard(key.as_str())))
    }
}

#[cfg(test)]
mod tests;
