//! Discord interactions: `X-Signature-Ed25519` over
//! `X-Signature-Timestamp` + body, checked against the application's public
//! key (feature `ed25519`).
//!
//! # Format
//!
//! * The signed content is `X-Signature-Timestamp` followed by the raw body;
//!   `X-Signature-Ed25519` is 128 hex digits (either case) of its Ed25519
//!   signature, checked with `verify_strict` against the application's
//!   public key: 64 hex digits, as the developer portal shows it, decoded
//!   and checked once when the layer is built.
//! * Discord documents no tolerance; the timestamp (Unix seconds) must be
//!   within [`DEFAULT_TOLERANCE`] (5 minutes, either way) of the scheme's
//!   clock, else 401 `stale_timestamp`.
//! * The body must be a JSON object with a string `id` (else 400): the
//!   interaction id, the idempotency key. `type` and `application_id` are
//!   reported.
//! * Ed25519 hashes the message whole, so the timestamp and the body are
//!   joined into one buffer (one copy of the body) before the check.
//!
//! # PING
//!
//! A `PING` (`{"type":1}`) is answered by the layer itself once it
//! verifies, with `{"type":1}` (a `PONG`), without a claim and without
//! calling the handler. Every other interaction reaches the handler, which
//! answers it.

use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Response};
use http_body_util::Full;
use serde::Serialize;

use super::headers::signature_header;
use super::json::Json;
use super::timestamp::Freshness;
use super::{EventId, Parsed, Scheme, handshake, headers, timestamp};
use crate::secret::{Algorithm, Key, MatchedKey, Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-signature-ed25519");
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("x-signature-timestamp");
/// Default timestamp tolerance: 5 minutes, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The Discord interactions scheme. Secrets are the application's public
/// key in hex.
#[derive(Debug, Clone)]
pub struct Discord {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Discord, DEFAULT_TOLERANCE, "5 minutes");

/// A verified Discord interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DiscordEvent {
    /// The interaction `id` (signed): the idempotency key.
    pub id: Text,
    /// The interaction `type` (signed): 2 for an application command, 3 for
    /// a message component, …
    pub kind: Option<i64>,
    /// `application_id` (signed).
    pub application_id: Option<Text>,
    /// `X-Signature-Timestamp` (signed), Unix seconds.
    pub timestamp: u64,
}

const FIELDS: &[(&str, usize)] = &[("id", 0), ("type", 1), ("application_id", 2)];

/// Interaction type 1.
const PING: i64 = 1;

impl Scheme for Discord {
    type Event = DiscordEvent;

    fn name(&self) -> &'static str {
        "discord"
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::Ed25519
    }

    fn decode_key(&self, secret: &str) -> Result<Key, &'static str> {
        let mut key = [0; 32];
        hex::decode_to_slice(secret, &mut key).map_err(|_| "64 hex digits (a public key)")?;
        Ok(Key::new(Algorithm::Ed25519, key.to_vec()))
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let value = signature_header(headers, &SIGNATURE_HEADER)?;
        let tag = Tag::decode_hex(Algorithm::Ed25519, value)
            .map_err(|_| LayerAnswer::MalformedSignature)?;
        let raw = headers::signed_header(headers, &TIMESTAMP_HEADER)?;
        self.freshness.check(timestamp::parse_timestamp(raw)?)?;
        Ok(Signature::over_body(tag).with_prefix(raw))
    }

    fn handshake(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
        _key: MatchedKey<'_>,
    ) -> Option<Response<Full<Bytes>>> {
        let json = Json::new(body).ok()?;
        let [_, kind, _] = json.fields::<3>(FIELDS, &[]).ok()?;
        (Json::integer(kind).ok()? == Some(PING))
            .then(|| handshake::json_reply(&serde_json::json!({ "type": PING })))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<DiscordEvent>, LayerAnswer> {
        let timestamp =
            timestamp::parse_timestamp(headers::signed_header(headers, &TIMESTAMP_HEADER)?)?;
        let json = Json::new(body)?;
        let [id, kind, application_id] = json.fields::<3>(FIELDS, &[0])?;
        let id = json.id(id)?;
        Ok(Parsed {
            id: EventId::from_text(id.clone())?,
            event: DiscordEvent {
                id,
                kind: Json::integer(kind)?,
                application_id: json.text(application_id)?,
                timestamp,
            },
        })
    }
}

super::builtin::builtin!(Discord, "DISCORD_PUBLIC_KEY", Discord::new(), id [application_id]);

/// The Ed25519 signature (lower-case hex) of Discord's `timestamp ‖ body`
/// under the signing key `seed` (feature `ed25519`); its public key is
/// [`crate::sign::ed25519_public_key_hex`].
#[cfg(feature = "ed25519")]
pub fn sign(seed: &[u8; 32], timestamp: u64, body: &[u8]) -> String {
    let content = [timestamp.to_string().as_bytes(), body].concat();
    hex::encode(crate::secret::ed25519_sign(seed, &content))
}
