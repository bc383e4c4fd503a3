//! Why the layer answered a delivery itself instead of calling the inner
//! service, and the response it sends.
//!
//! Every outcome maps to one status from the contract in the crate docs: a
//! sender's fault is a 4xx (a 5xx makes senders retry for a day), and a 2xx is
//! never sent while the event may still be lost.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// A delivery the layer answered itself; the inner service did not run.
///
/// [`LayerAnswer::code`] is the stable reason code sent in the default response
/// body (`{"error":"<code>"}`) and in the `tracing` event (feature `tracing`).
/// No variant carries a secret or an expected tag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerAnswer {
    /// The body is larger than the configured cap, by `Content-Length` or
    /// while streaming. 413.
    BodyTooLarge,
    /// The body could not be read (the connection broke, or a body layer
    /// failed). 400.
    BodyUnreadable,
    /// The body did not arrive in full within the layer's body deadline
    /// ([`body_timeout`](crate::WebhookLayerBuilder::body_timeout), counted
    /// from the first read of the body): a sender that trickles or stalls.
    /// 408, with `Connection: close` so the connection is not kept for the
    /// next request.
    BodyTimeout,
    /// [Per-tenant secrets](crate::tenant): the request names no tenant,
    /// or one the map does not hold. 404, decided from the headers before
    /// the body is read: the tenant is part of the endpoint's address, and
    /// an address that does not exist is a 404, not a failed signature
    /// (401 would send an operator hunting a wrong secret) nor a malformed
    /// request (400).
    UnknownTenant,
    /// The scheme's signature header is absent. 401.
    MissingSignature,
    /// The signature header was sent more than once. 401.
    RepeatedSignature,
    /// The signature header is not exactly in the scheme's format. 401.
    MalformedSignature,
    /// The signed timestamp is outside the scheme's tolerance. 401.
    StaleTimestamp,
    /// No configured secret produces the tag the sender gave. 401.
    SignatureMismatch,
    /// The verified body is not UTF-8. 400.
    NotUtf8,
    /// The verified body is not a JSON object. 400.
    InvalidJson,
    /// The verified body carries no event id. 400.
    MissingId,
    /// The event id is given more than once (the same key twice, or both
    /// `id` and `Id`). 400.
    AmbiguousId,
    /// The event id is not a non-empty string, or is too long. 400.
    InvalidId,
    /// An unsigned header (such as `X-Webhook-Id`) disagrees with the signed
    /// body. 400.
    HeaderMismatch,
    /// The verified body is JSON but not the scheme's event shape. 400.
    InvalidPayload,
    /// The event was processed before (or, in queued mode, is already
    /// accepted, running or a dead letter): answered
    /// `200 {"status":"duplicate"}` so the sender stops retrying.
    Duplicate,
    /// Queued mode: the delivery is recorded durably and a worker will run
    /// the handler. `202 {"status":"accepted"}`. Not a failure: the layer
    /// answers it itself, so it is one of these outcomes.
    Accepted,
    /// Another copy of the event is being processed right now. 409 with
    /// `Retry-After`.
    InFlight {
        /// How long the sender should wait before retrying.
        retry_after: Duration,
    },
    /// The idempotency store could not be reached. 503 with `Retry-After`.
    StoreUnavailable {
        /// How long the sender should wait before retrying.
        retry_after: Duration,
    },
    /// Queued mode: the scheme's pending jobs are at the worker's bound
    /// ([`WorkerBuilder::max_pending_per_scheme`](crate::queue::WorkerBuilder::max_pending_per_scheme)),
    /// decided from the headers, before the body is read. 503 with
    /// `Retry-After`.
    QueueFull {
        /// How long the sender should wait before retrying.
        retry_after: Duration,
    },
}

impl LayerAnswer {
    /// The stable reason code, for response bodies, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::UnknownTenant => "unknown_tenant",
            Self::MissingSignature => "missing_signature",
            Self::RepeatedSignature => "repeated_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::SignatureMismatch => "signature_mismatch",
            Self::NotUtf8 => "not_utf8",
            Self::InvalidJson => "invalid_json",
            Self::MissingId => "missing_id",
            Self::AmbiguousId => "ambiguous_id",
            Self::InvalidId => "invalid_id",
            Self::HeaderMismatch => "header_mismatch",
            Self::InvalidPayload => "invalid_payload",
            Self::Duplicate => "duplicate",
            Self::Accepted => "accepted",
            Self::InFlight { .. } => "in_flight",
            Self::StoreUnavailable { .. } => "store_unavailable",
            Self::QueueFull { .. } => "queue_full",
        }
    }

    /// The status of the default response.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnknownTenant => StatusCode::NOT_FOUND,
            Self::MissingSignature
            | Self::RepeatedSignature
            | Self::MalformedSignature
            | Self::StaleTimestamp
            | Self::SignatureMismatch => StatusCode::UNAUTHORIZED,
            Self::BodyUnreadable
            | Self::NotUtf8
            | Self::InvalidJson
            | Self::MissingId
            | Self::AmbiguousId
            | Self::InvalidId
            | Self::HeaderMismatch
            | Self::InvalidPayload => StatusCode::BAD_REQUEST,
            Self::Duplicate => StatusCode::OK,
            Self::Accepted => StatusCode::ACCEPTED,
            Self::InFlight { .. } => StatusCode::CONFLICT,
            Self::StoreUnavailable { .. } | Self::QueueFull { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// How long the sender should wait before retrying, for the outcomes
    /// that ask it to.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::InFlight { retry_after }
            | Self::StoreUnavailable { retry_after }
            | Self::QueueFull { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The default response: the status above, a JSON body naming the reason
    /// (`{"status":"duplicate"}` for a duplicate, `{"status":"accepted"}`
    /// for a queued acceptance, `{"error":"<code>"}` otherwise),
    /// `Retry-After` in whole seconds where it applies, and
    /// `Connection: close` where the connection should not be reused
    /// ([`LayerAnswer::BodyTimeout`]).
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = match self {
            Self::Duplicate => Bytes::from_static(br#"{"status":"duplicate"}"#),
            Self::Accepted => Bytes::from_static(br#"{"status":"accepted"}"#),
            _ => Bytes::from(format!(r#"{{"error":"{}"}}"#, self.code())),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(wait) = self.retry_after() {
            // Retry-After takes whole seconds; round up so a sender never
            // comes back early.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.closes_connection() {
            close_connection(headers);
        }
        response
    }

    /// Whether the answer must end the connection: a body that missed its
    /// deadline is unread, and its sender held the connection long enough.
    pub(crate) fn closes_connection(&self) -> bool {
        matches!(self, Self::BodyTimeout)
    }
}

/// Asks the server to close the connection after this response (hyper does
/// so for HTTP/1; HTTP/2 has no such header and ends only the stream).
pub(crate) fn close_connection(headers: &mut http::HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
}

impl fmt::Display for LayerAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sentence = match self {
            Self::BodyTooLarge => "the webhook body is larger than the configured cap",
            Self::BodyUnreadable => "the webhook body could not be read",
            Self::BodyTimeout => "the webhook body did not arrive within the body deadline",
            Self::UnknownTenant => "the webhook names no tenant this endpoint knows",
            Self::MissingSignature => "the webhook signature header is missing",
            Self::RepeatedSignature => "the webhook signature header was sent more than once",
            Self::MalformedSignature => {
                "the webhook signature header is not in the expected format"
            }
            Self::StaleTimestamp => "the webhook timestamp is outside the allowed tolerance",
            Self::SignatureMismatch => "the webhook signature does not match the body",
            Self::NotUtf8 => "the webhook body is not UTF-8",
            Self::InvalidJson => "the webhook body is not a JSON object",
            Self::MissingId => "the webhook body carries no event id",
            Self::AmbiguousId => "the webhook body gives its event id more than once",
            Self::InvalidId => "the webhook event id is not a valid string id",
            Self::HeaderMismatch => "an unsigned webhook header disagrees with the signed body",
            Self::InvalidPayload => "the webhook body is not the provider's event shape",
            Self::Duplicate => "the webhook event was already processed",
            Self::Accepted => "the webhook delivery is recorded and queued for its handler",
            Self::InFlight { .. } => "the webhook event is being processed by another request",
            Self::StoreUnavailable { .. } => "the idempotency store is unavailable",
            Self::QueueFull { .. } => "too many webhook events are waiting to be processed",
        };
        f.write_str(sentence)
    }
}

impl std::error::Error for LayerAnswer {}

/// Reports a rejection through `tracing` (feature `tracing`); a no-op otherwise.
#[inline]
pub(crate) fn trace(scheme: &'static str, rejection: &LayerAnswer) {
    crate::trace::outcome(rejection.code());
    #[cfg(feature = "tracing")]
    match rejection {
        LayerAnswer::Duplicate | LayerAnswer::Accepted | LayerAnswer::InFlight { .. } => {
            tracing::info!(
                scheme,
                reason = rejection.code(),
                status = rejection.status().as_u16(),
                "webhook answered by the layer"
            )
        }
        _ => tracing::warn!(
            scheme,
            reason = rejection.code(),
            status = rejection.status().as_u16(),
            "webhook rejected"
        ),
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (scheme, rejection);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let response = LayerAnswer::InFlight {
            retry_after: Duration::from_millis(1500),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
