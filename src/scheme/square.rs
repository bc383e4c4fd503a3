//! Square: `x-square-hmacsha256-signature: <base64>` over the notification
//! URL followed by the raw body.
//!
//! # Format
//!
//! * The signed content is the subscription's notification URL, exactly as
//!   registered with Square (scheme, host, path and any query), followed by
//!   the raw body; the tag is standard padded base64 of its HMAC-SHA256,
//!   keyed with the subscription's signature key as raw bytes. Configure
//!   the URL with [`Square::new`]: behind a proxy, the URL Square calls is
//!   not the one this server sees, so it is never taken from the request.
//! * The legacy `x-square-signature` (HMAC-SHA1) header is ignored.
//! * The body must be a JSON object with a string `event_id` (else 400),
//!   the idempotency key; `type`, `merchant_id` and `created_at` are
//!   reported.

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::{EventId, Parsed, Scheme, headers};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-square-hmacsha256-signature");

/// The Square scheme for one notification URL. Secrets are the raw bytes
/// of the signature key.
#[derive(Debug, Clone)]
pub struct Square {
    notification_url: String,
}

impl Square {
    /// The scheme for deliveries to `notification_url`, exactly as
    /// registered with Square.
    pub fn new(notification_url: impl Into<String>) -> Self {
        Self {
            notification_url: notification_url.into(),
        }
    }

    /// The notification URL, the start of the signed content.
    pub fn notification_url(&self) -> &str {
        &self.notification_url
    }
}

/// A verified Square event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SquareEvent {
    /// `event_id` (signed): the idempotency key.
    pub event_id: Text,
    /// `type` (signed), such as `payment.updated`.
    pub event_type: Option<Text>,
    /// `merchant_id` (signed).
    pub merchant_id: Option<Text>,
    /// `created_at` (signed), RFC 3339 as sent.
    pub created_at: Option<Text>,
}

const FIELDS: &[(&str, usize)] = &[
    ("event_id", 0),
    ("type", 1),
    ("merchant_id", 2),
    ("created_at", 3),
];

impl Scheme for Square {
    type Event = SquareEvent;

    fn name(&self) -> &'static str {
        "square"
    }

    /// Square's documented sample signature key, `asdf1234`.
    fn min_secret_len(&self) -> usize {
        8
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(headers, &SIGNATURE_HEADER, b"", Tag::from_base64)
            .map(|signature| signature.with_prefix(self.notification_url.as_bytes()))
    }

    fn parse(&self, _headers: &HeaderMap, body: &Bytes) -> Result<Parsed<SquareEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let [id, event_type, merchant_id, created_at] = json.fields::<4>(FIELDS, &[0])?;
        let event_id = json.id(id)?;
        Ok(Parsed {
            id: EventId::from_text(event_id.clone())?,
            event: SquareEvent {
                event_id,
                event_type: json.text(event_type)?,
                merchant_id: json.text(merchant_id)?,
                created_at: json.text(created_at)?,
            },
        })
    }
}

impl super::Builtin for Square {
    const SECRET_VAR: &'static str = "SQUARE_WEBHOOK_SIGNATURE_KEY";
    const URL_VAR: Option<&'static str> = Some("SQUARE_NOTIFICATION_URL");

    fn from_settings(url: &str) -> Self {
        Self::new(url)
    }

    fn shown_id(event: &SquareEvent) -> Text {
        event.event_id.clone()
    }

    fn shown_fields(event: &SquareEvent) -> Vec<(&'static str, String)> {
        super::builtin::present([("event_type", event.event_type.as_deref()), ("merchant_id", event.merchant_id.as_deref())])
    }
}

/// `x-square-hmacsha256-signature` for `body` sent to `notification_url`:
/// standard padded base64 over the URL followed by the body.
pub fn sign(signature_key: &[u8], notification_url: &str, body: &[u8]) -> String {
    let content = [notification_url.as_bytes(), body].concat();
    crate::secret::hmac_sha256(signature_key, &content).to_base64()
}
