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

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{EventId, Parsed, Scheme, envelope, signature_header, single_header};
use crate::Rejection;
use crate::secret::{Signature, Tag};

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

/// A Numero webhook event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NumeroEvent {
    /// The event id (`id` or `Id`), unescaped.
    pub id: String,
    /// The event type (`event` / `Event`), such as `TRANSFER_NOTIFICATION`.
    pub event_type: Option<String>,
    /// When the event occurred (`created_at` / `CreatedAt`), as sent.
    pub created_at: Option<String>,
    /// The typed event data.
    pub data: NumeroData,
}

/// The `data` of a Numero event, typed by event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum NumeroData {
    /// `FUNDING_NOTIFICATION`: your account was funded.
    Funding(Transaction),
    /// `TRANSFER_NOTIFICATION`: a transfer completed.
    Transfer(Transaction),
    /// `PAYOUT_NOTIFICATION`: a payout completed.
    Payout(Transaction),
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

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, Rejection> {
        let value = signature_header(headers, &SIGNATURE_HEADER)?;
        let tag = match value.len() {
            64 => Tag::from_hex(value),
            _ => Tag::from_base64(value),
        };
        tag.map(Signature::over_body)
            .map_err(|_| Rejection::MalformedSignature)
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<Parsed<NumeroEvent>, Rejection> {
        let slots = envelope::read::<4, _>(body, FIELDS, &[ID])?;
        let id = envelope::id(slots[ID])?;
        let event_type = envelope::text(slots[EVENT])?;
        agrees(headers, &ID_HEADER, Some(&id))?;
        agrees(headers, &EVENT_HEADER, event_type.as_deref())?;
        let data = typed_data(event_type.as_deref(), slots[DATA])?;
        Ok(Parsed {
            id: EventId::new(&id)?,
            event: NumeroEvent {
                id,
                event_type,
                created_at: envelope::text(slots[CREATED_AT])?,
                data,
            },
        })
    }
}

/// An unsigned header, when present, must be given once and equal the
/// signed body's value.
fn agrees(headers: &HeaderMap, name: &HeaderName, signed: Option<&str>) -> Result<(), Rejection> {
    match single_header(headers, name) {
        Ok(None) => Ok(()),
        Ok(Some(value)) if Some(value.as_bytes()) == signed.map(str::as_bytes) => Ok(()),
        _ => Err(Rejection::HeaderMismatch),
    }
}

fn typed_data(event_type: Option<&str>, raw: Option<&RawValue>) -> Result<NumeroData, Rejection> {
    let variant: fn(Transaction) -> NumeroData = match event_type {
        Some("FUNDING_NOTIFICATION") => NumeroData::Funding,
        Some("TRANSFER_NOTIFICATION") => NumeroData::Transfer,
        Some("PAYOUT_NOTIFICATION") => NumeroData::Payout,
        _ => {
            let value = match raw {
                Some(raw) => {
                    serde_json::from_str(raw.get()).map_err(|_| Rejection::InvalidPayload)?
                }
                None => serde_json::Value::Null,
            };
            return Ok(NumeroData::Other(value));
        }
    };
    let transaction = match raw.map(RawValue::get) {
        None | Some("null") => Transaction::default(),
        Some(json) => serde_json::from_str(json).map_err(|_| Rejection::InvalidPayload)?,
    };
    Ok(variant(transaction))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(headers: &HeaderMap, body: &str) -> Result<Parsed<NumeroEvent>, Rejection> {
        Numero.parse(headers, &Bytes::copy_from_slice(body.as_bytes()))
    }

    fn parse(body: &str) -> Result<Parsed<NumeroEvent>, Rejection> {
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
    fn unknown_event_type_is_delivered_raw() {
        let parsed = parse(r#"{"id":"e1","event":"NEW_THING","data":{"x":[1,2]}}"#).unwrap();
        assert_eq!(
            parsed.event.data,
            NumeroData::Other(serde_json::json!({"x":[1,2]}))
        );
    }

    #[test]
    fn id_rules() {
        assert_eq!(parse(r#"{"event":"X"}"#).unwrap_err(), Rejection::MissingId);
        assert_eq!(
            parse(r#"{"id":"a","Id":"a"}"#).unwrap_err(),
            Rejection::AmbiguousId
        );
        assert_eq!(parse(r#"{"id":12}"#).unwrap_err(), Rejection::InvalidId);
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
        assert_eq!(parse_with(&h, body).unwrap_err(), Rejection::HeaderMismatch);
    }
}
