//! The admin contract, opt-in: what the operator asks of a queue (counts,
//! dead letters, replay), beside the [`JobQueue`] core a [`Worker`] needs.
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

use super::queue::{JobQueue, QueueFuture};

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
    pub key: String,
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
    fn replay(&self, key: &str) -> QueueFuture<bool>;
}
