//! Numero: `X-Webhook-Signature` over the raw body, in base64 or hex.
//!
//! Numero's page says only "compare the computed signature with the received
//! signature", and shows base64-looking values. The safe reading taken here:
//! the header holds the 32-byte HMAC-SHA256 of the raw body as standard,
//! padded, canonical base64 (44 characters) or as 64 hex digits (either
//! case); anything else is refused before the body is read.
//!
//! The secret is the raw bytes of the string Numero shows, `whsec_` prefix
//! included: its tail is not valid base64, so it is not a base64 key.
//!
//! The key is the signed body's `id` (or `Id`). `X-Webhook-Id` and
//! `X-Webhook-Event` are not signed: when present they must agree with the
//! body (else 400), and they are never used as the key.
//!
//! # `data` is typed eagerly
//!
//! The `data` of a documented event type is typed when the layer parses the
//! body, before the key is claimed, not on first access. A `data` that does
//! not fit its type (not an object, a field given twice, an amount that is
//! an object, …) is then a 400 `invalid_payload` at the layer: the sender
//! learns at once, no claim is taken, and the handler never sees a delivery
//! it would have to refuse. Typing on first access could keep that 400 only
//! by checking every field's presence and JSON type eagerly anyway, which
//! is most of the typing's cost: what it would save is building the fields,
//! about a fifth of the parse (see `BENCHMARKS.md`). Typing costs little
//! more than the check because every field is a view into the body
//! ([`Text`]), the transaction is typed in the same pass over the bytes as
//! the envelope when the event type comes first (as in all of Numero's
//! examples), and it is boxed, so the event moves cheaply.

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;
use serde_json::value::RawValue;

use super::headers::{signature_header, single_header};
use super::json::Json;
use super::{EventId, Parsed, Scheme, json};
use crate::secret::{Signature, Tag};
use crate::{LayerAnswer, Text};

mod data;

pub use data::{Amount, Transaction};

/// The signature header Numero sends.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-webhook-signature");
/// Numero's unsigned event-id header, checked against the body.
pub const ID_HEADER: HeaderName = HeaderName::from_static("x-webhook-id");
/// Numero's unsigned event-type header, checked against the body.
pub const EVENT_HEADER: HeaderName = HeaderName::from_static("x-webhook-event");

/// The Numero scheme. Secrets are the raw bytes of `whsec_…` as shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Numero;

/// A Numero webhook event. Its text fields are views into the verified body
/// ([`Text`]): parsing copies nothing unless a JSON string holds escapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NumeroEvent {
    /// The event id (`id` or `Id`), unescaped.
    pub id: Text,
    /// The event type (`event` / `Event`), such as `TRANSFER_NOTIFICATION`.
    pub event_type: Option<Text>,
    /// When the event occurred (`created_at` / `CreatedAt`), as sent.
    pub created_at: Option<Text>,
    /// The typed event data.
    pub data: NumeroData,
}

/// The `data` of a Numero event, typed by event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum NumeroData {
    /// `FUNDING_NOTIFICATION`: your account was funded.
    Funding(Box<Transaction>),
    /// `TRANSFER_NOTIFICATION`: a transfer completed.
    Transfer(Box<Transaction>),
    /// `PAYOUT_NOTIFICATION`: a payout completed.
    Payout(Box<Transaction>),
    /// Any other (or absent) event type, delivered with its raw data rather
    /// than rejected, so an event type Numero adds later is never lost.
    Other(serde_json::Value),
}

const ID: usize = 0;
const EVENT: usize = 1;
const CREATED_AT: usize = 2;
const DATA: usize = 3;

const FIELDS: &[(&str, usize)] = &[
    ("id", ID),
    ("Id", ID),
    ("event", EVENT),
    ("Event", EVENT),
    ("created_at", CREATED_AT),
    ("CreatedAt", CREATED_AT),
    ("data", DATA),
    ("Data", DATA),
];

impl Scheme for Numero {
    type Event = NumeroEvent;

    fn name(&self) -> &'static str {
        "numero"
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        let value = signature_header(headers, &SIGNATURE_HEADER)?;
        let tag = match value.len() {
            64 => Tag::from_hex(value),
            _ => Tag::from_base64(value),
        };
        tag.map(Signature::over_body)
            .map_err(|_| LayerAnswer::MalformedSignature)
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<NumeroEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let body = json.as_text();
        let (fields, inline) = json.fields_with::<4, _>(FIELDS, &[ID], &InlineData(body))?;
        let id = json.id(fields[ID])?;
        let event_type = json.text(fields[EVENT])?;
        agrees(headers, &ID_HEADER, Some(&id))?;
        agrees(headers, &EVENT_HEADER, event_type.as_deref())?;
        let data = match inline {
            // Typed inline only for a documented type, so the variant exists.
            Some(transaction) => event_type
                .as_deref()
                .and_then(transaction_variant)
                .ok_or(LayerAnswer::InvalidPayload)?(transaction),
            None => typed_data(body, event_type.as_deref(), fields[DATA])?,
        };
        Ok(Parsed {
            id: EventId::from_text(id.clone())?,
            event: NumeroEvent {
                id,
                event_type,
                created_at: json.text(fields[CREATED_AT])?,
                data,
            },
        })
    }

    /// `created_at` / `CreatedAt`, when it is an RFC 3339 date-time. Numero
    /// documents one (`2023-03-15T15:42:12Z`); a body without it, or with
    /// another form, cannot be checked against the replay window and is
    /// accepted (the signature still holds: only Numero can have sent it).
    fn signed_time(&self, event: &NumeroEvent) -> Option<std::time::SystemTime> {
        super::timestamp::rfc3339::parse(event.created_at.as_deref()?)
    }
}

/// An unsigned header, when present, must be given once and equal the
/// signed body's value.
fn agrees(headers: &HeaderMap, name: &HeaderName, signed: Option<&str>) -> Result<(), LayerAnswer> {
    match single_header(headers, name) {
        Ok(None) => Ok(()),
        Ok(Some(value)) if Some(value.as_bytes()) == signed.map(str::as_bytes) => Ok(()),
        _ => Err(LayerAnswer::HeaderMismatch),
    }
}

/// The variant of a documented event type, whose `data` is a transaction.
fn transaction_variant(event_type: &str) -> Option<fn(Box<Transaction>) -> NumeroData> {
    match event_type {
        "FUNDING_NOTIFICATION" => Some(NumeroData::Funding),
        "TRANSFER_NOTIFICATION" => Some(NumeroData::Transfer),
        "PAYOUT_NOTIFICATION" => Some(NumeroData::Payout),
        _ => None,
    }
}

/// Types `data` during the envelope's pass when the event type came first
/// and is a documented one (as in Numero's examples), so its bytes are read
/// once; otherwise `data` is captured raw and typed by [`typed_data`].
struct InlineData<'t>(&'t Text);

impl<'de> json::Inline<'de> for InlineData<'_> {
    type Value = Box<Transaction>;

    fn slot(&self) -> usize {
        DATA
    }

    fn now(&self, before: &[Option<&'de RawValue>]) -> bool {
        // A plain JSON string only; an escaped type takes the other path.
        before[EVENT]
            .and_then(|raw| raw.get().strip_prefix('"')?.strip_suffix('"'))
            .is_some_and(|event_type| transaction_variant(event_type).is_some())
    }

    fn deserialize<D: serde::Deserializer<'de>>(
        &self,
        deserializer: D,
    ) -> Result<Box<Transaction>, D::Error> {
        Transaction::deserialize_in(self.0, deserializer)
    }
}

/// `data`, typed by event type; `raw` is a slice of `body`.
fn typed_data(
    body: &Text,
    event_type: Option<&str>,
    raw: Option<&RawValue>,
) -> Result<NumeroData, LayerAnswer> {
    let variant = match event_type.and_then(transaction_variant) {
        Some(variant) => variant,
        None => {
            let value = match raw {
                Some(raw) => {
                    serde_json::from_str(raw.get()).map_err(|_| LayerAnswer::InvalidPayload)?
                }
                None => serde_json::Value::Null,
            };
            return Ok(NumeroData::Other(value));
        }
    };
    let transaction = match raw {
        None => Box::default(),
        Some(raw) if raw.get() == "null" => Box::default(),
        Some(raw) => Transaction::parse(body, raw)?,
    };
    Ok(variant(transaction))
}

impl super::Builtin for Numero {
    const SECRET_VAR: &'static str = "NUMERO_WEBHOOK_SECRET";

    fn from_settings(_url: &str) -> Self {
        Numero
    }

    fn shown_id(event: &NumeroEvent) -> Text {
        event.id.clone()
    }

    fn shown_fields(event: &NumeroEvent) -> Vec<(&'static str, String)> {
        let transaction = match &event.data {
            NumeroData::Funding(t) | NumeroData::Transfer(t) | NumeroData::Payout(t) => Some(t),
            _ => None,
        };
        let amount = transaction
            .and_then(|t| t.amount.as_ref().or(t.trx_amount.as_ref()))
            .map(|amount| amount.as_str());
        super::builtin::present([
            ("event_type", event.event_type.as_deref()),
            ("amount", amount),
            ("currency", transaction.and_then(|t| t.currency.as_deref())),
        ])
    }
}

/// `X-Webhook-Signature` for `body`, in standard padded base64.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    crate::secret::hmac_sha256(secret, body).to_base64()
}

/// `X-Webhook-Signature` for `body`, in lower-case hex (Numero's other
/// accepted form).
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    crate::secret::hmac_sha256(secret, body).to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(headers: &HeaderMap, body: &str) -> Result<Parsed<NumeroEvent>, LayerAnswer> {
        Numero.parse(headers, &Bytes::copy_from_slice(body.as_bytes()))
    }

    fn parse(body: &str) -> Result<Parsed<NumeroEvent>, LayerAnswer> {
        parse_with(&HeaderMap::new(), body)
    }

    #[test]
    fn both_casings_parse_to_typed_data() {
        let snake = parse(
            r#"{"id":"evt_123456789","event":"PAYOUT_NOTIFICATION","created_at":"2023-03-15T15:42:12Z",
                "data":{"transaction_id":"txn_987654321","amount":5000.00,"currency":"NGN",
                "status":"completed"},"signature":"V1tj"}"#,
        )
        .unwrap();
        assert_eq!(snake.id.as_str(), "evt_123456789");
        let NumeroData::Payout(t) = &snake.event.data else {
            panic!("{:?}", snake.event.data)
        };
        assert_eq!(t.amount.as_ref().unwrap().as_str(), "5000.00");
        assert_eq!(t.transaction_id.as_deref(), Some("txn_987654321"));

        let pascal = parse(
            r#"{"Id":"9de79979","Event":"TRANSFER_NOTIFICATION","CreatedAt":"2025-07-10T05:10:55Z",
                "Data":{"TrxAmount":1000.0,"TrxFee":"40.00","BusinessCode":10984212,"Status":"Successful"}}"#,
        )
        .unwrap();
        let NumeroData::Transfer(t) = &pascal.event.data else {
            panic!("{:?}", pascal.event.data)
        };
        assert_eq!(t.trx_fee.as_ref().unwrap().as_str(), "40.00");
        assert_eq!(t.business_code.as_deref(), Some("10984212"));
    }

    #[test]
    fn text_fields_are_views_into_the_body_unless_escaped() {
        let body = Bytes::copy_from_slice(
            br#"{"id":"evt_1","event":"FUNDING_NOTIFICATION","created_at":"2025-07-10",
                "data":{"amount":12.50,"currency":"NGN","status":"\u0064one"}}"#,
        );
        let parsed = Numero.parse(&HeaderMap::new(), &body).unwrap();
        let range = body.as_ptr_range();
        let inside = |text: &str| range.contains(&text.as_ptr());
        let event = &parsed.event;
        assert!(inside(&event.id) && inside(parsed.id.as_str()));
        assert!(inside(event.event_type.as_deref().unwrap()));
        assert!(inside(event.created_at.as_deref().unwrap()));
        let NumeroData::Funding(t) = &event.data else {
            panic!("{:?}", event.data)
        };
        assert!(inside(t.amount.as_ref().unwrap().as_str()));
        assert_eq!(t.amount.as_ref().unwrap().as_str(), "12.50");
        assert!(inside(t.currency.as_deref().unwrap()));
        assert_eq!(t.status.as_deref(), Some("done"));
        assert!(!inside(t.status.as_deref().unwrap()), "unescaped: a copy");
    }

    #[test]
    fn malformed_data_of_a_known_type_is_refused() {
        for data in [
            r#""a string""#,
            "[1]",
            r#"{"amount":{}}"#,
            r#"{"amount":true}"#,
            r#"{"currency":[1]}"#,
            r#"{"amount":1,"Amount":2}"#,
        ] {
            // Typed during the envelope's pass (event first) or after it.
            let inline = format!(r#"{{"id":"e1","event":"PAYOUT_NOTIFICATION","data":{data}}}"#);
            let after = format!(r#"{{"id":"e1","data":{data},"event":"PAYOUT_NOTIFICATION"}}"#);
            for body in [inline, after] {
                assert_eq!(
                    parse(&body).unwrap_err(),
                    LayerAnswer::InvalidPayload,
                    "{body}"
                );
            }
        }
        let twice = r#"{"id":"e1","event":"PAYOUT_NOTIFICATION","data":{},"Data":{}}"#;
        assert_eq!(parse(twice).unwrap_err(), LayerAnswer::InvalidPayload);
        for null in [
            r#"{"id":"e1","event":"PAYOUT_NOTIFICATION","data":null}"#,
            r#"{"id":"e1","data":null,"event":"PAYOUT_NOTIFICATION"}"#,
        ] {
            let parsed = parse(null).unwrap();
            assert_eq!(parsed.event.data, NumeroData::Payout(Box::default()));
        }
    }

    #[test]
    fn field_order_does_not_change_the_event() {
        let data = r#"{"amount":"12.50","Currency":"NGN","x":[{"y":1}]}"#;
        let bodies = [
            format!(r#"{{"id":"e1","event":"FUNDING_NOTIFICATION","data":{data}}}"#),
            format!(r#"{{"data":{data},"id":"e1","event":"FUNDING_NOTIFICATION"}}"#),
            format!(r#"{{"id":"e1","event":"\u0046UNDING_NOTIFICATION","data":{data}}}"#),
        ];
        let events: Vec<_> = bodies.iter().map(|b| parse(b).unwrap().event).collect();
        assert_eq!(events[0], events[1]);
        assert_eq!(events[0], events[2]);
        let NumeroData::Funding(t) = &events[0].data else {
            panic!("{:?}", events[0].data)
        };
        assert_eq!(t.currency.as_deref(), Some("NGN"));
        assert_eq!(t.amount.as_ref().map(Amount::as_str), Some("12.50"));
    }

    #[test]
    fn unknown_event_type_is_delivered_raw() {
        let parsed = parse(r#"{"id":"e1","event":"NEW_THING","data":{"x":[1,2]}}"#).unwrap();
        assert_eq!(
            parsed.event.data,
            NumeroData::Other(serde_json::json!({"x":[1,2]}))
        );
    }

    #[test]
    fn id_rules() {
        assert_eq!(parse(r#"{"event":"X"}"#).unwrap_err(), LayerAnswer::MissingId);
        assert_eq!(
            parse(r#"{"id":"a","Id":"a"}"#).unwrap_err(),
            LayerAnswer::AmbiguousId
        );
        assert_eq!(parse(r#"{"id":12}"#).unwrap_err(), LayerAnswer::InvalidId);
        assert_eq!(parse(r#"{"id":"\u0065vt"}"#).unwrap().id.as_str(), "evt");
    }

    #[test]
    fn unsigned_headers_must_agree_with_the_body() {
        let mut h = HeaderMap::new();
        h.insert(ID_HEADER, "evt_1".parse().unwrap());
        h.insert(EVENT_HEADER, "TRANSFER_NOTIFICATION".parse().unwrap());
        let body = r#"{"id":"evt_1","event":"TRANSFER_NOTIFICATION"}"#;
        assert!(parse_with(&h, body).is_ok());
        h.insert(ID_HEADER, "evt_2".parse().unwrap());
        assert_eq!(parse_with(&h, body).unwrap_err(), LayerAnswer::HeaderMismatch);
    }
}
