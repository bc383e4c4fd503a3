//! Zoom: `x-zm-signature: v0=<hex>` over `v0:{timestamp}:{body}`, with
//! `x-zm-request-timestamp`.
//!
//! # Format
//!
//! * The signed content is `v0:` + `x-zm-request-timestamp` + `:` + the raw
//!   body; the tag is 64 hex digits of its HMAC-SHA256, keyed with the
//!   app's webhook secret token as raw bytes.
//! * Zoom documents no tolerance; the timestamp (Unix seconds) must be
//!   within [`DEFAULT_TOLERANCE`] (5 minutes, either way) of the scheme's
//!   clock, else 401 `stale_timestamp`.
//! * The body must be a JSON object (else 400): `event` and `event_ts`
//!   (Unix milliseconds) are reported.
//!
//! # URL validation
//!
//! `endpoint.url_validation` is answered by the layer itself once it
//! verifies, without a claim and without calling the handler:
//! `{"plainToken": …, "encryptedToken": <hex HMAC-SHA256 of plainToken>}`,
//! under the secret that verified the request.
//!
//! # The idempotency key
//!
//! Zoom signs no delivery id, so the key is the SHA-256 (hex) of the signed
//! body (which holds `event_ts`): a retry is byte-identical and
//! deduplicates.

use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Response};
use http_body_util::Full;
use serde::Serialize;

use super::json::Json;
use super::timestamp::Freshness;
use super::{EventId, Parsed, Scheme, digest, handshake, headers, timestamp};
use crate::secret::{MatchedKey, Signature};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-zm-signature");
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("x-zm-request-timestamp");
/// Default timestamp tolerance: 5 minutes, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The Zoom scheme. Secrets are the raw bytes of the secret token.
#[derive(Debug, Clone)]
pub struct Zoom {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Zoom, DEFAULT_TOLERANCE, "5 minutes");

/// A verified Zoom event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ZoomEvent {
    /// SHA-256 (hex) of the signed body: the idempotency key.
    pub digest: Text,
    /// `event` (signed), such as `meeting.started`.
    pub event_type: Option<Text>,
    /// `event_ts` (signed), Unix milliseconds.
    pub event_ts: Option<i64>,
    /// `x-zm-request-timestamp` (signed), Unix seconds.
    pub timestamp: u64,
}

const FIELDS: &[(&str, usize)] = &[("event", 0), ("event_ts", 1), ("payload", 2)];

impl Scheme for Zoom {
    type Event = ZoomEvent;

    fn name(&self) -> &'static str {
        "zoom"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::v0_signature(
            headers,
            [&TIMESTAMP_HEADER, &SIGNATURE_HEADER],
            &self.freshness,
        )
        .map(|(signature, _)| signature)
    }

    fn handshake(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
        key: MatchedKey<'_>,
    ) -> Option<Response<Full<Bytes>>> {
        let json = Json::new(body).ok()?;
        let [event, _, payload] = json.fields::<3>(FIELDS, &[]).ok()?;
        if json.text(event).ok()?.as_deref() != Some("endpoint.url_validation") {
            return None;
        }
        let [plain] = json.nested::<1>(payload, &[("plainToken", 0)]).ok()?;
        let plain = json.text(plain).ok()??;
        let encrypted = key.mac(plain.as_bytes())?.to_hex();
        Some(handshake::json_reply(&serde_json::json!({
            "plainToken": plain.as_str(),
            "encryptedToken": encrypted,
        })))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<ZoomEvent>, LayerAnswer> {
        let timestamp =
            timestamp::parse_timestamp(headers::signed_header(headers, &TIMESTAMP_HEADER)?)?;
        let json = Json::new(body)?;
        let [event, event_ts, _] = json.fields::<3>(FIELDS, &[])?;
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: ZoomEvent {
                digest,
                event_type: json.text(event)?,
                event_ts: Json::integer(event_ts)?,
                timestamp,
            },
        })
    }
}

super::builtin::builtin!(Zoom, "ZOOM_WEBHOOK_SECRET", Zoom::new(), digest [event_type]);

/// `x-zm-signature` for `body` sent at `timestamp` (Unix seconds, also sent
/// as `x-zm-request-timestamp`).
pub fn sign(secret_token: &[u8], timestamp: u64, body: &[u8]) -> String {
    super::headers::sign_v0(secret_token, timestamp, body)
}

/// Zoom's `encryptedToken` for a URL validation's `plainToken`: lower-case
/// hex of its HMAC-SHA256.
pub fn encrypted_token(secret_token: &[u8], plain_token: &str) -> String {
    crate::secret::hmac_sha256(secret_token, plain_token.as_bytes()).to_hex()
}
