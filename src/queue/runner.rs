//! The run side of a queued layer: rebuild the request, parse the event,
//! call the service the worker was handed for the layer's scheme.

use std::error::Error as StdError;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_service::Service;

use super::{Attempt, Delivery};
use crate::Scheme;
use crate::Verified;
use crate::config::Config;

/// The handler for one queued layer's jobs: the layer's scheme and the
/// service that runs them. Made by
/// [`WebhookLayer::job_handler`](crate::WebhookLayer::job_handler), handed to
/// [`Worker::handle`](super::Worker::handle).
pub struct JobHandler {
    pub(super) scheme: &'static str,
    pub(super) runner: Arc<dyn Runner>,
}

impl JobHandler {
    pub(crate) fn new(scheme: &'static str, runner: Arc<dyn Runner>) -> Self {
        Self { scheme, runner }
    }
}

impl std::fmt::Debug for JobHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandler")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
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
    /// One attempt at `delivery`; `lent` is what the queue lends the
    /// handler for it ([`JobQueue::lend_job_to_handler`](crate::JobQueue::lend_job_to_handler)).
    fn run(
        &self,
        delivery: Delivery,
        attempt: u32,
        lent: http::Extensions,
    ) -> Pin<Box<dyn Future<Output = RunResult> + Send>>;

    /// How long the key of a job this runner completed stays done.
    fn done_ttl(&self) -> Duration;
}

/// The runner [`WebhookLayer::job_handler`](crate::WebhookLayer::job_handler)
/// makes: the layer's scheme (through its config) and the service that
/// runs its jobs.
pub(crate) struct LayerRunner<S, Sc, St> {
    config: Arc<Config<Sc, St>>,
    done_ttl: Duration,
    /// Cloned for each attempt; the lock only guards the clone.
    inner: Mutex<S>,
}

impl<S, Sc, St> LayerRunner<S, Sc, St> {
    pub(crate) fn new(config: &Arc<Config<Sc, St>>, inner: S) -> Self {
        Self {
            config: Arc::clone(config),
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
        lent: http::Extensions,
    ) -> Pin<Box<dyn Future<Output = RunResult> + Send>> {
        let config = &self.config;
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
        Verified::new(parsed.event, parsed.id).insert_into(request.extensions_mut());
        request.extensions_mut().insert(Attempt(attempt));
        request.extensions_mut().extend(lent);
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
