//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>` over
//! `{ts}:{body}`.
//!
//! # Format
//!
//! * The header is a `;`-separated list of `key=value` items: exactly one
//!   `ts` (Unix seconds) and one or more `h1` (64 hex digits, the
//!   HMAC-SHA256 of `{ts}:{body}`, keyed with the notification
//!   destination's secret key as raw bytes). Any one `h1` that verifies
//!   passes (Paddle sends one per secret while you rotate). Other keys are
//!   ignored.
//! * `ts` must be within the tolerance ([`DEFAULT_TOLERANCE`], 5 s, the
//!   default of Paddle's SDKs; either way) of the scheme's clock, else 401
//!   `stale_timestamp`. Widen it with [`Paddle::tolerance`] if your clock
//!   or proxy adds delay.
//! * `ts` is 1 to 19 digits, given once; an item without `=`, an `h1` that
//!   is not 64 hex digits, more than 32 `h1`, or none: malformed (401).
//!
//! # The idempotency key
//!
//! The signed body's `event_id` (`evt_…`), the same for every notification
//! of the event. `event_type`, `occurred_at` and `notification_id` are
//! reported.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::headers::{MAX_TAGS, signature_header};
use super::json::Json;
use super::timestamp::Freshness;
use super::{EventId, Parsed, Scheme, headers, timestamp};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("paddle-signature");
/// Default timestamp tolerance: 5 seconds, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5);

/// The Paddle Billing scheme. Secrets are the raw bytes of the endpoint's
/// secret key (`pdl_ntfset_…`).
#[derive(Debug, Clone)]
pub struct Paddle {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Paddle, DEFAULT_TOLERANCE, "5 s");

/// A verified Paddle Billing notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PaddleEvent {
    /// `event_id` (signed): the idempotency key.
    pub event_id: Text,
    /// `event_type` (signed), such as `transaction.completed`.
    pub event_type: Option<Text>,
    /// `occurred_at` (signed), RFC 3339 as sent.
    pub occurred_at: Option<Text>,
    /// `notification_id` (signed), one per destination and event.
    pub notification_id: Option<Text>,
    /// The signed header timestamp `ts`, Unix seconds.
    pub timestamp: u64,
}

/// `ts` as sent and the `h1` tags.
fn header(headers: &HeaderMap) -> Result<(&[u8], Vec<Tag>), LayerAnswer> {
    let value = signature_header(headers, &SIGNATURE_HEADER)?;
    let mut ts = None;
    let mut tags = Vec::new();
    for item in value.split(|&b| b == b';') {
        let (key, value) =
            headers::split_at_byte(item, b'=').ok_or(LayerAnswer::MalformedSignature)?;
        match key {
            b"ts" if ts.replace(value).is_none() => {}
            b"h1" if tags.len() < MAX_TAGS => {
                tags.push(Tag::from_hex(value).map_err(|_| LayerAnswer::MalformedSignature)?);
            }
            b"ts" | b"h1" => return Err(LayerAnswer::MalformedSignature),
            _ => {}
        }
    }
    match ts {
        Some(ts) if !tags.is_empty() => Ok((ts, tags)),
        _ => Err(LayerAnswer::MalformedSignature),
    }
}

const FIELDS: &[(&str, usize)] = &[
    ("event_id", 0),
    ("event_type", 1),
    ("occurred_at", 2),
    ("notification_id", 3),
];

impl Scheme for Paddle {
    type Event = PaddleEvent;

    fn name(&self) -> &'static str {
        "paddle"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let (ts, tags) = header(headers)?;
        self.freshness.check(timestamp::parse_timestamp(ts)?)?;
        let signature = Signature::any_of(tags).ok_or(LayerAnswer::MalformedSignature)?;
        Ok(signature.with_prefix([ts, b":"].concat()))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<PaddleEvent>, LayerAnswer> {
        let timestamp = timestamp::parse_timestamp(header(headers)?.0)?;
        let json = Json::new(body)?;
        let [id, event_type, occurred_at, notification_id] = json.fields::<4>(FIELDS, &[0])?;
        let event_id = json.id(id)?;
        Ok(Parsed {
            id: EventId::from_text(event_id.clone())?,
            event: PaddleEvent {
                event_id,
                event_type: json.text(event_type)?,
                occurred_at: json.text(occurred_at)?,
                notification_id: json.text(notification_id)?,
                timestamp,
            },
        })
    }
}

super::builtin::builtin!(Paddle, "PADDLE_WEBHOOK_SECRET", Paddle::new(), event_id [event_type, notification_id]);

/// `Paddle-Signature` for `body` sent at `timestamp` (Unix seconds):
/// `ts=<timestamp>;h1=<hex>` over `{timestamp}:{body}`.
pub fn sign(secret_key: &[u8], timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{timestamp}:").as_bytes(), body].concat();
    format!("ts={timestamp};h1={}", crate::secret::hmac_sha256(secret_key, &content).to_hex())
}
