//! The queue contract: what a backend implements to hold queued-mode jobs
//! ([`JobQueue`]: accept, take, renew, finish, wait), and the records that
//! cross it. The operator's calls are a contract of their own,
//! [`QueueAdmin`], which a backend may leave out.
//!
//! The worker that drives a [`JobQueue`] lives in [`crate::queue`]; this
//! module knows nothing of it, so a backend depends on the contract alone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{IdempotencyKey, IdempotencyStore, JobKey, StoreError};

pub use super::admin::{DeadLetter, QueueAdmin, QueueCounts};

pub use super::delivery::Delivery;
pub(crate) use super::delivery::OrderKey;

/// Default time a dead letter is kept for replay: 30 days.
pub const DEFAULT_DEAD_LETTER_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A boxed future answering a queue call.
pub type QueueFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// The answer to [`JobQueue::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// The key was free: the delivery is now recorded as a pending job, on
    /// durable storage where the backend has any.
    Accepted,
    /// The key is taken: the event is pending, running, done, dead, or held
    /// by an inline claim. Nothing was recorded.
    Duplicate,
}

/// What [`JobQueue::take`] is asked for: built with [`TakeRequest::new`]
/// (no caps), its caps set on the fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TakeRequest {
    /// Only jobs of these schemes (the worker can run no others).
    pub schemes: Arc<[Box<str>]>,
    /// At most this many jobs.
    pub max: usize,
    /// Each job taken is leased for this long.
    pub lease: Duration,
    /// At most this many jobs of one scheme running at once, across every
    /// process sharing the queue (running jobs whose lease is live count);
    /// `None`: no cap beyond `max`.
    pub max_running_per_scheme: Option<usize>,
    /// At most this many jobs of one tenant running at once, counted over
    /// every scheme (not only the requested ones) and every process sharing
    /// the queue; jobs without a tenant are not counted. `None`: no cap.
    pub max_running_per_tenant: Option<usize>,
}

impl TakeRequest {
    /// Up to `max` due jobs of `schemes`, each leased for `lease`, with no
    /// cap beyond `max`.
    pub fn new(schemes: Arc<[Box<str>]>, max: usize, lease: Duration) -> Self {
        Self {
            schemes,
            max,
            lease,
            max_running_per_scheme: None,
            max_running_per_tenant: None,
        }
    }

    /// Whether either running-jobs cap is set.
    pub fn is_capped(&self) -> bool {
        self.max_running_per_scheme.is_some() || self.max_running_per_tenant.is_some()
    }
}

/// A job taken by a worker: leased to it until it finishes or the lease
/// runs out.
pub struct Job<L> {
    /// The idempotency key (`<scheme>:<event id>`, or
    /// `<scheme>/<tenant>:<event id>`).
    pub key: JobKey,
    /// The recorded delivery.
    pub delivery: Delivery,
    /// This attempt's number, 1-based (attempts so far, this one included).
    pub attempt: u32,
    /// When the intake accepted the delivery.
    pub accepted_at: SystemTime,
    /// Whether the previous attempt (number `attempt - 1`) was taken and
    /// never finished: its lease ran out, because the process running it
    /// died (abort, OOM kill, `kill -9`) or hung. That attempt counts: a
    /// handler that kills its process reaches the attempt limit.
    pub interrupted: bool,
    /// Proof of this worker's lease: what [`JobQueue::renew`] and
    /// [`JobQueue::finish`] check against.
    pub lease: L,
}

impl<L> fmt::Debug for Job<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("key", &self.key)
            .field("attempt", &self.attempt)
            .field("accepted_at", &self.accepted_at)
            .field("interrupted", &self.interrupted)
            .finish_non_exhaustive()
    }
}

/// The answer to [`JobQueue::take`].
#[derive(Debug)]
pub struct Taken<L> {
    /// The jobs now leased to the caller.
    pub jobs: Vec<Job<L>>,
    /// When the next job of the requested schemes becomes due (a pending
    /// retry, or a running job whose lease runs out), if any is known; the
    /// worker sleeps until then at the latest.
    pub next_due: Option<SystemTime>,
}

/// How a job attempt ended, as the worker tells the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The handler answered 2xx: the event is done, and its key answers
    /// duplicate for `ttl`.
    Done {
        /// How long the key stays done.
        ttl: Duration,
    },
    /// The attempt failed: the job is pending again, due at `due`.
    Retry {
        /// When to run the next attempt.
        due: SystemTime,
        /// Why the attempt failed, for the record.
        error: String,
    },
    /// The last attempt failed: the job is a dead letter until replayed, or
    /// until `retain` has passed.
    Dead {
        /// Why the last attempt failed.
        error: String,
        /// How long the dead letter is kept.
        retain: Duration,
    },
}

/// A durable (or, for [`MemoryQueue`](crate::MemoryQueue), in-process) job queue that shares
/// its keys with an [`IdempotencyStore`]: an event's key is either claimed
/// inline, done, or held by exactly one job.
///
/// Every call is atomic on its own. The lease checks work as in
/// [`IdempotencyStore`]: a worker whose lease ran out, and whose job another
/// worker has taken since, can neither renew nor finish it.
pub trait JobQueue: IdempotencyStore {
    /// Proof of one worker's lease on one job.
    type JobLease: Clone + Send + Sync + 'static;

    /// Claims `key` and records `delivery` as a pending job due now, in one
    /// atomic step, unless the key is taken ([`Accept::Duplicate`]). A done
    /// key whose TTL has ended, or an inline claim whose lease ran out, is
    /// free. The future resolves only once the step is durable.
    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept>;

    /// Leases up to `request.max` jobs that are due: pending ones whose time
    /// has come, and running ones whose lease ran out (their worker died;
    /// [`Job::interrupted`] says so). Each taken job's attempt count goes
    /// up by one, durably (against a process crash) before the answer, so
    /// an attempt that kills the process is counted.
    ///
    /// **Order keys.** A job whose [`Delivery::order_key`] is `Some(k)` is
    /// due only while it is the oldest live (pending or running) job of
    /// its scheme with key `k`, by acceptance order: jobs of one key run one
    /// at a time, in the order they were accepted, and a failing one holds
    /// back the later ones until it is done or a dead letter. A replayed
    /// dead letter joins the end of its key's line. Jobs without a key, or
    /// with different keys, are not held back by each other.
    ///
    /// **Caps.** With [`TakeRequest::max_running_per_scheme`], no more
    /// jobs of a scheme are leased than leave its running jobs (live
    /// leases, in every process) at the cap; with
    /// [`TakeRequest::max_running_per_tenant`], the same for each tenant,
    /// over all its schemes. A job held back by a cap is not due: it makes
    /// [`Taken::next_due`] no sooner than the lease end that frees a
    /// place. A batch may come back short of `max` when it fills a cap's
    /// last places; the caller takes again.
    fn take(&self, request: TakeRequest) -> QueueFuture<Taken<Self::JobLease>>;

    /// Extends the lease on a running job by `lease` from now. `false` when
    /// the lease is no longer held (it ran out and another worker took the
    /// job, or the job was finished).
    fn renew(&self, lease: &Self::JobLease, lease_for: Duration) -> QueueFuture<bool>;

    /// Records how an attempt ended. `false`, and nothing changed, when the
    /// lease is no longer held.
    fn finish(&self, lease: Self::JobLease, outcome: JobOutcome) -> QueueFuture<bool>;

    /// Waits until work may have arrived from another process, or
    /// `max_wait` has passed. Jobs accepted through the same [`Worker`](crate::queue::Worker) wake
    /// it directly; a backend shared by several processes overrides this
    /// with a blocking read. The default sleeps for `max_wait`.
    fn wait_for_work(&self, max_wait: Duration) -> QueueFuture<()> {
        Box::pin(async move {
            tokio::time::sleep(max_wait).await;
            Ok(())
        })
    }

    /// As [`IdempotencyStore::lend_to_handler`], for a job's attempt: put
    /// in the rebuilt request's extensions just before the handler runs;
    /// `finish` with [`JobOutcome::Done`] commits what was lent, or fails
    /// with [`StoreError::rolled_back`], after which the worker records a
    /// retry instead. The default lends nothing.
    fn lend_job_to_handler(&self, lease: &Self::JobLease, extensions: &mut http::Extensions) {
        let _ = (lease, extensions);
    }
}

/// Milliseconds since the Unix epoch (0 before it), as backends store times.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
pub fn from_unix_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}
