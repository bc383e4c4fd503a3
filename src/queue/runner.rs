//! What joins a queued layer to its worker: the intake side (accept, then
//! wake the worker) and the run side (rebuild the request, parse the event,
//! call the service the layer wrapped).

use std::error::Error as StdError;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_service::Service;

use super::{Accept, Attempt, Delivery, QueueFuture};
use crate::Scheme;
use crate::layer::Config;
use crate::store::IdempotencyKey;

/// The queued layer's view of its worker.
pub(crate) trait Intake: Send + Sync + 'static {
    /// Records `delivery` under `key` (see
    /// [`JobQueue::accept`](super::JobQueue::accept)) and, once accepted,
    /// wakes the worker.
    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept>;

    /// Makes `runner` the handler for jobs of `scheme`.
    fn register(&self, scheme: &'static str, runner: Arc<dyn Runner>);
}

/// How one attempt ended, from the handler's side.
#[derive(Debug)]
pub(crate) enum RunResult {
    /// The handler answered 2xx.
    Succeeded,
    /// The handler answered non-2xx, or its service failed.
    Failed(String),
    /// The recorded body no longer parses as the scheme's event: no retry
    /// can help, so the job is a dead letter at once.
    Unrunnable(String),
}

/// Runs the jobs of one scheme.
pub(crate) trait Runner: Send + Sync + 'static {
    /// One attempt at `delivery`.
    fn run(
        &self,
        delivery: Delivery,
        attempt: u32,
    ) -> Pin<Box<dyn Future<Output = RunResult> + Send>>;

    /// How long the key of a job this runner completed stays done.
    fn done_ttl(&self) -> Duration;
}

/// The runner a queued layer registers: its scheme (through its config) and
/// the service it wrapped.
pub(crate) struct LayerRunner<S, Sc, St> {
    /// Weak: the config holds the worker, which holds this runner.
    config: Weak<Config<Sc, St>>,
    done_ttl: Duration,
    /// Cloned for each attempt; the lock only guards the clone.
    inner: Mutex<S>,
}

impl<S, Sc, St> LayerRunner<S, Sc, St> {
    pub(crate) fn new(config: &Arc<Config<Sc, St>>, inner: S) -> Self {
        Self {
            config: Arc::downgrade(config),
            done_ttl: config.done_ttl,
            inner: Mutex::new(inner),
        }
    }
}

impl<S, Sc, St, B> Runner for LayerRunner<S, Sc, St>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Send + 'static,
    Sc: Scheme,
    St: Send + Sync + 'static,
{
    fn run(
        &self,
        delivery: Delivery,
        attempt: u32,
    ) -> Pin<Box<dyn Future<Output = RunResult> + Send>> {
        let Some(config) = self.config.upgrade() else {
            let failed = RunResult::Failed("the layer for this scheme was dropped".into());
            return Box::pin(std::future::ready(failed));
        };
        // Parsed again, as it was on arrival; the freshness checks are not
        // made again: the delivery was fresh when it was accepted, and an
        // attempt is late by design (a retry, a backlog, a replay).
        let parsed =
            match config
                .scheme
                .parse_request(&delivery.uri, &delivery.headers, &delivery.body)
            {
                Ok(parsed) => parsed,
                Err(rejection) => {
                    let error = format!("the recorded delivery no longer parses: {rejection}");
                    return Box::pin(std::future::ready(RunResult::Unrunnable(error)));
                }
            };
        let mut request = delivery.into_request();
        if let Some(tenants) = &config.tenants {
            request = tenants.mark(request);
        }
        crate::future::hand_on(request.extensions_mut(), parsed.event, parsed.id);
        request.extensions_mut().insert(Attempt(attempt));
        let mut service = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(async move {
            if let Err(error) = poll_fn(|cx| service.poll_ready(cx)).await {
                return RunResult::Failed(format!("handler not ready: {}", error.into()));
            }
            match service.call(request).await {
                Ok(response) if response.status().is_success() => RunResult::Succeeded,
                Ok(response) => {
                    RunResult::Failed(format!("handler answered {}", response.status()))
                }
                Err(error) => RunResult::Failed(format!("handler failed: {}", error.into())),
            }
        })
    }

    fn done_ttl(&self) -> Duration {
        self.done_ttl
    }
}
