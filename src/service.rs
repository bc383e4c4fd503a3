//! The [`Webhook`] service: the header-only checks, then the hand-off to
//! [`ResponseFuture`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use crate::body::{Collector, ResponseBody};
use crate::config::Config;
use crate::future::ResponseFuture;
use crate::store::IdempotencyStore;
use crate::{LayerAnswer, Scheme};

/// The middleware [`WebhookLayer`](crate::WebhookLayer) wraps around an inner
/// service.
///
/// With [per-tenant secrets](crate::tenant) it looks the tenant up first,
/// from the request head: an unknown one is answered before anything else.
///
/// The inner service receives `Request<Full<Bytes>>`: the original headers,
/// the raw body, and in the extensions the typed event and its
/// [`EventId`](crate::EventId) (what deduplication keyed on, for logs or a
/// database-level uniqueness check).
pub struct Webhook<S, Sc, St> {
    inner: S,
    config: Arc<Config<Sc, St>>,
}

impl<S, Sc, St> Webhook<S, Sc, St> {
    pub(crate) fn new(inner: S, config: Arc<Config<Sc, St>>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, Sc, St> Clone for Webhook<S, Sc, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: fmt::Debug, Sc, St> fmt::Debug for Webhook<S, Sc, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, Sc, St, ReqBody, ResBody> Service<Request<ReqBody>> for Webhook<S, Sc, St>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    Sc: Scheme,
    St: IdempotencyStore,
    ReqBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, Sc, St>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let config = Arc::clone(&self.config);
        let (parts, body) = request.into_parts();
        let tenant = match &config.tenants {
            None => None,
            Some(tenants) => match tenants.lookup(&parts) {
                Some(entry) => Some(entry),
                None => return ResponseFuture::rejected(config, LayerAnswer::UnknownTenant),
            },
        };
        let declared = match declared_length(&parts.headers) {
            Some(len) if len > config.max_body_bytes as u64 => {
                return ResponseFuture::rejected(config, LayerAnswer::BodyTooLarge);
            }
            declared => declared.map(|len| len as usize),
        };
        let signature = match config.scheme.request_signature(&parts.uri, &parts.headers) {
            Ok(signature) => signature,
            Err(rejection) => return ResponseFuture::rejected(config, rejection),
        };
        if let Some(full) = config.backpressure() {
            return ResponseFuture::rejected(config, full);
        }
        // The instance that was polled ready goes with this request; the
        // clone stays for the next poll_ready.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let collector = Collector::new(config.max_body_bytes, declared);
        ResponseFuture::collecting(config, inner, parts, body, collector, signature, tenant)
    }
}

/// The `Content-Length` the sender declared, if it is one value of digits
/// only (`u64::from_str` would also take `+5`). Anything else is ignored:
/// the streamed cap still holds.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let value = values.next()?.as_bytes();
    if values.next().is_some() || value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}
