//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` over
//! `{t}.{body}`.
//!
//! # Format
//!
//! * The header is a comma-separated list of `key=value` items: exactly one
//!   `t` (Unix seconds) and one or more `v1` (64 hex digits, the HMAC-SHA256
//!   of `{t}.{body}`). Any one `v1` that verifies passes; during a secret
//!   rotation Stripe sends one per secret. Other schemes (`v0`, a test-only
//!   HMAC-SHA256 under another key) are ignored: never verified, never
//!   trusted.
//! * The signing secret (`whsec_…`) is used as raw bytes, as shown.
//! * The key is the event's `id` (`evt_…`) from the signed body.
//! * `t` must be within the tolerance ([`DEFAULT_TOLERANCE`], 300 s) of
//!   the scheme's clock, else 401 `stale_timestamp`. Tests inject a clock
//!   with [`Stripe::clock`].
//!
//! # Points Stripe's documentation leaves open, resolved the strict way
//!
//! * Stripe's libraries only refuse timestamps that are too *old*; this
//!   scheme also refuses ones more than the tolerance in the future, which
//!   only a wrong clock (or a forger) produces.
//! * `t` is 1 to 19 ASCII digits, given once; an item without `=` (an
//!   empty item from a stray comma included), a `v1` that is not 64 hex
//!   digits, more than 32 `v1` items, or no `v1` at all is malformed (401).
//!   No spaces are allowed around items.
//! * The body must be a JSON object with a string `id`; `id` given twice is
//!   ambiguous (400).
//!
//! ```
//! use tower_webhook::{WebhookLayer, stripe::Stripe};
//!
//! let layer = WebhookLayer::new(Stripe::new(), "whsec_test_secret")?;
//! let header = tower_webhook::stripe::sign(b"whsec_test_secret", 1_700_000_000, br#"{"id":"evt_1"}"#);
//! assert!(header.starts_with("t=1700000000,v1="));
//! # Ok::<(), tower_webhook::SecretError>(())
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;
use serde_json::value::RawValue;

use super::headers::{MAX_TAGS, signature_header};
use super::json::Json;
use super::timestamp::Freshness;
use super::{EventId, Parsed, Scheme, timestamp};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header Stripe sends.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("stripe-signature");
/// Default timestamp tolerance: 300 seconds, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The Stripe scheme. Secrets are the raw bytes of the endpoint's signing
/// secret (`whsec_…`).
#[derive(Debug, Clone)]
pub struct Stripe {
    freshness: Freshness,
}

timestamp::timestamped_scheme!(Stripe, DEFAULT_TOLERANCE, "300 s");

/// A verified Stripe event. Its text fields are views into the verified
/// body ([`Text`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StripeEvent {
    /// The event id (`evt_…`), from the signed body: the idempotency key.
    pub id: Text,
    /// The event type, such as `payment_intent.succeeded`.
    pub event_type: Option<Text>,
    /// When Stripe created the event (`created`, Unix seconds).
    pub created: Option<i64>,
    /// Whether the event comes from live mode (`livemode`).
    pub livemode: Option<bool>,
    /// The signed header timestamp `t` (Unix seconds).
    pub timestamp: u64,
}

/// What the header claims: `t` as sent and the `v1` tags.
struct Header<'h> {
    t: &'h [u8],
    tags: Vec<Tag>,
}

fn header(headers: &HeaderMap) -> Result<Header<'_>, LayerAnswer> {
    let value = signature_header(headers, &SIGNATURE_HEADER)?;
    let mut t = None;
    let mut tags = Vec::new();
    for item in value.split(|&b| b == b',') {
        let eq = item
            .iter()
            .position(|&b| b == b'=')
            .ok_or(LayerAnswer::MalformedSignature)?;
        match (&item[..eq], &item[eq + 1..]) {
            (b"t", digits) if t.replace(digits).is_none() => {}
            (b"t", _) => return Err(LayerAnswer::MalformedSignature),
            (b"v1", _) if tags.len() == MAX_TAGS => return Err(LayerAnswer::MalformedSignature),
            (b"v1", hex) => {
                tags.push(Tag::from_hex(hex).map_err(|_| LayerAnswer::MalformedSignature)?)
            }
            _ => {}
        }
    }
    match t {
        Some(t) if !tags.is_empty() => Ok(Header { t, tags }),
        _ => Err(LayerAnswer::MalformedSignature),
    }
}

impl Scheme for Stripe {
    type Event = StripeEvent;

    fn name(&self) -> &'static str {
        "stripe"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let Header { t, tags } = header(headers)?;
        self.freshness.check(timestamp::parse_timestamp(t)?)?;
        let mut tags = tags.into_iter();
        let first = tags.next().ok_or(LayerAnswer::MalformedSignature)?;
        Ok(tags
            .fold(Signature::over_body(first), Signature::or_tag)
            .with_prefix([t, b"."].concat()))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<StripeEvent>, LayerAnswer> {
        // The layer verified the header before reading the body.
        let timestamp = timestamp::parse_timestamp(header(headers)?.t)?;
        let json = Json::new(body)?;
        let fields = json.fields::<4>(FIELDS, &[ID])?;
        let id = json.id(fields[ID])?;
        Ok(Parsed {
            id: EventId::from_text(id.clone())?,
            event: StripeEvent {
                id,
                event_type: json.text(fields[TYPE])?,
                created: typed(fields[CREATED])?,
                livemode: typed(fields[LIVEMODE])?,
                timestamp,
            },
        })
    }
}

const ID: usize = 0;
const TYPE: usize = 1;
const CREATED: usize = 2;
const LIVEMODE: usize = 3;

const FIELDS: &[(&str, usize)] = &[
    ("id", ID),
    ("type", TYPE),
    ("created", CREATED),
    ("livemode", LIVEMODE),
];

/// An optional field of a fixed JSON type; `null` is absent.
fn typed<T: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Result<Option<T>, LayerAnswer> {
    raw.map_or(Ok(None), |raw| {
        serde_json::from_str(raw.get()).map_err(|_| LayerAnswer::InvalidPayload)
    })
}

super::builtin::builtin!(Stripe, "STRIPE_WEBHOOK_SECRET", Stripe::new(), id [event_type]);

/// `Stripe-Signature` for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex>` over `{timestamp}.{body}`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{timestamp}.").as_bytes(), body].concat();
    format!("t={timestamp},v1={}", crate::secret::hmac_sha256(secret, &content).to_hex())
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const T: u64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1699999999,"livemode":false}"#;
    /// `printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac whsec_test_secret`
    const OPENSSL_V1: &str = "35a1f7c785b75468a785c3aeb3e2cfa1335115227173e99bfc2a8745d0f68bc4";

    fn at(secs: u64) -> Stripe {
        Stripe::new().clock(move || UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, value.parse().unwrap());
        h
    }

    fn verify(scheme: &Stripe, value: &str, body: &[u8]) -> Result<(), LayerAnswer> {
        let set = crate::SecretSet::from_keys([SECRET]).unwrap();
        let signature = scheme.signature(&headers(value))?;
        set.verify(&signature, body)
            .map_err(|_| LayerAnswer::SignatureMismatch)
    }

    #[test]
    fn signing_helper_matches_an_independent_computation() {
        let header = crate::stripe::sign(SECRET, T, BODY);
        assert_eq!(header, format!("t={T},v1={OPENSSL_V1}"));
        assert_eq!(verify(&at(T), &header, BODY), Ok(()));
        // `t` is signed.
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify(&at(T), &moved, BODY),
            Err(LayerAnswer::SignatureMismatch)
        );
    }

    #[test]
    fn any_v1_passes_other_schemes_ignored() {
        let good = crate::stripe::sign(SECRET, T, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let zero = "0".repeat(64);
        let value = format!("t={T},v1={zero},v0={v1},v1={v1},v9=whatever");
        assert_eq!(verify(&at(T), &value, BODY), Ok(()));
        // A valid tag under v0 is not a v1.
        let only_v0 = format!("t={T},v1={zero},v0={v1}");
        assert_eq!(
            verify(&at(T), &only_v0, BODY),
            Err(LayerAnswer::SignatureMismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused_before_the_body() {
        let hex = "ab".repeat(32);
        let bad = [
            format!("v1={hex}"),
            format!("t={T}"),
            format!("t={T},v0={hex}"),
            format!("t={T},t={T},v1={hex}"),
            format!("t={T},v1={hex},"),
            format!("t={T}, v1={hex}"),
            format!("t={T},v1={hex}0"),
            format!("t=-{T},v1={hex}"),
            format!("t={T}.5,v1={hex}"),
            format!("t={T},v1={hex},garbage"),
        ];
        for value in bad {
            assert_eq!(
                at(T).signature(&headers(&value)).unwrap_err(),
                LayerAnswer::MalformedSignature,
                "{value}"
            );
        }
        let many = format!("t={T}{}", format!(",v1={hex}").repeat(MAX_TAGS + 1));
        assert_eq!(
            at(T).signature(&headers(&many)).unwrap_err(),
            LayerAnswer::MalformedSignature
        );
        assert_eq!(
            at(T).signature(&HeaderMap::new()).unwrap_err(),
            LayerAnswer::MissingSignature
        );
    }

    #[test]
    fn timestamp_tolerance_either_way() {
        let value = crate::stripe::sign(SECRET, T, BODY);
        let check = |now: u64| at(now).signature(&headers(&value)).map(|_| ());
        assert_eq!(check(T + 300), Ok(()));
        assert_eq!(check(T - 300), Ok(()));
        assert_eq!(check(T + 301), Err(LayerAnswer::StaleTimestamp));
        assert_eq!(check(T - 301), Err(LayerAnswer::StaleTimestamp));
        let wide = at(T + 3600).tolerance(Duration::from_secs(3600));
        assert!(wide.signature(&headers(&value)).is_ok());
    }

    #[test]
    fn typed_fields_and_id_rules() {
        let h = headers(&crate::stripe::sign(SECRET, T, BODY));
        let parsed = at(T).parse(&h, &Bytes::from_static(BODY)).unwrap();
        assert_eq!(parsed.id.as_str(), "evt_1");
        assert_eq!(
            parsed.event.event_type.as_deref(),
            Some("payment_intent.succeeded")
        );
        assert_eq!(parsed.event.created, Some(1_699_999_999));
        assert_eq!(parsed.event.livemode, Some(false));
        assert_eq!(parsed.event.timestamp, T);
        let parse = |body: &'static [u8]| at(T).parse(&h, &Bytes::from_static(body)).map(|_| ());
        assert_eq!(parse(br#"{"type":"x"}"#), Err(LayerAnswer::MissingId));
        assert_eq!(
            parse(br#"{"id":"a","id":"a"}"#),
            Err(LayerAnswer::AmbiguousId)
        );
        assert_eq!(
            parse(br#"{"id":"a","created":"soon"}"#),
            Err(LayerAnswer::InvalidPayload)
        );
        assert_eq!(parse(br#"{"id":"\u0065vt_1"}"#), Ok(()));
    }
}
