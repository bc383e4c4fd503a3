//! Twitch EventSub (webhook transport): `Twitch-Eventsub-Message-Signature:
//! sha256=<hex>` over message id + timestamp + body.
//!
//! # Format
//!
//! * The signed content is `Twitch-Eventsub-Message-Id` followed directly
//!   by `Twitch-Eventsub-Message-Timestamp` and the raw body; the tag is
//!   `sha256=` + 64 hex digits of its HMAC-SHA256, keyed with the
//!   subscription's secret (10 to 100 ASCII characters) as raw bytes.
//! * The id is 1 to [`super::MAX_ID_LEN`] visible ASCII
//!   characters; the timestamp is RFC 3339 in UTC
//!   (`2019-11-16T10:11:12.634234626Z`). Because the two are concatenated
//!   without a separator, the strict timestamp format is what keeps them
//!   apart: anything else is malformed (401).
//! * The timestamp must be within the tolerance ([`DEFAULT_TOLERANCE`],
//!   10 minutes, as Twitch's documentation asks; either way) of the
//!   scheme's clock, else 401 `stale_timestamp`.
//!
//! # Messages and the idempotency key
//!
//! * The key is the signed message id, which Twitch keeps when it resends
//!   a message.
//! * `webhook_callback_verification` is answered by the layer itself once
//!   it verifies: the body's `challenge`, as `text/plain`, without a claim
//!   and without calling the handler. The decision is made on the signed
//!   body (a `challenge` field); `Twitch-Eventsub-Message-Type`, which is
//!   not signed, must agree.
//! * Notifications and revocations reach the handler; the signed
//!   `subscription.type` is reported, and whether the message is a
//!   revocation (no `event` in the signed body).

use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Response};
use http_body_util::Full;
use serde::Serialize;

use super::headers::signature_header;
use super::json::Json;
use super::timestamp::Freshness;
use super::{EventId, MAX_ID_LEN, Parsed, Scheme, handshake, headers, timestamp};
use crate::secret::{MatchedKey, Signature, Tag};
use crate::{LayerAnswer, Text};

/// The message id header.
pub const ID_HEADER: HeaderName = HeaderName::from_static("twitch-eventsub-message-id");
/// The timestamp header (RFC 3339).
pub const TIMESTAMP_HEADER: HeaderName =
    HeaderName::from_static("twitch-eventsub-message-timestamp");
/// The signature header.
pub const SIGNATURE_HEADER: HeaderName =
    HeaderName::from_static("twitch-eventsub-message-signature");
/// The message type header: unsigned.
pub const TYPE_HEADER: HeaderName = HeaderName::from_static("twitch-eventsub-message-type");
/// Default timestamp tolerance: 10 minutes, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(10 * 60);

/// The Twitch EventSub scheme. Secrets are the raw bytes of the
/// subscription's secret.
#[derive(Debug, Clone)]
pub struct Twitch {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Twitch, DEFAULT_TOLERANCE, "10 minutes");

/// A verified Twitch EventSub message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TwitchEvent {
    /// `Twitch-Eventsub-Message-Id` (signed): the idempotency key.
    pub message_id: Text,
    /// `subscription.type` (signed), such as `channel.follow`.
    pub subscription_type: Option<Text>,
    /// Whether the signed body has no `event`: a revocation.
    pub revocation: bool,
    /// `Twitch-Eventsub-Message-Timestamp` (signed), Unix seconds.
    pub timestamp: u64,
}

/// The signed id and timestamp headers, checked; the timestamp in seconds.
fn id_and_time(headers: &HeaderMap) -> Result<(&[u8], &[u8], u64), LayerAnswer> {
    let id = headers::signed_header(headers, &ID_HEADER)?;
    let raw = headers::signed_header(headers, &TIMESTAMP_HEADER)?;
    let id_ok = !id.is_empty() && id.len() <= MAX_ID_LEN && id.iter().all(u8::is_ascii_graphic);
    let seconds = super::timestamp::rfc3339::unix_seconds(raw).filter(|_| id_ok);
    seconds
        .map(|seconds| (id, raw, seconds))
        .ok_or(LayerAnswer::MalformedSignature)
}

const FIELDS: &[(&str, usize)] = &[("challenge", 0), ("subscription", 1), ("event", 2)];

impl Scheme for Twitch {
    type Event = TwitchEvent;

    fn name(&self) -> &'static str {
        "twitch"
    }

    /// Twitch's documented minimum (a secret is 10 to 100 characters).
    fn min_secret_len(&self) -> usize {
        10
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let value = signature_header(headers, &SIGNATURE_HEADER)?;
        let (id, raw, seconds) = id_and_time(headers)?;
        let tag = value
            .strip_prefix(b"sha256=")
            .and_then(|hex| Tag::from_hex(hex).ok())
            .ok_or(LayerAnswer::MalformedSignature)?;
        self.freshness.check(seconds)?;
        Ok(Signature::over_body(tag).with_prefix([id, raw].concat()))
    }

    fn handshake(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        _key: MatchedKey<'_>,
    ) -> Option<Response<Full<Bytes>>> {
        let json = Json::new(body).ok()?;
        let [challenge, _, _] = json.fields::<3>(FIELDS, &[]).ok()?;
        let challenge = json.text(challenge).ok()??;
        let claimed = headers::unsigned_header(headers, &TYPE_HEADER).ok()?;
        (claimed.as_deref() == Some("webhook_callback_verification"))
            .then(|| handshake::reply("text/plain", challenge.as_bytes().clone()))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<TwitchEvent>, LayerAnswer> {
        let (id, _, timestamp) = id_and_time(headers)?;
        let message_id = Text::from(std::str::from_utf8(id).map_err(|_| LayerAnswer::InvalidId)?);
        let json = Json::new(body)?;
        let [_, subscription, event] = json.fields::<3>(FIELDS, &[])?;
        let [subscription_type] = json.nested::<1>(subscription, &[("type", 0)])?;
        Ok(Parsed {
            id: EventId::from_text(message_id.clone())?,
            event: TwitchEvent {
                message_id,
                subscription_type: json.text(subscription_type)?,
                revocation: event.is_none(),
                timestamp,
            },
        })
    }
}

super::builtin::builtin!(Twitch, "TWITCH_WEBHOOK_SECRET", Twitch::new(), message_id [subscription_type]);

/// `Twitch-Eventsub-Message-Signature` for message `id` sent at `timestamp`
/// (RFC 3339, as in `Twitch-Eventsub-Message-Timestamp`): `sha256=<hex>`
/// over id, timestamp and body.
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let content = [id.as_bytes(), timestamp.as_bytes(), body].concat();
    format!("sha256={}", crate::secret::hmac_sha256(secret, &content).to_hex())
}
