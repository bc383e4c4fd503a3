//! Paystack: `x-paystack-signature: <hex>`, **HMAC-SHA512** over the raw
//! body.
//!
//! # Format
//!
//! * The header holds 128 hex digits (either case) of the HMAC-SHA512 of the
//!   raw body, keyed with your secret key (`sk_live_…` / `sk_test_…`) as
//!   raw bytes.
//! * The body must be a JSON object (else 400): `event` is the event type,
//!   `data.reference` and `data.id` are reported.
//!
//! # The idempotency key
//!
//! Paystack signs no event id, so the key is the SHA-256 (hex) of the
//! signed body: a retry is byte-identical and deduplicates.

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Serialize;

use super::json::Json;
use super::{EventId, Parsed, Scheme, digest, headers};
use crate::secret::{Algorithm, Signature, Tag};
use crate::{LayerAnswer, Text};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-paystack-signature");

/// The Paystack scheme (HMAC-SHA512). Secrets are the raw bytes of your
/// secret key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paystack;

/// A verified Paystack event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PaystackEvent {
    /// SHA-256 (hex) of the signed body: the idempotency key.
    pub digest: Text,
    /// `event` (signed), such as `charge.success`.
    pub event_type: Option<Text>,
    /// `data.reference` (signed), the transaction reference.
    pub reference: Option<Text>,
    /// `data.id` (signed), as written.
    pub data_id: Option<Text>,
}

impl Scheme for Paystack {
    type Event = PaystackEvent;

    fn name(&self) -> &'static str {
        "paystack"
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::HmacSha512
    }

    fn signature(&self, headers: &HeaderMap) -> Result<Signature, LayerAnswer> {
        headers::prefixed_tag(headers, &SIGNATURE_HEADER, b"", |hex| {
            Tag::decode_hex(Algorithm::HmacSha512, hex)
        })
    }

    fn parse(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Parsed<PaystackEvent>, LayerAnswer> {
        let json = Json::new(body)?;
        let [event, data] = json.fields::<2>(&[("event", 0), ("data", 1)], &[])?;
        let [reference, data_id] = json.nested::<2>(data, &[("reference", 0), ("id", 1)])?;
        let digest = digest(body);
        Ok(Parsed {
            id: EventId::from_text(digest.clone())?,
            event: PaystackEvent {
                digest,
                event_type: json.text(event)?,
                reference: json.text(reference)?,
                data_id: json.text(data_id)?,
            },
        })
    }
}

super::builtin::builtin!(Paystack, "PAYSTACK_SECRET_KEY", Paystack, digest [event_type, reference]);

/// `x-paystack-signature` for `body`: lower-case hex of the HMAC-SHA512.
pub fn sign(secret_key: &[u8], body: &[u8]) -> String {
    crate::secret::hmac(crate::secret::Algorithm::HmacSha512, secret_key, body).to_hex()
}
