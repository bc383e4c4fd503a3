//! The admin contract, opt-in: what the operator asks of a queue (counts,
//! jobs, dead letters, replay, discard), beside the [`JobQueue`] core a
//! [`Worker`] needs.
//!
//! A backend implementing only [`JobQueue`] runs a worker
//! ([`Worker::builder_without_admin`]); with [`QueueAdmin`] too, the
//! worker also answers [`Worker::counts`], [`Worker::dead_letters`] and
//! [`Worker::replay`], and keeps the `webhook_queue_jobs` gauges (feature
//! `metrics`).
//!
//! [`Worker`]: crate::queue::Worker
//! [`Worker::builder_without_admin`]: crate::queue::Worker::builder_without_admin
//! [`Worker::counts`]: crate::queue::Worker::counts
//! [`Worker::dead_letters`]: crate::queue::Worker::dead_letters
//! [`Worker::replay`]: crate::queue::Worker::replay

use super::JobKey;
use super::queue::{Delivery, JobQueue, QueueFuture};

/// The longest [`JobSummary::last_error`] a backend lists, in bytes: a
/// handler's error text can be long, and a listing holds many.
pub const MAX_LISTED_ERROR_BYTES: usize = 512;

/// The most dead letters one [`QueueInspect::replay_scheme`] call replays.
pub const MAX_REPLAYED_PER_CALL: usize = 1000;

/// How many of the oldest dead letters (of every scheme) the default
/// [`QueueInspect::replay_scheme`] looks through.
pub const SCANNED_FOR_REPLAY: usize = 10_000;

/// Counts of jobs by state, across everything the backend holds (every
/// replica's jobs, for a shared backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounts {
    /// Accepted jobs waiting to run (due now or after a backoff).
    pub pending: u64,
    /// Jobs leased to a worker.
    pub running: u64,
    /// Dead letters.
    pub dead: u64,
}

/// A job whose last attempt failed, kept until replayed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// The idempotency key; [`Worker::replay`](crate::queue::Worker::replay) takes it.
    pub key: JobKey,
    /// The scheme's name.
    pub scheme: String,
    /// The event id.
    pub id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: String,
    /// When the intake accepted the delivery, in milliseconds since the Unix
    /// epoch.
    pub accepted_at_ms: u64,
    /// When the job became a dead letter, in milliseconds since the Unix
    /// epoch.
    pub failed_at_ms: u64,
}

/// The operator's calls on a [`JobQueue`]: what it holds, and replaying
/// its dead letters.
pub trait QueueAdmin: JobQueue {
    /// Counts jobs by state.
    fn counts(&self) -> QueueFuture<QueueCounts>;

    /// Counts jobs by state for each scheme, sorted by the scheme's name:
    /// every scheme with a pending, running or dead job is listed; one with
    /// none may be missing or listed with zeros (a backend that remembers
    /// its schemes lists them all). The counts add up to
    /// [`counts`](Self::counts). The worker reads it for the
    /// `webhook_queue_jobs` gauges (feature `metrics`).
    fn counts_by_scheme(&self) -> QueueFuture<Vec<(String, QueueCounts)>>;

    /// Lists up to `limit` dead letters, oldest failure first.
    fn dead_letters(&self, limit: usize) -> QueueFuture<Vec<DeadLetter>>;

    /// Puts the dead letter under `key` back in the queue, due now, with its
    /// attempts so far. `false` when there is no dead letter under `key`.
    fn replay(&self, key: &JobKey) -> QueueFuture<bool>;
}

/// The state of a listed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to run (due now or after a backoff).
    Pending,
    /// Leased to a worker.
    Running,
    /// A dead letter.
    Dead,
}

/// One job as the operator sees it in a listing: what it is, how far it
/// got and why it failed last, without its delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobSummary {
    /// The idempotency key; [`QueueAdmin::replay`] takes it.
    pub key: JobKey,
    /// The job's state.
    pub state: JobState,
    /// The scheme's name.
    pub scheme: String,
    /// The tenant, for a layer with per-tenant secrets (read from the key,
    /// [`JobKey::tenant`]).
    pub tenant: Option<String>,
    /// The event id.
    pub id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the last attempt failed (empty before any failure), cut to
    /// [`MAX_LISTED_ERROR_BYTES`].
    pub last_error: String,
    /// When the intake accepted the delivery, in milliseconds since the
    /// Unix epoch: the first attempt is due then.
    pub accepted_at_ms: u64,
    /// When the last failed attempt ended, in milliseconds since the Unix
    /// epoch; 0 when no attempt has failed yet.
    pub last_attempt_at_ms: u64,
}

impl JobSummary {
    /// A summary of the job under `key`; the tenant is read from the key,
    /// and `last_error` is cut to [`MAX_LISTED_ERROR_BYTES`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: JobKey,
        state: JobState,
        scheme: String,
        id: String,
        attempts: u32,
        last_error: String,
        accepted_at_ms: u64,
        last_attempt_at_ms: u64,
    ) -> Self {
        Self {
            tenant: key.tenant().map(str::to_owned),
            key,
            state,
            scheme,
            id,
            attempts,
            last_error: bounded_error(last_error),
            accepted_at_ms,
            last_attempt_at_ms,
        }
    }
}

/// `error` cut to at most [`MAX_LISTED_ERROR_BYTES`] on a character
/// boundary, with `…` marking the cut.
pub fn bounded_error(mut error: String) -> String {
    if error.len() > MAX_LISTED_ERROR_BYTES {
        let mut end = MAX_LISTED_ERROR_BYTES - '…'.len_utf8();
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
        error.push('…');
    }
    error
}

/// One dead letter in full: its summary and the delivery as recorded
/// (method, URI, every header, the raw body).
#[derive(Debug, Clone)]
pub struct DeadLetterDetail {
    /// As listed.
    pub summary: JobSummary,
    /// The recorded delivery.
    pub delivery: Delivery,
}

/// The operator's further calls: jobs by state, one dead letter in full,
/// replay of a scheme's dead letters, and discarding one. Beside
/// [`QueueAdmin`], so a backend adds them in one place; every backend of
/// this crate has them.
pub trait QueueInspect: QueueAdmin {
    /// Lists up to `limit` jobs in `state`, in the order they leave it:
    /// pending jobs by due time, running ones by lease end, dead letters by
    /// failure time (ties by key). Dead letters past their retention are
    /// not listed.
    fn jobs(&self, state: JobState, limit: usize) -> QueueFuture<Vec<JobSummary>>;

    /// The dead letter under `key` in full; `None` when there is none (or
    /// it is past its retention).
    fn dead_letter(&self, key: &JobKey) -> QueueFuture<Option<DeadLetterDetail>>;

    /// Removes the dead letter under `key`, as if its retention had ended:
    /// not listed, not replayable, and its key free, so a new copy of the
    /// event is accepted. `false` when there is none.
    fn discard(&self, key: &JobKey) -> QueueFuture<bool>;

    /// Replays up to `max` (at most [`MAX_REPLAYED_PER_CALL`]) dead letters
    /// of `scheme`, oldest failure first, as [`QueueAdmin::replay`]
    /// does each; answers how many it replayed. The default is built on
    /// [`jobs`](Self::jobs) and [`replay`](QueueAdmin::replay) over the
    /// oldest [`SCANNED_FOR_REPLAY`] dead letters, so it is not one atomic
    /// step: a dead letter replayed or discarded meanwhile is skipped.
    fn replay_scheme(&self, scheme: &str, max: usize) -> QueueFuture<u64> {
        let queue = self.clone();
        let scheme = scheme.to_owned();
        let max = max.min(MAX_REPLAYED_PER_CALL);
        Box::pin(async move {
            let listed = queue.jobs(JobState::Dead, SCANNED_FOR_REPLAY).await?;
            let mut replayed = 0u64;
            for letter in listed.iter().filter(|l| l.scheme == scheme).take(max) {
                if queue.replay(&letter.key).await? {
                    replayed += 1;
                }
            }
            Ok(replayed)
        })
    }
}
