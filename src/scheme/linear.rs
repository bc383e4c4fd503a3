//! Linear: `Linear-Signature: <hex>` over the raw body, with a signed
//! `webhookTimestamp` inside the body.
//!
//! # Format
//!
//! * The header holds 64 hex digits (either case) of the HMAC-SHA256 of the
//!   raw body, keyed with the webhook's signing secret as raw bytes.
//! * The body must be a JSON object with an integer `webhookTimestamp`
//!   (Unix milliseconds; else 400). Being inside the body it is signed, and
//!   it must be within the tolerance ([`DEFAULT_TOLERANCE`], 60 s, as
//!   Linear's SDK checks; either way) of the scheme's clock, else 401
//!   `stale_timestamp` — checked once the body has verified, since Linear
//!   signs no timestamp header, and only when the delivery arrives
//!   ([`Scheme::check_freshness`]): in queued mode a retry or a replayed
//!   dead letter minutes later still runs the event accepted.
//! * `type` (`Issue`, `Comment`, …), `action` (`create`, `update`,
//!   `remove`) and `data.id` are reported.
//!
//! # The idempotency key
//!
//! Linear signs no delivery id (`Linear-Delivery` is an unsigned header,
//! reported), so the key is the SHA-256 (hex) of the signed body. A
//! redelivery that Linear re-stamps with a new `webhookTimestamp` is a
//! different body and runs the handler again: keep its effect idempotent
//! (on `data.id` and `updatedAt`, for example).

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::timestamp::Freshness;
use super::{EventId, Parsed, Scheme, digest, headers, timestamp};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("linear-signature");
/// The delivery id header: unsigned, never the key.
pub const DELIVERY_HEADER: HeaderName = HeaderName::from_static("linear-delivery");
/// Default tolerance for `webhookTimestamp`: 60 s, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(60);

/// The Linear scheme. Secrets are the raw bytes of the signing secret.
#[derive(Debug, Clone)]
pub struct Linear {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Linear, DEFAULT_TOLERANCE, "60 s");

/// A verified Linear webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LinearEvent {
    /// SHA-256 (hex) of the signed body: the idempotency key.
    pub digest: Text,
    /// `type` (signed), such as `Issue`.
    pub entity_type: Option<Text>,
    /// `action` (signed), such as `create`.
    pub action: Option<Text>,
    /// `data.id` (signed).
    pub data_id: Option<Text>,
    /// `webhookTimestamp` (signed), Unix milliseconds.
    pub webhook_timestamp: u64,
    /// `Linear-Delivery`. **Unsigned**; never the key.
    pub delivery: Option<Text>,
}

const FIELDS: &[(&str, usize)] = &[
    ("webhookTimestamp", 0),
    ("type", 1),
    ("action", 2),
    ("data", 3),
];

impl Scheme for Linear {
    type Event = LinearEvent;

    fn name(&self) -> &'static str {
        "linear"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(headers, &SIGNATURE_HEADER, b"", Tag::from_hex)
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<LinearEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let [timestamp, entity_type, action, data] = json.fields::<4>(FIELDS, &[])?;
        let millis = Json::integer(timestamp)?
            .and_then(|ms| u64::try_from(ms).ok())
            .ok_or(LayerAnswer::InvalidPayload)?;
        let [data_id] = json.nested::<1>(data, &[("id", 0)])?;
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: LinearEvent {
                digest,
                entity_type: json.text(entity_type)?,
                action: json.text(action)?,
                data_id: json.text(data_id)?,
                webhook_timestamp: millis,
                delivery: headers::unsigned_header(headers, &DELIVERY_HEADER)?,
            },
        })
    }

    fn check_freshness(&self, event: &LinearEvent) -> Result<(), LayerAnswer> {
        self.freshness.check(event.webhook_timestamp / 1000)
    }
}

super::builtin::builtin!(Linear, "LINEAR_WEBHOOK_SECRET", Linear::new(), digest [entity_type, action, data_id]);

/// `Linear-Signature` for `body`: lower-case hex.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    crate::secret::hmac_sha256(secret, body).to_hex()
}
