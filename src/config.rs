//! [`Config`]: the per-layer state every request, and every queued job of
//! the layer's scheme, reads; built once by the layer's builder and shared
//! behind one `Arc`.
//!
//! It sits below the layer, the service, the response future and the
//! queue's runner, so each of them imports it and none imports another to
//! reach it.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use crate::metrics::LayerMetrics;
use crate::secret::SecretSet;
use crate::store::IdempotencyKey;
use crate::store::queue::{Accept, Delivery, QueueFuture};
use crate::tenant::Tenants;
use crate::{LayerAnswer, Scheme};

/// Default body cap: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default body deadline: 10 seconds from the first read of the body to its
/// end. Providers send a small body in one go; see
/// [`WebhookLayerBuilder::body_timeout`](crate::WebhookLayerBuilder::body_timeout).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a processed event stays done: 72 hours, longer than the
/// providers' 24-hour retry horizon.
pub const DEFAULT_DONE_TTL: Duration = Duration::from_secs(72 * 3600);
/// Default lease of an in-flight claim: 5 minutes. A process that crashes
/// mid-request blocks its event for at most this long.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);
/// Default `Retry-After` for 409 (in flight) and 503 (store unavailable).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A replacement for the layer's own responses.
pub(crate) type Responder = dyn Fn(LayerAnswer) -> Response<Full<Bytes>> + Send + Sync;

/// A queued layer's order key for an event: from its typed event (handed
/// as `&dyn Any`, so that the builder need not name the event type) and
/// its verified body.
pub(crate) type OrderKeyFn = dyn Fn(&dyn Any, &[u8]) -> Option<String> + Send + Sync;

/// The order key the JSON pointer `pointer` finds in `body`: a string as
/// it is, a number or a boolean as its JSON text; `None` for anything else
/// (absent, null, an object or an array) and for a body that is not JSON.
pub(crate) fn order_key_at(pointer: &str, body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.pointer(pointer)? {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a queued layer needs of its worker: record a delivery, then wake
/// whoever runs it.
pub(crate) trait Intake: Send + Sync + 'static {
    /// Records `delivery` under `key` (see
    /// [`JobQueue::accept`](crate::store::queue::JobQueue::accept)) and,
    /// once accepted, wakes the worker.
    fn accept(&self, key: &IdempotencyKey, delivery: Delivery) -> QueueFuture<Accept>;

    /// Whether `scheme`'s pending jobs are at the bound, so a delivery
    /// must be refused before its body is read. A read of a counter the
    /// worker keeps, never a call to the backend.
    fn is_full(&self, scheme: &str) -> bool;
}

/// Everything a request needs, built once and shared by every clone.
pub(crate) struct Config<Sc, St> {
    pub(crate) scheme: Sc,
    /// The fixed set; `None` when the secrets are per tenant.
    pub(crate) secrets: Option<SecretSet>,
    /// Per-tenant secrets, looked up for each request.
    pub(crate) tenants: Option<Tenants>,
    pub(crate) store: St,
    pub(crate) max_body_bytes: usize,
    /// `None`: no deadline.
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) done_ttl: Duration,
    /// Deliveries whose signed time is older than this are refused.
    pub(crate) replay_window: Option<Duration>,
    pub(crate) lease: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) responder: Option<Arc<Responder>>,
    /// Queued mode: the worker that records deliveries and runs the handler.
    pub(crate) intake: Option<Arc<dyn Intake>>,
    /// Queued mode: how an event's order key is found; `None`: unordered.
    pub(crate) order_key: Option<Arc<OrderKeyFn>>,
    /// Feature `metrics`: this scheme's counters and histograms.
    pub(crate) metrics: LayerMetrics,
}

impl<Sc: Scheme, St> Config<Sc, St> {
    /// Queued mode: the answer for a delivery that arrives while the
    /// scheme's pending jobs are at the bound (backpressure).
    pub(crate) fn backpressure(&self) -> Option<LayerAnswer> {
        let intake = self.intake.as_ref()?;
        intake
            .is_full(self.scheme.name())
            .then_some(LayerAnswer::QueueFull {
                retry_after: self.retry_after,
            })
    }

    /// The order key of a verified, parsed event (queued mode only).
    pub(crate) fn order_key(&self, event: &Sc::Event, body: &[u8]) -> Option<String> {
        let find = self.order_key.as_ref()?;
        self.intake.as_ref()?;
        find(event, body).filter(|key| !key.is_empty())
    }

    /// The response for a delivery the layer answers itself.
    pub(crate) fn respond(&self, rejection: LayerAnswer) -> Response<Full<Bytes>> {
        crate::answer::trace(self.scheme.name(), &rejection);
        self.metrics.answered(&rejection);
        match &self.responder {
            Some(responder) => {
                // A replaced response still ends a connection that must end.
                let close = rejection.closes_connection();
                let mut response = responder(rejection);
                if close {
                    crate::answer::close_connection(response.headers_mut());
                }
                response
            }
            None => rejection.into_response(),
        }
    }
}
