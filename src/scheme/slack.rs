//! Slack: `X-Slack-Signature: v0=<hex>` over `v0:{timestamp}:{body}`, with
//! `X-Slack-Request-Timestamp`.
//!
//! # Format
//!
//! * The signed content is `v0:` + `X-Slack-Request-Timestamp` + `:` + the
//!   raw body; the tag is 64 hex digits of its HMAC-SHA256, keyed with the
//!   app's signing secret as raw bytes (as Slack's SDKs use it).
//! * The timestamp (Unix seconds, 1 to 19 digits) must be within the
//!   tolerance ([`DEFAULT_TOLERANCE`], 5 minutes, as Slack's SDKs check;
//!   either way) of the scheme's clock, else 401 `stale_timestamp`.
//! * Each header must appear once; a missing timestamp is malformed (401).
//!
//! # Bodies and the idempotency key
//!
//! * Events API deliveries are JSON objects: the key is the signed
//!   `event_id` (`Ev…`), the same on Slack's retries (`X-Slack-Retry-Num`).
//!   `type`, `team_id`, `event_time` and the inner `event.type` are reported.
//! * `url_verification` is answered by the layer itself once it verifies
//!   (`{"challenge": …}`), without a claim and without calling the handler.
//! * Other bodies (slash commands and interactivity, form-encoded; JSON
//!   without `event_id`) sign no id: the key is the SHA-256 (hex) of the
//!   signed body.

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
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-slack-signature");
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("x-slack-request-timestamp");
/// Default timestamp tolerance: 5 minutes, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The Slack scheme. Secrets are the raw bytes of the signing secret.
#[derive(Debug, Clone)]
pub struct Slack {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Slack, DEFAULT_TOLERANCE, "5 minutes");

/// A verified Slack request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SlackEvent {
    /// `event_id` (signed) for Events API deliveries, else the SHA-256
    /// (hex) of the signed body: the idempotency key.
    pub id: Text,
    /// The top-level `type` (signed), such as `event_callback`; `None` for
    /// form-encoded requests.
    pub event_type: Option<Text>,
    /// The inner `event.type` (signed), such as `app_mention`.
    pub inner_type: Option<Text>,
    /// `team_id` (signed).
    pub team_id: Option<Text>,
    /// `event_time` (signed), Unix seconds.
    pub event_time: Option<i64>,
    /// `X-Slack-Request-Timestamp` (signed), Unix seconds.
    pub timestamp: u64,
}

const FIELDS: &[(&str, usize)] = &[
    ("event_id", 0),
    ("type", 1),
    ("team_id", 2),
    ("event_time", 3),
    ("event", 4),
    ("challenge", 5),
];

/// Whether the body is JSON (Events API) rather than a form.
fn is_json(body: &[u8]) -> bool {
    body.trim_ascii_start().first() == Some(&b'{')
}

impl Scheme for Slack {
    type Event = SlackEvent;

    fn name(&self) -> &'static str {
        "slack"
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
        _key: MatchedKey<'_>,
    ) -> Option<Response<Full<Bytes>>> {
        if !is_json(body) {
            return None;
        }
        let json = Json::new(body).ok()?;
        let slots = json.fields::<6>(FIELDS, &[]).ok()?;
        if json.text(slots[1]).ok()?.as_deref() != Some("url_verification") {
            return None;
        }
        let challenge = json.text(slots[5]).ok()??;
        Some(handshake::json_reply(
            &serde_json::json!({ "challenge": challenge.as_str() }),
        ))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<SlackEvent>, LayerAnswer> {
        let timestamp =
            timestamp::parse_timestamp(headers::signed_header(headers, &TIMESTAMP_HEADER)?)?;
        let mut event = SlackEvent {
            id: digest(body),
            event_type: None,
            inner_type: None,
            team_id: None,
            event_time: None,
            timestamp,
        };
        if is_json(body) {
            let json = Json::new(body)?;
            let slots = json.fields::<6>(FIELDS, &[0])?;
            if slots[0].is_some() {
                event.id = json.id(slots[0])?;
            }
            event.event_type = json.text(slots[1])?;
            event.team_id = json.text(slots[2])?;
            event.event_time = Json::integer(slots[3])?;
            let [inner_type] = json.nested::<1>(slots[4], &[("type", 0)])?;
            event.inner_type = json.text(inner_type)?;
        }
        Ok(Parsed {
            id: EventId::from_text(event.id.clone())?,
            event,
        })
    }
}

super::builtin::builtin!(Slack, "SLACK_SIGNING_SECRET", Slack::new(), id [event_type, inner_type, team_id]);

/// `X-Slack-Signature` for `body` sent at `timestamp` (Unix seconds, also
/// sent as `X-Slack-Request-Timestamp`).
pub fn sign(signing_secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    super::headers::sign_v0(signing_secret, timestamp, body)
}
