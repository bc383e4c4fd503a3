//! The futures of [`SqliteStore`]'s calls: each awaits the writer thread's
//! answer, sent once the call's group has committed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::{SqliteLease, SqliteStore};
use crate::store::{Claim, IdempotencyStore, StoreError};

/// The answer to one [`SqliteStore`] call, once its transaction committed.
pub struct SqliteFuture<T> {
    answer: oneshot::Receiver<Result<T, StoreError>>,
}

impl<T> SqliteFuture<T> {
    pub(super) fn new(answer: oneshot::Receiver<Result<T, StoreError>>) -> Self {
        Self { answer }
    }
}

impl<T> Future for SqliteFuture<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer).poll(cx).map(|answer| {
            answer.unwrap_or_else(|_| {
                Err(StoreError::unavailable(
                    "the SQLite store's writer thread has stopped",
                ))
            })
        })
    }
}

impl<T> fmt::Debug for SqliteFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SqliteFuture")
    }
}

/// The future of [`SqliteStore`]'s claim.
///
/// Dropped before its answer was read (the client went away), it releases
/// the claim if the writer had already made one: otherwise the sender's
/// retry would meet an orphaned in-flight key until the lease ran out. (If
/// the answer comes after the drop, the writer releases it itself.)
pub struct SqliteClaimFuture {
    answer: SqliteFuture<Claim<SqliteLease>>,
    store: SqliteStore,
}

impl SqliteClaimFuture {
    pub(super) fn new(answer: SqliteFuture<Claim<SqliteLease>>, store: SqliteStore) -> Self {
        Self { answer, store }
    }
}

impl Future for SqliteClaimFuture {
    type Output = Result<Claim<SqliteLease>, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer).poll(cx)
    }
}

impl Drop for SqliteClaimFuture {
    fn drop(&mut self) {
        // Closing first settles the race with the writer: either its send
        // fails (and it releases), or the answer is here to release.
        self.answer.answer.close();
        if let Ok(Ok(Claim::New(lease))) = self.answer.answer.try_recv() {
            self.store.release_abandoned(lease);
        }
    }
}

impl fmt::Debug for SqliteClaimFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SqliteClaimFuture")
    }
}
