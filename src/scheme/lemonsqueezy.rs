//! Lemon Squeezy: `X-Signature: <hex>` over the raw body.
//!
//! # Format
//!
//! * The header holds 64 hex digits (either case) of the HMAC-SHA256 of the
//!   raw body, keyed with the webhook's signing secret as raw bytes.
//! * The body must be a JSON object (else 400). The event name is the
//!   signed `meta.event_name` (`X-Event-Name` is unsigned and not read).
//!
//! # The idempotency key
//!
//! Lemon Squeezy signs no delivery id, so the key is the SHA-256 (hex) of
//! the signed body: a retry is byte-identical and deduplicates.

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-signature");

/// The Lemon Squeezy scheme. Secrets are the raw bytes of the signing
/// secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct LemonSqueezy;

/// A verified Lemon Squeezy webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LemonSqueezyEvent {
    /// SHA-256 (hex) of the signed body: the idempotency key.
    pub digest: Text,
    /// `meta.event_name` (signed), such as `order_created`.
    pub event_name: Option<Text>,
    /// `data.type` (signed), such as `orders`.
    pub data_type: Option<Text>,
    /// `data.id` (signed), the resource's id.
    pub data_id: Option<Text>,
}

impl Scheme for LemonSqueezy {
    type Event = LemonSqueezyEvent;

    fn name(&self) -> &'static str {
        "lemonsqueezy"
    }

    /// Lemon Squeezy's documented minimum (a signing secret is 6 to 40 characters).
    fn min_secret_len(&self) -> usize {
        6
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(headers, &SIGNATURE_HEADER, b"", Tag::from_hex)
    }

    fn parse(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<LemonSqueezyEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let [meta, data] = json.fields::<2>(&[("meta", 0), ("data", 1)], &[])?;
        let [event_name] = json.nested::<1>(meta, &[("event_name", 0)])?;
        let [data_type, data_id] = json.nested::<2>(data, &[("type", 0), ("id", 1)])?;
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: LemonSqueezyEvent {
                digest,
                event_name: json.text(event_name)?,
                data_type: json.text(data_type)?,
                data_id: json.text(data_id)?,
            },
        })
    }
}

super::builtin::builtin!(LemonSqueezy, "LEMONSQUEEZY_WEBHOOK_SECRET", LemonSqueezy, digest [event_name, data_id]);

/// `X-Signature` (Lemon Squeezy) for `body`: lower-case hex.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    crate::secret::hmac_sha256(secret, body).to_hex()
}
