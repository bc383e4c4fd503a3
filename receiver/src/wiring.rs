//! Inline or queued, on whichever store the command line chose: what every
//! route's layer is built with, and what the admin routes ask.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use tower_webhook::console::Console;
use tower_webhook::queue::{DeadLetter, JobHandler, QueueCounts, QueueFuture, QueueInspect};
use tower_webhook::{IdempotencyStore, JobKey, MemoryStore, Scheme, WebhookLayerBuilder, Worker};

use crate::events::EventLog;

/// How a layer is finished: with a store (inline) or a worker (queued).
pub trait Wiring: Send + Sync + 'static {
    /// The store the layers end up with.
    type Store: IdempotencyStore;

    /// Gives `builder` this wiring's store or worker.
    fn wire<Sc: Scheme>(
        &self,
        builder: WebhookLayerBuilder<Sc, MemoryStore>,
    ) -> WebhookLayerBuilder<Sc, Self::Store>;

    /// Hands a queued layer's job handler to the worker (inline: nothing
    /// to run later).
    fn handle(&self, handler: JobHandler);

    /// The operator console over the worker, guarded by `token`, showing
    /// `log`'s handler runs; `None` inline, where there is no queue.
    fn console(&self, _token: &str, _log: EventLog) -> Option<Router> {
        None
    }
}

/// What the admin routes and the shutdown need, whatever the wiring.
pub trait Admin: Send + Sync + 'static {
    /// `GET /queue`.
    fn counts(&self) -> QueueFuture<QueueCounts>;
    /// `GET /dead-letters`.
    fn dead_letters(&self) -> QueueFuture<Vec<DeadLetter>>;
    /// `POST /dead-letters/replay`.
    fn replay(&self, key: JobKey) -> QueueFuture<bool>;
    /// Lets running jobs finish within `grace`.
    fn shutdown(&self, grace: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Dead letters listed by `GET /dead-letters`, at most.
const DEAD_LETTERS_LISTED: usize = 1000;

/// Inline mode: the handler runs inside the request.
pub struct Inline<St>(pub St);

impl<St: IdempotencyStore> Wiring for Inline<St> {
    type Store = St;

    fn wire<Sc: Scheme>(
        &self,
        builder: WebhookLayerBuilder<Sc, MemoryStore>,
    ) -> WebhookLayerBuilder<Sc, St> {
        builder.store(self.0.clone())
    }

    fn handle(&self, _handler: JobHandler) {}
}

impl<St: IdempotencyStore> Admin for Inline<St> {
    fn counts(&self) -> QueueFuture<QueueCounts> {
        Box::pin(async { Ok(QueueCounts::default()) })
    }
    fn dead_letters(&self) -> QueueFuture<Vec<DeadLetter>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn replay(&self, _key: JobKey) -> QueueFuture<bool> {
        Box::pin(async { Ok(false) })
    }
    fn shutdown(&self, _grace: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async {})
    }
}

/// Queued mode: a worker runs the handlers.
pub struct Queued<Q: QueueInspect>(pub Worker<Q>);

impl<Q: QueueInspect> Wiring for Queued<Q> {
    type Store = Q;

    fn wire<Sc: Scheme>(
        &self,
        builder: WebhookLayerBuilder<Sc, MemoryStore>,
    ) -> WebhookLayerBuilder<Sc, Q> {
        builder.queued(&self.0)
    }

    fn handle(&self, handler: JobHandler) {
        self.0.handle(handler);
    }

    fn console(&self, token: &str, log: EventLog) -> Option<Router> {
        let runs = move || serde_json::from_slice(&log.to_json()).unwrap_or_default();
        let console = Console::new(self.0.clone(), token).ok()?.recent_runs(runs);
        Some(console.router())
    }
}

impl<Q: QueueInspect> Admin for Queued<Q> {
    fn counts(&self) -> QueueFuture<QueueCounts> {
        let worker = self.0.clone();
        Box::pin(async move { worker.counts().await })
    }
    fn dead_letters(&self) -> QueueFuture<Vec<DeadLetter>> {
        let worker = self.0.clone();
        Box::pin(async move { worker.dead_letters(DEAD_LETTERS_LISTED).await })
    }
    fn replay(&self, key: JobKey) -> QueueFuture<bool> {
        let worker = self.0.clone();
        Box::pin(async move { worker.replay(&key).await })
    }
    fn shutdown(&self, grace: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let worker = self.0.clone();
        Box::pin(async move {
            let report = worker.shutdown(grace).await;
            if !report.finished_in_time {
                eprintln!(
                    "{} running job(s) did not finish within the grace period; \
                     they are queued again",
                    report.aborted
                );
            }
        })
    }
}
