//! [`WebhookLayer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{
    Config, DEFAULT_BODY_TIMEOUT, DEFAULT_DONE_TTL, DEFAULT_LEASE, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RETRY_AFTER, Intake, OrderKeyFn, Responder,
};
use crate::metrics::LayerMetrics;
use crate::queue::{JobHandler, JobQueue, Worker, runner::LayerRunner};
use crate::secret::{SecretError, key_secrets};
use crate::service::Webhook;
use crate::store::{IdempotencyStore, MemoryStore};
use crate::tenant::{TenantFrom, TenantSecrets, Tenants};
use crate::{LayerAnswer, Scheme};

/// Verifies, bounds, deduplicates and types the webhooks of one scheme.
///
/// Built with [`WebhookLayer::builder`]; cheap to clone (one `Arc`).
pub struct WebhookLayer<Sc, St = MemoryStore> {
    config: Arc<Config<Sc, St>>,
}

impl<Sc, St> Clone for WebhookLayer<Sc, St> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<Sc: fmt::Debug, St: fmt::Debug> fmt::Debug for WebhookLayer<Sc, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("WebhookLayer")
            .field("scheme", &c.scheme)
            .field("secrets", &c.secrets)
            .field("tenants", &c.tenants)
            .field("store", &c.store)
            .field("max_body_bytes", &c.max_body_bytes)
            .field("body_timeout", &c.body_timeout)
            .field("done_ttl", &c.done_ttl)
            .field("lease", &c.lease)
            .field("retry_after", &c.retry_after)
            .finish_non_exhaustive()
    }
}

impl<Sc: Scheme> WebhookLayer<Sc, MemoryStore> {
    /// Starts a builder for `scheme`, with the in-memory store and the
    /// defaults above.
    pub fn builder(scheme: Sc) -> WebhookLayerBuilder<Sc, MemoryStore> {
        WebhookLayerBuilder {
            scheme,
            secrets: Vec::new(),
            tenants: None,
            store: MemoryStore::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout: Some(DEFAULT_BODY_TIMEOUT),
            done_ttl: DEFAULT_DONE_TTL,
            replay_window: ReplayWindow::DoneTtl,
            lease: DEFAULT_LEASE,
            retry_after: DEFAULT_RETRY_AFTER,
            responder: None,
            intake: None,
            order_key: None,
        }
    }

    /// A layer for `scheme` with one secret and every default.
    ///
    /// # Errors
    ///
    /// [`SecretError`] when the secret is empty, begins or ends with whitespace, the
    /// scheme cannot decode it, or it is an HMAC key shorter than
    /// [`MIN_HMAC_SECRET_LEN`](crate::MIN_HMAC_SECRET_LEN) bytes.
    pub fn new(scheme: Sc, secret: impl Into<String>) -> Result<Self, SecretError> {
        Self::builder(scheme).secret(secret).build()
    }
}

impl<Sc, St> WebhookLayer<Sc, St> {
    /// The store this layer records claims in.
    pub fn store(&self) -> &St {
        &self.config.store
    }
}

impl<Sc: Scheme, St: Send + Sync + 'static> WebhookLayer<Sc, St> {
    /// The handler for this queued layer's jobs: `service`, run by the
    /// worker for each job of this layer's scheme on the rebuilt request,
    /// with the typed event, its id and the [`Attempt`](crate::queue::Attempt)
    /// in the extensions. Hand it to the worker with
    /// [`Worker::handle`]; see [`crate::queue`].
    ///
    /// `service` is usually the very service this layer wraps on its route
    /// (with axum, the same `post(handler)`), so one handler serves both
    /// modes; in queued mode the route's own inner service is never called.
    pub fn job_handler<S, B>(&self, service: S) -> JobHandler
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: Send + 'static,
    {
        JobHandler::new(
            self.config.scheme.name(),
            Arc::new(LayerRunner::new(&self.config, service)),
        )
    }
}

impl<S, Sc, St> Layer<S> for WebhookLayer<Sc, St> {
    type Service = Webhook<S, Sc, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Webhook::new(inner, Arc::clone(&self.config))
    }
}

/// Configures a [`WebhookLayer`]; [`WebhookLayerBuilder::build`] checks the
/// secrets.
pub struct WebhookLayerBuilder<Sc, St> {
    scheme: Sc,
    secrets: Vec<String>,
    tenants: Option<Tenants>,
    store: St,
    max_body_bytes: usize,
    body_timeout: Option<Duration>,
    done_ttl: Duration,
    replay_window: ReplayWindow,
    lease: Duration,
    retry_after: Duration,
    responder: Option<Arc<Responder>>,
    intake: Option<Arc<dyn Intake>>,
    order_key: Option<Arc<OrderKeyFn>>,
}

/// The builder's replay window: the done TTL unless set otherwise.
#[derive(Debug, Clone, Copy)]
enum ReplayWindow {
    DoneTtl,
    Set(Option<Duration>),
}

impl<Sc: fmt::Debug, St: fmt::Debug> fmt::Debug for WebhookLayerBuilder<Sc, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLayerBuilder")
            .field("scheme", &self.scheme)
            .field("secrets", &self.secrets.len())
            .field("tenants", &self.tenants)
            .field("store", &self.store)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}

impl<Sc: Scheme, St: IdempotencyStore> WebhookLayerBuilder<Sc, St> {
    /// Adds a secret, as the provider shows it. Add several during a
    /// rotation: any one of them verifies.
    #[must_use]
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds several secrets (see [`WebhookLayerBuilder::secret`]).
    #[must_use]
    pub fn secrets<I, T>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.secrets.extend(secrets.into_iter().map(Into::into));
        self
    }

    /// Verifies each delivery with its tenant's secrets instead of one
    /// fixed set: the tenant is read from the request head as `from` says,
    /// and looked up in `secrets`, a map the application keeps a clone of
    /// and replaces while the layer runs. A request whose tenant is absent
    /// or unknown is `404 {"error":"unknown_tenant"}`, before its body is
    /// read. Idempotency keys carry the tenant, and the handler gets the
    /// [`Tenant`](crate::Tenant) in the request extensions.
    /// See [`crate::tenant`] for an example.
    ///
    /// Not combined with [`secret`](Self::secret): [`build`](Self::build)
    /// refuses both.
    #[must_use]
    pub fn tenants(mut self, from: TenantFrom, secrets: TenantSecrets) -> Self {
        self.tenants = Some(Tenants { from, secrets });
        self
    }

    /// Largest body accepted, in bytes (default 1 MiB). Larger → 413.
    #[must_use]
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The body deadline (default [`DEFAULT_BODY_TIMEOUT`], 10 s): the
    /// total time from the first read of the body to its end. Past it the
    /// layer answers `408 {"error":"body_timeout"}` with
    /// `Connection: close` ([`LayerAnswer::BodyTimeout`]); the inner service
    /// does not run and nothing is recorded, so the sender's retry is
    /// processed.
    ///
    /// It is a *total* deadline, unlike tower-http's
    /// `RequestBodyTimeoutLayer`, an idle timeout that a body trickling in a
    /// byte at a time never trips. It starts when the layer first reads
    /// the body, after the headers: slow headers are the server's to bound
    /// (hyper's header read timeout). Pass `None` (or
    /// [`Duration::MAX`]) to switch it off.
    ///
    /// The timer is tokio's: a body that is not all there when first read
    /// is waited for on the runtime's time driver, so a runtime built by
    /// hand needs `enable_time` (`#[tokio::main]` has it). Outside any
    /// tokio runtime the body is collected with no deadline.
    #[must_use]
    pub fn body_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.body_timeout = timeout.into();
        self
    }

    /// How long a processed event stays done (default 72 h).
    #[must_use]
    pub fn done_ttl(mut self, ttl: Duration) -> Self {
        self.done_ttl = ttl;
        self
    }

    /// The oldest delivery accepted, by the time the provider signed inside
    /// its body ([`Scheme::signed_time`]: Numero's `created_at`); older is
    /// 401 `stale_timestamp`, nothing recorded. Default: the done TTL, so
    /// that a captured delivery replayed after its key expired is refused,
    /// and every replay is either a duplicate or refused. `None` turns the
    /// check off. Schemes that sign no time in the body are not affected.
    #[must_use]
    pub fn replay_window(mut self, window: impl Into<Option<Duration>>) -> Self {
        self.replay_window = ReplayWindow::Set(window.into());
        self
    }

    /// How long an in-flight claim holds its key before another delivery may
    /// take it over (default 5 min).
    ///
    /// While the handler runs, the layer renews the claim every third of the
    /// lease (at most every 10 ms), so a handler slower than the lease keeps
    /// its key and copies get 409. The lease therefore bounds how long a
    /// claim whose process died mid-handler blocks its event, and how late a
    /// renewal may be: a store that stays unreachable for two thirds of it,
    /// or a handler that blocks its thread that long, loses the claim. A
    /// lost claim's handler runs on and its answer goes to the sender, but
    /// it cannot mark the event done (another delivery may be running it).
    ///
    /// The renewals wait on tokio's timer, made once the handler first keeps
    /// the layer waiting: a runtime built by hand needs `enable_time`
    /// (`#[tokio::main]` has it). Outside any tokio runtime nothing is
    /// renewed.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The `Retry-After` sent with 409 and 503 (default 5 s).
    #[must_use]
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    /// Replaces the response for deliveries the layer answers itself. The
    /// default is [`LayerAnswer::into_response`]; keep its statuses unless you
    /// know your sender: a 5xx for a sender's fault makes it retry for a day.
    #[must_use]
    pub fn answer_response<F>(mut self, respond: F) -> Self
    where
        F: Fn(LayerAnswer) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        self.responder = Some(Arc::new(respond));
        self
    }

    /// Uses `store` for claims instead of the in-memory default.
    pub fn store<St2: IdempotencyStore>(self, store: St2) -> WebhookLayerBuilder<Sc, St2> {
        WebhookLayerBuilder {
            scheme: self.scheme,
            secrets: self.secrets,
            tenants: self.tenants,
            store,
            max_body_bytes: self.max_body_bytes,
            body_timeout: self.body_timeout,
            done_ttl: self.done_ttl,
            replay_window: self.replay_window,
            lease: self.lease,
            retry_after: self.retry_after,
            responder: self.responder,
            intake: self.intake,
            order_key: self.order_key,
        }
    }

    /// Switches the layer to queued mode, on `worker`'s queue (which
    /// replaces any [`store`](Self::store)): a verified new delivery is
    /// recorded with its claim in one atomic, durable step and answered
    /// `202 {"status":"accepted"}`; the worker then runs the handler given to
    /// it with [`Worker::handle`] and [`WebhookLayer::job_handler`], with
    /// retries. See [`crate::queue`].
    ///
    /// One queued layer per scheme and worker.
    pub fn queued<Q: JobQueue>(self, worker: &Worker<Q>) -> WebhookLayerBuilder<Sc, Q> {
        let intake: Arc<dyn Intake> = worker.intake();
        WebhookLayerBuilder {
            intake: Some(intake),
            ..self.store(worker.queue().clone())
        }
    }

    /// Queued mode: names each event's order key with `key_of` (`None`:
    /// unordered). Jobs of this scheme with the same key run one at a
    /// time, in acceptance order; a failing one holds back the later ones
    /// of its key until it is done or a dead letter (which then says that
    /// it was let past). Different keys run in parallel. Default: no key.
    /// Cost: the call at intake, and one key checked per take and finish
    /// in the backend; see [`JobQueue::take`]. Inline mode ignores it.
    #[must_use]
    pub fn order_by<F>(mut self, key_of: F) -> Self
    where
        F: Fn(&Sc::Event) -> Option<String> + Send + Sync + 'static,
    {
        self.order_key = Some(Arc::new(move |event: &dyn std::any::Any, _: &[u8]| {
            event.downcast_ref::<Sc::Event>().and_then(&key_of)
        }));
        self
    }

    /// Queued mode: the order key is the value at the JSON pointer
    /// `pointer` (RFC 6901, e.g. `/data/customer_id`) in the verified body:
    /// a string as it is, a number or a boolean as its JSON text; an event
    /// without one there is unordered. As [`order_by`](Self::order_by),
    /// whose costs it adds one more parse of the body to.
    #[must_use]
    pub fn order_by_pointer(mut self, pointer: impl Into<String>) -> Self {
        let pointer: String = pointer.into();
        self.order_key = Some(Arc::new(move |_: &dyn std::any::Any, body: &[u8]| {
            crate::config::order_key_at(&pointer, body)
        }));
        self
    }

    /// Checks and keys the secrets and builds the layer.
    ///
    /// # Errors
    ///
    /// [`SecretError`] when no secret was given, or one is empty, begins or
    /// ends with whitespace, cannot be decoded by the scheme, or is an HMAC
    /// key shorter than [`MIN_HMAC_SECRET_LEN`](crate::MIN_HMAC_SECRET_LEN)
    /// bytes ([`SecretError::TooShort`], naming the scheme); with
    /// [`tenants`](Self::tenants), when fixed secrets were given too, or the
    /// tenant map is keyed for another scheme.
    pub fn build(self) -> Result<WebhookLayer<Sc, St>, SecretError> {
        let secrets = match &self.tenants {
            None => Some(key_secrets(
                self.scheme.name(),
                self.scheme.min_secret_len(),
                |secret: &str| self.scheme.decode_key(secret),
                &self.secrets,
            )?),
            Some(_) if !self.secrets.is_empty() => return Err(SecretError::SecretsAndTenants),
            Some(tenants) if tenants.secrets.scheme() != self.scheme.name() => {
                return Err(SecretError::TenantScheme {
                    expected: self.scheme.name(),
                    found: tenants.secrets.scheme(),
                });
            }
            Some(_) => None,
        };
        let metrics = LayerMetrics::new(self.scheme.name());
        Ok(WebhookLayer {
            config: Arc::new(Config {
                scheme: self.scheme,
                secrets,
                tenants: self.tenants,
                store: self.store,
                max_body_bytes: self.max_body_bytes,
                body_timeout: self.body_timeout,
                done_ttl: self.done_ttl,
                replay_window: match self.replay_window {
                    ReplayWindow::DoneTtl => Some(self.done_ttl),
                    ReplayWindow::Set(window) => window,
                },
                lease: self.lease,
                retry_after: self.retry_after,
                responder: self.responder,
                intake: self.intake,
                order_key: self.order_key,
                metrics,
            }),
        })
    }
}
